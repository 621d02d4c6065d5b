"""Prefect tasks of every sync: prepare the store, sync one partition of an agency's sources.

Thin wrappers: the streaming loop is `integrations.sync.engine`, the sources are the
catalogue's (`models.sources`). A partition is a kabupaten/kota's kecamatan, or "all" for a
source read whole; a task returns counts per collection, never records.
"""

from __future__ import annotations

import contextlib
from collections.abc import Sequence
from typing import Any

from prefect import get_run_logger, task
from prefect.cache_policies import NO_CACHE
from prefect.client.schemas.objects import State, TaskRun
from prefect.runtime import flow_run

from integrations.agencies.breaker import AGENCY_BREAKER
from integrations.agencies.client import AgencyClient
from integrations.agencies.errors import AgencyError
from integrations.settings import get_settings
from integrations.store.engine import get_engine, upgrade
from integrations.store.regions import load_regions
from integrations.sync.engine import sync_source
from models.sources import sources_of

__all__ = [
    "PARTITION_TASK_OPTIONS",
    "prepare_store",
    "retry_transient",
    "sync_partition",
]


@task(name="prepare-store", cache_policy=NO_CACHE)
def prepare_store() -> int:
    """Migrate the store's schema and load the Jawa Timur region codes."""
    engine = get_engine()
    upgrade(engine)
    return load_regions(engine)


def retry_transient(_task: Any, _run: TaskRun, state: State) -> bool:
    """Retry a partition only on a transient agency error (the client retried each request).

    Never on an agency that cannot be reached, refuses the token, has a malformed URL or
    whose circuit is open (`AgencyError.retryable` is False for those): waiting 5 s and
    30 s would not change the answer, only delay the run's failure.
    """
    try:
        state.result()
    except AgencyError as exc:
        return exc.retryable
    except Exception:
        return False
    return False


PARTITION_TASK_OPTIONS: dict[str, Any] = {
    "retries": 2,
    "retry_delay_seconds": [5, 30],
    "retry_condition_fn": retry_transient,
    "cache_policy": NO_CACHE,
}
"""Retry and cache options of the partition sync task."""


@task(name="sync-partition", task_run_name="{agency} {partition}", **PARTITION_TASK_OPTIONS)
def sync_partition(
    agency: str,
    collections: Sequence[str],
    partition: str,
    kecamatan: Sequence[str],
    full_resync: bool = False,
    page_limit: int | None = None,
) -> dict[str, Any]:
    """Sync one partition (a kabupaten's kecamatan, or "all") of an agency's collections.

    Returns counts per collection, never records. Collections read whole (office decisions)
    ignore `kecamatan` and use the partition "all".
    """
    specs = [spec for spec in sources_of(agency) if spec.collection in collections]
    unknown = sorted(set(collections) - {spec.collection for spec in specs})
    if unknown:
        raise ValueError(f"{agency} has no collection {', '.join(map(repr, unknown))}")
    logger = get_run_logger()
    settings = get_settings()
    engine = get_engine()
    result: dict[str, Any] = {"agency": agency, "partition": partition, "kecamatan": len(kecamatan)}
    run = flow_run.get_id()
    # Inside a flow run, an agency found down by one partition fails the others at once.
    guard = (
        AGENCY_BREAKER.guard(agency, run, f"{agency} {partition}")
        if run is not None
        else contextlib.nullcontext()
    )
    with guard, AgencyClient.for_agency(agency, settings) as client:
        for spec in specs:
            total = sync_source(
                engine,
                client,
                spec.name,
                list(kecamatan) if spec.partitioned else None,
                limit=page_limit,
                full=full_resync,
                processes=settings.prepare_processes,
                group_records=settings.commit_records,
            )
            result[spec.collection] = total.as_dict()
            logger.info(
                "%s %s: %d fetched, %d upserted, %d unchanged, %d quarantined in %d pages",
                spec.name,
                partition,
                total.fetched,
                total.upserted,
                total.unchanged,
                total.quarantined,
                total.pages,
            )
    return result
