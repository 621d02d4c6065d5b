"""Prefect tasks of the registry sync: prepare the store, sync one kabupaten partition."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from datetime import UTC, datetime
from typing import Any

from prefect import get_run_logger, task
from prefect.cache_policies import NO_CACHE
from prefect.client.schemas.objects import State, TaskRun
from sqlalchemy import Engine

from integrations.db import get_engine, upgrade, write_lock
from integrations.errors import AgencyError
from integrations.prefetch import prefetch
from integrations.registry import FetchedPage, RegistryClient
from integrations.registry_store import write_page
from integrations.settings import get_settings
from integrations.store import CursorState, PageCounts, load_cursor, load_regions
from integrations.workers import ordered_map
from models.registry_rows import prepare_page


def _pages(
    client: RegistryClient, collection: str, plans: Sequence[tuple[str, CursorState]], limit: int
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


def sync_collection(
    engine: Engine,
    client: RegistryClient,
    collection: str,
    kecamatan: Sequence[str],
    *,
    limit: int,
    key: bytes,
    full: bool = False,
    processes: int = 0,
    group_records: int = 1,
) -> PageCounts:
    """Stream the kecamatan's pages in order; each page's rows and cursor commit together.

    Three stages overlap: the next pages are fetched in a thread, pages are validated in
    `processes` worker processes (here when 0), and this thread writes them in order.
    """
    plans = []
    with engine.connect() as conn:
        for kec in kecamatan:
            state = load_cursor(conn, f"registry.{collection}", kec)
            if not state.in_pass:
                state.start_pass(full=full)
            plans.append((kec, state))
    jobs = (
        ((state, page.next_cursor), (collection, page.records, key, datetime.now(UTC)))
        for state, page in prefetch(_pages(client, collection, plans, limit))
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
                page = write_page(
                    conn, collection, prepared, state, next_cursor, now=datetime.now(UTC)
                )
                counts.add(page)
                pending += page.fetched
                if pending >= group_records:
                    break
            else:
                return counts


def _retry_transient(_task: Any, _run: TaskRun, state: State) -> bool:
    # The client already retried each request; a whole-partition retry helps only for outages.
    try:
        state.result()
    except AgencyError as exc:
        return exc.retryable
    except Exception:
        return False
    return False


@task(name="prepare-store", cache_policy=NO_CACHE)
def prepare_store() -> int:
    """Migrate the store's schema and load the Jawa Timur region codes."""
    engine = get_engine()
    upgrade(engine)
    return load_regions(engine)


@task(
    name="sync-registry-partition",
    task_run_name="registry {partition}",
    retries=2,
    retry_delay_seconds=[5, 30],
    retry_condition_fn=_retry_transient,
    cache_policy=NO_CACHE,
)
def sync_registry_partition(
    partition: str,
    kecamatan: Sequence[str],
    collections: Sequence[str],
    full_resync: bool = False,
    page_limit: int | None = None,
) -> dict[str, Any]:
    """Sync one kabupaten's kecamatan from the registry; returns counts per collection."""
    logger = get_run_logger()
    settings = get_settings()
    key = settings.pii_key.get_secret_value().encode()
    limit = page_limit or settings.page_limit
    engine = get_engine()
    result: dict[str, Any] = {"partition": partition, "kecamatan": len(kecamatan)}
    with RegistryClient.from_settings(settings) as client:
        for collection in collections:
            total = sync_collection(
                engine,
                client,
                collection,
                kecamatan,
                limit=limit,
                key=key,
                full=full_resync,
                processes=settings.prepare_processes,
                group_records=settings.commit_records,
            )
            result[collection] = total.as_dict()
            logger.info(
                "%s %s: %d fetched, %d upserted, %d unchanged, %d quarantined in %d pages",
                partition,
                collection,
                total.fetched,
                total.upserted,
                total.unchanged,
                total.quarantined,
                total.pages,
            )
    return result
