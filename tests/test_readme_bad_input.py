"""The README's bad-input table is what the hub does: every row is fed to the hub here."""

from __future__ import annotations

import copy
import os
import re
import subprocess
import sys
from collections.abc import Callable
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

import pytest

from integrations.agencies.client import AgencyClient
from integrations.agencies.errors import AgencyError
from integrations.settings import Settings
from integrations.store.engine import make_engine, upgrade
from models.sources import prepare_page
from sandbox.config import SandboxConfig
from sandbox.server import serve_in_thread
from tests.factories import household, member
from tests.faults.endpoints import closed_port

README = Path(__file__).resolve().parents[1] / "README.md"
NOW = datetime(2026, 11, 20, tzinfo=UTC)


def _table() -> list[tuple[str, str, str]]:
    text = README.read_text(encoding="utf-8")
    section = text.split("## Bad input", 1)[1].split("\n## ", 1)[0]
    rows = []
    for line in section.splitlines():
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        if len(cells) == 3 and cells[1] in {"record", "argument", "setting", "agency"}:
            rows.append((cells[0], cells[1], cells[2]))
    return rows


def _first(r: dict[str, Any]) -> dict[str, Any]:
    first: dict[str, Any] = r["members"][0]
    return first


RECORDS: dict[str, Callable[[Any], Any]] = {
    "a NIK of 11 digits": lambda r: _first(r).update(nik="35780112345"),
    "a NIK whose province code is 99": lambda r: _first(r).update(nik="99" + _first(r)["nik"][2:]),
    "a member's NIK typed as the No. KK": lambda r: r.update(no_kk=_first(r)["nik"]),
    "a NUL or other control character in a name": lambda r: _first(r).update(name="Siti\x00"),
    "a name of only spaces": lambda r: _first(r).update(name="   "),
    "a birth date in 2099": lambda r: _first(r).update(birth_date="2099-01-01"),
    "a birth date in 1800": lambda r: _first(r).update(birth_date="1800-01-01"),
    "a birth date given as the number 0": lambda r: _first(r).update(birth_date=0),
    "`updated_at` given as the number 0": lambda r: r.update(updated_at=0),
    "`updated_at` before 2011": lambda r: r.update(updated_at="2009-01-01T00:00:00+07:00"),
    '`desil: true` or `desil: "7"`': lambda r: r.update(desil=True),
    "`desil: 11`": lambda r: r.update(desil=11),
    "a desa code Kemendagri does not know": lambda r: r.update(desa_code="35.78.99.9999"),
    "a household without members": lambda r: r.update(members=[]),
    "one NIK twice in a household": lambda r: r["members"][1].update(nik=_first(r)["nik"]),
    "a record that is not a JSON object": lambda r: "not a record",
    "HTML, markdown or SQL in a name": lambda r: _first(r).update(
        name="<b>x</b> [y](javascript:1) '; DROP TABLE member; --"
    ),
}


def _cli(env: dict[str, str], *args: str) -> str:
    done = subprocess.run(
        [sys.executable, "-m", "deployments.cli", *args],
        env={**os.environ, **env},
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode != 0
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1, done.stderr
    return lines[0]


def _agency_error(url: str, token: str = "sandbox-registry-token") -> str:
    settings = Settings(http_backoff_base_s=0.01)
    try:
        with AgencyClient("registry", url, token, settings=settings) as client:
            client.fetch_page("households", kecamatan="35.78.01")
    except AgencyError as exc:
        return str(exc)
    raise AssertionError("the agency call succeeded")


def test_every_row_of_the_table_is_what_the_hub_does(tmp_path: Path) -> None:
    rows = _table()
    assert len(rows) >= 20
    base = household(1, members=[member(11), member(12, sex="L", born=date(1990, 1, 2))])
    url = f"sqlite:///{tmp_path / 'cettar.db'}"
    upgrade(make_engine(url))
    store = {"CETTAR_DATABASE_URL": url}
    missing = {"CETTAR_DATABASE_URL": f"sqlite:///{tmp_path / 'missing' / 'cettar.db'}"}
    seen: set[str] = set()
    with serve_in_thread(SandboxConfig()) as sandbox:
        for what, kind, answer in rows:
            seen.add(what)
            if kind == "record":
                record = copy.deepcopy(base)
                changed = RECORDS[what](record)
                page = prepare_page(
                    "registry.households", [changed if changed else record], b"k" * 32, NOW
                )
                if answer.startswith("stored verbatim"):
                    assert not page.rejected and page.children[0]["name"] == _first(record)["name"]
                    continue
                (rejected,) = page.rejected
                assert rejected.reason_codes == [answer.strip("`")], what
            elif kind in {"argument", "setting"}:
                # The input is the row's first code span; words after it say what else holds.
                expected, given = answer.strip("`"), [*re.findall(r"`([^`]+)`", what), what][0]
                if given.startswith("--"):
                    option, value = given.split()
                    line = _cli(store, "sync", "registry", option, value)
                elif given.startswith("CETTAR_"):
                    name, value = given.split("=", 1)
                    line = _cli({**store, name: value}, "sync", "registry")
                else:
                    line = _cli(missing, "sync", "registry")
                assert line.startswith(expected), (what, line)
            else:
                fragments = re.findall(r"`([^`]+)`", answer)
                if "closed port" in what:
                    message = _agency_error(f"http://127.0.0.1:{closed_port()}/registry")
                elif "scheme" in what:
                    message = _agency_error("registry.example/registry")
                else:
                    message = _agency_error(f"{sandbox}/registry", token="wrong-token")
                assert all(f in message for f in fragments), (what, message)
    assert seen >= set(RECORDS), set(RECORDS) - seen


@pytest.mark.parametrize("value", [True, "7"])
def test_both_desil_traps_get_the_same_reason(value: object) -> None:
    record = household(1, members=[member(11)], desil=value)
    (rejected,) = prepare_page("registry.households", [record], b"k" * 32, NOW).rejected
    assert rejected.reason_codes == ["desil:int_type"]
