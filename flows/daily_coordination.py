"""The `daily-coordination` flow: syncs, intake, health zones, checks, dispatch, scorecard."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from typing import Any, cast
from uuid import UUID

from prefect import flow, get_run_logger
from prefect.artifacts import (
    create_markdown_artifact,
    create_progress_artifact,
    update_progress_artifact,
)
from prefect.states import State
from prefect.utilities.urls import url_for

from flows.check_overlaps import check_programme_overlaps
from flows.collect_reports import collect_facilitator_reports
from flows.common import day_off_state, failed_message, run_name
from flows.dispatch_handoffs import INBOX, dispatch_handoffs
from flows.intake_folder import intake_folder_flow
from flows.kecamatan_scorecard import kecamatan_scorecard
from flows.sync_registry import sync_registry
from flows.sync_sources import DEFAULT_AGENCIES, sync_sources_flow
from models.handoffs import HandoffKind
from models.identity import mask_ids_in_text
from models.scope import WHOLE_PROVINCE, RegionScope
from models.wilayah import get_region_registry
from models.workdays import local_date, operator_instant
from tasks.health import zone_step

# The offices' decisions are pulled by dispatch-handoffs, right before they are applied.
SOURCE_AGENCIES = [a for a in DEFAULT_AGENCIES if a != INBOX]


class CoordinationIncomplete(RuntimeError):
    """Some steps failed; the later steps still ran on what was synced."""


_SYNC_STEPS = ("sync-registry", "collect-facilitator-reports", "sync-sources")
HEALTH_STEP = "health-zones"
INTAKE_STEP = "intake-folder"
_INTAKE_FIGURES = ("files", "rows", "written", "rejected")
_ZONES = ("green", "yellow", "orange", "red")


def _step(
    name: str, run: Callable[[], State[Any]], results: dict[str, Any], links: dict[str, str]
) -> bool:
    # A failed sync must not stop the checks on yesterday's data: record it and go on.
    try:
        state = run()
    except Exception as exc:  # the API itself failed us (the step's own errors are states)
        results[name] = {"failed": f"{type(exc).__name__}: {mask_ids_in_text(str(exc))[:300]}"}
        return False
    run_id = state.state_details.flow_run_id
    # A task step (the health zones) runs inside this flow run: no run of its own to link.
    is_task = state.state_details.task_run_id is not None
    link = url_for("flow-run", obj_id=run_id) if run_id is not None and not is_task else None
    if link:
        links[name] = link
    if state.is_completed():
        results[name] = state.result()
        return True
    results[name] = {"failed": failed_message(state)}
    return False


def daily_figures(results: dict[str, Any]) -> dict[str, Any]:
    """The run's figures from its steps' results: syncs, findings, handoffs, worst kecamatan."""
    sources: dict[str, dict[str, int]] = {}
    for step in _SYNC_STEPS:
        for source, t in (results.get(step, {}).get("totals") or {}).items():
            sources[source] = {k: int(t.get(k, 0)) for k in ("fetched", "quarantined")}
    checks = results.get("check-programme-overlaps", {}).get("checks") or {}
    findings = {
        check: {
            "findings": sum(c.get("findings", 0) for c in kinds.values()),
            "created": sum(c.get("created", 0) for c in kinds.values()),
        }
        for check, kinds in sorted(checks.items())
    }
    health = results.get(HEALTH_STEP) or {}
    created = health.get("handoffs_created") or {}
    entries = health.get("red_entries") or {}
    health_figures = {
        "week": health.get("last_week", ""),
        "zones": {z: int((health.get("last_week_zones") or {}).get(z, 0)) for z in _ZONES},
        "red kecamatan": int(entries.get("kecamatan", 0)),
        "red desa": int(entries.get("desa", 0)),
        "urgent handoffs": int(created.get(HandoffKind.HEALTH_RED_ZONE.value, 0)),
        "forkopimcam notices": int(created.get(HandoffKind.HEALTH_RED_ZONE_NOTICE.value, 0)),
        "escalated (still red)": int(health.get("escalated", 0)),
    }
    intake = results.get(INTAKE_STEP) or {}
    dispatch = results.get("dispatch-handoffs", {}).get("run") or {}
    scorecard = results.get("kecamatan-scorecard", {})
    regions = get_region_registry()
    worst = []
    for code in scorecard.get("worst") or []:
        region = regions.get(code)
        worst.append({"code": code, "name": region.name if region is not None else ""})
    return {
        "sources": sources,
        "findings": findings,
        "handoffs": {
            "created": sum(f["created"] for f in findings.values())
            + int(dispatch.get("data_request_handoffs", 0))
            + sum(int(n) for n in created.values()),
            "delivered": int(dispatch.get("handoffs_delivered", 0)),
            "escalated": int(dispatch.get("escalated", 0)),
            "decisions applied": int(dispatch.get("decisions_applied", 0)),
            "data requests answered": int(dispatch.get("data_requests_answered", 0)),
            "backlog": int(scorecard.get("backlog", 0)),
            "overdue": int(scorecard.get("overdue", 0)),
        },
        "health": health_figures,
        "intake": {k: int(intake.get(k, 0)) for k in _INTAKE_FIGURES},
        "worst": worst,
    }


def _markdown(
    title: str, figures: dict[str, Any], steps: list[str], failed: list[str], links: dict[str, str]
) -> str:
    """The run's report: each step (linked to its run), then the figures."""
    lines = [f"# {title}", "", "| step | outcome |", "|---|---|"]
    for name in steps:
        outcome = "FAILED" if name in failed else "completed"
        shown = f"[{name}]({links[name]})" if name in links else name
        lines.append(f"| {shown} | {outcome} |")
    lines += ["", "## Records synced", "", "| source | fetched | quarantined |", "|---|---:|---:|"]
    lines += [
        f"| {name} | {t['fetched']:,} | {t['quarantined']:,} |"
        for name, t in figures["sources"].items()
    ]
    lines += ["", "## Findings per check", "", "| check | findings | new handoffs |"]
    lines.append("|---|---:|---:|")
    lines += [
        f"| {name} | {f['findings']:,} | {f['created']:,} |"
        for name, f in figures["findings"].items()
    ]
    health = figures["health"]
    lines += ["", f"## Health zones ({health['week'] or 'no week yet'})", ""]
    lines += ["| zone | areas |", "|---|---:|"]
    lines += [f"| {zone} | {n:,} |" for zone, n in health["zones"].items()]
    lines += ["", "| | count |", "|---|---:|"]
    lines += [f"| {name} | {n:,} |" for name, n in health.items() if isinstance(n, int)]
    lines += ["", "## Spreadsheets from the desa", "", "| | count |", "|---|---:|"]
    lines += [f"| {name} | {n:,} |" for name, n in figures["intake"].items()]
    lines += ["", "## Handoffs", "", "| | count |", "|---|---:|"]
    lines += [f"| {name} | {n:,} |" for name, n in figures["handoffs"].items()]
    lines += ["", "## The five worst kecamatan (scorecard)", ""]
    lines += [f"{i}. {w['code']} {w['name']}" for i, w in enumerate(figures["worst"], start=1)]
    if not figures["worst"]:
        lines.append("No kecamatan has handoffs to rank yet.")
    return "\n".join(lines)


def coordinate(
    scope: RegionScope, now: datetime, period: str | None, *, key: str, title: str
) -> dict[str, Any]:
    """Every step in order over the scope at one instant; report; raise if a step failed."""
    logger = get_run_logger()
    results: dict[str, Any] = {}
    links: dict[str, str] = {}
    steps: list[tuple[str, Callable[[], State[Any]]]] = [
        ("sync-registry", lambda: sync_registry(scope=scope, return_state=True)),
        (
            "collect-facilitator-reports",
            lambda: collect_facilitator_reports(scope=scope, return_state=True),
        ),
        (
            "sync-sources",
            lambda: sync_sources_flow(scope=scope, agencies=SOURCE_AGENCIES, return_state=True),
        ),
        # The scope's desa spreadsheets after the API syncs and before the checks (which
        # see both), with the newer `updated_at` winning between the two as for any source.
        (INTAKE_STEP, lambda: intake_folder_flow(scope=scope, return_state=True)),
        # After the syncs (the puskesmas' figures and the registry's people are fresh) and
        # before dispatch, so the day's urgent red-zone handoffs go out in this run.
        (HEALTH_STEP, lambda: zone_step(now=now, scope=scope, return_state=True)),
        (
            "check-programme-overlaps",
            lambda: check_programme_overlaps(
                period=period, as_of=now, scope=scope, return_state=True
            ),
        ),
        (
            "dispatch-handoffs",
            lambda: dispatch_handoffs(as_of=now, scope=scope, return_state=True),
        ),
        (
            "kecamatan-scorecard",
            lambda: kecamatan_scorecard(as_of=now, scope=scope, return_state=True),
        ),
    ]
    progress = cast(
        UUID,
        create_progress_artifact(0.0, key=f"{key}-progress", description="Steps done of the run"),
    )
    failed: list[str] = []
    for i, (name, run) in enumerate(steps, start=1):
        if not _step(name, run, results, links):
            failed.append(name)
        update_progress_artifact(progress, 100.0 * i / len(steps))
    figures = daily_figures(results)
    create_markdown_artifact(
        key=key,
        markdown=_markdown(
            f"{title} · {local_date(now).isoformat()} · {scope.label()}",
            figures,
            [n for n, _ in steps],
            failed,
            links,
        ),
        description="Steps, records synced, findings, health zones, handoffs, worst kecamatan",
    )
    if failed:
        logger.warning("steps failed: %s", ", ".join(failed))
        raise CoordinationIncomplete(f"{len(failed)} steps failed: {', '.join(failed)}")
    return results


@flow(
    name="daily-coordination",
    flow_run_name=run_name("daily-coordination"),
    log_prints=False,
)
def daily_coordination(
    scope: RegionScope = WHOLE_PROVINCE,
    as_of: datetime | None = None,
    period: str | None = None,
    skip_days_off: bool = False,
) -> dict[str, Any] | State[Any]:
    """Sync all agencies, zone health figures, check overlaps, dispatch handoffs, score."""
    # One instant for every step: a time typed without a zone is read as WIB once, here.
    now = operator_instant(as_of)
    skipped = day_off_state(now, skip_days_off)
    if skipped is not None:
        return skipped
    return coordinate(scope, now, period, key="daily-coordination", title="Daily coordination")


class ScopeRequired(ValueError):
    """A reconcile run names its kabupaten/kota or kecamatan; the province is the daily run."""


@flow(name="reconcile-region", flow_run_name=run_name("reconcile-region"), log_prints=False)
def reconcile_region(
    scope: RegionScope, as_of: datetime | None = None, period: str | None = None
) -> dict[str, Any]:
    """Bring one kecamatan or kabupaten/kota up to date end to end, touching nothing else."""
    if scope.is_province:
        raise ScopeRequired(
            "reconcile-region needs a kabupaten/kota or kecamatan; daily-coordination covers "
            "the whole province"
        )
    return coordinate(
        scope, operator_instant(as_of), period, key="reconcile-region", title="Reconcile"
    )
