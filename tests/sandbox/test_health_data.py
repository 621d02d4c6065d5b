"""The puskesmas sandbox: seeded weekly figures, served pages, planted zones and their truth."""

from __future__ import annotations

import ast
import inspect
from collections import Counter
from collections.abc import Callable
from datetime import datetime

import httpx
import pytest
from fastapi import FastAPI

import sandbox.health_truth
from models.contracts.puskesmas import SURVEILLANCE, WeeklyReport
from sandbox.config import CoordinationConfig, RegistryDataConfig, SandboxConfig
from sandbox.health_config import HealthConfig
from sandbox.health_data import OUTBREAK, RISE, SPIKE
from sandbox.truth import health_truth
from tests.sandbox.conftest import ADMIN_AUTH, bad_kinds, coordination_data, read_agency

CONFIG = SandboxConfig(registry=RegistryDataConfig(seed=7, households=1500))


def test_figures_are_seeded_and_deterministic() -> None:
    a = coordination_data(1500).health
    b = coordination_data(1500).health
    assert [e.item.record for e in a.entries()] == [e.item.record for e in b.entries()]
    assert a.week(0) == "2026-W37" and a.week(a.weeks_served() - 1) == "2026-W44"
    other = coordination_data(1500, health=HealthConfig(background_rate=0.1)).health
    assert len(other.entries()) > len(a.entries())


def test_records_keep_to_the_contract_except_the_broken_ones() -> None:
    data = coordination_data(1500, bad_rate=0.05).health
    items = [e.item for e in data.entries()]
    kinds = bad_kinds(items, WeeklyReport)
    assert set(kinds) == {"negative_cases", "unknown_condition", "patient_field"}
    ids = [i.id for i in items]
    assert len(ids) == len(set(ids))
    # Aggregates only: no record names a person or carries an id of one.
    for item in items:
        if item.bad is None:
            assert set(item.record) == set(WeeklyReport.model_fields)


def test_scenarios_realise_their_targets_at_the_kecamatan() -> None:
    data = coordination_data(1500).health
    population, scenarios, _ = data.base()
    assert {s.kind for s in scenarios} == {OUTBREAK, RISE, SPIKE}
    for s in scenarios:
        cases = data.cases(s.key_week)
        total = sum(
            n for (desa, c), n in cases.items() if desa[:8] == s.kecamatan and c == s.condition
        )
        per_100k = total * 100_000 / population[s.kecamatan]
        target = data.config.watch_per_100k if s.kind == RISE else data.config.alert_per_100k
        assert abs(per_100k - target) <= 50_000 / population[s.kecamatan] + 1e-9, s


def test_the_truth_finds_every_planted_entry_and_no_near_miss() -> None:
    truth = health_truth(CONFIG)
    assert truth.planted and truth.accidental == []
    assert {e.level for e in truth.planted} == {"desa", "kecamatan"}
    outbreaks = {(s.kecamatan, s.condition) for s in truth.scenarios if s.kind == OUTBREAK}
    entered = {(e.area_code, e.condition) for e in truth.entries if e.level == "kecamatan"}
    # Outbreaks keyed on the last served week enter red that week; the others earlier.
    assert entered == outbreaks
    assert {n.kind for n in truth.near_misses} == {RISE, SPIKE}
    flagged = {e.area_code[:8] + e.condition for e in truth.entries}
    assert not {n.kecamatan + n.condition for n in truth.near_misses} & flagged
    assert truth.ongoing and sum(truth.last_week_zones.values()) > 0
    assert all(e.red_weeks >= 2 for e in truth.ongoing)


def test_the_next_epoch_serves_the_next_week_and_the_spells_go_on() -> None:
    now = health_truth(CONFIG)
    later = health_truth(
        CONFIG.model_copy(update={"registry": CONFIG.registry.model_copy(update={"epoch": 1})})
    )
    assert later.weeks == [*now.weeks, "2026-W45"]
    assert {(e.area_code, e.condition, e.week) for e in later.entries} >= {
        (e.area_code, e.condition, e.week) for e in now.entries
    }
    assert {e.area_code for e in later.ongoing} - {e.area_code for e in now.ongoing}


def test_the_truth_does_not_call_the_hub_rule() -> None:
    tree = ast.parse(inspect.getsource(sandbox.health_truth))
    imported = {
        node.module for node in ast.walk(tree) if isinstance(node, ast.ImportFrom) and node.module
    }
    assert not any(m.startswith(("models.zones", "integrations")) for m in imported)


def test_figures_are_served_in_pages_through_the_contract(
    make_client: Callable[[SandboxConfig], tuple[FastAPI, httpx.Client]],
) -> None:
    app, client = make_client(CONFIG)
    records = read_agency(client, "puskesmas", SURVEILLANCE, limit=97)
    state = app.state.sandbox
    assert records == [e.item.record for e in state.coordination.health.entries()]
    times = [datetime.fromisoformat(r["updated_at"]) for r in records]
    assert times == sorted(times)
    kec = records[0]["desa_code"][:8]
    one = read_agency(client, "puskesmas", SURVEILLANCE, kecamatan=kec)
    assert one and {r["desa_code"][:8] for r in one} == {kec}
    since = read_agency(client, "puskesmas", SURVEILLANCE, updated_since=records[-1]["updated_at"])
    assert {r["week"] for r in since} == {"2026-W44"}
    truth = client.get("/_admin/truth/health", headers=ADMIN_AUTH).raise_for_status().json()
    assert truth == health_truth(CONFIG).model_dump(mode="json")
    assert Counter(r["week"] for r in records)["2026-W37"] > 0
    denied = client.get(f"/puskesmas/v1/{SURVEILLANCE}", headers={"Authorization": "Bearer x"})
    assert denied.status_code == 401


def test_the_scenario_shares_are_checked() -> None:
    with pytest.raises(ValueError, match="at most 1"):
        HealthConfig(outbreak_share=0.6, rise_share=0.5)
    assert CoordinationConfig().health == HealthConfig()
