"""A failed run's `--json` summary names the failed partitions or steps and why (sanitised).

The commands run for real: the sandbox on a port refuses the hub's (wrong) tokens, the flows
run on the session's Prefect test server, and the CLI prints its one JSON line.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from prefect import flow, task
from typer.testing import CliRunner

from deployments.cli import app
from deployments.run_audit import count_clear_ids, run_summary
from integrations.settings import AGENCIES, get_settings
from integrations.store.engine import get_engine, upgrade
from sandbox.config import RegistryDataConfig, SandboxConfig
from sandbox.server import serve_in_thread

WRONG_TOKEN = "wrong-token-value-Q7"
TOKEN_REFUSED = "401 (unauthorized): check the agency's token"


@pytest.fixture(scope="module")
def sandbox_url() -> Iterator[str]:
    """A small sandbox of every agency on a real port."""
    with serve_in_thread(SandboxConfig(registry=RegistryDataConfig(seed=5, households=300))) as url:
        yield url


@pytest.fixture
def wrong_tokens(
    sandbox_url: str, prefect_api: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> Iterator[None]:
    """Every agency at the sandbox with a wrong token; a fresh SQLite store."""
    # The CLI points Prefect at its API through the environment: keep it the test server's.
    monkeypatch.setenv("PREFECT_API_URL", prefect_api)
    monkeypatch.setenv("CETTAR_DATA_DIR", str(tmp_path))
    monkeypatch.setenv("CETTAR_DATABASE_URL", f"sqlite:///{tmp_path / 'store.db'}")
    for agency in AGENCIES:
        monkeypatch.setenv(f"CETTAR_{agency.upper()}_URL", f"{sandbox_url}/{agency}")
        monkeypatch.setenv(f"CETTAR_{agency.upper()}_TOKEN", WRONG_TOKEN)
    get_settings.cache_clear()
    get_engine.cache_clear()
    upgrade(get_engine())  # `cettar db upgrade`: the CLI refuses to run on a missing store
    yield
    get_engine().dispose()
    get_settings.cache_clear()
    get_engine.cache_clear()


def _json_line(args: list[str]) -> tuple[dict[str, Any], str, float]:
    started = time.perf_counter()
    result = CliRunner().invoke(app, args)
    seconds = time.perf_counter() - started
    assert result.exit_code == 1, result.output
    lines = [line for line in result.stdout.splitlines() if line.startswith("{")]
    assert len(lines) == 1, result.stdout
    print(f"\ntime-to-fail [cettar {' '.join(args)}]: {seconds:.2f} s")
    return json.loads(lines[0]), result.output, seconds


def _assert_safe(text: str) -> None:
    assert WRONG_TOKEN not in text
    assert "sandbox-registry-token" not in text
    assert count_clear_ids(text) == 0


def test_sync_registry_json_names_each_failed_partition_and_why(wrong_tokens: None) -> None:
    payload, output, seconds = _json_line(
        ["sync", "registry", "--kabupaten", "35.79", "--kabupaten", "35.73", "--json"]
    )
    assert payload["state"] == "Failed"
    summary = payload["summary"]
    assert summary["error"].startswith("SyncIncomplete: 2 of 2 partitions failed")
    assert TOKEN_REFUSED in summary["error"]
    assert sorted(summary["failed"]) == ["registry 35.73", "registry 35.79"]
    assert all(TOKEN_REFUSED in why for why in summary["failed"].values())
    assert summary["partitions"] == 2 and summary["totals"] == {}
    assert seconds < 60
    _assert_safe(json.dumps(payload))
    _assert_safe(output)


@pytest.mark.slow
def test_daily_json_names_each_failed_step_and_why(wrong_tokens: None) -> None:
    payload, output, seconds = _json_line(["run", "daily", "--kabupaten", "35.79", "--json"])
    assert payload["state"] == "Failed"
    summary = payload["summary"]
    assert summary["error"].startswith("CoordinationIncomplete:")
    steps = {name: step for name, step in summary.items() if name != "error"}
    assert list(steps)[:3] == ["sync-registry", "collect-facilitator-reports", "sync-sources"]
    for name in ("sync-registry", "collect-facilitator-reports", "sync-sources"):
        assert steps[name]["state"] == "Failed"
        assert TOKEN_REFUSED in steps[name]["failed"], steps[name]
    assert "registry 35.79" in steps["sync-registry"]["failed"]
    # Every step is reported, the ones that completed on what the store held included.
    assert {"check-programme-overlaps", "dispatch-handoffs", "kecamatan-scorecard"} <= set(steps)
    failed = [name for name, step in steps.items() if "failed" in step]
    assert all(name in summary["error"] for name in failed)
    assert seconds < 60
    _assert_safe(json.dumps(payload))
    _assert_safe(output)


NIK = "3578014508900001"


@task(name="leaky-step", retries=0)
def _leaky_step() -> None:
    raise ValueError(f"household {NIK} refused with Bearer {WRONG_TOKEN}")


@flow(name="leaky-flow")
def _leaky_flow() -> None:
    _leaky_step()


def test_any_failed_flow_names_its_failed_tasks_masked(prefect_api: str) -> None:
    state = _leaky_flow(return_state=True)
    assert state.is_failed()
    summary = run_summary(state)
    assert summary["error"].startswith("ValueError: household 3578")
    [(name, why)] = summary["failed"].items()
    assert name.startswith("leaky-step")
    assert why.startswith("ValueError: household 3578") and "Bearer ***" in why
    _assert_safe(json.dumps(summary))
