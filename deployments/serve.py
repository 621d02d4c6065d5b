"""Deployments of the hub's flows: schedules in Asia/Jakarta time, served from one process."""

from __future__ import annotations

from typing import Any

from prefect.client.schemas.objects import ConcurrencyLimitConfig, ConcurrencyLimitStrategy
from prefect.schedules import Cron

TIMEZONE = "Asia/Jakarta"


def build_deployments() -> list[Any]:
    """Every deployment the hub ships (one list, used by `cettar serve` and the tests)."""
    from flows.sync_registry import sync_registry

    return [
        sync_registry.to_deployment(
            name="registry-nightly",
            description="Incremental registry sync of the whole province, every night.",
            schedule=Cron("0 2 * * *", timezone=TIMEZONE),
            tags=["registry", "sync", "scheduled"],
            # A second nightly run while one is still going would only wait on the same rows.
            concurrency_limit=ConcurrencyLimitConfig(
                limit=1, collision_strategy=ConcurrencyLimitStrategy.CANCEL_NEW
            ),
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
