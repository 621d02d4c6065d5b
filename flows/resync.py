"""Ad-hoc sync jobs: re-sync one source for a region, re-run a run's failed partitions."""

from __future__ import annotations

from typing import Any
from uuid import UUID

from prefect import flow, get_client, get_run_logger
from prefect.client.schemas.filters import (
    FlowRunFilter,
    FlowRunFilterId,
    FlowRunFilterParentFlowRunId,
)

from flows.common import FullResync, PageLimit, SourceName, run_name, sync_and_publish
from models.scope import WHOLE_PROVINCE, RegionScope
from models.sources import AGENCIES, collections_of, source_spec

__all__ = ["failed_partitions", "rerun_failed_partitions", "resync_source"]


class NothingToRerun(ValueError):
    """The given run has no failed sync partition to run again."""


@flow(
    name="resync-source",
    flow_run_name=run_name("resync-source", lambda p: str(p.get("source") or "")),
    log_prints=False,
)
def resync_source(
    source: SourceName,
    scope: RegionScope = WHOLE_PROVINCE,
    full_resync: FullResync = False,
    page_limit: PageLimit = None,
) -> dict[str, Any]:
    """Sync one source for a region now: from its cursor, or from scratch with full_resync."""
    spec = source_spec(str(source))
    get_run_logger().info(
        "re-syncing %s for %s%s", spec.name, scope.label(), " from scratch" if full_resync else ""
    )
    return sync_and_publish(
        {spec.agency: [spec.collection]},
        scope,
        full_resync=full_resync,
        page_limit=page_limit,
        key="source-resync",
        title=f"Re-sync {spec.name}",
    )


def failed_partitions(flow_run_id: UUID) -> dict[str, list[str]]:
    """The sync partitions that did not complete in a run and its subflows: agency -> codes."""
    with get_client(sync_client=True) as client:
        runs = [client.read_flow_run(flow_run_id)]
        children = client.read_flow_runs(
            flow_run_filter=FlowRunFilter(
                parent_flow_run_id=FlowRunFilterParentFlowRunId(any_=[flow_run_id])
            )
        )
        ids = [r.id for r in [*runs, *children]]
        tasks = client.read_task_runs(flow_run_filter=FlowRunFilter(id=FlowRunFilterId(any_=ids)))
    found: dict[str, set[str]] = {}
    for task in tasks:
        # Partition tasks are named "<agency> <partition>" (tasks/sync.py).
        agency, _, partition = task.name.partition(" ")
        if agency not in AGENCIES or not partition or task.state is None:
            continue
        if not task.state.is_completed():
            found.setdefault(agency, set()).add(partition)
    return {agency: sorted(parts) for agency, parts in sorted(found.items())}


@flow(
    name="rerun-failed-partitions",
    flow_run_name=run_name("rerun-failed-partitions", lambda p: str(p.get("flow_run_id") or "")),
    log_prints=False,
)
def rerun_failed_partitions(flow_run_id: UUID) -> dict[str, Any]:
    """Sync again exactly the partitions a given run (or its steps) failed to sync."""
    logger = get_run_logger()
    failed = failed_partitions(flow_run_id)
    if not failed:
        raise NothingToRerun(f"flow run {flow_run_id} has no failed sync partition")
    results: dict[str, Any] = {}
    for agency, partitions in failed.items():
        kabupaten = [p for p in partitions if p.count(".") == 1]
        # An agency read whole ("all") has one partition: the province.
        scope = RegionScope(kabupaten=kabupaten) if kabupaten else WHOLE_PROVINCE
        logger.info("re-running %s partitions %s", agency, ", ".join(partitions))
        results[agency] = sync_and_publish(
            {agency: collections_of(agency)},
            scope,
            full_resync=False,
            page_limit=None,
            key="rerun-failed-partitions",
            title=f"Re-run of {agency}",
            rerun=True,
        )
    return results
