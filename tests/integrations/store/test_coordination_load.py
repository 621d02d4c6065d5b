"""Check loaders: SQL pre-filter + pure check == pure check on every row (SQLite, PostgreSQL)."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import UTC, date, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from pydantic import ValidationError
from sqlalchemy import Engine, insert

from integrations.store.coordination_load import (
    iter_scorecard_handoffs,
    load_blt_overlap_inputs,
    load_deceased_or_moved_inputs,
    load_farmer_needs,
    load_household_update_reports,
    load_multiple_household_people,
    load_overlap_counts,
    load_source_counts,
)
from models import checks
from models.handoffs import HandoffKind, OfficeKind
from models.scope import RegionScope
from models.scorecard import SourceCounts
from models.tables import (
    BltRecipient,
    Enrolment,
    FacilitatorReport,
    FarmerNeed,
    Handoff,
    Household,
    Member,
    Quarantine,
    SyncCursor,
)

T = datetime(2026, 10, 1, 1, tzinfo=UTC)
Q4, Q3 = "2026-Q4", "2026-Q3"
D1, D2, D3, D4 = "35.78.01.2001", "35.78.01.2002", "35.78.02.2001", "35.07.01.2001"
HOUSEHOLD_DESA = {"H1": D1, "H2": D2, "H3": D3, "H4": D4}


def _table(model: Any) -> Any:
    return model.__table__


def enrolment(
    i: str,
    nik: str,
    kk: str,
    hh: str,
    *,
    programme: str = "PKH",
    period: str = Q4,
    status: str = "active",
) -> dict[str, Any]:
    desa = HOUSEHOLD_DESA[hh]
    return {
        "id": f"E-{i}",
        "programme": programme,
        "household_id": hh,
        "nik_token": nik,
        "kk_token": kk,
        "desa_code": desa,
        "kecamatan_code": desa[:8],
        "period": period,
        "status": status,
        "updated_at": T,
        "synced_at": T,
    }


def blt(
    i: str, nik: str, kk: str, desa: str, *, period: str = Q4, status: str = "approved"
) -> dict[str, Any]:
    return {
        "id": f"B-{i}",
        "desa_code": desa,
        "kecamatan_code": desa[:8],
        "period": period,
        "nik_token": nik,
        "kk_token": kk,
        "status": status,
        "updated_at": T,
        "synced_at": T,
    }


def household(hh: str) -> dict[str, Any]:
    desa = HOUSEHOLD_DESA[hh]
    return {
        "id": hh,
        "no_kk": "x",
        "kk_token": f"kk-{hh}",
        "desa_code": desa,
        "kecamatan_code": desa[:8],
        "kabupaten_code": desa[:5],
        "updated_at": T,
        "synced_at": T,
    }


def member(i: str, nik: str, hh: str, status: str = "active") -> dict[str, Any]:
    return {
        "id": f"M-{i}",
        "household_id": hh,
        "nik": "x",
        "nik_token": nik,
        "name": "x",
        "sex": "P",
        "birth_date": date(1980, 1, 1),
        "relationship": "lainnya",
        "status": status,
        "updated_at": T,
    }


def report(
    i: str, kind: str, nik: str, hh: str, kec: str, *, on: date = date(2026, 10, 6), by: str = "S1"
) -> dict[str, Any]:
    return {
        "id": f"R-{i}",
        "kind": kind,
        "facilitator_id": by,
        "kecamatan_code": kec,
        "household_id": hh,
        "nik_token": nik,
        "reported_on": on,
        "changes": "",
        "note": "",
        "updated_at": T,
        "synced_at": T,
    }


def need(
    i: str, nik: str, poktan: str, area: float, *, desa: str = D1, season: str = "2026-MT1"
) -> dict[str, Any]:
    return {
        "id": f"F-{i}",
        "nik_token": nik,
        "poktan_id": poktan,
        "desa_code": desa,
        "kecamatan_code": desa[:8],
        "land_area_ha": area,
        "commodity": "padi",
        "season": season,
        "updated_at": T,
        "synced_at": T,
    }


ENROLMENTS = [
    # BLT overlap subjects and near misses
    enrolment("1", "n1", "k1", "H1"),
    enrolment("20", "n20", "k2", "H2", programme="BPNT"),  # n2's family, via No. KK
    enrolment("3", "n3", "k3", "H1", status="suspended"),
    enrolment("4", "n4", "k4", "H1", period=Q3),
    enrolment("5", "n5", "k5", "H2"),
    enrolment("60", "n60", "", "H2"),
    enrolment("10", "n10", "k10", "H4"),
    # deceased / moved subjects and near misses
    enrolment("x1", "x1", "kx1", "H1"),
    enrolment("x2", "x2", "kx2", "H2", programme="BPNT"),
    enrolment("x3", "x3", "kx3", "H2"),
    enrolment("x4", "x4", "kx4", "H1", status="ended"),
    enrolment("x5", "x5", "kx5", "H1"),
    enrolment("x6", "x6", "kx6", "H1"),
    enrolment("x7a", "x7", "kx7", "H1"),
    enrolment("x7b", "x7", "kx7b", "H4", programme="BPNT"),
]
BLT_ROWS = [
    blt("1", "n1", "k1", D1),
    blt("2", "n2", "k2", D2),
    blt("3", "n3", "k3", D1),
    blt("4", "n4", "k4", D1),
    blt("5", "n5", "k5", D2, status="removed"),
    blt("6", "n6", "", D2),
    blt("7", "n1", "k1", D1, period=Q3),
    blt("8", "n1", "k1b", D3),
    blt("9", "n1x", "k9", D1),
    blt("10", "n10", "k10", D4),
    blt("11", "n11", "k11", D3, status="proposed"),
]
HOUSEHOLDS = [household(h) for h in HOUSEHOLD_DESA]
MEMBERS = [
    member("1a", "m1", "H1"),
    member("1b", "m1", "H3"),
    member("2a", "m2", "H1"),
    member("2b", "m2", "H2"),
    member("3a", "m3", "H1"),
    member("3b", "m3", "H2", "deceased"),
    member("4", "m4", "H1"),
    member("5a", "m5", "H2", "moved"),
    member("5b", "m5", "H4"),
    member("6a", "", "H1"),
    member("6b", "", "H2"),
    member("x2", "x2", "H2", "moved"),
    member("x3", "x3", "H3", "moved"),
    member("x5", "x5", "H1", "deceased"),
    member("x7", "x7", "H1", "deceased"),
]
REPORTS = [
    report("d1", "deceased", "x1", "H1", "35.78.01"),
    report("d4", "deceased", "x4", "H1", "35.78.01"),
    report("d5", "moved", "x5", "H1", "35.78.01"),
    report("d6", "non_compliance", "x6", "H1", "35.78.01"),
    report("u1", "household_update", "m4", "H1", "35.78.01", by="S1"),
    report("u2", "household_update", "m4", "H1", "35.78.02", by="S2"),
    report("u3", "household_update", "m2", "H2", "35.78.01", on=date(2026, 6, 30)),
    report("u4", "household_update", "m5", "H4", "35.07.01"),
    report("u5", "household_update", "m6", "", "35.78.01"),
]
NEEDS = [
    need("1a", "y1", "P1", 1.0),
    need("1b", "y1", "P2", 0.5, desa=D3),
    need("2a", "y2", "P1", 1.2),
    need("2b", "y2", "P1", 0.8),
    need("3a", "y3", "P3", 1.5, desa=D4),
    need("3b", "y3", "P3", 0.6, desa=D4),
    need("4a", "y4", "P1", 1.0),
    need("4b", "y4", "P2", 1.0, season="2026-MT2"),
    need("5", "y5", "P1", 2.5, season="2026-MT2"),
    need("6", "y6", "P1", 1.0),
    need("7", "", "P1", 3.0),
]


@pytest.fixture
def filled(store: Engine) -> Engine:
    """The store with every hand-made row above."""
    with store.begin() as conn:
        conn.execute(insert(_table(Enrolment)), ENROLMENTS)
        conn.execute(insert(_table(BltRecipient)), BLT_ROWS)
        conn.execute(insert(_table(Household)), HOUSEHOLDS)
        conn.execute(insert(_table(Member)), MEMBERS)
        conn.execute(insert(_table(FacilitatorReport)), REPORTS)
        conn.execute(insert(_table(FarmerNeed)), NEEDS)
    return store


# --- the same rows, every one of them, as pure check inputs ------------------------------------


def all_enrolments() -> list[checks.Enrolment]:
    return [
        checks.Enrolment(
            r["nik_token"],
            r["kk_token"],
            r["programme"],
            r["period"],
            r["status"],
            r["desa_code"],
            r["household_id"],
        )
        for r in ENROLMENTS
    ]


def all_blt() -> list[checks.BltRecipient]:
    # A KPM taken off the list is not a recipient: that is the store's meaning of a BLT row.
    return [
        checks.BltRecipient(r["nik_token"], r["kk_token"], r["desa_code"], r["period"], r["id"])
        for r in BLT_ROWS
        if r["status"] != "removed"
    ]


def all_people() -> list[checks.Person]:
    return [
        checks.Person(
            r["nik_token"], r["household_id"], HOUSEHOLD_DESA[r["household_id"]], r["status"]
        )
        for r in MEMBERS
    ]


def all_reports() -> list[checks.FacilitatorReport]:
    return [
        checks.FacilitatorReport(
            r["id"],
            r["kind"],
            r["nik_token"],
            r["household_id"],
            r["kecamatan_code"],
            r["facilitator_id"],
            r["reported_on"],
        )
        for r in REPORTS
    ]


def all_needs() -> list[checks.FarmerNeed]:
    return [
        checks.FarmerNeed(
            r["id"], r["nik_token"], r["poktan_id"], r["desa_code"], r["land_area_ha"], r["season"]
        )
        for r in NEEDS
    ]


def in_scope(findings: Iterable[checks.Finding], prefixes: tuple[str, ...]) -> list[checks.Finding]:
    """Findings with a kecamatan or desa receiver under one of the region prefixes."""
    regional = (OfficeKind.KECAMATAN, OfficeKind.DESA)
    return [
        f
        for f in findings
        if any(o.kind in regional and o.code.startswith(prefixes) for o in f.receivers)
    ]


SCOPES: list[tuple[RegionScope, tuple[str, ...]]] = [
    (RegionScope(kecamatan=["35.78.02"]), ("35.78.02",)),
    (RegionScope(kabupaten=["35.07"]), ("35.07.",)),
    (RegionScope(kabupaten=["35.07"], kecamatan=["35.78.02"]), ("35.07.", "35.78.02")),
]


# --- each check -------------------------------------------------------------------------------


def test_blt_overlaps_candidates_give_the_full_answer(filled: Engine) -> None:
    want = checks.blt_overlaps(all_blt(), all_enrolments(), Q4)
    assert {f.subject_token for f in want} == {"n1", "n2", "n10"}
    with filled.connect() as conn:
        got = load_blt_overlap_inputs(conn, Q4)
    assert checks.blt_overlaps(got.blt, got.enrolments, Q4) == want
    # Only the subjects' rows of the period are loaded: near misses stay in the store.
    assert sorted(r.record_id for r in got.blt) == ["B-1", "B-10", "B-2", "B-8"]
    assert sorted(e.nik_token for e in got.enrolments) == ["n1", "n10", "n20"]
    n1 = next(f for f in want if f.subject_token == "n1")
    assert n1.evidence["desa_codes"] == f"{D1},{D3}"


@pytest.mark.parametrize(("scope", "prefixes"), SCOPES)
def test_blt_overlaps_in_a_scope(
    filled: Engine, scope: RegionScope, prefixes: tuple[str, ...]
) -> None:
    want = in_scope(checks.blt_overlaps(all_blt(), all_enrolments(), Q4), prefixes)
    assert want
    with filled.connect() as conn:
        got = load_blt_overlap_inputs(conn, Q4, scope)
    assert checks.blt_overlaps(got.blt, got.enrolments, Q4) == want


def test_multiple_households_candidates_give_the_full_answer(filled: Engine) -> None:
    want = checks.nik_in_multiple_households(all_people(), Q4)
    assert {f.subject_token for f in want} == {"m1", "m2", "m5"}
    with filled.connect() as conn:
        people = load_multiple_household_people(conn)
    assert checks.nik_in_multiple_households(people, Q4) == want
    assert {p.nik_token for p in people} == {"m1", "m2", "m5"}


@pytest.mark.parametrize(("scope", "prefixes"), SCOPES)
def test_multiple_households_in_a_scope(
    filled: Engine, scope: RegionScope, prefixes: tuple[str, ...]
) -> None:
    want = in_scope(checks.nik_in_multiple_households(all_people(), Q4), prefixes)
    assert want
    with filled.connect() as conn:
        people = load_multiple_household_people(conn, scope)
    assert checks.nik_in_multiple_households(people, Q4) == want


def test_deceased_or_moved_candidates_give_the_full_answer(filled: Engine) -> None:
    want = checks.deceased_or_moved_receiving(all_reports(), all_people(), all_enrolments(), Q4)
    kinds = {f.subject_token: f.kind for f in want}
    assert kinds == {
        "x1": HandoffKind.DECEASED_RECEIVING_AID,
        "x2": HandoffKind.MOVED_RECEIVING_AID,
        "x5": HandoffKind.DECEASED_RECEIVING_AID,
        "x7": HandoffKind.DECEASED_RECEIVING_AID,
    }
    with filled.connect() as conn:
        got = load_deceased_or_moved_inputs(conn, Q4)
    assert checks.deceased_or_moved_receiving(got.reports, got.people, got.enrolments, Q4) == want
    assert {e.nik_token for e in got.enrolments} == {"x1", "x2", "x5", "x7"}
    assert sorted(r.report_id for r in got.reports) == ["R-d1", "R-d5"]


@pytest.mark.parametrize(("scope", "prefixes"), SCOPES)
def test_deceased_or_moved_in_a_scope(
    filled: Engine, scope: RegionScope, prefixes: tuple[str, ...]
) -> None:
    everything = checks.deceased_or_moved_receiving(
        all_reports(), all_people(), all_enrolments(), Q4
    )
    want = in_scope(everything, prefixes)
    with filled.connect() as conn:
        got = load_deceased_or_moved_inputs(conn, Q4, scope)
    assert checks.deceased_or_moved_receiving(got.reports, got.people, got.enrolments, Q4) == want
    if prefixes[0] == "35.07.":
        # x7 is paid in two kabupaten: its finding lists both, whatever the scope.
        (x7,) = want
        assert x7.evidence["desa_codes"] == f"{D4},{D1}"


def test_farmer_candidates_give_the_full_answer(filled: Engine) -> None:
    want = checks.farmer_conflicts(all_needs())
    assert {(f.subject_token, f.kind) for f in want} == {
        ("y1", HandoffKind.FARMER_MULTIPLE_GROUPS),
        ("y3", HandoffKind.FARMER_OVER_LAND_CAP),
        ("y5", HandoffKind.FARMER_OVER_LAND_CAP),
    }
    with filled.connect() as conn:
        needs = load_farmer_needs(conn)
        mt2 = load_farmer_needs(conn, seasons=["2026-MT2"])
        lower_cap = load_farmer_needs(conn, cap_ha=1.9)
    assert checks.farmer_conflicts(needs) == want
    # y2's 1.2 + 0.8 is a candidate in SQL (float sum) but not over the cap once rounded.
    assert {n.nik_token for n in needs} == {"y1", "y2", "y3", "y5"}
    assert checks.farmer_conflicts(mt2) == [f for f in want if f.period == "2026-MT2"]
    assert checks.farmer_conflicts(lower_cap, cap_ha=1.9) == checks.farmer_conflicts(
        all_needs(), cap_ha=1.9
    )


@pytest.mark.parametrize(("scope", "prefixes"), SCOPES)
def test_farmers_in_a_scope(filled: Engine, scope: RegionScope, prefixes: tuple[str, ...]) -> None:
    want = in_scope(checks.farmer_conflicts(all_needs()), prefixes)
    assert want
    with filled.connect() as conn:
        needs = load_farmer_needs(conn, scope=scope)
    assert checks.farmer_conflicts(needs) == want


def test_household_updates_since_a_day_and_in_a_scope(filled: Engine) -> None:
    everything = checks.household_updates_to_verify(all_reports())
    assert {(f.subject_token, f.period) for f in everything} == {
        ("H1", "2026-10-06"),
        ("H2", "2026-06-30"),
        ("H4", "2026-10-06"),
    }
    with filled.connect() as conn:
        all_rows = load_household_update_reports(conn)
        recent = load_household_update_reports(conn, reported_since=date(2026, 7, 1))
        scoped = load_household_update_reports(conn, scope=RegionScope(kecamatan=["35.78.02"]))
    assert checks.household_updates_to_verify(all_rows) == everything
    assert checks.household_updates_to_verify(recent) == [
        f for f in everything if f.period >= "2026-07-01"
    ]
    # H1's day has reports from two kecamatan: the scoped run sees both and sends to both.
    assert checks.household_updates_to_verify(scoped) == in_scope(everything, ("35.78.02",))
    assert sorted(r.report_id for r in scoped) == ["R-u1", "R-u2"]


def test_scope_rejects_a_kecamatan_given_as_kabupaten() -> None:
    with pytest.raises(ValidationError, match="not a kabupaten"):
        RegionScope(kabupaten=["35.78.01"])
    assert RegionScope().label() == "province"
    assert RegionScope(kabupaten=["35.78"], kecamatan=["35.07.01"]).label() == "35.78,35.07.01"


# --- scorecard inputs ------------------------------------------------------------------------

WIB = ZoneInfo("Asia/Jakarta")


def handoff(
    i: int,
    kind: str,
    subject: str,
    origin: str,
    kec: str,
    created: datetime,
    *,
    period: str = Q4,
    acknowledged: datetime | None = None,
) -> dict[str, Any]:
    return {
        "id": f"{i:032x}",
        "kind": kind,
        "subject_token": subject,
        "period": period,
        "sender": "hub",
        "origin_office": origin,
        "office": origin,
        "kecamatan_code": kec,
        "kabupaten_code": kec[:5],
        "source_ref": "",
        "evidence": "{}",
        "state": "acknowledged" if acknowledged else "open",
        "created_at": created,
        "due_date": date(2026, 10, 9),
        "acknowledged_at": acknowledged,
        "updated_at": created,
    }


def test_scorecard_loaders(store: Engine) -> None:
    blt_kind = HandoffKind.BLT_PKH_OVERLAP.value
    as_of = datetime(2026, 10, 5, 17, tzinfo=WIB)
    rows = [
        # One BLT finding: to the kecamatan and its desa (one finding, two handoffs).
        handoff(
            1,
            blt_kind,
            "n1",
            "kecamatan:35.78.01",
            "35.78.01",
            T,
            acknowledged=T + timedelta(hours=3),
        ),
        handoff(2, blt_kind, "n1", f"desa:{D1}", "35.78.01", T),
        # Deceased: kecamatan and the PKH agency (the agency's copy is not the office's).
        handoff(3, "deceased_receiving_aid", "x1", "kecamatan:35.78.01", "35.78.01", T),
        handoff(4, "deceased_receiving_aid", "x1", "agency:pkh", "35.78.01", T),
        # Not an overlap, and one created after as_of.
        handoff(5, "household_update_verification", "H1", "kecamatan:35.78.02", "35.78.02", T),
        handoff(6, blt_kind, "n9", "kecamatan:35.78.02", "35.78.02", as_of + timedelta(hours=1)),
        # The same subject in another period is another finding.
        handoff(7, blt_kind, "n1", "kecamatan:35.78.01", "35.78.01", T, period=Q3),
    ]
    cursors = [
        {"source": s, "partition": p, "records": n, "pages": 1, "changed_at": T}
        for s, p, n in [
            ("registry.households", "35.78.01", 100),
            ("desa.blt-recipients", "35.78.01", 20),
            ("registry.households", "35.78.02", 50),
            ("kecamatan.decisions", "all", 9),
        ]
    ]
    quarantined = [
        {
            "source": "registry.households",
            "partition": "35.78.01",
            "payload_hash": f"h{i}",
            "reason_codes": "x",
            "reasons": "[]",
            "payload": "{}",
            "first_seen": T,
            "last_seen": T,
            "seen_count": seen,
        }
        for i, seen in enumerate([1, 3])
    ]
    with store.begin() as conn:
        conn.execute(insert(_table(Handoff)), rows)
        conn.execute(insert(_table(SyncCursor)), cursors)
        conn.execute(insert(_table(Quarantine)), quarantined)
    with store.connect() as conn:
        streamed = list(iter_scorecard_handoffs(conn, as_of))
        sources = load_source_counts(conn)
        overlaps = load_overlap_counts(conn, as_of)
    assert len(streamed) == 6
    assert all(r.created_at == T and r.created_at.tzinfo is not None for r in streamed)
    acked = [r for r in streamed if r.acknowledged_at is not None]
    assert [r.acknowledged_at for r in acked] == [T + timedelta(hours=3)]
    assert sources == {
        "35.78.01": SourceCounts(fetched=120, quarantined=4),
        "35.78.02": SourceCounts(fetched=50, quarantined=0),
        "all": SourceCounts(fetched=9, quarantined=0),
    }
    # 35.78.01: n1 in Q4 (two handoffs), x1, n1 in Q3; 35.78.02 has no overlap before as_of.
    assert overlaps == {"35.78.01": 3}


def test_scorecard_loaders_need_an_aware_time(store: Engine) -> None:
    with store.connect() as conn, pytest.raises(ValueError, match="timezone-aware"):
        list(iter_scorecard_handoffs(conn, datetime(2026, 10, 5)))
