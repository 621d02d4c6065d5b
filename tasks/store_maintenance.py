"""Prefect tasks that keep the store: re-validation, quarantine replay and purge."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from prefect import get_run_logger, task
from prefect.cache_policies import NO_CACHE

from integrations.settings import get_settings
from integrations.store.engine import get_engine
from integrations.store.quarantine import PurgeCounts, purge_quarantine
from integrations.store.replay import replay_quarantined
from integrations.store.revalidate import revalidate_source
from models.scope import RegionScope

__all__ = ["purge_summary", "purge_task", "replay_task", "revalidate_source_task"]


@task(name="revalidate-source", cache_policy=NO_CACHE)
def revalidate_source_task(source: str, scope: RegionScope) -> dict[str, Any]:
    """Re-validate one source's stored rows in the scope; counts and reason codes."""
    counts = revalidate_source(
        get_engine(),
        source,
        key=get_settings().pii_key.get_secret_value().encode(),
        now=datetime.now(UTC),
        scope=scope,
    )
    get_run_logger().info(
        "%s: %s examined, %s quarantined%s",
        source,
        counts.examined,
        counts.quarantined,
        f" (skipped: {counts.skipped})" if counts.skipped else "",
    )
    return counts.as_dict()


def purge_summary(counts: PurgeCounts) -> dict[str, Any]:
    """A purge's counts as plain values (the run's result)."""
    # The cutoff to the second: a run's result is read by people, not compared to the µs.
    return {**counts.as_dict(), "cutoff": counts.cutoff.isoformat(timespec="seconds")}


@task(name="purge-quarantine-rows", cache_policy=NO_CACHE)
def purge_task(retention_days: int, dry_run: bool) -> dict[str, Any]:
    """Delete (or, dry, count) the quarantine rows past retention; counts only."""
    counts = purge_quarantine(
        get_engine(), now=datetime.now(UTC), retention_days=retention_days, dry_run=dry_run
    )
    get_run_logger().info(
        "%s %s quarantined records last seen before %s",
        "would purge" if dry_run else "purged",
        counts.purged,
        counts.cutoff.isoformat(timespec="seconds"),
    )
    return purge_summary(counts)


@task(name="replay-quarantine-rows", cache_policy=NO_CACHE)
def replay_task(source: str, reason: str | None) -> dict[str, Any]:
    """Re-validate a source's open quarantine (one reason's, if given); counts only."""
    counts = replay_quarantined(
        get_engine(),
        source,
        key=get_settings().pii_key.get_secret_value().encode(),
        now=datetime.now(UTC),
        reason=reason,
    )
    get_run_logger().info(
        "%s%s: %d examined, %d replayed, %d still invalid",
        source,
        f" ({reason})" if reason else "",
        counts.examined,
        counts.replayed,
        counts.still_invalid,
    )
    return counts.as_dict()
