"""The `sync-registry` flow: incremental, partitioned sync of the social registry."""

from __future__ import annotations

from enum import StrEnum
from typing import Any

from prefect import flow, get_run_logger

from flows.common import FullResync, PageLimit, run_name, sync_and_publish
from models.scope import WHOLE_PROVINCE, RegionScope
from models.sources import collections_of

AGENCY = "registry"

Collection = StrEnum(  # type: ignore[misc]
    "Collection", {c: c for c in collections_of(AGENCY)}, module=__name__
)
"""Registry collections the hub syncs (from the source catalogue)."""
Collection.__doc__ = "Registry collections the hub syncs."

ALL_COLLECTIONS: list[Collection] = list(Collection)


@flow(name="sync-registry", flow_run_name=run_name("sync-registry"), log_prints=False)
def sync_registry(
    scope: RegionScope = WHOLE_PROVINCE,
    collections: list[Collection] = ALL_COLLECTIONS,
    full_resync: FullResync = False,
    page_limit: PageLimit = None,
) -> dict[str, Any]:
    """Sync DTKS/DTSEN households, members and programme recipients into the hub's store."""
    logger = get_run_logger()
    partitions = scope.partitions()
    logger.info(
        "syncing %s: %d partitions, %d kecamatan, collections %s",
        scope.label(),
        len(partitions),
        sum(len(v) for v in partitions.values()),
        ", ".join(collections),
    )
    return sync_and_publish(
        {AGENCY: collections},
        scope,
        full_resync=full_resync,
        page_limit=page_limit,
        key="registry-sync",
        title="Registry sync",
    )
