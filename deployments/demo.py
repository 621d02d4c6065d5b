"""`cettar demo`: the registry sync end to end on embedded defaults, with a readable summary."""

from __future__ import annotations

import json
import os
import time
from typing import Any

from rich.console import Console
from rich.table import Table

from deployments.prefect_server import (
    PrefectServer,
    configured_prefect_url,
    ensure_server,
    prefect_api,
)
from deployments.run_audit import audit_flow_run, run_summary
from integrations.settings import get_settings


def point_settings_at(database_url: str, registry_url: str) -> None:
    """Point the lazily-built settings and engine at the given store and registry."""
    # The CLI is the composition root: it may set the hub's environment for this process.
    os.environ["CETTAR_DATABASE_URL"] = database_url
    os.environ["CETTAR_REGISTRY_URL"] = registry_url
    from integrations.db import get_engine

    get_settings.cache_clear()
    get_engine.cache_clear()


def run_demo(*, households: int, seed: int, as_json: bool, console: Console) -> int:
    """Start the sandbox and a Prefect server, sync a province sample, report; exit code."""
    from sandbox.config import RegistryDataConfig, SandboxConfig
    from sandbox.server import serve_in_thread

    settings = get_settings()
    demo_dir = settings.data_dir / "demo"
    demo_dir.mkdir(parents=True, exist_ok=True)
    store = demo_dir / "cettar-demo.db"
    for path in demo_dir.glob("cettar-demo.db*"):
        path.unlink()  # a fresh store each time, so the figures below are this run's alone

    status = console.status("Starting the Prefect server…") if not as_json else None
    if status:
        status.start()
    try:
        server: PrefectServer = ensure_server(settings, configured_url=configured_prefect_url())
    finally:
        if status:
            status.stop()
    if not as_json:
        verb = "started" if server.started_here else "using"
        console.print(f"[green]✓[/] Prefect API {verb} at {server.api_url}")

    config = SandboxConfig(registry=RegistryDataConfig(seed=seed, households=households))
    with serve_in_thread(config) as base_url, prefect_api(server.api_url):
        point_settings_at(f"sqlite:///{store}", f"{base_url}/registry")
        if not as_json:
            console.print(f"[green]✓[/] sandbox agencies on {base_url} ({households:,} households)")
        from flows.sync_registry import SyncScope, sync_registry
        from sandbox.truth import registry_truth

        started = time.monotonic()
        state = sync_registry(scope=SyncScope(), return_state=True)
        seconds = time.monotonic() - started
        flow_run_id = state.state_details.flow_run_id
        summary = run_summary(state)
        truth = registry_truth(config.registry)
        assert flow_run_id is not None
        partitions = summary.get("partitions", 38)
        record = audit_flow_run(flow_run_id, expected_tasks=partitions + 1)

    hh = summary.get("totals", {}).get("households", {})
    rc = summary.get("totals", {}).get("recipients", {})
    checks = {
        "flow_completed": state.is_completed(),
        "all_households_accounted": hh.get("fetched") == truth["households"],
        "bad_households_quarantined": hh.get("quarantined") == truth["bad_households"],
        "all_recipients_accounted": rc.get("fetched") == truth["recipients"],
        "bad_recipients_quarantined": rc.get("quarantined") == truth["bad_recipients"],
        "task_runs_recorded": record.task_runs == partitions + 1
        and record.task_states.get("Completed", 0) == partitions + 1,
        "no_clear_ids_in_prefect_records": record.clear_id_total == 0,
    }
    result = {
        "ok": all(checks.values()),
        "seconds": round(seconds, 2),
        "households": hh,
        "recipients": rc,
        "members_upserted": hh.get("members_upserted", 0),
        "quarantine_reasons": summary.get("quarantine_reasons", {}),
        "sandbox_truth": truth,
        "prefect": {
            "api_url": server.api_url,
            "flow_run_id": str(flow_run_id),
            "flow_run_url": server.flow_run_url(flow_run_id),
            "flow_state": record.flow_state,
            "task_runs": record.task_runs,
            "task_states": record.task_states,
            "log_lines": record.log_lines,
            "artifacts": record.artifacts,
            "events": record.events,
            "clear_ids_found": record.clear_ids,
        },
        "checks": checks,
        "store": str(store),
    }
    if as_json:
        print(json.dumps(result, default=str))
    else:
        _print_summary(console, result, server)
    return 0 if result["ok"] else 1


def _print_summary(console: Console, result: dict[str, Any], server: PrefectServer) -> None:
    table = Table(title=f"Registry sync · Jawa Timur sample · {result['seconds']} s")
    for col in ("collection", "fetched", "upserted", "unchanged", "quarantined"):
        table.add_column(col, justify="left" if col == "collection" else "right")
    for name in ("households", "recipients"):
        t = result[name]
        table.add_row(
            name, *(f"{t.get(k, 0):,}" for k in ("fetched", "upserted", "unchanged", "quarantined"))
        )
    console.print(table)
    console.print(f"members written: {result['members_upserted']:,}")
    reasons = Table(title="Quarantined by reason")
    reasons.add_column("reason")
    reasons.add_column("records", justify="right")
    for reason, n in sorted(result["quarantine_reasons"].items(), key=lambda kv: -kv[1]):
        reasons.add_row(reason, f"{n:,}")
    console.print(reasons)
    for name, ok in result["checks"].items():
        console.print(f"{'[green]✓' if ok else '[red]✗'}[/] {name.replace('_', ' ')}")
    p = result["prefect"]
    console.print(
        f"\nPrefect recorded {p['task_runs']} task runs ({p['task_states']}), "
        f"{p['log_lines']} log lines, {p['artifacts']} artifacts, {p['events']} events; "
        f"clear NIK/KK found in them: {sum(p['clear_ids_found'].values())}."
    )
    console.print(f"See the run in the Prefect UI: [bold]{p['flow_run_url']}[/]")
    if server.started_here:
        console.print("The Prefect server keeps running; stop it with [bold]cettar server stop[/].")
