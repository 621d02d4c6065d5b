"""Partitions on a Dask cluster (prefect-dask): the same store as the local path.

Everything is real: a `distributed.LocalCluster` of two worker processes runs the sync's
partition tasks, against the sandbox on a real port, the session's Prefect server and
PostgreSQL stores (several processes write at once, which SQLite's single writer would only
take in turn). The checksums are the fault suite's (`tests/faults/procs.table_digests`).
"""

from __future__ import annotations

import json
import pickle
import time
from collections.abc import Iterator
from typing import Any

import cloudpickle
import pytest
from distributed import Client, LocalCluster, get_task_stream
from prefect.task_runners import ProcessPoolTaskRunner, ThreadPoolTaskRunner
from prefect_dask import DaskTaskRunner

from deployments.run_audit import RunRecord, audit_flow_run, count_clear_ids, run_summary
from flows.common import partition_runner
from flows.sync_registry import sync_registry
from integrations.agencies.breaker import AGENCY_BREAKER
from integrations.settings import get_settings
from integrations.store.engine import get_engine
from models.scope import RegionScope
from tests.faults.procs import diff_digests, postgres_databases, table_digests
from tests.flows.conftest import Sandbox

# Kab. Malang, Kab. Jember, Kab. Sidoarjo, Kota Surabaya: four partitions for two workers.
SCOPE = RegionScope(kabupaten=["35.07", "35.09", "35.15", "35.78"])
WRONG_TOKEN = "wrong-token-value-D4"
_RUNNER_VARS = ("TASK_RUNNER", "DASK_ADDRESS", "DASK_WORKERS", "SYNC_WORKERS")


@pytest.fixture
def aim(sandbox: Sandbox, monkeypatch: pytest.MonkeyPatch) -> Iterator[Any]:
    """`aim(store, **env)`: the hub at the sandbox and a store, local runner unless told."""
    sandbox.set_epoch(0)

    def point(store: str, **env: str) -> None:
        for name in _RUNNER_VARS:
            monkeypatch.delenv(f"CETTAR_{name}", raising=False)
        monkeypatch.setenv("CETTAR_DATABASE_URL", store)
        monkeypatch.setenv("CETTAR_REGISTRY_URL", f"{sandbox.url}/registry")
        monkeypatch.setenv("CETTAR_HTTP_BACKOFF_BASE_S", "0.01")
        for name, value in env.items():
            monkeypatch.setenv(f"CETTAR_{name}", value)
        get_settings.cache_clear()
        get_engine().dispose()
        get_engine.cache_clear()

    yield point
    get_engine().dispose()
    get_settings.cache_clear()
    get_engine.cache_clear()


def _sync(label: str) -> tuple[dict[str, Any], RunRecord]:
    """Sync the scope; its summary and what the Prefect API recorded of the run."""
    started = time.perf_counter()
    state = sync_registry(scope=SCOPE, return_state=True)
    seconds = time.perf_counter() - started
    print(f"\n{label}: {len(SCOPE.partitions())} partitions in {seconds:.1f} s")
    assert state.is_completed(), state.message
    summary: dict[str, Any] = state.result()
    assert state.state_details.flow_run_id is not None
    tasks = len(SCOPE.partitions()) + 1  # and prepare-store
    record = audit_flow_run(state.state_details.flow_run_id, expected_tasks=tasks)
    assert record.task_states == {"Completed": tasks}
    assert record.clear_ids == dict.fromkeys(record.clear_ids, 0)
    return summary, record


@pytest.mark.postgres
@pytest.mark.slow
def test_dask_workers_store_what_the_local_path_stores(
    prefect_api: str, postgres_url: str, aim: Any
) -> None:
    with postgres_databases(postgres_url, "dask_ref", "dask_run") as (local_db, dask_db):
        aim(local_db)
        local, local_record = _sync("local path")
        assert local["totals"]["registry.households"]["upserted"] > 0

        # The workers read the CETTAR_* settings of the environment they start in, as
        # workers on other machines do: the Dask store's, not yet the scheduler address.
        aim(dask_db)
        with (
            LocalCluster(
                n_workers=2, threads_per_worker=1, processes=True, dashboard_address=None
            ) as cluster,
            Client(cluster, set_as_default=False) as client,
        ):
            aim(dask_db, DASK_ADDRESS=cluster.scheduler_address)
            with get_task_stream(client=client) as stream:
                on_dask, dask_record = _sync("Dask path (2 worker processes)")
            workers = {entry["worker"] for entry in stream.data}
            assert len(stream.data) == len(SCOPE.partitions())
            assert workers == set(client.scheduler_info()["workers"])  # both took partitions

            # A flow run whose store differs from the workers' is refused before any
            # partition runs: they would have written into another store.
            aim(local_db, DASK_ADDRESS=cluster.scheduler_address)
            refused = sync_registry(scope=SCOPE, return_state=True)
            assert refused.is_failed()
            assert "have another store, PII key or agency endpoints" in (refused.message or "")

        assert on_dask["totals"] == local["totals"]
        # The partitions' logs reach Prefect from the worker processes too.
        assert dask_record.log_lines >= local_record.log_lines > 0
        want, got = table_digests(local_db), table_digests(dask_db)
        assert want["household"][0] > 0 and want["quarantine"][0] > 0
        assert got == want, diff_digests(want, got)


@pytest.mark.postgres
@pytest.mark.slow
def test_a_dead_agency_on_local_dask_workers_fails_fast_per_worker(
    prefect_api: str, postgres_url: str, aim: Any
) -> None:
    scope = RegionScope(kabupaten=["35.07", "35.09", "35.78"])
    with postgres_databases(postgres_url, "dask_dead") as (db,):
        aim(db, TASK_RUNNER="dask", DASK_WORKERS="2", REGISTRY_TOKEN=WRONG_TOKEN)
        started = time.perf_counter()
        state = sync_registry(scope=scope, return_state=True)
        seconds = time.perf_counter() - started
        print(f"\ndead agency on a local Dask cluster: failed in {seconds:.1f} s")
    assert state.is_failed()
    summary = run_summary(state)
    failed = summary["failed"]
    assert sorted(failed) == [f"registry {k}" for k in ("35.07", "35.09", "35.78")]
    refused = [job for job, why in failed.items() if why.startswith("AuthError: ")]
    skipped = [job for job, why in failed.items() if why.startswith("CircuitOpen: ")]
    # Each worker process has its own breaker: at most one request refused per worker, and
    # the third partition met an open circuit on whichever worker took a second one.
    assert 1 <= len(refused) <= 2 and len(refused) + len(skipped) == 3, failed
    text = json.dumps(summary)
    assert WRONG_TOKEN not in text and count_clear_ids(text) == 0


def test_the_setting_chooses_the_runner(monkeypatch: pytest.MonkeyPatch) -> None:
    def runner(**env: str) -> Any:
        for name in _RUNNER_VARS:
            monkeypatch.delenv(f"CETTAR_{name}", raising=False)
        for name, value in env.items():
            monkeypatch.setenv(f"CETTAR_{name}", value)
        get_settings.cache_clear()
        return partition_runner(38)

    try:
        assert isinstance(runner(), ThreadPoolTaskRunner)
        assert isinstance(runner(SYNC_WORKERS="2"), ProcessPoolTaskRunner)
        remote = runner(DASK_ADDRESS="tcp://10.0.0.5:8786")
        assert isinstance(remote, DaskTaskRunner) and remote.address == "tcp://10.0.0.5:8786"
        local = runner(TASK_RUNNER="dask", DASK_WORKERS="3")
        assert isinstance(local, DaskTaskRunner) and local.address is None
        assert local.cluster_kwargs["n_workers"] == 3 and local.cluster_kwargs["processes"]
        with pytest.raises(ValueError, match="task_runner"):
            runner(TASK_RUNNER="spark")
    finally:
        get_settings.cache_clear()


def test_a_partition_task_carries_the_breaker_by_name() -> None:
    """Pickled for another process, the task uses that process's breaker, not a copy."""
    from integrations.agencies.breaker import CircuitBreaker
    from tasks.sync import sync_partition

    shipped = cloudpickle.loads(cloudpickle.dumps(sync_partition))
    assert shipped.fn.__globals__["AGENCY_BREAKER"] is AGENCY_BREAKER
    with pytest.raises(pickle.PicklingError):
        cloudpickle.dumps(CircuitBreaker())
