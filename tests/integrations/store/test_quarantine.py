"""Writing pages of every source (rows, quarantine, cursor in one transaction) and replay."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

import pytest
from sqlalchemy import Engine, func, select, update
from sqlalchemy.exc import IntegrityError

from integrations.store.cursors import CursorState, load_cursor
from integrations.store.pages import write_source_page
from integrations.store.quarantine import quarantine, quarantine_summary
from integrations.store.replay import replay_quarantined
from integrations.store.tables import QUARANTINE, source_table
from models.identity import id_token
from models.prepared import PreparedPage
from models.sources import prepare_page
from models.tables import Household, Member
from models.validation import Reason, Rejection
from tests.factories import household, member
from tests.models.test_sources import (
    NIK,
    blt,
    data_request,
    decision,
    farmer,
    report,
    submission,
)

KEY = b"test-pii-key"
NOW = datetime(2026, 11, 27, 3, 0, tzinfo=UTC)
BLT = source_table("desa.blt-recipients")
DECISION = source_table("kecamatan.decisions")


def _state(source: str, partition: str = "35.07.01") -> CursorState:
    state = CursorState(source, partition)
    state.start_pass(full=False)
    return state


def _write(
    store: Engine,
    source: str,
    records: list[dict[str, Any]],
    state: CursorState | None = None,
    next_cursor: str | None = None,
) -> tuple[int, int, int]:
    page = prepare_page(source, records, KEY, NOW)
    with store.begin() as conn:
        c = write_source_page(conn, source, page, state or _state(source), next_cursor, now=NOW)
    return c.upserted, c.unchanged, c.quarantined


def _rows(store: Engine, source: str) -> list[dict[str, Any]]:
    table = source_table(source)
    with store.connect() as conn:
        return [dict(r) for r in conn.execute(select(table).order_by(table.c.id)).mappings()]


def _count(store: Engine, table: Any) -> int:
    with store.connect() as conn:
        return int(conn.execute(select(func.count()).select_from(table)).scalar_one())


@pytest.mark.parametrize(
    ("source", "make"),
    [
        ("pkh.reports", report),
        ("desa.blt-recipients", blt),
        ("pertanian.farmer-needs", farmer),
        ("statistik.data-requests", data_request),
        ("statistik.submissions", submission),
    ],
)
def test_newer_wins_for_every_source(store: Engine, source: str, make: Any) -> None:
    v1 = make(id="R-1", updated_at="2026-11-21T09:00:00+07:00")
    assert _write(store, source, [v1, make(id="R-2")]) == (2, 0, 0)
    v2 = make(id="R-1", updated_at="2026-11-25T09:00:00+07:00")
    assert _write(store, source, [v2]) == (1, 0, 0)
    # A replay of the older version changes nothing.
    assert _write(store, source, [v1]) == (0, 1, 0)
    rows = _rows(store, source)
    assert [r["id"] for r in rows] == ["R-1", "R-2"]
    stored = rows[0]["updated_at"].replace(tzinfo=UTC)
    assert stored == datetime(2026, 11, 25, 2, 0, tzinfo=UTC)


def test_page_rows_quarantine_and_cursor_land_together(store: Engine) -> None:
    source = "desa.blt-recipients"
    state = _state(source)
    bad = blt(id="BAD-1", desa_code="35.78.01.1001")
    assert _write(store, source, [blt(), bad], state, next_cursor="c1") == (1, 0, 1)
    with store.connect() as conn:
        saved = load_cursor(conn, source, "35.07.01")
        q = conn.execute(select(QUARANTINE)).mappings().one()
    assert saved.cursor == "c1" and saved.pages == 1 and saved.records == 2
    assert q["source"] == source and q["partition"] == "35.07.01"
    assert q["record_id"] == "BAD-1" and q["reason_codes"] == "desa_code:kelurahan_no_dana_desa"
    # The last page closes the pass: the watermark is the newest valid record's version.
    assert _write(store, source, [blt(id="BLT-2")], state, next_cursor=None) == (1, 0, 0)
    with store.connect() as conn:
        closed = load_cursor(conn, source, "35.07.01")
    assert closed.cursor is None
    assert closed.watermark == datetime(2026, 10, 2, 1, 0, tzinfo=UTC)
    # No clear NIK or No. KK in the source table.
    assert NIK not in json.dumps(_rows(store, source), default=str)
    assert _rows(store, source)[0]["nik_token"] == id_token(NIK, KEY)


def test_a_failure_mid_group_leaves_neither_rows_nor_cursor(store: Engine) -> None:
    source = "pertanian.farmer-needs"
    state = _state(source)
    good = prepare_page(source, [farmer(id="F-1")], KEY, NOW)
    broken = prepare_page(source, [farmer(id="F-2")], KEY, NOW)
    broken.rows[0]["poktan_id"] = None  # NOT NULL: the store refuses the second page
    with pytest.raises(IntegrityError), store.begin() as conn:
        write_source_page(conn, source, good, state, "c1", now=NOW)
        write_source_page(conn, source, broken, state, "c2", now=NOW)
    assert _rows(store, source) == []
    with store.connect() as conn:
        assert load_cursor(conn, source, "35.07.01") == CursorState(source, "35.07.01")


def test_decisions_are_insert_only(store: Engine) -> None:
    source = "kecamatan.decisions"
    state = _state(source, "all")
    assert _write(store, source, [decision()], state) == (1, 0, 0)
    # The handoff engine applies the decision...
    with store.begin() as conn:
        conn.execute(update(DECISION).values(applied_at=NOW, outcome="applied"))
    # ...and a republished, newer copy never overwrites it.
    newer = decision(reason="ulang", updated_at="2026-11-04T09:00:00+07:00")
    assert _write(store, source, [newer, decision(id="DEC-2")], state) == (1, 1, 0)
    first, second = _rows(store, source)
    assert first["outcome"] == "applied" and first["applied_at"] is not None
    assert first["reason"] == ""
    assert second["applied_at"] is None and second["outcome"] == ""
    # A decision repeated within one page is stored once, as first seen.
    twice = [decision(id="DEC-3", reason="pertama"), decision(id="DEC-3", reason="kedua")]
    assert _write(store, source, twice, state) == (1, 1, 0)
    assert _rows(store, source)[2]["reason"] == "pertama"


def test_cursor_of_another_source_is_refused(store: Engine) -> None:
    page = prepare_page("pkh.reports", [report()], KEY, NOW)
    with store.begin() as conn, pytest.raises(ValueError, match="cannot record a page"):
        write_source_page(conn, "pkh.reports", page, _state("desa.blt-recipients"), None, now=NOW)
    with store.begin() as conn, pytest.raises(ValueError, match=r"does not sync 'pkh\.visits'"):
        write_source_page(conn, "pkh.visits", PreparedPage(), _state("pkh.visits"), None, now=NOW)


def test_registry_pages_go_through_the_same_writer(store: Engine) -> None:
    records = [household(1, members=[member(11), member(12)])]
    assert _write(store, "registry.households", records) == (1, 0, 0)
    assert _count(store, Household.__table__) == 1  # type: ignore[attr-defined]
    assert _count(store, Member.__table__) == 2  # type: ignore[attr-defined]


# --- quarantine summary and replay -----------------------------------------------------------


def _stale(payload: dict[str, Any], *reasons: Reason) -> Rejection:
    """A record some earlier validation rejected, with the reasons it gave then."""
    return Rejection(payload.get("id"), reasons, payload)


def _quarantine(store: Engine, source: str, rejected: list[Rejection]) -> None:
    with store.begin() as conn:
        quarantine(conn, source, "35.07.01", rejected, now=NOW)


def test_summary_counts_by_source_and_reason_masked(store: Engine) -> None:
    _write(
        store,
        "desa.blt-recipients",
        [
            blt(id="B-1", desa_code="35.78.01.1001"),
            blt(id="B-2", desa_code="35.78.01.1002"),
            blt(id="B-3", nik=NIK[:-4] + "0000", desa_code="35.07.01.2999"),
        ],
    )
    _write(store, "pkh.reports", [report(id="R-9", kind="household_update")])
    # The same bad payload seen again counts as a sighting, not a record.
    _write(store, "pkh.reports", [report(id="R-9", kind="household_update")])
    with store.connect() as conn:
        groups = quarantine_summary(conn)
        blt_only = quarantine_summary(conn, source="desa.blt-recipients")
        replayed = quarantine_summary(conn, status="replayed")
    got = {(g.source, g.reason): (g.records, g.sightings) for g in groups}
    assert got == {
        ("desa.blt-recipients", "desa_code:kelurahan_no_dana_desa"): (2, 2),
        ("desa.blt-recipients", "desa_code:region_code_unknown"): (1, 1),
        ("desa.blt-recipients", "nik:nik_invalid"): (1, 1),
        ("pkh.reports", "changes:changes_missing"): (1, 2),
    }
    assert {g.source for g in blt_only} == {"desa.blt-recipients"}
    assert replayed == []
    by_reason = {g.reason: g for g in groups}
    assert "kelurahan" in by_reason["desa_code:kelurahan_no_dana_desa"].example
    serial = by_reason["nik:nik_invalid"].example
    assert "0000" in serial and NIK[:-4] + "0000" not in serial
    assert json.loads(json.dumps([g.as_dict() for g in groups]))[0]["records"] == 2


def test_replay_writes_what_is_valid_now_and_refreshes_the_rest(store: Engine) -> None:
    source = "desa.blt-recipients"
    fixed = blt(id="B-OK")
    still_bad = blt(id="B-BAD", desa_code="35.78.01.1001")
    _quarantine(
        store,
        source,
        [
            _stale(fixed, Reason("desa_code", "region_code_unknown", "unknown region code")),
            _stale(still_bad, Reason("legacy", "old_rule", "an older rule")),
        ],
    )
    counts = replay_quarantined(store, source, key=KEY, now=NOW, batch=1)
    assert counts.as_dict() == {
        "source": source,
        "examined": 2,
        "replayed": 1,
        "written": 1,
        "unchanged": 0,
        "still_invalid": 1,
        "reasons": {"desa_code:kelurahan_no_dana_desa": 1},
    }
    (row,) = _rows(store, source)
    assert row["id"] == "B-OK" and row["nik_token"] == id_token(NIK, KEY)
    with store.connect() as conn:
        q = {
            r["record_id"]: r
            for r in conn.execute(select(QUARANTINE)).mappings()  # one row per record
        }
    assert q["B-OK"]["status"] == "replayed"
    assert q["B-BAD"]["status"] == "open"
    assert q["B-BAD"]["reason_codes"] == "desa_code:kelurahan_no_dana_desa"
    assert json.loads(q["B-BAD"]["reasons"])[0]["code"] == "kelurahan_no_dana_desa"
    # A second replay finds only the still-invalid record and writes nothing.
    again = replay_quarantined(store, source, key=KEY, now=NOW)
    assert (again.examined, again.replayed, again.still_invalid) == (1, 0, 1)


def test_replay_keeps_newer_wins_and_insert_only(store: Engine) -> None:
    source = "desa.blt-recipients"
    _write(store, source, [blt(id="B-1", status="removed", updated_at="2026-11-01T08:00:00+07:00")])
    _quarantine(
        store,
        source,
        [_stale(blt(id="B-1"), Reason("desa_code", "region_code_unknown", "unknown"))],
    )
    counts = replay_quarantined(store, source, key=KEY, now=NOW)
    assert (counts.replayed, counts.written, counts.unchanged) == (1, 0, 1)
    assert _rows(store, source)[0]["status"] == "removed"

    decisions = "kecamatan.decisions"
    _write(store, decisions, [decision()], _state(decisions, "all"))
    with store.begin() as conn:
        conn.execute(update(DECISION).values(applied_at=NOW, outcome="applied"))
    _quarantine(
        store,
        decisions,
        [
            _stale(
                decision(reason="x", updated_at="2026-11-09T00:00:00+07:00"), Reason("", "x", "")
            ),
            _stale(decision(id="DEC-NEW"), Reason("", "x", "")),
        ],
    )
    counts = replay_quarantined(store, decisions, key=KEY, now=NOW)
    assert (counts.replayed, counts.written, counts.unchanged) == (2, 1, 1)
    rows = {r["id"]: r for r in _rows(store, decisions)}
    assert rows["DEC-1"]["outcome"] == "applied" and rows["DEC-1"]["reason"] == ""
    assert rows["DEC-NEW"]["applied_at"] is None


def test_replay_of_registry_households_writes_members(store: Engine) -> None:
    hh = household(5, members=[member(51), member(52)])
    _quarantine(store, "registry.households", [_stale(hh, Reason("", "x", "stale"))])
    counts = replay_quarantined(store, "registry.households", key=KEY, now=NOW)
    assert (counts.replayed, counts.written) == (1, 1)
    assert _count(store, Member.__table__) == 2  # type: ignore[attr-defined]


def test_replay_of_an_unknown_source_fails_before_touching_the_store(store: Engine) -> None:
    with pytest.raises(ValueError, match=r"does not sync 'pkh\.visits'"):
        replay_quarantined(store, "pkh.visits", key=KEY, now=NOW)
    with pytest.raises(ValueError, match="batch"):
        replay_quarantined(store, "pkh.reports", key=KEY, now=NOW, batch=0)
