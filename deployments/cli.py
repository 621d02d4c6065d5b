"""The `cettar` command line: demo, sandbox, store, sync and the Prefect server."""

from __future__ import annotations

import json
import os
from typing import Annotated

import typer
from rich.console import Console

from integrations.settings import get_settings

# Offline machines: Prefect must not try to phone home (set before Prefect is imported).
os.environ.setdefault("PREFECT_SERVER_ANALYTICS_ENABLED", "false")

app = typer.Typer(
    help="CETTAR Hub: coordinate Jawa Timur's kecamatan offices and programmes.",
    no_args_is_help=True,
    add_completion=False,
)
db_app = typer.Typer(help="The hub's store.", no_args_is_help=True)
sync_app = typer.Typer(help="Run sync flows now.", no_args_is_help=True)
server_app = typer.Typer(help="The local Prefect server.", no_args_is_help=True)
app.add_typer(db_app, name="db")
app.add_typer(sync_app, name="sync")
app.add_typer(server_app, name="server")
console = Console()


@app.command()
def demo(
    households: Annotated[
        int, typer.Option(help="Households in the sandbox province sample.")
    ] = 3000,
    seed: Annotated[int, typer.Option(help="Seed of the synthetic data.")] = 35,
    as_json: Annotated[bool, typer.Option("--json", help="Print one JSON summary line.")] = False,
) -> None:
    """Run the registry sync end to end on embedded defaults and summarise it."""
    from deployments.demo import run_demo

    raise typer.Exit(run_demo(households=households, seed=seed, as_json=as_json, console=console))


@app.command()
def sandbox(
    host: str = "127.0.0.1",
    port: int = 8765,
    households: int = 2000,
    seed: int = 35,
    error_rate: float = 0.0,
    rate_limit_rate: float = 0.0,
    retry_after_s: float = 1.0,
    latency_ms: int = 0,
    drop_rate: float = 0.0,
    truncate_rate: float = 0.0,
) -> None:
    """Serve the simulated agency APIs (OpenAPI at /docs) until interrupted."""
    from sandbox.config import FaultConfig, RegistryDataConfig, SandboxConfig
    from sandbox.server import run

    config = SandboxConfig(
        registry=RegistryDataConfig(seed=seed, households=households),
        faults=FaultConfig(
            error_rate=error_rate,
            rate_limit_rate=rate_limit_rate,
            retry_after_s=retry_after_s,
            latency_ms=latency_ms,
            drop_rate=drop_rate,
            truncate_rate=truncate_rate,
        ),
    )
    console.print(f"sandbox agencies on http://{host}:{port} (registry under /registry)")
    run(host=host, port=port, config=config)


@db_app.command("upgrade")
def db_upgrade(revision: str = "head") -> None:
    """Apply the store's migrations and load the region codes."""
    from integrations.db import get_engine, upgrade
    from integrations.store import load_regions

    upgrade(get_engine(), revision)
    n = load_regions(get_engine())
    url = get_engine().url.render_as_string(hide_password=True)
    console.print(f"store at {url} is at {revision}; {n:,} regions loaded")


@sync_app.command("registry")
def sync_registry_cmd(
    kabupaten: Annotated[
        list[str] | None, typer.Option(help="Kabupaten/kota code, repeatable.")
    ] = None,
    kecamatan: Annotated[list[str] | None, typer.Option(help="Kecamatan code, repeatable.")] = None,
    full: Annotated[bool, typer.Option(help="Ignore watermarks and re-read everything.")] = False,
    page_limit: Annotated[int | None, typer.Option(help="Records per page.")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print one JSON summary line.")] = False,
) -> None:
    """Sync the registry now (whole province unless kabupaten/kecamatan are given)."""
    from deployments.prefect_server import configured_prefect_url, ensure_server, prefect_api
    from deployments.run_audit import run_summary

    server = ensure_server(get_settings(), configured_url=configured_prefect_url())
    with prefect_api(server.api_url):
        from flows.sync_registry import SyncScope, sync_registry

        scope = SyncScope(
            kabupaten=kabupaten or [],
            kecamatan=kecamatan or [],
            full_resync=full,
            page_limit=page_limit,
        )
        state = sync_registry(scope=scope, return_state=True)
    summary = run_summary(state)
    url = server.flow_run_url(state.state_details.flow_run_id)
    if as_json:
        print(
            json.dumps({"state": state.name, "summary": summary, "flow_run_url": url}, default=str)
        )
    else:
        console.print(f"{state.name}: {json.dumps(summary.get('totals', {}))}\n{url}")
    raise typer.Exit(0 if state.is_completed() else 1)


@app.command()
def serve() -> None:
    """Serve every deployment (schedules included) from this process."""
    from deployments.prefect_server import configured_prefect_url, ensure_server, prefect_api
    from deployments.serve import serve_all

    server = ensure_server(get_settings(), configured_url=configured_prefect_url())
    with prefect_api(server.api_url):
        serve_all()


@server_app.command("start")
def server_start() -> None:
    """Start (or find) the local Prefect server and print its UI address."""
    from deployments.prefect_server import ensure_server

    server = ensure_server(get_settings(), configured_url=None)
    console.print(
        f"Prefect UI at {server.ui_url} ({'started' if server.started_here else 'already running'})"
    )


@server_app.command("stop")
def server_stop() -> None:
    """Stop the local Prefect server started by the hub."""
    from deployments.prefect_server import stop_server

    console.print(
        "stopped" if stop_server(get_settings()) else "no server started by the hub is running"
    )


if __name__ == "__main__":
    app()
