"""The `collect-facilitator-reports` flow: PKH facilitators' reports, per kabupaten/kota."""

from __future__ import annotations

from typing import Any

from prefect import flow, get_run_logger

from flows.common import FullResync, PageLimit, run_name, sync_and_publish
from models.scope import WHOLE_PROVINCE, RegionScope
from models.sources import collections_of

AGENCY = "pkh"


@flow(
    name="collect-facilitator-reports",
    flow_run_name=run_name("collect-facilitator-reports"),
    log_prints=False,
)
def collect_facilitator_reports(
    scope: RegionScope = WHOLE_PROVINCE,
    full_resync: FullResync = False,
    page_limit: PageLimit = None,
) -> dict[str, Any]:
    """Collect PKH facilitator reports (updates, deaths, moves, ...) into the store."""
    get_run_logger().info("collecting facilitator reports for %s", scope.label())
    return sync_and_publish(
        {AGENCY: collections_of(AGENCY)},
        scope,
        full_resync=full_resync,
        page_limit=page_limit,
        key="facilitator-reports",
        title="Facilitator reports",
    )
