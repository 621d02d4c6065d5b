"""Operators' ad-hoc jobs: re-sync one source, re-run failed partitions, replay one reason."""

from __future__ import annotations

import pytest
from prefect import get_client
from sqlalchemy import func, select

from flows.common import SourceName
from flows.daily_coordination import reconcile_region
from flows.replay_quarantine import replay_quarantine
from flows.resync import failed_partitions, rerun_failed_partitions, resync_source
from flows.sync_registry import sync_registry
from integrations.settings import get_settings
from integrations.store.engine import get_engine
from integrations.store.tables import HOUSEHOLD, QUARANTINE
from models.scope import RegionScope
from tests.faults.endpoints import closed_port
from tests.flows.conftest import Sandbox


def _name(state: object) -> str:
    with get_client(sync_client=True) as client:
        return client.read_flow_run(state.state_details.flow_run_id).name  # type: ignore[attr-defined]


def _households(kabupaten: str) -> int:
    with get_engine().connect() as conn:
        return conn.execute(
            select(func.count()).where(HOUSEHOLD.c.kabupaten_code == kabupaten)
        ).scalar_one()


def test_resync_one_source_for_a_region(sandbox: Sandbox, hub: str) -> None:
    state = resync_source(
        source=SourceName("registry.households"),
        scope=RegionScope(kabupaten=["35.78"]),
        return_state=True,
    )
    assert state.is_completed(), state.message
    assert set(state.result()["totals"]) == {"registry.households"}
    assert _households("35.78") > 0 and _households("35.07") == 0
    assert _name(state).startswith("resync-source · registry.households · 35.78 · ")


def test_rerun_syncs_exactly_the_partitions_that_failed(
    sandbox: Sandbox, hub: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    scope = RegionScope(kabupaten=["35.07", "35.78"])
    monkeypatch.setenv("CETTAR_REGISTRY_URL", f"http://127.0.0.1:{closed_port()}/registry")
    get_settings.cache_clear()
    failed = sync_registry(scope=scope, return_state=True)
    assert failed.is_failed()
    run_id = failed.state_details.flow_run_id
    assert run_id is not None
    assert failed_partitions(run_id) == {"registry": ["35.07", "35.78"]}

    monkeypatch.setenv("CETTAR_REGISTRY_URL", f"{sandbox.url}/registry")
    get_settings.cache_clear()
    rerun = rerun_failed_partitions(flow_run_id=run_id, return_state=True)
    assert rerun.is_completed(), rerun.message
    totals = rerun.result()["registry"]["totals"]
    assert totals["registry.households"]["fetched"] > 0
    assert _households("35.07") > 0 and _households("35.78") > 0
    assert _households("35.09") == 0  # nothing outside the failed partitions
    # A run with nothing failed has nothing to re-run: the job says so and fails.
    again = rerun_failed_partitions(flow_run_id=rerun.state_details.flow_run_id, return_state=True)
    assert again.is_failed() and "has no failed sync partition" in (again.message or "")


def test_replay_one_reason_touches_only_its_records(sandbox: Sandbox, hub: str) -> None:
    state = sync_registry(scope=RegionScope(kabupaten=["35.78", "35.07"]), return_state=True)
    assert state.is_completed(), state.message
    with get_engine().connect() as conn:
        codes = list(
            conn.scalars(
                select(QUARANTINE.c.reason_codes).where(
                    QUARANTINE.c.source == "registry.households", QUARANTINE.c.status == "open"
                )
            )
        )
    keys = sorted({k for c in codes for k in c.split(",")})
    assert codes and keys
    reason = keys[0]
    held = sum(1 for c in codes if reason in c.split(","))
    replay = replay_quarantine(
        source=SourceName("registry.households"), reason=reason, return_state=True
    )
    assert replay.is_completed(), replay.message
    result = replay.result()
    # Only the records held for that reason were looked at; they are still invalid.
    assert (result["examined"], result["still_invalid"], result["replayed"]) == (held, held, 0)
    assert held < len(codes) or len(keys) == 1
    assert _name(replay).startswith(f"replay-quarantine · registry.households {reason} · ")


def test_reconcile_needs_a_region(prefect_api: str) -> None:
    state = reconcile_region(scope=RegionScope(), return_state=True)
    assert state.is_failed()
    assert "needs a kabupaten/kota or kecamatan" in (state.message or "")
