"""Health zones in the store: zones per week, red-zone handoffs once, escalation, reruns."""

from __future__ import annotations

import json
import math
from collections import Counter
from datetime import UTC, date, datetime
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import Engine, func, select

from integrations.store.audit import verify_audit
from integrations.store.health import SURVEILLANCE, ZONE, apply_zones
from integrations.store.tables import HANDOFF, HOUSEHOLD
from models.handoffs import HandoffKind, Office, handoff_key
from models.scope import RegionScope
from models.workdays import JAKARTA, WorkCalendar
from models.zones import ZoneThresholds, kabupaten_population

WIB = ZoneInfo(JAKARTA)
T = ZoneThresholds()
CAL = WorkCalendar()
KEC = "35.07.01"
DESA = ("35.07.01.2001", "35.07.01.2002")
OTHER = "35.07.02.2001"
# People per desa: the kabupaten's total is split 10 : 10 : 20.
PEOPLE = {DESA[0]: 10, DESA[1]: 10, OTHER: 20}
DESA_POP = kabupaten_population()["35.07"] * 10 / 40


def _households(store: Engine) -> None:
    now = datetime(2026, 10, 1, tzinfo=UTC)
    rows = [
        {
            "id": f"HH-{i}",
            "no_kk": "",
            "kk_token": f"t{i}",
            "desa_code": desa,
            "kecamatan_code": desa[:8],
            "kabupaten_code": desa[:5],
            "address": "",
            "desil": None,
            "member_count": n,
            "updated_at": now,
            "synced_at": now,
        }
        for i, (desa, n) in enumerate(PEOPLE.items())
    ]
    with store.begin() as conn:
        conn.execute(HOUSEHOLD.insert(), rows)


def _reports(store: Engine, week: str, per_100k: float, desas: tuple[str, ...] = DESA) -> None:
    at = datetime(2026, 11, 1, tzinfo=UTC)
    cases = math.ceil(per_100k * DESA_POP / 100_000)
    rows: list[dict[str, Any]] = [
        {
            "id": f"SRV-{desa}-{week}",
            "puskesmas_id": "PKM-350701",
            "desa_code": desa,
            "kecamatan_code": desa[:8],
            "week": week,
            "condition": "dbd",
            "new_cases": cases,
            "tests": cases * 4,
            "deaths": 1,
            "updated_at": at,
            "synced_at": at,
        }
        for desa in desas
    ]
    with store.begin() as conn:
        conn.execute(SURVEILLANCE.insert(), rows)


def _run(store: Engine, day: date, scope: RegionScope | None = None) -> dict[str, Any]:
    now = datetime(day.year, day.month, day.day, 6, 0, tzinfo=WIB)
    with store.begin() as conn:
        counts = apply_zones(
            conn, now=now, thresholds=T, weeks=8, scope=scope or RegionScope(), calendar=CAL
        )
    return counts.as_dict()


def _handoffs(store: Engine) -> dict[str, Any]:
    with store.connect() as conn:
        return {r.id: r for r in conn.execute(select(HANDOFF))}


def test_entering_red_hands_off_once_and_staying_red_escalates(store: Engine) -> None:
    _households(store)
    _reports(store, "2026-W41", 12)
    _reports(store, "2026-W42", 30)
    _reports(store, "2026-W43", 120)
    _reports(store, "2026-W43", 2, desas=(OTHER,))

    first = _run(store, date(2026, 10, 27))  # Tuesday of W44: W43 is the last complete week
    assert first["last_week"] == "2026-W43"
    assert first["red_entries"] == {"kecamatan": 1, "desa": 2}
    assert first["handoffs_created"] == {
        HandoffKind.HEALTH_RED_ZONE.value: 3,
        HandoffKind.HEALTH_RED_ZONE_NOTICE.value: 1,
    }
    assert first["escalated"] == 0
    # The other desa and its kecamatan: two cases, green.
    assert first["last_week_zones"] == {"red": 3, "green": 2}
    handoffs = _handoffs(store)
    offices = sorted(h.office for h in handoffs.values())
    assert offices == [
        f"desa:{DESA[0]}",
        f"desa:{DESA[1]}",
        f"forkopimcam:{KEC}",
        f"kecamatan:{KEC}",
    ]
    period = "dbd:2026-W43"
    urgent = handoff_key(HandoffKind.HEALTH_RED_ZONE, KEC, period, Office.parse(f"kecamatan:{KEC}"))
    row = handoffs[urgent]
    assert row.due_date == date(2026, 10, 28)  # one working day
    assert row.kecamatan_code == KEC and row.state == "open"
    evidence = json.loads(row.evidence)
    assert evidence["week"] == "2026-W43" and evidence["zone"] == "red"
    assert evidence["new_cases"] > 0 and evidence["incidence_per_100k"] >= 120
    assert (
        handoffs[
            handoff_key(
                HandoffKind.HEALTH_RED_ZONE_NOTICE, KEC, period, Office.parse(f"forkopimcam:{KEC}")
            )
        ].kecamatan_code
        == KEC
    )

    again = _run(store, date(2026, 10, 27))
    assert again["zones_written"] == 0 and again["zones_removed"] == 0
    assert sum(again["handoffs_created"].values()) == 0 and again["escalated"] == 0

    _reports(store, "2026-W44", 100)
    second = _run(store, date(2026, 11, 3))
    assert second["red_entries"] == {} and sum(second["handoffs_created"].values()) == 0
    assert second["escalated"] == 1
    row = _handoffs(store)[urgent]
    assert row.state == "escalated" and row.office == "kabupaten:35.07"
    with store.connect() as conn:
        since = conn.execute(
            select(ZONE.c.red_since).where(ZONE.c.area_code == KEC, ZONE.c.week == "2026-W44")
        ).scalar_one()
    assert since == "2026-W43"

    # A third red week, evaluated from a window that starts after the spell began.
    _reports(store, "2026-W45", 100)
    third = _run(store, date(2026, 11, 10))
    assert sum(third["handoffs_created"].values()) == 0 and third["escalated"] == 0
    assert len(_handoffs(store)) == 4
    with store.connect() as conn:
        assert verify_audit(conn).ok


def test_a_scope_touches_only_its_kecamatan(store: Engine) -> None:
    _households(store)
    _reports(store, "2026-W42", 30)
    _reports(store, "2026-W43", 120)
    elsewhere = _run(store, date(2026, 10, 27), RegionScope(kecamatan=["35.07.02"]))
    assert sum(elsewhere["handoffs_created"].values()) == 0
    with store.connect() as conn:
        assert conn.execute(select(func.count()).select_from(ZONE)).scalar_one() == 0
    here = _run(store, date(2026, 10, 27), RegionScope(kecamatan=[KEC]))
    assert sum(here["handoffs_created"].values()) == 4


def test_desa_without_registry_people_get_no_zone(store: Engine) -> None:
    _reports(store, "2026-W43", 120)
    counts = _run(store, date(2026, 10, 27))
    assert counts["without_population"] == 2 and counts["zones_written"] == 0


def test_a_spell_first_seen_in_its_second_week_goes_to_the_kecamatan_first(
    store: Engine,
) -> None:
    _households(store)
    _reports(store, "2026-W42", 30)
    _reports(store, "2026-W43", 120)
    _reports(store, "2026-W44", 120)
    first = _run(store, date(2026, 11, 3))
    assert sum(first["handoffs_created"].values()) == 4 and first["escalated"] == 0
    # No new week: the same figures escalate nothing.
    assert _run(store, date(2026, 11, 4))["escalated"] == 0
    # A week not reported yet is not taken for zero cases: W45 is not evaluated.
    late = _run(store, date(2026, 11, 10))
    assert late["last_week"] == "2026-W44" and late["escalated"] == 0
    _reports(store, "2026-W45", 120)
    assert _run(store, date(2026, 11, 10))["escalated"] == 1
    states = Counter(h.state for h in _handoffs(store).values())
    assert states == {"open": 3, "escalated": 1}
