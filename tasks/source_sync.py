"""The one streaming sync loop of every source, and the Prefect task of one partition.

A source is an agency collection (`SourceSpec`); the registry's collections and every
coordination source (facilitator reports, BLT-DD lists, e-RDKK needs, KSK requests and
submissions, office decisions) run through `stream_source`: read ahead in a thread, prepare
pages in order (in worker processes when configured), commit groups of pages with their
rows, quarantine and cursors in one transaction each.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Protocol

from prefect import get_run_logger, task
from prefect.cache_policies import NO_CACHE
from prefect.client.schemas.objects import State, TaskRun
from sqlalchemy import Connection, Engine

from integrations.agency import READ_COLLECTIONS, AgencyClient, FetchedPage
from integrations.db import get_engine, write_lock
from integrations.errors import AgencyError
from integrations.prefetch import prefetch
from integrations.settings import get_settings
from integrations.source_store import write_source_page
from integrations.store import CursorState, PageCounts, load_cursor
from integrations.workers import ordered_map, tune_collector_for_bulk
from models.contracts.kecamatan import DECISIONS
from models.source_rows import PREPARE, PreparedPage, PrepareFn, source_name

__all__ = [
    "ALL",
    "PARTITION_TASK_OPTIONS",
    "PageWriter",
    "SourceSpec",
    "retry_transient",
    "source_spec",
    "stream_source",
    "sync_partition",
    "sync_source_partition",
    "sync_sources",
]

ALL = "all"
"""Partition of a source read whole, without a kecamatan filter."""

# Office decisions answer handoffs of any office (desa, kabupaten, agency desks too), so the
# inbox is read whole rather than per kecamatan.
_UNPARTITIONED = frozenset({source_name("kecamatan", DECISIONS)})


class PageWriter(Protocol):
    """Writes a prepared page of a source with its quarantine and cursor, in `conn`."""

    def __call__(
        self,
        conn: Connection,
        source: str,
        page: PreparedPage,
        state: CursorState,
        next_cursor: str | None,
        *,
        now: datetime,
    ) -> PageCounts:
        """Write the page; return its counts."""
        ...


@dataclass(frozen=True, slots=True)
class SourceSpec:
    """One synced source: the agency collection, how pages become rows and are written."""

    agency: str
    collection: str
    source: str
    # Module-level functions: pages may be prepared in worker processes.
    prepare: PrepareFn
    write: PageWriter = field(default=write_source_page)
    # Read per kecamatan (one cursor each) or whole (one cursor, partition "all").
    partitioned: bool = True


def source_spec(agency: str, collection: str) -> SourceSpec:
    """The spec of a synced agency collection; ValueError for one the hub does not sync."""
    source = source_name(agency, collection)
    prepare = PREPARE.get(source)
    if prepare is None:
        raise ValueError(f"the hub does not sync {source!r}")
    return SourceSpec(
        agency=agency,
        collection=collection,
        source=source,
        prepare=prepare,
        partitioned=source not in _UNPARTITIONED,
    )


def _pages(
    client: AgencyClient,
    collection: str,
    plans: Sequence[tuple[str | None, CursorState]],
    limit: int,
) -> Iterator[tuple[CursorState, FetchedPage]]:
    for kecamatan, state in plans:
        pages = client.iter_pages(
            collection,
            updated_since=state.pass_since,
            kecamatan=kecamatan,
            limit=limit,
            start_cursor=state.cursor,
        )
        for page, _resume in pages:
            yield state, page


def stream_source(
    engine: Engine,
    client: AgencyClient,
    spec: SourceSpec,
    kecamatan: Sequence[str] | None,
    *,
    limit: int,
    key: bytes,
    full: bool = False,
    processes: int = 0,
    group_records: int = 1,
) -> PageCounts:
    """Stream a source's pages in order; each page's rows and cursor commit together.

    `kecamatan` None reads the source whole as partition "all"; otherwise each kecamatan is
    a partition read with the agency's `kecamatan` filter. Three stages overlap: the next
    pages are fetched in a thread, pages are prepared in `processes` worker processes (here
    when 0), and this thread writes them in order.
    """
    if client.agency != spec.agency:
        raise ValueError(f"a {client.agency} client cannot read {spec.source}")
    tune_collector_for_bulk()
    partitions: list[tuple[str, str | None]] = (
        [(ALL, None)] if kecamatan is None else [(kec, kec) for kec in kecamatan]
    )
    plans: list[tuple[str | None, CursorState]] = []
    with engine.connect() as conn:
        for partition, kec in partitions:
            state = load_cursor(conn, spec.source, partition)
            if not state.in_pass:
                state.start_pass(full=full)
            plans.append((kec, state))
    jobs = (
        ((state, page.next_cursor), (page.records, key, datetime.now(UTC)))
        for state, page in prefetch(_pages(client, spec.collection, plans, limit))
    )
    counts = PageCounts()
    results = ordered_map(spec.prepare, jobs, processes=processes)
    # Pages are committed in groups of about `group_records` records: each group's rows and
    # the cursors of its pages commit together, so a crash resumes after the last group, and
    # indexes on random tokens are written once per group instead of once per page.
    while True:
        with write_lock(engine), engine.begin() as conn:
            pending = 0
            for (state, next_cursor), prepared in results:
                page = spec.write(
                    conn, spec.source, prepared, state, next_cursor, now=datetime.now(UTC)
                )
                counts.add(page)
                pending += page.fetched
                if pending >= group_records:
                    break
            else:
                return counts


def sync_sources(
    engine: Engine,
    client: AgencyClient,
    agency: str,
    collection: str,
    kecamatan: Sequence[str] | None,
    *,
    limit: int | None = None,
    key: bytes | None = None,
    full: bool = False,
    processes: int = 0,
    group_records: int = 1,
) -> PageCounts:
    """Sync one agency collection into the store without Prefect; returns its counts.

    `kecamatan` lists the partitions of a per-kecamatan source; None reads it whole. The
    office inbox's decisions are always read whole, so a kecamatan list is refused for them.
    Page size and PII key default to the settings.
    """
    spec = source_spec(agency, collection)
    if kecamatan is not None and not spec.partitioned:
        raise ValueError(f"{spec.source} is read whole (partition {ALL!r}), not per kecamatan")
    settings = get_settings()
    return stream_source(
        engine,
        client,
        spec,
        kecamatan,
        limit=limit or settings.page_limit,
        key=key or settings.pii_key.get_secret_value().encode(),
        full=full,
        processes=processes,
        group_records=group_records,
    )


def sync_partition(
    client: AgencyClient,
    specs: Iterable[SourceSpec],
    kecamatan: Sequence[str],
    *,
    full_resync: bool,
    page_limit: int | None,
    label: Callable[[SourceSpec], str],
) -> dict[str, Any]:
    """Stream each source of one partition (logged under `label`); returns counts per collection."""
    logger = get_run_logger()
    settings = get_settings()
    key = settings.pii_key.get_secret_value().encode()
    engine = get_engine()
    counts: dict[str, Any] = {}
    for spec in specs:
        total = stream_source(
            engine,
            client,
            spec,
            list(kecamatan) if spec.partitioned else None,
            limit=page_limit or settings.page_limit,
            key=key,
            full=full_resync,
            processes=settings.prepare_processes,
            group_records=settings.commit_records,
        )
        counts[spec.collection] = total.as_dict()
        logger.info(
            "%s: %d fetched, %d upserted, %d unchanged, %d quarantined in %d pages",
            label(spec),
            total.fetched,
            total.upserted,
            total.unchanged,
            total.quarantined,
            total.pages,
        )
    return counts


def retry_transient(_task: Any, _run: TaskRun, state: State) -> bool:
    """Retry a partition only on a transient agency error (the client retried each request)."""
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
"""Retry and cache options of every partition sync task (registry and other sources)."""


@task(name="sync-source-partition", task_run_name="{agency} {partition}", **PARTITION_TASK_OPTIONS)
def sync_source_partition(
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
    unknown = [c for c in collections if c not in READ_COLLECTIONS.get(agency, ())]
    if unknown:
        raise ValueError(f"{agency} has no collection {', '.join(map(repr, unknown))}")
    specs = [source_spec(agency, c) for c in collections]
    result: dict[str, Any] = {"agency": agency, "partition": partition, "kecamatan": len(kecamatan)}
    with AgencyClient.for_agency(agency, get_settings()) as client:
        result |= sync_partition(
            client,
            specs,
            kecamatan,
            full_resync=full_resync,
            page_limit=page_limit,
            label=lambda spec: f"{spec.source} {partition}",
        )
    return result
