"""The check-programme-overlaps flow on the Prefect test server and a store of hand-made rows."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import Engine, func, insert, select

from deployments.run_audit import audit_flow_run
from flows.check_overlaps import check_programme_overlaps
from integrations.settings import get_settings
from integrations.store.common import stored_utc
from integrations.store.engine import get_engine
from models.identity import id_token, make_nik, make_no_kk
from models.scope import RegionScope
from models.tables import (
    BltRecipient,
    Enrolment,
    FacilitatorReport,
    FarmerNeed,
    Handoff,
    HandoffAudit,
    Household,
    Member,
)
from tasks.checks import Check, current_period, period_start

WIB = ZoneInfo("Asia/Jakarta")
AS_OF = datetime(2026, 10, 7, 10, tzinfo=WIB)
T = datetime(2026, 10, 1, 1, tzinfo=UTC)
Q4 = "2026-Q4"
KEY = b"flow-test-key"
D1, D3 = "35.78.01.2001", "35.78.02.2001"
DESA = {"H1": D1, "H3": D3}


def nik(i: int) -> str:
    return make_nik("35.78.01", date(1985, 3, 14), "P", i)


def tok(i: int) -> str:
    """Keyed token of the i-th NIK, as the sync stores it."""
    return id_token(nik(i), KEY)


def kk_tok(i: int) -> str:
    return id_token(make_no_kk("35.78.01", date(2015, 6, 1), i), KEY)


def _enrolment(i: int, hh: str, programme: str = "PKH") -> dict[str, Any]:
    return {
        "id": f"E-{i}",
        "programme": programme,
        "household_id": hh,
        "nik_token": tok(i),
        "kk_token": kk_tok(i),
        "desa_code": DESA[hh],
        "kecamatan_code": DESA[hh][:8],
        "period": Q4,
        "status": "active",
        "updated_at": T,
        "synced_at": T,
    }


def _member(mid: str, i: int, hh: str, status: str = "active") -> dict[str, Any]:
    # The store keeps the clear NIK (system of record); no run record may show it.
    return {
        "id": mid,
        "household_id": hh,
        "nik": nik(i),
        "nik_token": tok(i),
        "name": "Siti",
        "sex": "P",
        "birth_date": date(1985, 3, 14),
        "relationship": "kepala",
        "status": status,
        "updated_at": T,
    }


def _need(rid: str, i: int, poktan: str, area: float, desa: str = D1) -> dict[str, Any]:
    return {
        "id": rid,
        "nik_token": tok(i),
        "poktan_id": poktan,
        "desa_code": desa,
        "kecamatan_code": desa[:8],
        "land_area_ha": area,
        "commodity": "padi",
        "season": "2026-MT3",
        "updated_at": T,
        "synced_at": T,
    }


def _report(rid: str, kind: str, i: int, hh: str, on: date) -> dict[str, Any]:
    return {
        "id": rid,
        "kind": kind,
        "facilitator_id": "SDM-1",
        "kecamatan_code": "35.78.01",
        "household_id": hh,
        "nik_token": tok(i),
        "reported_on": on,
        "changes": '{"desil": 3}' if kind == "household_update" else "",
        "note": "",
        "updated_at": T,
        "synced_at": T,
    }


def fill(engine: Engine) -> None:
    """One case of each finding kind, plus near misses."""
    households = [
        {
            "id": hh,
            "no_kk": make_no_kk("35.78.01", date(2015, 6, 1), n),
            "kk_token": kk_tok(n),
            "desa_code": desa,
            "kecamatan_code": desa[:8],
            "kabupaten_code": desa[:5],
            "updated_at": T,
            "synced_at": T,
        }
        for n, (hh, desa) in enumerate(DESA.items(), start=1)
    ]
    blt = [
        {
            "id": f"B-{i}",
            "desa_code": D1,
            "kecamatan_code": D1[:8],
            "period": Q4,
            "nik_token": tok(i),
            "kk_token": kk_tok(i),
            "status": "approved",
            "updated_at": T,
            "synced_at": T,
        }
        for i in (1, 9)  # 1 is enrolled in PKH; 9 is not
    ]
    tables: list[tuple[Any, list[dict[str, Any]]]] = [
        (Household, households),
        (
            Member,
            [
                _member("M-2a", 2, "H1"),
                _member("M-2b", 2, "H3"),  # one NIK in two households
                _member("M-3", 3, "H1", "moved"),  # moved out of H1, still paid there
                _member("M-4", 4, "H1"),
            ],
        ),
        (Enrolment, [_enrolment(1, "H1"), _enrolment(3, "H1", "BPNT"), _enrolment(5, "H1")]),
        (BltRecipient, blt),
        (
            FacilitatorReport,
            [
                _report("R-1", "deceased", 5, "H1", date(2026, 10, 2)),
                _report("R-2", "household_update", 4, "H1", date(2026, 10, 6)),
                _report("R-3", "non_compliance", 1, "H1", date(2026, 10, 6)),
            ],
        ),
        (
            FarmerNeed,
            [
                _need("F-1", 6, "P1", 1.0),
                _need("F-2", 6, "P2", 0.5, D3),  # two poktan
                _need("F-3", 7, "P1", 2.5),  # over the cap
                _need("F-4", 8, "P1", 1.2),
                _need("F-5", 8, "P1", 0.8),  # exactly 2 ha: not over
            ],
        ),
    ]
    with engine.begin() as conn:
        for model, rows in tables:
            conn.execute(insert(model.__table__), rows)


@pytest.fixture
def hub_store(
    store_url: str, prefect_api: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> Iterator[Engine]:
    """The hub's settings pointed at a fresh store filled with the rows above."""
    monkeypatch.setenv("CETTAR_DATABASE_URL", store_url)
    monkeypatch.setenv("CETTAR_DATA_DIR", str(tmp_path))
    get_settings.cache_clear()
    get_engine.cache_clear()
    fill(get_engine())
    yield get_engine()
    get_engine().dispose()
    get_settings.cache_clear()
    get_engine.cache_clear()


# Handoffs per kind: findings and receivers (kecamatan, desa, agency:pkh).
EXPECTED = {
    "blt_pkh_overlap": (1, 2),  # kecamatan 35.78.01 and desa D1
    "nik_multiple_households": (1, 2),  # kecamatan 35.78.01 and 35.78.02
    "deceased_receiving_aid": (1, 2),  # kecamatan and the PKH agency
    "moved_receiving_aid": (1, 1),  # BPNT only: the kecamatan
    "farmer_multiple_groups": (1, 2),
    "farmer_over_land_cap": (1, 1),
    "household_update_verification": (1, 1),
}


def _counts(engine: Engine, table: Any) -> int:
    with engine.connect() as conn:
        return int(conn.execute(select(func.count()).select_from(table)).scalar_one())


def test_checks_create_each_handoff_once_and_record_counts_only(hub_store: Engine) -> None:
    state = check_programme_overlaps(as_of=AS_OF, return_state=True)
    assert state.is_completed(), state.message
    summary = state.result()
    assert summary["period"] == Q4
    got = {
        kind: (c["findings"], c["created"])
        for kinds in summary["checks"].values()
        for kind, c in kinds.items()
    }
    assert got == EXPECTED
    assert summary["totals"] == {"findings": 7, "created": 11, "existing": 0}
    assert _counts(hub_store, Handoff.__table__) == 11  # type: ignore[attr-defined]
    origin = Handoff.__table__.c.origin_office  # type: ignore[attr-defined]
    with hub_store.connect() as conn:
        offices = set(conn.execute(select(origin)).scalars())
    assert offices == {"kecamatan:35.78.01", "kecamatan:35.78.02", f"desa:{D1}", "agency:pkh"}
    # Every check ran as one task; both artifacts are there; no clear NIK anywhere.
    flow_run_id = state.state_details.flow_run_id
    assert flow_run_id is not None
    record = audit_flow_run(flow_run_id, expected_tasks=len(Check))
    assert record.task_states == {"Completed": len(Check)}
    assert record.artifacts == 2
    assert record.clear_id_total == 0
    # The same run again finds the same handoffs and creates none.
    again = check_programme_overlaps(period=Q4, as_of=AS_OF)
    assert again["totals"] == {"findings": 7, "created": 0, "existing": 11}
    assert _counts(hub_store, Handoff.__table__) == 11  # type: ignore[attr-defined]
    assert _counts(hub_store, HandoffAudit.__table__) == 11  # type: ignore[attr-defined]


def test_a_scoped_run_creates_only_that_region_s_handoffs(hub_store: Engine) -> None:
    result = check_programme_overlaps(
        period=Q4, as_of=AS_OF, scope=RegionScope(kecamatan=["35.78.02"])
    )
    got = {k: c["created"] for kinds in result["checks"].values() for k, c in kinds.items()}
    # Only the findings with a receiver in 35.78.02: the NIK in two households and the
    # farmer in two poktan, each to both kecamatan.
    assert got == dict.fromkeys(EXPECTED, 0) | {
        "nik_multiple_households": 2,
        "farmer_multiple_groups": 2,
    }
    assert result["scope"] == "35.78.02"


def test_a_bad_period_fails_before_any_check(hub_store: Engine) -> None:
    state = check_programme_overlaps(period="2026-13", as_of=AS_OF, return_state=True)
    assert state.is_failed()
    assert _counts(hub_store, Handoff.__table__) == 0  # type: ignore[attr-defined]


def test_current_period_is_the_jakarta_quarter() -> None:
    # 30 Sep 2026 18:00 UTC is already 1 Oct in Jakarta.
    assert current_period(datetime(2026, 9, 30, 18, tzinfo=UTC)) == "2026-Q4"
    assert current_period(datetime(2026, 9, 30, 16, tzinfo=UTC)) == "2026-Q3"
    assert current_period(datetime(2026, 1, 1, tzinfo=WIB)) == "2026-Q1"
    assert period_start("2026-Q3") == date(2026, 7, 1)
    for bad in ("2026-Q5", "2026Q1", "26-Q1", ""):
        with pytest.raises(ValueError, match="quarter"):
            period_start(bad)


def test_a_time_without_a_zone_is_read_in_jakarta_time(hub_store: Engine) -> None:
    # Typed into a form or the CLI as 10:00: the checks run as of 10:00 WIB, like dispatch.
    result = check_programme_overlaps(period=Q4, as_of=AS_OF.replace(tzinfo=None))
    assert result["as_of"] == AS_OF.isoformat()
    created = Handoff.__table__.c.created_at  # type: ignore[attr-defined]
    with hub_store.connect() as conn:
        stamps = {stored_utc(t) for t in conn.execute(select(created)).scalars()}
    assert stamps == {AS_OF.astimezone(UTC)}
