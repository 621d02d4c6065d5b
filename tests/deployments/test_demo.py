"""`cettar demo --json` as a user runs it; the Prefect API keeps its history after it exits."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from uuid import UUID

import pytest
from prefect.client.orchestration import get_client
from prefect.client.schemas.filters import FlowRunFilter, FlowRunFilterParentFlowRunId

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
    # Two days of the daily run and its seven subflows.
    assert sum(r.flow_runs for r in records) == prefect["flow_runs"] == 16
    assert sum(r.task_runs for r in records) == prefect["task_runs"] > 0
    assert all(r.not_completed == [] for r in records)
    assert sum(r.artifacts for r in records) == prefect["artifacts"] > 0
    assert sum(sum(r.clear_ids.values()) for r in records) == 0
    # The demo's own output never shows a clear NIK/KK either.
    from deployments.run_audit import count_clear_ids

    assert count_clear_ids(done.stdout + done.stderr) == 0

    # The demo keeps apart: its files under <data dir>/demo, none where a real store's go, and
    # every run it made (the days and each of their steps) tagged "demo".
    assert not (tmp_path / "scorecards").exists()
    assert {Path(p).parent.parent.parent for p in summary["scorecard_files"].values()} == {
        tmp_path / "demo"
    }
    with get_client(sync_client=True) as client:
        for day in summary["days"]:
            root = client.read_flow_run(UUID(day["flow_run_id"]))
            steps = client.read_flow_runs(
                flow_run_filter=FlowRunFilter(
                    parent_flow_run_id=FlowRunFilterParentFlowRunId(any_=[root.id])
                )
            )
            assert "demo" in root.tags
            assert len(steps) == 7 and all("demo" in step.tags for step in steps)


def test_the_summary_prints_data_verbatim_never_as_markup() -> None:
    """Names, paths and URLs in the demo's summary are text, whatever console prints them."""
    from io import StringIO

    from rich.console import Console

    from deployments.demo import _print_summary
    from deployments.prefect_server import PrefectServer

    name, path, url = "Kec [/bold] :x:", "/data/[red]/scorecard.csv", "http://h/[x](javascript:1)"
    counts = {"fetched": 1, "upserted": 1, "unchanged": 0, "quarantined": 0}
    result = {
        "households": counts,
        "recipients": counts,
        "checks_precision_recall": {
            "kind [/i]": {"expected": 1, "found": 1, "precision": 1.0, "recall": 1.0}
        },
        "handoffs": dict.fromkeys(
            ("created", "delivered", "escalated", "resolved", "rejected", "backlog"), 1
        )
        | {"proposals_sent": 0},
        "inbox": dict.fromkeys(
            ("receipts", "posts", "replays", "faulted_after_commit", "pairs_seen_more_than_once"),
            0,
        ),
        "worst_kecamatan": [
            {"code": "35.78.01", "name": name, "backlog": 1, "overdue": 0, "escalations": 0}
            | {"rank": 1}
        ],
        "scorecard_files": {"csv": path},
        "health": {
            "week": "2026-W45",
            "zones": {"green": 3, "red": 1},
            "expected_red": 1,
            "found_red": 1,
            "precision": 1.0,
            "recall": 1.0,
            "urgent_handoffs": 1,
            "forkopimcam_notices": 1,
        },
        "checks": {"audit_chain_intact": True, "no_clean_case_flagged": False},
        "prefect": {
            "flow_runs": 14,
            "task_runs": 1,
            "task_states": {},
            "log_lines": 0,
            "artifacts": 0,
            "events": 0,
            "clear_ids_found": {},
        },
        "days": [{"day": 1, "flow_run_url": url}],
    }
    for markup in (True, False):
        out = StringIO()
        console = Console(file=out, width=250, markup=markup, color_system=None)
        _print_summary(console, result, PrefectServer(url, started_here=True))
        text = out.getvalue()
        health = "Health zones 2026-W45: 3 green, 0 yellow, 0 orange, 1 red"
        for shown in (
            name,
            path,
            url,
            "kind [/i]",
            "✓ audit chain intact",
            "✗ no clean case",
            health,
        ):
            assert shown in text, (shown, markup)
        assert "stop it with cettar server stop." in text
