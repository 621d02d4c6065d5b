"""Prefect tasks of the registry sync: prepare the store, sync one kabupaten partition."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from typing import Any

from prefect import get_run_logger, task
from prefect.cache_policies import NO_CACHE
from prefect.client.schemas.objects import State, TaskRun
from sqlalchemy import Engine

from integrations.db import get_engine, upgrade, write_lock
from integrations.errors import AgencyError
from integrations.registry import RegistryClient
from integrations.registry_store import apply_households, apply_recipients
from integrations.settings import get_settings
from integrations.store import PageCounts, load_cursor, load_regions
from models.contracts.registry import HOUSEHOLDS, RECIPIENTS, Household, Recipient
from models.validation import validate_batch

APPLY: dict[str, tuple[type[Any], Callable[..., PageCounts]]] = {
    HOUSEHOLDS: (Household, apply_households),
    RECIPIENTS: (Recipient, apply_recipients),
}


def sync_collection(
    engine: Engine,
    client: RegistryClient,
    collection: str,
    kecamatan: str,
    *,
    limit: int,
    key: bytes,
    full: bool = False,
) -> PageCounts:
    """Stream one kecamatan's pages; each page's rows and cursor commit together."""
    model, apply = APPLY[collection]
    with engine.connect() as conn:
        state = load_cursor(conn, f"registry.{collection}", kecamatan)
    if not state.in_pass:
        state.start_pass(full=full)
    counts = PageCounts()
    pages = client.iter_pages(
        collection,
        updated_since=state.pass_since,
        kecamatan=kecamatan,
        limit=limit,
        start_cursor=state.cursor,
    )
    for page, _resume in pages:
        batch = validate_batch(page.records, model)
        with write_lock(engine), engine.begin() as conn:
            counts.add(apply(conn, batch, state, page.next_cursor, key=key, now=datetime.now(UTC)))
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
            total = PageCounts()
            for kec in kecamatan:
                total.add(
                    sync_collection(
                        engine, client, collection, kec, limit=limit, key=key, full=full_resync
                    )
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
