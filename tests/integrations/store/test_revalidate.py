"""Re-validation of stored rows: what today's contracts refuse moves to quarantine, once.

Rows are inserted directly, as an older, laxer contract would have let them in; the valid
ones are written through the sync's own page writer.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import Engine, func, select, update

from integrations.store.audit import AUDIT, verify_audit
from integrations.store.cursors import CursorState
from integrations.store.pages import write_source_page
from integrations.store.quarantine import PARTIAL_REASON
from integrations.store.replay import replay_quarantined
from integrations.store.revalidate import REVALIDATE_SUBJECT, rebuild_of, revalidate_store
from integrations.store.tables import MEMBER, QUARANTINE, source_table
from models.handoffs import has_clear_id
from models.scope import RegionScope
from models.sources import CATALOGUE, prepare_page
from tests.factories import household, member
from tests.models.test_sources import blt, data_request, farmer

KEY = b"test-pii-key"
SYNCED = datetime(2026, 11, 27, 3, 0, tzinfo=UTC)
NOW = datetime(2026, 12, 1, 3, 0, tzinfo=UTC)
HOUSEHOLDS = "registry.households"
FARMS = "pertanian.farmer-needs"
REQUESTS = "statistik.data-requests"
BLTS = "desa.blt-recipients"
SOURCES = [HOUSEHOLDS, FARMS, REQUESTS, BLTS]
KELURAHAN = "35.07.05.1007"  # unit code 1xxx: a kelurahan, which gets no Dana Desa


def _write(store: Engine, source: str, records: list[dict[str, Any]]) -> None:
    """Store records the way a sync does (they pass today's contract)."""
    page = prepare_page(source, records, KEY, SYNCED)
    assert page.rejected == [], page.rejected
    state = CursorState(source, "35.07.01")
    state.start_pass(full=False)
    with store.begin() as conn:
        write_source_page(conn, source, page, state, None, now=SYNCED)


def _insert_lax(store: Engine, source: str, record: dict[str, Any], **stored: Any) -> None:
    """Store a valid record's rows with `stored` changed, as a laxer old rule let them in."""
    page = prepare_page(source, [record], KEY, SYNCED)
    assert page.rejected == [], page.rejected
    (row,) = page.rows
    row.update(stored)
    with store.begin() as conn:
        conn.execute(source_table(source).insert(), [row])
        if page.children:
            conn.execute(MEMBER.insert(), page.children)


def _ids(store: Engine, source: str) -> set[str]:
    table = source_table(source)
    with store.connect() as conn:
        return set(conn.execute(select(table.c.id)).scalars())


def _quarantine(store: Engine) -> dict[str, dict[str, Any]]:
    with store.connect() as conn:
        rows = conn.execute(select(QUARANTINE)).mappings().all()
    return {f"{r['source']}/{r['record_id']}": dict(r) for r in rows}


def _audit_rows(store: Engine) -> list[dict[str, Any]]:
    with store.connect() as conn:
        return [dict(r) for r in conn.execute(select(AUDIT).order_by(AUDIT.c.seq)).mappings()]


def _seed(store: Engine) -> None:
    # Valid rows, one per source, that must stay.
    _write(
        store,
        HOUSEHOLDS,
        [household(1, desa="35.07.01.2001", members=[member(11, kec="35.07.01")])],
    )
    _write(store, FARMS, [farmer(id="RDKK-OK")])
    _write(store, REQUESTS, [data_request(id="REQ-OK")])
    _write(store, BLTS, [blt(id="BLT-OK")])
    # Rows today's contracts refuse. A desil of 11 (1-10) on a whole registry record.
    _insert_lax(
        store,
        HOUSEHOLDS,
        household(2, desa="35.07.01.2001", members=[member(21, kec="35.07.01")]),
        desil=11,
    )
    # A cross-field rule on a record kept whole: due before it was requested.
    _insert_lax(store, REQUESTS, data_request(id="REQ-BAD"), due_date=datetime(2026, 10, 1).date())
    # A field rule on a token source: no land (the area must be above 0).
    _insert_lax(store, FARMS, farmer(id="RDKK-BAD"), land_area_ha=0.0)
    # A cross-field rule on a token source (a kelurahan has no BLT-DD): not re-checkable,
    # cross-field rules need the NIK the store keeps only as a token.
    _insert_lax(
        store, BLTS, blt(id="BLT-KELURAHAN"), desa_code=KELURAHAN, kecamatan_code=KELURAHAN[:8]
    )


def test_rows_that_fail_the_current_contracts_move_to_quarantine(store: Engine) -> None:
    _seed(store)
    results = {r.source: r for r in revalidate_store(store, key=KEY, now=NOW, sources=SOURCES)}

    assert {s: (r.examined, r.quarantined, r.kept) for s, r in results.items()} == {
        HOUSEHOLDS: (2, 1, 1),
        FARMS: (2, 1, 1),
        REQUESTS: (2, 1, 1),
        BLTS: (2, 0, 2),
    }
    assert results[HOUSEHOLDS].reasons == {"desil:less_than_equal": 1}
    assert results[REQUESTS].reasons == {"due_date:due_before_request": 1}
    assert results[FARMS].reasons == {"land_area_ha:greater_than": 1, PARTIAL_REASON: 1}
    assert results[FARMS].unchecked == ["name", "nik"]
    assert results[HOUSEHOLDS].unchecked == []
    # The data tables keep only what passes; the bad household's members went with it.
    assert _ids(store, HOUSEHOLDS) == {"HH-1"}
    assert _ids(store, FARMS) == {"RDKK-OK"}
    assert _ids(store, REQUESTS) == {"REQ-OK"}
    assert _ids(store, BLTS) == {"BLT-OK", "BLT-KELURAHAN"}
    with store.connect() as conn:
        assert set(conn.execute(select(MEMBER.c.household_id)).scalars()) == {"HH-1"}

    held = _quarantine(store)
    assert set(held) == {
        f"{HOUSEHOLDS}/HH-2",
        f"{FARMS}/RDKK-BAD",
        f"{REQUESTS}/REQ-BAD",
    }
    hh = held[f"{HOUSEHOLDS}/HH-2"]
    assert hh["status"] == "open" and hh["reason_codes"] == "desil:less_than_equal"
    assert hh["partition"] == "35.07.01"
    payload = json.loads(hh["payload"])
    assert payload["desil"] == 11 and [m["id"] for m in payload["members"]] == ["M-21"]
    farm = held[f"{FARMS}/RDKK-BAD"]
    assert farm["reason_codes"] == f"land_area_ha:greater_than,{PARTIAL_REASON}"
    assert "nik" not in json.loads(farm["payload"])  # never stored in clear, so not here

    # One audit row per source moved, counts and reason codes only; the chain verifies.
    audit = [r for r in _audit_rows(store) if r["handoff_id"] == REVALIDATE_SUBJECT]
    assert len(audit) == 3
    assert all(r["to_state"] == "quarantined" and not has_clear_id(r["reason"]) for r in audit)
    assert any("1 stored records" in r["reason"] and HOUSEHOLDS in r["reason"] for r in audit)
    with store.connect() as conn:
        report = verify_audit(conn)
    assert report.ok and report.checked == 3, report.problem


def test_a_second_run_changes_nothing(store: Engine) -> None:
    _seed(store)
    revalidate_store(store, key=KEY, now=NOW, sources=SOURCES)
    held, audit = _quarantine(store), _audit_rows(store)

    again = revalidate_store(store, key=KEY, now=NOW, sources=SOURCES)

    assert sum(r.quarantined for r in again) == 0
    assert sum(r.audit_rows for r in again) == 0
    assert _quarantine(store) == held
    assert _audit_rows(store) == audit


def test_the_scope_limits_what_is_examined(store: Engine) -> None:
    _seed(store)
    elsewhere = RegionScope(kecamatan=["35.78.01"])
    results = revalidate_store(store, key=KEY, now=NOW, sources=SOURCES, scope=elsewhere)
    assert sum(r.examined for r in results) == 0
    assert _quarantine(store) == {}
    inside = RegionScope(kabupaten=["35.07"])
    results = revalidate_store(store, key=KEY, now=NOW, sources=[REQUESTS], scope=inside)
    assert [(r.examined, r.quarantined) for r in results] == [(2, 1)]


def test_replay_leaves_partial_records_and_restores_whole_ones_once_valid(store: Engine) -> None:
    _seed(store)
    revalidate_store(store, key=KEY, now=NOW, sources=SOURCES)
    # A token source's record has no NIK to write back: replay leaves it open.
    farms = replay_quarantined(store, FARMS, key=KEY, now=NOW)
    assert (farms.examined, farms.replayed) == (0, 0)
    assert _quarantine(store)[f"{FARMS}/RDKK-BAD"]["status"] == "open"
    # A whole record comes back through replay once it is fixed (here: in the payload).
    with store.begin() as conn:
        payload = json.loads(_quarantine(store)[f"{REQUESTS}/REQ-BAD"]["payload"])
        payload["due_date"] = "2026-11-30"
        conn.execute(
            update(QUARANTINE)
            .where(QUARANTINE.c.record_id == "REQ-BAD")
            .values(payload=json.dumps(payload))
        )
    requests = replay_quarantined(store, REQUESTS, key=KEY, now=NOW)
    assert (requests.replayed, requests.written) == (1, 1)
    assert _ids(store, REQUESTS) == {"REQ-OK", "REQ-BAD"}


def test_every_source_of_the_catalogue_is_accounted_for(store: Engine) -> None:
    # A new source is either rebuilt or reported as not re-validated, never silently left.
    results = revalidate_store(store, key=KEY, now=NOW)
    assert [r.source for r in results] == list(CATALOGUE)
    for r in results:
        assert (rebuild_of(r.source) is None) == bool(r.skipped), r.source
    with store.connect() as conn:
        assert conn.execute(select(func.count()).select_from(QUARANTINE)).scalar_one() == 0


def test_the_cli_command_reports_counts_and_refuses_a_bad_scope(
    store: Engine, store_url: str, prefect_api: str, monkeypatch: Any
) -> None:
    # The command holds the store guards of the sources it re-validates (a Prefect API).
    from typer.testing import CliRunner

    from deployments.cli import app
    from integrations.settings import get_settings
    from integrations.store.engine import get_engine

    _seed(store)
    monkeypatch.setenv("CETTAR_DATABASE_URL", store_url)
    monkeypatch.setenv("CETTAR_PII_KEY", KEY.decode())
    get_settings.cache_clear()
    get_engine.cache_clear()
    try:
        runner = CliRunner()
        args = ["quarantine", "revalidate", "--source", REQUESTS, "--source", FARMS]
        result = runner.invoke(app, [*args, "--kabupaten", "35.07", "--json"])
        assert result.exit_code == 0, result.output
        out = json.loads(result.stdout)
        assert [(s["source"], s["quarantined"]) for s in out["sources"]] == [
            (REQUESTS, 1),
            (FARMS, 1),
        ]
        text = runner.invoke(app, args)
        assert text.exit_code == 0, text.output
        printed = " ".join(text.stdout.split())  # the console wraps long lines
        assert f"{FARMS}: 1 examined, 0 quarantined, 1 kept; not re-checkable: name, nik" in (
            printed
        )
        bad = runner.invoke(app, [*args, "--kecamatan", "99.99.99"])
        assert bad.exit_code == 2 and "--kecamatan" in bad.stderr
    finally:
        get_engine().dispose()
        get_settings.cache_clear()
        get_engine.cache_clear()
