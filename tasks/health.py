"""Prefect task of the health zones: one run per daily coordination, counts out, never figures."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from prefect import get_run_logger, task
from prefect.cache_policies import NO_CACHE
from sqlalchemy import Engine

from integrations.settings import get_settings
from integrations.store.engine import get_engine, write_lock
from integrations.store.health import apply_zones
from models.scope import WHOLE_PROVINCE, RegionScope
from models.zones import ZoneThresholds

__all__ = ["run_zone_step", "zone_step"]


def run_zone_step(
    engine: Engine, *, now: datetime, scope: RegionScope = WHOLE_PROVINCE
) -> dict[str, Any]:
    """Zones of the scope's last complete weeks stored and their red spells handed off."""
    settings = get_settings()
    thresholds = ZoneThresholds(
        settings.health_yellow_per_100k,
        settings.health_orange_per_100k,
        settings.health_red_per_100k,
        settings.health_min_cases,
    )
    # One transaction: the week's zones and the handoffs they raise are stored together.
    with write_lock(engine), engine.begin() as conn:
        counts = apply_zones(
            conn, now=now, thresholds=thresholds, weeks=settings.health_weeks, scope=scope
        )
    return counts.as_dict()


@task(name="health-zones", cache_policy=NO_CACHE)
def zone_step(now: datetime, scope: RegionScope = WHOLE_PROVINCE) -> dict[str, Any]:
    """Turn the puskesmas' weekly figures into zones; hand red kecamatan and desa off."""
    result = run_zone_step(get_engine(), now=now, scope=scope)
    get_run_logger().info(
        "zones of %s: %d written, %d red entries, %d handoffs created, %d escalated",
        result["last_week"],
        result["zones_written"],
        sum(result["red_entries"].values()),
        sum(result["handoffs_created"].values()),
        result["escalated"],
    )
    return result
