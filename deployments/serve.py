"""Deployments of the hub's flows: schedules in Asia/Jakarta time, served from one process."""

from __future__ import annotations

from typing import Any

from prefect.client.schemas.objects import ConcurrencyLimitConfig, ConcurrencyLimitStrategy
from prefect.schedules import Cron

TIMEZONE = "Asia/Jakarta"


def _one_at_a_time() -> ConcurrencyLimitConfig:
    # A second scheduled run while one is still going would only wait on the same rows.
    return ConcurrencyLimitConfig(limit=1, collision_strategy=ConcurrencyLimitStrategy.CANCEL_NEW)


def build_deployments() -> list[Any]:
    """Every deployment the hub ships (one list, used by `cettar serve` and the tests)."""
    from flows.check_overlaps import check_programme_overlaps
    from flows.daily_coordination import daily_coordination
    from flows.dispatch_handoffs import dispatch_handoffs
    from flows.kecamatan_scorecard import kecamatan_scorecard
    from flows.sync_registry import sync_registry

    # (flow, name, description, cron in Jakarta time or None for ad-hoc, tags); a scheduled
    # deployment runs one at a time.
    table: list[tuple[Any, str, str, str | None, list[str]]] = [
        (
            daily_coordination,
            "daily-coordination",
            "Every working-day morning: syncs, checks, dispatch and the scorecard.",
            "30 5 * * 1-5",
            ["coordination"],
        ),
        (
            dispatch_handoffs,
            "dispatch-office-hours",
            "Deliver handoffs, pull the offices' decisions, escalate: hourly, 8-16.",
            "0 8-16 * * 1-5",
            ["coordination", "handoffs"],
        ),
        (
            check_programme_overlaps,
            "checks-adhoc",
            "Operator-triggered cross-programme checks for a period or region.",
            None,
            ["coordination", "checks"],
        ),
        (
            kecamatan_scorecard,
            "scorecard-adhoc",
            "Operator-triggered scorecard, e.g. as of a past day.",
            None,
            ["coordination", "scorecard"],
        ),
        (
            sync_registry,
            "registry-nightly",
            "Incremental registry sync of the whole province, every night.",
            "0 2 * * *",
            ["registry", "sync"],
        ),
        (
            sync_registry,
            "registry-adhoc",
            "Operator-triggered sync: kabupaten, kecamatan, or a full re-sync.",
            None,
            ["registry", "sync"],
        ),
    ]
    return [
        flow.to_deployment(
            name=name,
            description=description,
            schedule=Cron(cron, timezone=TIMEZONE) if cron else None,
            tags=[*tags, "scheduled" if cron else "ad-hoc"],
            concurrency_limit=_one_at_a_time() if cron else None,
        )
        for flow, name, description, cron, tags in table
    ]


def serve_all() -> None:
    """Serve every deployment from this process until interrupted (no work pool needed)."""
    from prefect import serve

    serve(*build_deployments())
