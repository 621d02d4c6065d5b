"""The `cettar` command line: demo, sandbox, store, syncs, coordination jobs, operators' tools."""

from __future__ import annotations

import json
import os
from collections.abc import Callable
from datetime import datetime
from typing import TYPE_CHECKING, Annotated, Any

import typer

from deployments.cli_backup import db_backup, db_restore
from deployments.cli_desk import desk_app
from deployments.cli_errors import CliUsageError, cli_app, plain_console, store_engine
from deployments.cli_handoffs import handoffs_app
from deployments.cli_intake import intake_app
from deployments.cli_person import person_app
from deployments.cli_quarantine import quarantine_app
from integrations.settings import get_settings

if TYPE_CHECKING:
    from models.scope import RegionScope

# Offline machines: Prefect must not try to phone home (set before Prefect is imported).
os.environ.setdefault("PREFECT_SERVER_ANALYTICS_ENABLED", "false")

app = cli_app(
    help="CETTAR Hub: coordinate Jawa Timur's kecamatan offices and programmes.",
    add_completion=False,
)
db_app = cli_app(help="The hub's store.")
sync_app = cli_app(help="Run sync flows now.")
run_app = cli_app(help="Run coordination flows now (ad-hoc jobs).")
server_app = cli_app(help="The local Prefect server.")
automations_app = cli_app(help="The hub's Prefect automations: alerts, dead runs Crashed.")
deployments_app = cli_app(help="The hub's deployments (one list in deployments/serve.py).")
app.add_typer(db_app, name="db")
db_app.command("backup")(db_backup)
db_app.command("restore")(db_restore)
app.add_typer(sync_app, name="sync")
app.add_typer(run_app, name="run")
app.add_typer(handoffs_app, name="handoffs")
app.add_typer(quarantine_app, name="quarantine")
app.add_typer(person_app, name="person")
app.add_typer(desk_app, name="desk")
app.add_typer(intake_app, name="intake")
app.add_typer(server_app, name="server")
app.add_typer(automations_app, name="automations")
app.add_typer(deployments_app, name="deployments")

KabupatenOpt = Annotated[list[str] | None, typer.Option(help="Kabupaten/kota code, repeatable.")]
KecamatanOpt = Annotated[list[str] | None, typer.Option(help="Kecamatan code, repeatable.")]
AsOfOpt = Annotated[
    datetime | None,
    typer.Option(help="Act as of this time (ISO, WIB if no zone), e.g. to replay a day."),
]
JsonOpt = Annotated[bool, typer.Option("--json", help="Print one JSON summary line.")]
PeriodOpt = Annotated[str | None, typer.Option(help="Payment period, e.g. 2026-Q4.")]
console = plain_console()


@app.callback()
def _root(
    debug: Annotated[
        bool, typer.Option("--debug", help="Show the traceback when a command fails.")
    ] = False,
) -> None:
    # A failing command prints one line and exits 2 (usage) or 1 (runtime); see cli_errors.
    # `--debug` is read there, from the root context's parameters.
    del debug


@app.command()
def demo(
    households: Annotated[
        int, typer.Option(help="Households in the sandbox province sample.")
    ] = 3000,
    seed: Annotated[int, typer.Option(help="Seed of the synthetic data.")] = 35,
    inbox_faults: Annotated[
        bool, typer.Option(help="Make the office inbox fail 20 % of posts (5xx, 429, drops).")
    ] = False,
    verbose: Annotated[bool, typer.Option(help="Also print every run's log lines.")] = False,
    as_json: JsonOpt = False,
) -> None:
    """Run two days of daily coordination on a seeded province sample and check them."""
    if not verbose:
        # The runs' INFO lines still reach the Prefect API (and the UI); the terminal shows
        # the summary, warnings and errors. Set before Prefect configures its logging.
        os.environ.setdefault("PREFECT_LOGGING_HANDLERS_CONSOLE_LEVEL", "WARNING")
    from deployments.demo import run_demo

    code = run_demo(
        households=households,
        seed=seed,
        as_json=as_json,
        console=console,
        inbox_faults=inbox_faults,
    )
    raise typer.Exit(code)


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
    page_cache: Annotated[
        str | None,
        typer.Option(help="Serve registry pages rendered once and kept in this directory."),
    ] = None,
    prerender: Annotated[
        int | None,
        typer.Option(help="Before serving, render every page of this size into --page-cache."),
    ] = None,
) -> None:
    """Serve the simulated agency APIs (OpenAPI at /docs) until interrupted."""
    from pathlib import Path

    from sandbox.config import FaultConfig, RegistryDataConfig, SandboxConfig
    from sandbox.server import run

    if prerender is not None and page_cache is None:
        raise CliUsageError("--prerender needs --page-cache")
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
        page_cache_dir=None if page_cache is None else Path(page_cache),
    )
    if prerender is not None:
        from sandbox.page_cache import prerender_config

        written = prerender_config(config, prerender)
        console.print(f"{written:,} registry pages of {prerender} rendered into {page_cache}")
    console.print(f"sandbox agencies on http://{host}:{port} (registry under /registry)")
    run(host=host, port=port, config=config)


@db_app.command("upgrade")
def db_upgrade(revision: str = "head") -> None:
    """Apply the store's migrations and load the region codes."""
    from alembic.util import CommandError

    from integrations.store.engine import get_engine, store_name, upgrade
    from integrations.store.regions import load_regions

    engine = get_engine()
    try:
        upgrade(engine, revision)
    except CommandError as exc:  # an unknown revision
        raise CliUsageError(f"revision {revision!r}: {str(exc).splitlines()[0]}") from None
    n = load_regions(engine)
    console.print(f"store at {store_name(engine)} is at {revision}; {n:,} regions loaded")


@db_app.command("rekey")
def db_rekey(
    force: Annotated[
        bool,
        typer.Option(
            "--force", help="Rotate even with handoffs in this period or an empty registry."
        ),
    ] = False,
    as_json: JsonOpt = False,
) -> None:
    """Recompute the store's tokens under a new CETTAR_PII_KEY (see README: key rotation)."""
    from deployments.cli_errors import CliFailure, store_guarded
    from flows.guards import parts_of_sources
    from integrations.store.rekey import RekeyRefused, rekey_store, token_only_sources
    from models.workdays import operator_instant
    from tasks.checks import current_period

    now = operator_instant(None)
    parts = ["registry", *parts_of_sources(token_only_sources())]
    with store_guarded(parts, "cettar db rekey") as engine:
        try:
            counts = rekey_store(
                engine,
                key=get_settings().pii_key.get_secret_value().encode(),
                now=now,
                period=current_period(now),
                force=force,
            )
        except RekeyRefused as exc:
            raise CliFailure(str(exc)) from None
    if as_json:
        print(json.dumps(counts.as_dict()))
        return
    if counts.already_keyed:
        console.print("the store is already keyed with CETTAR_PII_KEY: nothing to do")
        return
    for table, n in counts.recomputed.items():
        console.print(f"{table}: {n:,} tokens recomputed")
    for source, n in counts.cleared.items():
        console.print(f"{source}: {n:,} rows cleared; its next sync reads it whole again")
    console.print(f"audit chain row {counts.audit_seq}")


def _run_flow(
    flow: Any,
    kabupaten: list[str] | None,
    kecamatan: list[str] | None,
    as_json: bool,
    totals: Callable[[dict[str, Any]], Any],
    **parameters: Any,
) -> None:
    """Run a flow for a region scope against the configured (or a started local) Prefect API."""
    _launch(flow, as_json, totals, scope=_scope(kabupaten, kecamatan), **parameters)


def _launch(
    flow: Any, as_json: bool, totals: Callable[[dict[str, Any]], Any], **parameters: Any
) -> None:
    """Run a flow against the configured (or a started local) Prefect API; exit 0 if done."""
    from deployments.prefect_server import configured_prefect_url, ensure_server, prefect_api
    from deployments.run_audit import run_summary

    store_engine()  # a missing or unmigrated store is reported before any server starts
    server = ensure_server(get_settings(), configured_url=configured_prefect_url())
    with prefect_api(server.api_url):
        state = flow(return_state=True, **parameters)
    summary = run_summary(state)
    url = server.flow_run_url(state.state_details.flow_run_id)
    if as_json:
        print(
            json.dumps({"state": state.name, "summary": summary, "flow_run_url": url}, default=str)
        )
    else:
        console.print(f"{state.name}: {json.dumps(totals(summary), default=str)}\n{url}")
    raise typer.Exit(0 if state.is_completed() else 1)


def _scope(kabupaten: list[str] | None, kecamatan: list[str] | None) -> RegionScope:
    """The region scope of the options; CliUsageError naming the option of a bad code."""
    from pydantic import ValidationError

    from models.scope import RegionScope

    try:
        return RegionScope(kabupaten=kabupaten or [], kecamatan=kecamatan or [])
    except ValidationError as exc:
        problems = [
            f"--{e['loc'][0]}: {e['msg'].removeprefix('Value error, ')}"
            for e in exc.errors(include_url=False, include_input=False)
        ]
        raise CliUsageError("; ".join(problems)) from None


def _totals(summary: dict[str, Any]) -> Any:
    return summary.get("totals", summary)


@sync_app.command("registry")
def sync_registry_cmd(
    kabupaten: KabupatenOpt = None,
    kecamatan: KecamatanOpt = None,
    full: Annotated[bool, typer.Option(help="Ignore watermarks and re-read everything.")] = False,
    page_limit: Annotated[int | None, typer.Option(help="Records per page.")] = None,
    as_json: JsonOpt = False,
) -> None:
    """Sync the registry now (whole province unless kabupaten/kecamatan are given)."""
    from flows.sync_registry import sync_registry

    _run_flow(
        sync_registry,
        kabupaten,
        kecamatan,
        as_json,
        _totals,
        full_resync=full,
        page_limit=page_limit,
    )


@sync_app.command("reports")
def sync_reports_cmd(
    kabupaten: KabupatenOpt = None, kecamatan: KecamatanOpt = None, as_json: JsonOpt = False
) -> None:
    """Collect PKH facilitator reports now."""
    from flows.collect_reports import collect_facilitator_reports

    _run_flow(collect_facilitator_reports, kabupaten, kecamatan, as_json, _totals)


@sync_app.command("sources")
def sync_sources_cmd(
    agency: Annotated[
        list[str] | None,
        typer.Option(help="desa, pertanian, statistik or kecamatan; repeatable (default: all)."),
    ] = None,
    kabupaten: KabupatenOpt = None,
    kecamatan: KecamatanOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Sync the other agencies' sources now (BLT-DD lists, e-RDKK, KSK requests, decisions)."""
    from flows.sync_sources import DEFAULT_AGENCIES, sync_sources_flow

    unknown = [a for a in agency or [] if a not in DEFAULT_AGENCIES]
    if unknown:
        raise CliUsageError(
            f"--agency: unknown agency {unknown[0]!r}; one of: {', '.join(DEFAULT_AGENCIES)}"
        )
    agencies = list(agency) if agency else list(DEFAULT_AGENCIES)
    _run_flow(sync_sources_flow, kabupaten, kecamatan, as_json, _totals, agencies=agencies)


def _step_outcomes(summary: dict[str, Any]) -> dict[str, str]:
    return {step: ("failed" if "failed" in (r or {}) else "ok") for step, r in summary.items()}


def _run_counters(summary: dict[str, Any]) -> Any:
    return summary.get("run", summary)


def _without_worst(summary: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in summary.items() if k != "worst"}


@run_app.command("daily")
def run_daily_cmd(
    kabupaten: KabupatenOpt = None,
    kecamatan: KecamatanOpt = None,
    as_of: AsOfOpt = None,
    period: PeriodOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Run the whole daily coordination now: syncs, checks, dispatch, scorecard."""
    from flows.daily_coordination import daily_coordination

    _run_flow(
        daily_coordination,
        kabupaten,
        kecamatan,
        as_json,
        _step_outcomes,
        as_of=as_of,
        period=period,
    )


@run_app.command("checks")
def run_checks_cmd(
    kabupaten: KabupatenOpt = None,
    kecamatan: KecamatanOpt = None,
    as_of: AsOfOpt = None,
    period: PeriodOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Run the cross-programme checks now and open handoffs for what they find."""
    from flows.check_overlaps import check_programme_overlaps

    _run_flow(
        check_programme_overlaps, kabupaten, kecamatan, as_json, _totals, as_of=as_of, period=period
    )


@run_app.command("dispatch")
def run_dispatch_cmd(
    kabupaten: KabupatenOpt = None,
    kecamatan: KecamatanOpt = None,
    as_of: AsOfOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Deliver pending handoffs, apply office decisions, escalate overdue ones now."""
    from flows.dispatch_handoffs import dispatch_handoffs

    _run_flow(dispatch_handoffs, kabupaten, kecamatan, as_json, _run_counters, as_of=as_of)


@run_app.command("scorecard")
def run_scorecard_cmd(
    kabupaten: KabupatenOpt = None,
    kecamatan: KecamatanOpt = None,
    as_of: AsOfOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Compute and publish the kecamatan scorecard now (artifacts, CSV and XLSX)."""
    from flows.kecamatan_scorecard import kecamatan_scorecard

    _run_flow(
        kecamatan_scorecard,
        kabupaten,
        kecamatan,
        as_json,
        _without_worst,
        as_of=as_of,
    )


SourceArg = Annotated[str, typer.Argument(help="A source of the catalogue, e.g. pkh.reports.")]


def _source(source: str) -> Any:
    from flows.common import SourceName

    try:
        return SourceName(source)
    except ValueError:
        names = ", ".join(s.value for s in SourceName)
        raise CliUsageError(f"unknown source {source!r}; expected one of {names}") from None


@run_app.command("reconcile")
def run_reconcile_cmd(
    kabupaten: KabupatenOpt = None,
    kecamatan: KecamatanOpt = None,
    as_of: AsOfOpt = None,
    period: PeriodOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Reconcile one kecamatan or kabupaten/kota end to end: every source, checks, dispatch."""
    from flows.daily_coordination import reconcile_region

    if not kabupaten and not kecamatan:
        raise CliUsageError("reconcile needs --kabupaten or --kecamatan (run daily covers all)")
    _run_flow(
        reconcile_region, kabupaten, kecamatan, as_json, _step_outcomes, as_of=as_of, period=period
    )


@run_app.command("resync")
def run_resync_cmd(
    source: SourceArg,
    kabupaten: KabupatenOpt = None,
    kecamatan: KecamatanOpt = None,
    full: Annotated[bool, typer.Option(help="Ignore the cursor and re-read everything.")] = False,
    as_json: JsonOpt = False,
) -> None:
    """Re-sync one source for a region now (from its cursor, or from scratch with --full)."""
    from flows.resync import resync_source

    _run_flow(
        resync_source,
        kabupaten,
        kecamatan,
        as_json,
        _totals,
        source=_source(source),
        full_resync=full,
    )


@run_app.command("replay")
def run_replay_cmd(
    source: SourceArg,
    reason: Annotated[
        str | None, typer.Option(help="Only records held for this reason key.")
    ] = None,
    as_json: JsonOpt = False,
) -> None:
    """Replay a source's quarantine (one reason's, if given) as a Prefect run."""
    from flows.replay_quarantine import replay_quarantine

    _launch(replay_quarantine, as_json, lambda s: s, source=_source(source), reason=reason)


@run_app.command("rerun-failed")
def run_rerun_failed_cmd(
    flow_run_id: Annotated[
        str, typer.Argument(help="The flow run whose failed partitions to redo.")
    ],
    as_json: JsonOpt = False,
) -> None:
    """Sync again only the partitions a given run (or its steps) failed to sync."""
    from uuid import UUID

    from flows.resync import rerun_failed_partitions

    try:
        run_id = UUID(flow_run_id)
    except ValueError:
        raise CliUsageError(f"not a flow run id: {flow_run_id!r}") from None
    _launch(rerun_failed_partitions, as_json, lambda s: list(s), flow_run_id=run_id)


@deployments_app.command("yaml")
def deployments_yaml() -> None:
    """Print prefect.yaml as generated from the deployments' one list (deployments/serve.py)."""
    from deployments.serve import prefect_yaml

    print(prefect_yaml(), end="")


@app.command()
def serve() -> None:
    """Serve every deployment (schedules included) from this process."""
    from deployments.prefect_server import configured_prefect_url, ensure_server, prefect_api
    from deployments.serve import serve_all

    store_engine()  # the flows' own runs would otherwise make a store at a mistyped path
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


@automations_app.command("apply")
def automations_apply(as_json: JsonOpt = False) -> None:
    """Create or update the hub's automations on the Prefect API (safe to repeat)."""
    from deployments.automations import ensure_automations
    from deployments.prefect_server import configured_prefect_url, ensure_server, prefect_api

    settings = get_settings()
    server = ensure_server(settings, configured_url=configured_prefect_url())
    with prefect_api(server.api_url, automations=False):
        changes = ensure_automations(settings)
    if as_json:
        print(json.dumps([c.as_dict() for c in changes]))
        return
    for c in changes:
        console.print(
            f"{c.name}: {c.action}" + (f" ({c.automation_id})" if c.automation_id else "")
        )
    console.print(
        f"flow runs beat every {settings.flow_heartbeat_s} s; a run silent for "
        f"{settings.flow_crash_after_s} s is marked Crashed"
    )


if __name__ == "__main__":
    app()
