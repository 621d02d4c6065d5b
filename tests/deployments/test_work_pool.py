"""The work-pool path as the README gives it: create the pool, deploy, start a worker."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path
from uuid import UUID

import pytest
from prefect.client.orchestration import get_client

ROOT = Path(__file__).resolve().parents[2]
PREFECT = [sys.executable, "-m", "prefect"]


def _prefect(args: list[str], env: dict[str, str], timeout: float = 300) -> str:
    done = subprocess.run(
        [*PREFECT, *args], env=env, cwd=ROOT, capture_output=True, text=True, timeout=timeout
    )
    assert done.returncode == 0, (args, done.stdout[-2000:], done.stderr[-2000:])
    return done.stdout


def _run_once(env: dict[str, str]) -> UUID:
    """Start a run of scorecard-adhoc and let one worker pass execute it; return its id."""
    with get_client(sync_client=True) as client:
        deployment = client.read_deployment_by_name("kecamatan-scorecard/scorecard-adhoc")
        run = client.create_flow_run_from_deployment(deployment.id)
    _prefect(["worker", "start", "--pool", "cettar-process", "--run-once"], env, timeout=300)
    return run.id


@pytest.mark.slow
def test_deploy_all_to_a_process_pool_and_a_missing_checkout_fails_naming_the_setting(
    prefect_api: str, tmp_path: Path
) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("CETTAR_", "PREFECT_API"))}
    env.update(
        {
            "PREFECT_API_URL": prefect_api,
            "PREFECT_SERVER_ANALYTICS_ENABLED": "false",
            "CETTAR_DATA_DIR": str(tmp_path),
            "CETTAR_DATABASE_URL": f"sqlite:///{tmp_path / 'cettar.db'}",
        }
    )
    # The README's three steps: the pool, every deployment of prefect.yaml, a worker.
    _prefect(["work-pool", "create", "cettar-process", "--type", "process"], env)
    _prefect(["--no-prompt", "deploy", "--all"], env)
    with get_client(sync_client=True) as client:
        names = {d.name for d in client.read_deployments()}
    assert {"registry-nightly", "daily-coordination", "scorecard-adhoc"} <= names

    # A worker started without CETTAR_HOME: the run fails at once, saying which setting.
    failed = _run_once(env)
    with get_client(sync_client=True) as client:
        state = client.read_flow_run(failed).state
    assert state is not None and state.is_failed(), state
    assert (state.message or "").startswith("CETTAR_HOME is not set in the worker environment")
    logs = _prefect(["flow-run", "logs", str(failed)], env)
    assert "CETTAR_HOME is not set in the worker environment" in logs

    # With CETTAR_HOME naming the checkout, the same deployment runs to completion.
    subprocess.run(
        [sys.executable, "-m", "deployments.cli", "db", "upgrade"], env=env, cwd=ROOT, check=True
    )
    ok = _run_once({**env, "CETTAR_HOME": str(ROOT)})
    with get_client(sync_client=True) as client:
        state = client.read_flow_run(ok).state
    assert state is not None and state.is_completed(), state
    assert (tmp_path / "scorecards").is_dir()


def test_the_pull_step_names_the_setting_when_the_checkout_is_missing(tmp_path: Path) -> None:
    from deployments.work_pool import checkout_problem, require_checkout

    assert checkout_problem(str(ROOT)) is None
    assert require_checkout(str(ROOT)) == {"directory": str(ROOT)}
    unset = checkout_problem("")
    assert unset is not None and unset.startswith("CETTAR_HOME is not set")
    wrong = checkout_problem(str(tmp_path))
    assert wrong == (
        f"CETTAR_HOME={tmp_path} holds no CETTAR Hub checkout "
        "(flows/daily_coordination.py is missing): point it at the folder holding prefect.yaml"
    )
    # Outside a flow run (no run to mark) the step still refuses with the same reason.
    with pytest.raises(RuntimeError, match="holds no CETTAR Hub checkout"):
        require_checkout(str(tmp_path))
