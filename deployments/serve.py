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

    return [
        daily_coordination.to_deployment(
            name="daily-coordination",
            description="Every working-day morning: syncs, checks, dispatch and the scorecard.",
            schedule=Cron("30 5 * * 1-5", timezone=TIMEZONE),
            tags=["coordination", "scheduled"],
            concurrency_limit=_one_at_a_time(),
        ),
        dispatch_handoffs.to_deployment(
            name="dispatch-office-hours",
            description="Deliver handoffs, pull the offices' decisions, escalate: hourly, 8-16.",
            schedule=Cron("0 8-16 * * 1-5", timezone=TIMEZONE),
            tags=["coordination", "handoffs", "scheduled"],
            concurrency_limit=_one_at_a_time(),
        ),
        check_programme_overlaps.to_deployment(
            name="checks-adhoc",
            description="Operator-triggered cross-programme checks for a period or region.",
            tags=["coordination", "checks", "ad-hoc"],
        ),
        kecamatan_scorecard.to_deployment(
            name="scorecard-adhoc",
            description="Operator-triggered scorecard, e.g. as of a past day.",
            tags=["coordination", "scorecard", "ad-hoc"],
        ),
        sync_registry.to_deployment(
            name="registry-nightly",
            description="Incremental registry sync of the whole province, every night.",
            schedule=Cron("0 2 * * *", timezone=TIMEZONE),
            tags=["registry", "sync", "scheduled"],
            concurrency_limit=_one_at_a_time(),
        ),
        sync_registry.to_deployment(
            name="registry-adhoc",
            description="Operator-triggered sync: kabupaten, kecamatan, or a full re-sync.",
            tags=["registry", "sync", "ad-hoc"],
        ),
    ]


def serve_all() -> None:
    """Serve every deployment from this process until interrupted (no work pool needed)."""
    from prefect import serve

    serve(*build_deployments())
