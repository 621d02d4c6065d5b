"""`cettar quarantine list|replay` on a real store (SQLite and PostgreSQL)."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest
from sqlalchemy import Engine, select
from typer.testing import CliRunner

from deployments import cli_quarantine
from deployments.cli_quarantine import quarantine_app
from integrations.settings import get_settings
from integrations.store.cursors import CursorState
from integrations.store.engine import get_engine, make_engine
from integrations.store.pages import write_source_page
from integrations.store.quarantine import quarantine
from integrations.store.tables import QUARANTINE, source_table
from models.identity import id_token
from models.sources import prepare_page
from models.validation import Reason, Rejection
from tests.models.test_sources import NIK, blt, report

NOW = datetime(2026, 11, 27, 3, 0, tzinfo=UTC)
KEY = "cli-test-pii-key"
BAD_NIK = NIK[:-4] + "0000"


@pytest.fixture
def hub_store(
    store_url: str, prefect_api: str, monkeypatch: pytest.MonkeyPatch
) -> Iterator[Engine]:
    """The CLI's settings pointed at a fresh migrated store (replay takes a store guard)."""
    monkeypatch.setenv("CETTAR_DATABASE_URL", store_url)
    monkeypatch.setenv("CETTAR_PII_KEY", KEY)
    get_settings.cache_clear()
    get_engine.cache_clear()
    engine = make_engine(store_url)
    yield engine
    engine.dispose()
    get_engine().dispose()
    get_settings.cache_clear()
    get_engine.cache_clear()


def _sync(engine: Engine, source: str, records: list[dict[str, object]]) -> None:
    page = prepare_page(source, records, KEY.encode(), NOW)
    state = CursorState(source, "35.07.01")
    with engine.begin() as conn:
        write_source_page(conn, source, page, state, None, now=NOW)


def _invoke(*args: str) -> tuple[int, str]:
    result = CliRunner().invoke(quarantine_app, list(args))
    return result.exit_code, result.output


def test_list_counts_by_source_and_reason_and_masks(
    hub_store: Engine, monkeypatch: pytest.MonkeyPatch
) -> None:
    _sync(
        hub_store,
        "desa.blt-recipients",
        [
            blt(id="B-1", desa_code="35.78.01.1001"),
            blt(id="B-2", nik=BAD_NIK, desa_code="35.78.01.1002"),
            blt(id="B-3"),
        ],
    )
    _sync(hub_store, "pkh.reports", [report(id="R-1", kind="household_update")])
    code, out = _invoke("list", "--json")
    assert code == 0, out
    got = json.loads(out)
    assert got["records"] == {"desa.blt-recipients": 2, "pkh.reports": 1}
    counts = {(g["source"], g["reason"]): g["records"] for g in got["groups"]}
    assert counts == {
        # B-2's kelurahan is not reported: cross-field rules run once the fields are valid.
        ("desa.blt-recipients", "desa_code:kelurahan_no_dana_desa"): 1,
        ("desa.blt-recipients", "nik:nik_invalid"): 1,
        ("pkh.reports", "changes:changes_missing"): 1,
    }
    # A wide terminal, so the table's cells are not wrapped.
    monkeypatch.setattr(cli_quarantine.console, "width", 250)
    code, text = _invoke("list", "--source", "desa.blt-recipients")
    assert code == 0
    assert "kelurahan_no_dana_desa" in text and "pkh.reports" not in text
    for output in (out, text):
        assert NIK not in output and BAD_NIK not in output
    assert BAD_NIK[:4] in out  # the masked NIK in the example message


def test_replay_after_a_fix(hub_store: Engine) -> None:
    fixed = blt(id="B-OK")
    still_bad = blt(id="B-BAD", desa_code="35.78.01.1001")
    with hub_store.begin() as conn:
        quarantine(
            conn,
            "desa.blt-recipients",
            "35.07.01",
            [
                Rejection("B-OK", (Reason("desa_code", "region_code_unknown", "unknown"),), fixed),
                Rejection("B-BAD", (Reason("x", "old", "older rule"),), still_bad),
            ],
            now=NOW,
        )
    code, out = _invoke("replay", "desa.blt-recipients", "--json", "--batch", "1")
    assert code == 0, out
    assert json.loads(out) == {
        "source": "desa.blt-recipients",
        "examined": 2,
        "replayed": 1,
        "written": 1,
        "unchanged": 0,
        "still_invalid": 1,
        "reasons": {"desa_code:kelurahan_no_dana_desa": 1},
    }
    table = source_table("desa.blt-recipients")
    with hub_store.connect() as conn:
        (token,) = conn.execute(select(table.c.nik_token)).scalars()
        statuses = {
            r.record_id: r.status
            for r in conn.execute(select(QUARANTINE.c.record_id, QUARANTINE.c.status))
        }
    # The configured PII key made the token.
    assert token == id_token(NIK, KEY.encode())
    assert statuses == {"B-OK": "replayed", "B-BAD": "open"}
    code, out = _invoke("list", "--status", "replayed", "--json")
    assert json.loads(out)["records"] == {"desa.blt-recipients": 1}
    code, text = _invoke("replay", "desa.blt-recipients")
    assert code == 0 and "1 examined, 0 replayed" in text and "1 still invalid" in text


def test_unknown_source_and_missing_store(
    hub_store: Engine, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    code, out = _invoke("replay", "pkh.visits")
    assert code == 2 and "unknown source 'pkh.visits'" in out
    code, out = _invoke("list", "--source", "nope")
    assert code == 2
    monkeypatch.setenv("CETTAR_DATABASE_URL", f"sqlite:///{tmp_path / 'empty.db'}")
    get_settings.cache_clear()
    get_engine.cache_clear()
    code, out = _invoke("list")
    assert code == 1 and "cettar db upgrade" in out
