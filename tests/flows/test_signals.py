"""The hub's events reach the Prefect event feed of a real server, naming no person."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import update

from deployments.run_audit import count_clear_ids
from flows.signals import (
    AGENCY_UNREACHABLE,
    AUDIT_CHAIN_BROKEN,
    EVENTS,
    QUARANTINE_SPIKE,
    SYNC_PARTITION_FAILED,
)
from flows.sync_registry import sync_registry
from flows.verify_audit import verify_audit_chain
from integrations.settings import get_settings
from integrations.store.engine import get_engine, make_engine, upgrade
from integrations.store.tables import AUDIT
from models.scope import RegionScope
from sandbox.config import RegistryDataConfig, SandboxConfig
from sandbox.server import serve_in_thread
from tests.faults.endpoints import closed_port
from tests.flows.events import hub_events

SCOPE = RegionScope(kabupaten=["35.07", "35.78"])


@pytest.fixture
def store(tmp_path: Path, prefect_api: str, monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    """A fresh, migrated SQLite store for the hub."""
    url = f"sqlite:///{tmp_path / 'store.db'}"
    monkeypatch.setenv("CETTAR_DATA_DIR", str(tmp_path))
    monkeypatch.setenv("CETTAR_DATABASE_URL", url)
    monkeypatch.setenv("CETTAR_HTTP_BACKOFF_BASE_S", "0.01")
    get_settings.cache_clear()
    get_engine.cache_clear()
    upgrade(make_engine(url))
    yield url
    get_engine().dispose()
    get_settings.cache_clear()
    get_engine.cache_clear()


def test_a_dead_agency_emits_one_event_per_partition_and_one_for_the_agency(
    store: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("CETTAR_REGISTRY_URL", f"http://127.0.0.1:{closed_port()}/registry")
    get_settings.cache_clear()
    state = sync_registry(scope=SCOPE, return_state=True)
    assert state.is_failed()
    run_id = state.state_details.flow_run_id
    assert run_id is not None
    events = hub_events(run_id, wanted=3)
    by_name: dict[str, list[Any]] = {}
    for e in events:
        by_name.setdefault(e.event, []).append(e)
    assert {e.resource.id for e in by_name[SYNC_PARTITION_FAILED]} == {
        "cettar.partition.registry.35.07",
        "cettar.partition.registry.35.78",
    }
    (dead,) = by_name[AGENCY_UNREACHABLE]
    assert dead.resource.id == "cettar.agency.registry"
    assert dead.resource["cettar.agency"] == "registry"
    assert "unreachable" in dead.payload["reason"]
    assert set(by_name) <= set(EVENTS)


def test_a_quarantine_spike_emits_an_event_for_the_source(
    store: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    # A registry serving one bad household in five, against the default 5 % threshold;
    # its recipients stay clean.
    with serve_in_thread(
        SandboxConfig(registry=RegistryDataConfig(seed=3, households=3000, bad_rate=0.2))
    ) as root:
        monkeypatch.setenv("CETTAR_REGISTRY_URL", f"{root}/registry")
        get_settings.cache_clear()
        state = sync_registry(scope=RegionScope(kabupaten=["35.78"]), return_state=True)
    assert state.is_completed(), state.message
    totals = state.result()["totals"]
    run_id = state.state_details.flow_run_id
    assert run_id is not None
    spikes = [e for e in hub_events(run_id, wanted=1) if e.event == QUARANTINE_SPIKE]
    spiked = {e.resource["cettar.source"]: e.payload for e in spikes}
    for source, t in totals.items():
        if t["quarantined"] / t["fetched"] > get_settings().quarantine_alert_rate:
            assert spiked[source]["quarantined"] == t["quarantined"]
            assert spiked[source]["fetched"] == t["fetched"]
        else:
            assert source not in spiked
    assert spiked  # the sample does plant bad records
    assert count_clear_ids(str([e.model_dump_json() for e in spikes])) == 0


def test_a_broken_audit_chain_fails_the_check_and_emits_the_event(store: str) -> None:
    ok = verify_audit_chain(return_state=True)
    assert ok.is_completed() and ok.result()["ok"]
    # An empty chain verifies; one with a row edited after the fact does not.
    from integrations.store.audit import ChainWriter
    from models.handoffs import HandoffState

    engine = get_engine()
    from datetime import UTC, datetime

    with engine.begin() as conn:
        writer = ChainWriter(conn)
        writer.append(
            "H-1", None, HandoffState.OPEN, actor="hub", reason="created", at=datetime.now(UTC)
        )
        writer.flush()
    with engine.begin() as conn:
        conn.execute(update(AUDIT).values(reason="edited later"))
    broken = verify_audit_chain(return_state=True)
    assert broken.is_failed()
    assert "audit chain broken at row 1" in (broken.message or "")
    run_id = broken.state_details.flow_run_id
    assert run_id is not None
    (event,) = [e for e in hub_events(run_id, wanted=1) if e.event == AUDIT_CHAIN_BROKEN]
    assert event.resource.id == "cettar.audit-chain"
    # Nothing verified before the edited first row, and the problem names it.
    assert event.payload == {
        "checked": 0,
        "problem": "row 1 edited: hash does not match its content",
    }
