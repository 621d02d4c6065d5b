"""The `daily-coordination` flow: every sync, the checks, dispatch and the scorecard, in order."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from typing import Any

from prefect import flow, get_run_logger
from prefect.artifacts import create_markdown_artifact
from prefect.states import State

from flows.check_overlaps import check_programme_overlaps
from flows.collect_reports import collect_facilitator_reports
from flows.common import failed_message
from flows.dispatch_handoffs import INBOX, dispatch_handoffs
from flows.kecamatan_scorecard import kecamatan_scorecard
from flows.sync_registry import sync_registry
from flows.sync_sources import DEFAULT_AGENCIES, sync_sources_flow
from models.identity import mask_ids_in_text
from models.scope import WHOLE_PROVINCE, RegionScope
from models.workdays import operator_instant

# The offices' decisions are pulled by dispatch-handoffs, right before they are applied.
SOURCE_AGENCIES = [a for a in DEFAULT_AGENCIES if a != INBOX]


class CoordinationIncomplete(RuntimeError):
    """Some steps failed; the later steps still ran on what was synced."""


def _step(name: str, run: Callable[[], State[Any]], results: dict[str, Any]) -> bool:
    # A failed sync must not stop the checks on yesterday's data: record it and go on.
    try:
        state = run()
    except Exception as exc:  # the API itself failed us (the step's own errors are states)
        results[name] = {"failed": f"{type(exc).__name__}: {mask_ids_in_text(str(exc))[:300]}"}
        return False
    if state.is_completed():
        results[name] = state.result()
        return True
    results[name] = {"failed": failed_message(state)}
    return False


def _markdown(results: dict[str, Any], failed: list[str]) -> str:
    lines = ["# Daily coordination", "", "| step | outcome |", "|---|---|"]
    for name in results:
        lines.append(f"| {name} | {'FAILED' if name in failed else 'completed'} |")
    return "\n".join(lines)


@flow(name="daily-coordination", log_prints=False)
def daily_coordination(
    scope: RegionScope = WHOLE_PROVINCE,
    as_of: datetime | None = None,
    period: str | None = None,
) -> dict[str, Any]:
    """Sync all agencies, check programme overlaps, dispatch handoffs, publish scorecards."""
    logger = get_run_logger()
    # One instant for every step: a time typed without a zone is read as WIB once, here.
    now = operator_instant(as_of)
    results: dict[str, Any] = {}
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
    failed = [name for name, run in steps if not _step(name, run, results)]
    create_markdown_artifact(
        key="daily-coordination",
        markdown=_markdown(results, failed),
        description="Steps of the daily coordination run",
    )
    if failed:
        logger.warning("steps failed: %s", ", ".join(failed))
        raise CoordinationIncomplete(f"{len(failed)} steps failed: {', '.join(failed)}")
    return results
