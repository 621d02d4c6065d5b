"""One guard per store part, on a real Prefect server: writers of a part take turns.

The nightly and ad-hoc registry deployments (served as `cettar serve` serves them) and a
`cettar sync registry` from the command line, started together, each write the registry's
tables: the task runs Prefect records for them never overlap in time. A holder killed with
SIGKILL does not keep the next writer waiting for its lease to run out.
"""

from __future__ import annotations

import contextlib
import itertools
import json
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from uuid import UUID

import pytest
from prefect.client.orchestration import get_client
from prefect.client.schemas.filters import FlowRunFilter, FlowRunFilterId
from prefect.deployments import run_deployment

from flows.guards import guard_name, store_guard
from integrations.settings import get_settings
from sandbox.config import FaultConfig, RegistryDataConfig, SandboxConfig
from tests.faults import procs

ROOT = Path(__file__).resolve().parents[2]

HOLDER = """
import sys, time
from flows.guards import store_guard
with store_guard(["registry"], what="a writer that is killed"):
    print("held", flush=True)
    time.sleep(600)
"""

SERVE_REGISTRY = """
from prefect import serve
from deployments.serve import build_deployments
serve(*[d for d in build_deployments() if d.name in ("registry-nightly", "registry-adhoc")])
"""


@pytest.fixture
def guarded_store(
    tmp_path: Path, prefect_api: str, monkeypatch: pytest.MonkeyPatch
) -> Iterator[dict[str, str]]:
    """A fresh store's settings in this process and as an environment for others."""
    env = {
        "CETTAR_DATA_DIR": str(tmp_path),
        "CETTAR_DATABASE_URL": f"sqlite:///{tmp_path / 'cettar.db'}",
        "PREFECT_API_URL": prefect_api,
    }
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    get_settings.cache_clear()
    yield {**os.environ, **env, "PYTHONUNBUFFERED": "1"}
    get_settings.cache_clear()


def _until_held(log: list[tuple[str, str, float]]) -> None:
    deadline = time.monotonic() + 30
    while not log:
        assert time.monotonic() < deadline, "the first writer never took the guard"
        time.sleep(0.01)


def _hold(part: str, seconds: float, log: list[tuple[str, str, float]], who: str) -> None:
    with store_guard([part], what=who):
        log.append((who, "in", time.monotonic()))
        time.sleep(seconds)
        log.append((who, "out", time.monotonic()))


def test_a_second_writer_of_a_part_waits_and_says_for_what(
    guarded_store: dict[str, str], caplog: pytest.LogCaptureFixture
) -> None:
    log: list[tuple[str, str, float]] = []
    first = threading.Thread(target=_hold, args=("registry", 2.0, log, "first"))
    first.start()
    _until_held(log)
    with caplog.at_level("INFO", logger="cettar.guards"):
        _hold("registry", 0.0, log, "second")
    first.join()
    order = [(who, what) for who, what, _ in log]
    assert order == [("first", "in"), ("first", "out"), ("second", "in"), ("second", "out")]
    waits = [r.getMessage() for r in caplog.records if "waits for the store" in r.getMessage()]
    assert len(waits) == 1
    assert waits[0].startswith("second waits for the store (registry held by 'first' (pid ")


def test_writers_of_different_parts_do_not_wait_for_each_other(
    guarded_store: dict[str, str],
) -> None:
    log: list[tuple[str, str, float]] = []
    first = threading.Thread(target=_hold, args=("registry", 3.0, log, "registry"))
    first.start()
    _until_held(log)
    started = time.monotonic()
    _hold("pkh", 0.0, log, "pkh")
    assert time.monotonic() - started < 2.0
    first.join()
    assert [who for who, _, _ in log] == ["registry", "pkh", "pkh", "registry"]


def test_each_store_has_its_own_guards(
    guarded_store: dict[str, str], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    ours = guard_name("registry")
    monkeypatch.setenv("CETTAR_DATABASE_URL", f"sqlite:///{tmp_path / 'another.db'}")
    get_settings.cache_clear()
    assert guard_name("registry") != ours
    assert ours.startswith("cettar-store-registry-")
    with pytest.raises(ValueError, match="unknown store part 'household'"):
        guard_name("household")


def test_a_guard_created_by_another_run_at_the_same_instant_is_taken_all_the_same(
    guarded_store: dict[str, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    # Prefect's upsert reads the limit, then creates it. Two runs started together both
    # read "not found": the second create is refused. Replayed here on the real server by
    # creating the limit between this run's read and its create.
    from prefect.client.orchestration import SyncPrefectClient
    from prefect.client.schemas.actions import GlobalConcurrencyLimitCreate
    from prefect.exceptions import ObjectNotFound

    name = guard_name("registry")
    real_read = SyncPrefectClient.read_global_concurrency_limit_by_name
    raced: list[str] = []

    def read_then_lose_the_race(self: SyncPrefectClient, wanted: str) -> Any:
        if wanted == name and not raced:
            raced.append(wanted)
            with get_client(sync_client=True) as other:
                other.create_global_concurrency_limit(
                    GlobalConcurrencyLimitCreate(name=name, limit=1)
                )
            raise ObjectNotFound(http_exc=Exception("not yet"))
        return real_read(self, wanted)

    with get_client(sync_client=True) as client, contextlib.suppress(ObjectNotFound):
        client.delete_global_concurrency_limit_by_name(name)
    monkeypatch.setattr(
        SyncPrefectClient, "read_global_concurrency_limit_by_name", read_then_lose_the_race
    )
    log: list[tuple[str, str, float]] = []
    _hold("registry", 0.0, log, "second starter")
    assert raced == [name]
    assert [what for _, what, _ in log] == ["in", "out"]
    with get_client(sync_client=True) as client:
        assert real_read(client, name).limit == 1


@pytest.mark.slow
def test_a_holder_killed_with_sigkill_does_not_block_the_next_writer(
    guarded_store: dict[str, str],
) -> None:
    victim = subprocess.Popen(
        [sys.executable, "-c", HOLDER],
        env=guarded_store,
        cwd=ROOT,
        stdout=subprocess.PIPE,
        text=True,
    )
    assert victim.stdout is not None
    assert victim.stdout.readline().strip() == "held"
    victim.send_signal(signal.SIGKILL)
    victim.wait(timeout=30)
    started = time.monotonic()
    with store_guard(["registry"], what="next writer"):
        waited = time.monotonic() - started
    print(f"the next writer took the guard {waited:.2f} s after the holder's SIGKILL")
    # The lease would hold the slot for a minute; the dead process is seen at once.
    assert waited < 10, f"waited {waited:.1f} s for a killed holder"


def _task_window(client: Any, run_id: UUID) -> tuple[float, float, int]:
    runs = client.read_task_runs(
        flow_run_filter=FlowRunFilter(id=FlowRunFilterId(any_=[run_id])), limit=200
    )
    times = [(r.start_time, r.end_time) for r in runs if r.start_time and r.end_time]
    assert times, f"no finished task runs for {run_id}"
    return (
        min(t[0] for t in times).timestamp(),
        max(t[1] for t in times).timestamp(),
        len(times),
    )


@pytest.mark.slow
def test_nightly_adhoc_and_cli_registry_syncs_started_together_never_overlap(
    guarded_store: dict[str, str], tmp_path: Path
) -> None:
    # A little latency per page makes the province-wide nightly run last about half a
    # minute: long enough for the other two to be started while it holds the guard.
    config = SandboxConfig(
        registry=RegistryDataConfig(seed=7, households=1500),
        agency_faults={"registry": FaultConfig(latency_ms=20)},
    )
    with procs.serve_sandbox(config) as box:
        env = procs.hub_env(
            box.url, tmp_path / "cettar.db", guarded_store["PREFECT_API_URL"], tmp_path
        )
        procs.db_upgrade(env)
        # The session's server may hold these deployments from an earlier test's work pool
        # (with its pull steps): the runner here must serve them afresh.
        with get_client(sync_client=True) as client:
            for deployment in client.read_deployments():
                if deployment.name in ("registry-nightly", "registry-adhoc"):
                    client.delete_deployment(deployment.id)
        server = subprocess.Popen(
            [sys.executable, "-c", SERVE_REGISTRY],
            env=env,
            cwd=ROOT,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        try:
            with get_client(sync_client=True) as client:
                deadline = time.monotonic() + 120
                while time.monotonic() < deadline:
                    names = {d.name for d in client.read_deployments()}
                    if {"registry-nightly", "registry-adhoc"} <= names:
                        break
                    time.sleep(0.5)
            scope = {"scope": {"kabupaten": ["35.07", "35.78"]}}
            nightly = run_deployment("sync-registry/registry-nightly", timeout=0)
            adhoc = run_deployment("sync-registry/registry-adhoc", parameters=scope, timeout=0)
            ids = [nightly.id, adhoc.id]
            with get_client(sync_client=True) as client:
                # Both deployment runs picked up by the served process (one waits), then the
                # CLI's run: three writers of the registry at once.
                deadline = time.monotonic() + 120
                while time.monotonic() < deadline:
                    states = [client.read_flow_run(i).state for i in ids]
                    if all(s is not None and (s.is_running() or s.is_final()) for s in states):
                        break
                    time.sleep(0.2)
            cli = procs.start(env, "sync", "registry", "--kabupaten", "35.09", "--json")
            assert cli.wait(600) == 0, cli.output()[-3000:]
            cli_run = UUID(cli.json_line()["flow_run_url"].rstrip("/").rsplit("/", 1)[-1])
            with get_client(sync_client=True) as client:
                deadline = time.monotonic() + 600
                while time.monotonic() < deadline:
                    states = [client.read_flow_run(i).state for i in ids]
                    if all(s is not None and s.is_final() for s in states):
                        break
                    time.sleep(1)
                assert all(s is not None and s.is_completed() for s in states), states
                runs = {"nightly": nightly.id, "adhoc": adhoc.id, "cli": cli_run}
                windows = {name: _task_window(client, run_id) for name, run_id in runs.items()}
                began = {
                    name: client.read_flow_run(run_id).start_time for name, run_id in runs.items()
                }
        finally:
            server.send_signal(signal.SIGINT)
            try:
                server.wait(timeout=30)
            except subprocess.TimeoutExpired:
                server.kill()
    ordered = sorted(windows.items(), key=lambda item: item[1][0])
    print(json.dumps({name: [round(a, 2), round(b, 2), n] for name, (a, b, n) in ordered}))
    for (name, (_, end, _)), (later, (start, _, _)) in itertools.pairwise(ordered):
        assert end <= start, f"{name}'s tasks ran until {end}, {later}'s began at {start}"
    # They were started together: the deployment runs were both Running before the CLI
    # started, so at least one writer was Running while another held the guard and waited
    # for it (which ones depends on who polls first when a guard is released).
    waited = [
        later
        for (_, (_, end, _)), (later, _) in itertools.pairwise(ordered)
        if (at := began[later]) is not None and at.timestamp() < end
    ]
    assert waited, (began, windows)
