"""Health zones end to end on the sandbox: the planted red zones, their handoffs, escalation."""

from __future__ import annotations

from collections import Counter
from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import select

from flows.sync_registry import sync_registry
from flows.sync_sources import SourceAgency, sync_sources_flow
from integrations.settings import get_settings
from integrations.store.engine import get_engine
from integrations.store.health import red_entries
from integrations.store.tables import HANDOFF
from models.handoffs import HandoffKind, Office, handoff_key
from models.scope import RegionScope
from models.workdays import JAKARTA
from models.zones import episode_period
from sandbox.config import SandboxConfig
from sandbox.health_truth import HealthTruth, RedEntry
from sandbox.truth import health_truth
from tasks.health import run_zone_step
from tests.flows.conftest import DATA, Sandbox

WIB = ZoneInfo(JAKARTA)
CONFIG = SandboxConfig(registry=DATA)
DAY_1 = datetime(2026, 11, 3, 6, 0, tzinfo=WIB)  # Tuesday: W44 is the last complete week
DAY_2 = datetime(2026, 11, 10, 6, 0, tzinfo=WIB)  # a week later: W45


def _scope() -> RegionScope:
    # Two kabupaten/kota: one with an outbreak keyed on the last served week (it stays red in
    # the next epoch's week), one with a near-miss, so both behaviours are exercised.
    truth = health_truth(CONFIG)
    last = truth.weeks[-1]
    staying = next(e for e in truth.entries if e.level == "kecamatan" and e.week == last)
    near = next(n for n in truth.near_misses if n.kecamatan[:5] != staying.area_code[:5])
    return RegionScope(kabupaten=sorted({staying.area_code[:5], near.kecamatan[:5]}))


def _sync(scope: RegionScope) -> None:
    assert sync_registry(scope=scope, return_state=True).is_completed()
    state = sync_sources_flow(scope=scope, agencies=[SourceAgency("puskesmas")], return_state=True)
    assert state.is_completed(), state.message


def _entries(engine: Any) -> set[tuple[str, str, str, str]]:
    with engine.connect() as conn:
        return red_entries(conn)


def _key(e: RedEntry) -> tuple[str, str, str, str]:
    return (e.level, e.area_code, e.condition, e.week)


def _expected_handoffs(truth: HealthTruth) -> dict[str, str]:
    out: dict[str, str] = {}
    for e in truth.entries:
        period = episode_period(e.condition, e.week)
        level = "desa" if e.level == "desa" else "kecamatan"
        office = Office.parse(f"{level}:{e.area_code}")
        out[handoff_key(HandoffKind.HEALTH_RED_ZONE, e.area_code, period, office)] = office.key
        if e.level == "kecamatan":
            forum = Office.parse(f"forkopimcam:{e.area_code}")
            key = handoff_key(HandoffKind.HEALTH_RED_ZONE_NOTICE, e.area_code, period, forum)
            out[key] = forum.key
    return out


def _handoffs(engine: Any) -> dict[str, Any]:
    with engine.connect() as conn:
        return {r.id: r for r in conn.execute(select(HANDOFF))}


@pytest.fixture
def health_hub(hub: str, sandbox: Sandbox, monkeypatch: pytest.MonkeyPatch) -> str:
    monkeypatch.setenv("CETTAR_PUSKESMAS_URL", f"{sandbox.url}/puskesmas")
    get_settings.cache_clear()
    return hub


def test_planted_red_zones_are_found_handed_off_once_and_escalated(
    health_hub: str, sandbox: Sandbox
) -> None:
    scope = _scope()
    kecamatan = _kecamatan_of(scope)
    truth = health_truth(CONFIG, kecamatan)
    assert truth.planted and truth.near_misses
    assert truth.accidental == []
    engine = get_engine()

    _sync(scope)
    first = run_zone_step(engine, now=DAY_1, scope=scope)
    found = _entries(engine)
    expected = {_key(e) for e in truth.entries}
    true_positives = found & expected
    assert len(true_positives) / len(found) == 1.0  # precision
    assert len(true_positives) / len(expected) == 1.0  # recall
    flagged = {(area[:8], condition) for _, area, condition, _ in found}
    assert not flagged & {(n.kecamatan, n.condition) for n in truth.near_misses}

    # One urgent handoff per red kecamatan and desa, one notice per red kecamatan's
    # Forkopimcam; nothing is escalated on the day the hub first hands a spell off.
    wanted = _expected_handoffs(truth)
    handoffs = _handoffs(engine)
    assert {h: r.origin_office for h, r in handoffs.items()} == wanted
    kinds = Counter(r.kind for r in handoffs.values())
    assert kinds[HandoffKind.HEALTH_RED_ZONE_NOTICE.value] == sum(
        e.level == "kecamatan" for e in truth.entries
    )
    assert first["escalated"] == 0 and {r.state for r in handoffs.values()} == {"open"}
    assert sum(first["handoffs_created"].values()) == len(wanted)
    assert first["last_week_zones"] == {k: v for k, v in truth.last_week_zones.items() if v}

    # Rerunning changes nothing.
    again = run_zone_step(engine, now=DAY_1, scope=scope)
    assert again["zones_written"] == 0 and again["escalated"] == 0
    assert sum(again["handoffs_created"].values()) == 0

    # A week later the kecamatan still red are escalated, not handed off again (desa whose
    # cluster only now confirms enter red this week and get theirs).
    sandbox.set_epoch(1)
    later = health_truth(
        CONFIG.model_copy(update={"registry": DATA.model_copy(update={"epoch": 1})}), kecamatan
    )
    assert later.ongoing and later.accidental == []
    assert any(e.week == truth.weeks[-1] for e in later.ongoing)  # entered red last week
    new_entries = {_key(e) for e in later.entries} - expected
    assert all(level == "desa" for level, *_ in new_entries)
    _sync(scope)
    second = run_zone_step(engine, now=DAY_2, scope=scope)
    assert second["handoffs_created"].get(HandoffKind.HEALTH_RED_ZONE_NOTICE.value, 0) == 0
    assert sum(second["handoffs_created"].values()) == len(new_entries)
    assert second["escalated"] == len(later.ongoing)
    handoffs = _handoffs(engine)
    assert {h: r.origin_office for h, r in handoffs.items()} == _expected_handoffs(later)
    escalated = {r.origin_office for r in handoffs.values() if r.state == "escalated"}
    assert escalated == {f"kecamatan:{e.area_code}" for e in later.ongoing}
    assert {r.office for r in handoffs.values() if r.state == "escalated"} == {
        f"kabupaten:{e.area_code[:5]}" for e in later.ongoing
    }
    assert _entries(engine) == {_key(e) for e in later.entries}
    assert run_zone_step(engine, now=DAY_2, scope=scope)["escalated"] == 0


def _kecamatan_of(scope: RegionScope) -> list[str]:
    return [k for kecs in scope.partitions().values() for k in kecs]
