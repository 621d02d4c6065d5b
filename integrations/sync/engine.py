"""The one streaming sync loop of every source in the catalogue (`models.sources`).

`stream_source` reads a source's partitions ahead in a thread, prepares pages in order (in
worker processes when configured) and commits groups of pages with their rows, quarantine
and cursors in one transaction each. `sync_source` is the Prefect-free entry point with
the settings' defaults; the Prefect tasks in `tasks.sync` wrap it.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from datetime import UTC, datetime

from sqlalchemy import Engine

from integrations.agencies.client import AgencyClient, FetchedPage
from integrations.settings import get_settings
from integrations.store.cursors import CursorState, load_cursor
from integrations.store.engine import write_lock
from integrations.store.pages import PageCounts, write_source_page
from integrations.sync.prefetch import prefetch
from integrations.sync.workers import ordered_map, tune_collector_for_bulk
from models.sources import SourceSpec, prepare_page, source_spec

__all__ = ["ALL", "PageWriter", "stream_source", "sync_source"]

ALL = "all"
"""Partition of a source read whole, without a kecamatan filter."""


PageWriter = Callable[..., PageCounts]
"""Writes a prepared page with its quarantine and cursor: `write_source_page`'s signature."""


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
    write: PageWriter = write_source_page,
) -> PageCounts:
    """Stream a source's pages in order; each page's rows and cursor commit together.

    `kecamatan` None reads the source whole as partition "all"; otherwise each kecamatan is
    a partition read with the agency's `kecamatan` filter. Three stages overlap: the next
    pages are fetched in a thread, pages are prepared in `processes` worker processes (here
    when 0), and this thread writes them in order.
    """
    if client.agency != spec.agency:
        raise ValueError(f"a {client.agency} client cannot read {spec.name}")
    tune_collector_for_bulk()
    partitions: list[tuple[str, str | None]] = (
        [(ALL, None)] if kecamatan is None else [(kec, kec) for kec in kecamatan]
    )
    plans: list[tuple[str | None, CursorState]] = []
    with engine.connect() as conn:
        for partition, kec in partitions:
            state = load_cursor(conn, spec.name, partition)
            if not state.in_pass:
                state.start_pass(full=full)
            plans.append((kec, state))
    jobs = (
        ((state, page.next_cursor), (spec.name, page.records, key, datetime.now(UTC)))
        for state, page in prefetch(_pages(client, spec.collection, plans, limit))
    )
    counts = PageCounts()
    results = ordered_map(prepare_page, jobs, processes=processes)
    # Pages are committed in groups of about `group_records` records: each group's rows and
    # the cursors of its pages commit together, so a crash resumes after the last group, and
    # indexes on random tokens are written once per group instead of once per page.
    while True:
        with write_lock(engine), engine.begin() as conn:
            pending = 0
            for (state, next_cursor), prepared in results:
                page = write(conn, spec.name, prepared, state, next_cursor, now=datetime.now(UTC))
                counts.add(page)
                pending += page.fetched
                if pending >= group_records:
                    break
            else:
                return counts


def sync_source(
    engine: Engine,
    client: AgencyClient,
    source: str,
    kecamatan: Sequence[str] | None,
    *,
    limit: int | None = None,
    key: bytes | None = None,
    full: bool = False,
    processes: int = 0,
    group_records: int = 1,
) -> PageCounts:
    """Sync one source (`<agency>.<collection>`) into the store; returns its counts.

    `kecamatan` lists the partitions of a per-kecamatan source; None reads it whole. A
    source read whole (the office inbox's decisions) refuses a kecamatan list. Page size and
    PII key default to the settings.
    """
    spec = source_spec(source)
    if kecamatan is not None and not spec.partitioned:
        raise ValueError(f"{spec.name} is read whole (partition {ALL!r}), not per kecamatan")
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
