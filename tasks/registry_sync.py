"""Prefect tasks of the registry sync: prepare the store, sync one kabupaten partition."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from prefect import task
from prefect.cache_policies import NO_CACHE

from integrations.db import get_engine, upgrade
from integrations.registry import AGENCY, RegistryClient
from integrations.settings import get_settings
from integrations.store import load_regions
from tasks.source_sync import PARTITION_TASK_OPTIONS, source_spec, sync_partition


@task(name="prepare-store", cache_policy=NO_CACHE)
def prepare_store() -> int:
    """Migrate the store's schema and load the Jawa Timur region codes."""
    engine = get_engine()
    upgrade(engine)
    return load_regions(engine)


@task(
    name="sync-registry-partition", task_run_name="registry {partition}", **PARTITION_TASK_OPTIONS
)
def sync_registry_partition(
    partition: str,
    kecamatan: Sequence[str],
    collections: Sequence[str],
    full_resync: bool = False,
    page_limit: int | None = None,
) -> dict[str, Any]:
    """Sync one kabupaten's kecamatan from the registry; returns counts per collection."""
    result: dict[str, Any] = {"partition": partition, "kecamatan": len(kecamatan)}
    with RegistryClient.from_settings(get_settings()) as client:
        result |= sync_partition(
            client,
            (source_spec(AGENCY, c) for c in collections),
            kecamatan,
            full_resync=full_resync,
            page_limit=page_limit,
            label=lambda spec: f"{partition} {spec.collection}",
        )
    return result
