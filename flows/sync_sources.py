"""The `sync-sources` flow: BLT-DD lists, e-RDKK needs, KSK requests and office decisions.

Each agency is synced one task per kabupaten/kota partition (the office inbox's decisions as
one partition, "all"), with the registry sync's guarantees: incremental cursors committed
with the rows, quarantine with every reason, counts (never records) in the run summary.
"""

from __future__ import annotations

from enum import StrEnum
from typing import Any

from prefect import flow, get_run_logger

from flows.common import FullResync, PageLimit, run_name, sync_and_publish
from models.scope import WHOLE_PROVINCE, RegionScope
from models.sources import AGENCIES, collections_of

__all__ = ["DEFAULT_AGENCIES", "OWN_FLOW", "SourceAgency", "sync_sources_flow"]

OWN_FLOW = frozenset({"registry", "pkh"})
"""Agencies synced by a flow of their own (sync-registry, collect-facilitator-reports)."""

SourceAgency = StrEnum(  # type: ignore[misc]
    "SourceAgency", {a: a for a in AGENCIES if a not in OWN_FLOW}, module=__name__
)
"""Agencies the `sync-sources` flow reads (from the source catalogue)."""
SourceAgency.__doc__ = "Agencies the sync-sources flow reads."

DEFAULT_AGENCIES: list[SourceAgency] = list(SourceAgency)


@flow(
    name="sync-sources",
    flow_run_name=run_name(
        "sync-sources",
        lambda p: ",".join(str(a) for a in p.get("agencies") or DEFAULT_AGENCIES),
    ),
    log_prints=False,
)
def sync_sources_flow(
    scope: RegionScope = WHOLE_PROVINCE,
    agencies: list[SourceAgency] = DEFAULT_AGENCIES,
    full_resync: FullResync = False,
    page_limit: PageLimit = None,
) -> dict[str, Any]:
    """Sync BLT-DD lists, e-RDKK needs, KSK requests/submissions and office decisions."""
    get_run_logger().info("syncing %s for %s", ", ".join(agencies), scope.label())
    return sync_and_publish(
        {str(agency): collections_of(agency) for agency in agencies},
        scope,
        full_resync=full_resync,
        page_limit=page_limit,
        key="source-sync",
        title="Source sync",
    )
