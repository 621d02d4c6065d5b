"""`cettar demo --json` as a user runs it; the Prefect API keeps its history after it exits."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from uuid import UUID

import pytest

from deployments.run_audit import audit_flow_run


@pytest.mark.slow
def test_demo_exits_zero_and_its_run_stays_recorded(tmp_path: Path, prefect_api: str) -> None:
    env = {
        **os.environ,
        "CETTAR_DATA_DIR": str(tmp_path),
        "PREFECT_API_URL": prefect_api,
        "PREFECT_SERVER_ANALYTICS_ENABLED": "false",
    }
    env.pop("CETTAR_DATABASE_URL", None)
    done = subprocess.run(
        [sys.executable, "-m", "deployments.cli", "demo", "--households", "800", "--json"],
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    assert "Traceback" not in done.stdout + done.stderr
    summary = json.loads(done.stdout.strip().splitlines()[-1])
    assert summary["ok"] is True
    assert all(summary["checks"].values())
    assert summary["households"]["fetched"] == 800
    assert summary["households"]["quarantined"] == summary["sandbox_truth"]["bad_households"]
    # Read back from the API after the demo process has exited: nothing was lost at exit.
    record = audit_flow_run(UUID(summary["prefect"]["flow_run_id"]), expected_tasks=39)
    assert record.flow_state == "Completed"
    assert record.task_runs == 39 == summary["prefect"]["task_runs"]
    assert record.task_states == {"Completed": 39}
    assert record.artifacts == 2
    assert record.clear_id_total == 0
    # The demo's own output never shows a clear NIK/KK either.
    from deployments.run_audit import count_clear_ids

    assert count_clear_ids(done.stdout + done.stderr) == 0
