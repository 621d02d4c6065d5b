"""`cettar person check`: one planted person found across programmes, audited, never in argv."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

from sqlalchemy import Date, DateTime, Float, Integer, Numeric, Table, insert

from integrations.store.audit import verify_audit
from integrations.store.engine import make_engine, upgrade
from integrations.store.tables import (
    AUDIT,
    BLT,
    ENROLMENT,
    FARM,
    HANDOFF,
    HOUSEHOLD,
    MEMBER,
    REPORT,
)
from models.identity import id_token
from tests.factories import make_nik, make_no_kk

KEY = "person-check-test-key"
NIK = make_nik("35.07.01", date(1980, 4, 2), "P", 77)
NO_KK = make_no_kk("35.07.01", date(2015, 6, 1), 77)
OTHER_NIK = make_nik("35.07.01", date(1981, 5, 3), "L", 78)


def _row(table: Table, **values: Any) -> dict[str, Any]:
    """A row with the given values and a plain filler in every other required column."""
    row: dict[str, Any] = {}
    for col in table.columns:
        if (
            col.name in values
            or col.nullable
            or col.default is not None
            or col.autoincrement is True
        ):
            continue
        if isinstance(col.type, DateTime):
            row[col.name] = datetime(2026, 11, 3, 1, tzinfo=UTC)
        elif isinstance(col.type, Date):
            row[col.name] = date(2026, 11, 10)
        elif isinstance(col.type, Integer | Float | Numeric):
            row[col.name] = 1
        else:
            row[col.name] = "x"
    return {**row, **values}


def _plant(url: str) -> dict[str, str]:
    key = KEY.encode()
    nik, kk, other = id_token(NIK, key), id_token(NO_KK, key), id_token(OTHER_NIK, key)
    engine = make_engine(url)
    upgrade(engine)
    planted = {
        "household": "HH-77",
        "member": "M-77",
        "enrolment": "ENR-PKH-77",
        "report": "R-77",
        "blt": "BLT-77",
        "farm": "RDKK-77",
        "handoff": "b" * 32,
    }
    with engine.begin() as conn:
        conn.execute(insert(HOUSEHOLD), [_row(HOUSEHOLD, id="HH-77", no_kk=NO_KK, kk_token=kk)])
        conn.execute(
            insert(MEMBER),
            [
                _row(MEMBER, id="M-77", household_id="HH-77", nik=NIK, nik_token=nik, name="Siti"),
                _row(MEMBER, id="M-78", household_id="HH-9", nik=OTHER_NIK, nik_token=other),
            ],
        )
        conn.execute(
            insert(ENROLMENT), [_row(ENROLMENT, id="ENR-PKH-77", nik_token=nik, kk_token=kk)]
        )
        conn.execute(insert(REPORT), [_row(REPORT, id="R-77", nik_token=nik)])
        conn.execute(insert(BLT), [_row(BLT, id="BLT-77", nik_token=nik, kk_token=kk)])
        conn.execute(insert(FARM), [_row(FARM, id="RDKK-77", nik_token=nik)])
        conn.execute(insert(FARM), [_row(FARM, id="RDKK-78", nik_token=other)])
        conn.execute(insert(HANDOFF), [_row(HANDOFF, id="b" * 32, subject_token=nik)])
    engine.dispose()
    return planted


def _check(env: dict[str, str], stdin: str, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "deployments.cli", "person", "check", "--stdin", *args],
        input=stdin,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def test_a_planted_person_is_found_across_programmes_and_the_check_is_audited(
    tmp_path: Path,
) -> None:
    url = f"sqlite:///{tmp_path / 'store.db'}"
    planted = _plant(url)
    env = {**os.environ, "CETTAR_DATABASE_URL": url, "CETTAR_PII_KEY": KEY}
    env.pop("PREFECT_API_URL", None)
    done = _check(env, f"{NIK}\n", "--json")
    assert done.returncode == 0, done.stderr
    found = json.loads(done.stdout)
    assert [r["id"] for r in found["households"]] == [planted["household"]]
    assert [r["id"] for r in found["members"]] == [planted["member"]]
    assert [r["id"] for r in found["enrolments"]] == [planted["enrolment"]]
    assert [r["id"] for r in found["pkh_reports"]] == [planted["report"]]
    assert [r["id"] for r in found["blt_recipients"]] == [planted["blt"]]
    assert [r["id"] for r in found["farmer_needs"]] == [planted["farm"]]  # not RDKK-78
    assert [r["id"] for r in found["handoffs"]] == [planted["handoff"]]
    assert found["found"] == 7
    # The id never leaves the operator's terminal as typed: not echoed, not in the output.
    assert NIK not in done.stdout + done.stderr

    # The No. KK finds the household, its members and the KK-keyed records.
    by_kk = json.loads(_check(env, f"{NO_KK}\n", "--json").stdout)
    assert [r["id"] for r in by_kk["households"]] == ["HH-77"]
    assert [r["id"] for r in by_kk["enrolments"]] == ["ENR-PKH-77"]

    # Each check is a row of the audit chain: who, the token, the count; never the id.
    engine = make_engine(url)
    with engine.connect() as conn:
        rows = list(conn.execute(AUDIT.select().order_by(AUDIT.c.seq)).mappings())
        assert verify_audit(conn).ok
    engine.dispose()
    checks = [r for r in rows if r["handoff_id"] == "store:person-check"]
    assert len(checks) == 2
    assert checks[0]["reason"] == f"token {found['token']}: 7 records shown"
    assert checks[0]["actor"].startswith("cli:")
    assert all(NIK not in r["reason"] and NO_KK not in r["reason"] for r in rows)


def test_a_bad_id_is_one_line_and_nothing_is_audited(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'store.db'}"
    _plant(url)
    env = {**os.environ, "CETTAR_DATABASE_URL": url, "CETTAR_PII_KEY": KEY}
    done = _check(env, "12345\n")
    assert done.returncode == 2
    assert done.stderr.strip().startswith("error:") and len(done.stderr.strip().splitlines()) == 1
    engine = make_engine(url)
    with engine.connect() as conn:
        assert conn.execute(AUDIT.select()).first() is None
    engine.dispose()
