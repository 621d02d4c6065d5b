"""`cettar demo --json` as a user runs it; the Prefect API keeps its history after it exits."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from uuid import UUID

import pytest

from deployments.run_audit import audit_flow_tree


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
    # Every check found exactly the planted conflicts, each office saw each handoff once.
    for kind, score in summary["checks_precision_recall"].items():
        assert (score["precision"], score["recall"]) == (1.0, 1.0), kind
        assert score["handoffs_exact"], kind
    assert summary["inbox"]["pairs_seen_more_than_once"] == 0
    assert summary["handoffs"]["escalated"] > 0 and summary["handoffs"]["audit"]["ok"]
    # Read back from the API after the demo process has exited: nothing was lost at exit.
    prefect = summary["prefect"]
    records = [audit_flow_tree(UUID(day["flow_run_id"])) for day in summary["days"]]
    assert sum(r.flow_runs for r in records) == prefect["flow_runs"] == 14
    assert sum(r.task_runs for r in records) == prefect["task_runs"] > 0
    assert all(r.not_completed == [] for r in records)
    assert sum(r.artifacts for r in records) == prefect["artifacts"] > 0
    assert sum(sum(r.clear_ids.values()) for r in records) == 0
    # The demo's own output never shows a clear NIK/KK either.
    from deployments.run_audit import count_clear_ids

    assert count_clear_ids(done.stdout + done.stderr) == 0
