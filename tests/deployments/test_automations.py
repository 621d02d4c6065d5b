"""Dead flow runs are marked Crashed: heartbeats plus the hub's automation on a real server.

A flow run is started in its own process the way the CLI starts one (inside `prefect_api`),
SIGKILLed while Running, and must turn Crashed within the configured threshold. The
session's Prefect server runs the trigger and action services, as any `prefect server
start` does. Heartbeats cannot beat faster than every 30 s (Prefect's floor), so the test
uses 30 s / 45 s; production's 60 s / 240 s bound detection to about four minutes.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from uuid import UUID

import pytest

from deployments.automations import CRASH_DEAD_RUNS, ensure_automations
from integrations.settings import Settings, get_settings

pytestmark = pytest.mark.slow

ROOT = Path(__file__).resolve().parents[2]
HEARTBEAT_S = 30
CRASH_AFTER_S = 45
# The server evaluates proactive triggers every 5 s; events take a moment to arrive.
SLACK_S = 20

# A hub-style flow process: `prefect_api` is what `cettar sync`/`cettar run` enter.
HELD_RUN = """
import sys, time
from pathlib import Path
from prefect import flow
from prefect.runtime import flow_run
from deployments.prefect_server import prefect_api

@flow(name="held-run")
def held() -> None:
    Path(sys.argv[2]).write_text(str(flow_run.id))
    time.sleep(600)

with prefect_api(sys.argv[1]):
    held()
"""


@pytest.fixture
def fast_heartbeats(prefect_api: str, monkeypatch: pytest.MonkeyPatch) -> Iterator[Settings]:
    """Settings with the shortest heartbeat Prefect allows and a short crash threshold."""
    monkeypatch.setenv("CETTAR_FLOW_HEARTBEAT_S", str(HEARTBEAT_S))
    monkeypatch.setenv("CETTAR_FLOW_CRASH_AFTER_S", str(CRASH_AFTER_S))
    # The CLI commands of these tests find their API in the environment: the session's
    # server, the one this process talks to (restored afterwards).
    monkeypatch.setenv("PREFECT_API_URL", prefect_api)
    get_settings.cache_clear()
    yield get_settings()
    get_settings.cache_clear()


def _automations() -> list[object]:
    from prefect import get_client

    with get_client(sync_client=True) as client:
        return list(client.read_automations_by_name(CRASH_DEAD_RUNS))


def _state(flow_run_id: UUID) -> tuple[str, str]:
    from prefect import get_client

    with get_client(sync_client=True) as client:
        state = client.read_flow_run(flow_run_id).state
    return (state.name or "", state.message or "") if state else ("", "")


def _heartbeats(flow_run_id: UUID) -> int:
    from prefect import get_client
    from prefect.events.filters import EventFilter, EventNameFilter, EventResourceFilter

    with get_client(sync_client=True) as client:
        page = client.read_events(
            filter=EventFilter(
                event=EventNameFilter(name=["prefect.flow-run.heartbeat"]),
                resource=EventResourceFilter(id=[f"prefect.flow-run.{flow_run_id}"]),
            ),
            limit=50,
        )
    return len(page.events)


# The read-back stand-in holds the set as a list in a chosen order, which pydantic notes.
@pytest.mark.filterwarnings("ignore:Pydantic serializer warnings")
def test_an_automation_read_back_with_its_sets_in_another_order_is_the_same() -> None:
    # The trigger's sets (`expect`, `after`) dump as lists in iteration order, which depends
    # on the order they were built in and on the process's hash seed: the server gives back
    # the order of the process that wrote the automation.
    from deployments.automations import _same, crash_dead_runs

    wanted = crash_dead_runs(60)
    order = wanted.model_dump(mode="json")["trigger"]["expect"]
    read_back = wanted.model_copy(
        update={"trigger": wanted.trigger.model_copy(update={"expect": order[::-1]})}
    )
    assert read_back.model_dump(mode="json") != wanted.model_dump(mode="json")
    assert _same(read_back, wanted)
    assert not _same(crash_dead_runs(61), wanted)


def test_ensure_automations_is_idempotent(prefect_api: str, fast_heartbeats: Settings) -> None:
    import json

    from typer.testing import CliRunner

    from deployments.cli import app

    try:
        applied = CliRunner().invoke(app, ["automations", "apply", "--json"])
        assert applied.exit_code == 0, applied.output
        applied_by_name = {c["name"]: c for c in json.loads(applied.stdout)}
        first = applied_by_name[CRASH_DEAD_RUNS]
        assert first["action"] in {"created", "updated"}
        # Without a webhook block, mail recipients or the deployments, the alert and re-run
        # automations are reported as skipped, not half made.
        assert {c["action"] for n, c in applied_by_name.items() if n != CRASH_DEAD_RUNS} == {
            "skipped"
        }
        again = ensure_automations(fast_heartbeats)
        assert again[0].action == "unchanged"
        assert again[0].automation_id == first["id"]
        assert len(_automations()) == 1
        # Another threshold updates the one automation in place.
        longer = fast_heartbeats.model_copy(update={"flow_crash_after_s": 300})
        changed = ensure_automations(longer)[0]
        assert (changed.action, changed.automation_id) == ("updated", first["id"])
        (automation,) = _automations()
        assert automation.trigger.within.total_seconds() == 300  # type: ignore[attr-defined]
    finally:
        from prefect import get_client

        from deployments.automations import ALERTS, RERUN_FAILED

        with get_client(sync_client=True) as client:
            for name in [CRASH_DEAD_RUNS, *ALERTS, RERUN_FAILED]:
                for automation in client.read_automations_by_name(name):
                    client.delete_automation(automation.id)


def test_a_killed_flow_run_is_crashed_within_the_threshold(
    prefect_api: str, fast_heartbeats: Settings, tmp_path: Path
) -> None:
    from prefect import flow

    from deployments.prefect_server import prefect_api as use_api

    id_file = tmp_path / "flow-run-id"
    env = {
        **os.environ,
        "PYTHONPATH": str(ROOT),
        "CETTAR_DATA_DIR": str(tmp_path),
        "PREFECT_SERVER_ANALYTICS_ENABLED": "false",
    }
    proc = subprocess.Popen(
        [sys.executable, "-c", HELD_RUN, prefect_api, str(id_file)],
        cwd=ROOT,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        # A run that ends normally beats too; it must stay Completed.
        @flow(name="finished-run")
        def finished() -> int:
            return 1

        with use_api(prefect_api):
            done = finished(return_state=True)
        assert done.is_completed()
        done_id = done.state_details.flow_run_id
        assert done_id is not None

        deadline = time.monotonic() + 90
        while not id_file.exists() or not id_file.read_text():
            assert proc.poll() is None, "the flow process exited before its run started"
            assert time.monotonic() < deadline, "the flow run did not start"
            time.sleep(0.5)
        run_id = UUID(id_file.read_text())
        while _heartbeats(run_id) == 0:
            assert time.monotonic() < deadline, "no heartbeat reached the server"
            time.sleep(0.5)
        assert _state(run_id)[0] == "Running"
        (automation,) = _automations()
        assert automation.trigger.within.total_seconds() == CRASH_AFTER_S  # type: ignore[attr-defined]

        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=10)
        killed = time.monotonic()
        name, message = _state(run_id)
        while name != "Crashed" and time.monotonic() - killed < CRASH_AFTER_S + SLACK_S:
            time.sleep(1)
            name, message = _state(run_id)
        elapsed = time.monotonic() - killed
        assert name == "Crashed", f"still {name} {elapsed:.0f} s after the kill"
        assert "No heartbeat" in message
        print(f"crashed {elapsed:.1f} s after SIGKILL (threshold {CRASH_AFTER_S} s)")
        assert _state(done_id)[0] == "Completed"
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(timeout=10)
        from prefect import get_client

        # The session's server is shared: a 45 s threshold must not outlive this test.
        with get_client(sync_client=True) as client:
            for automation in client.read_automations_by_name(CRASH_DEAD_RUNS):
                client.delete_automation(automation.id)
