"""The `sync-sources` flow: BLT-DD lists, e-RDKK needs, KSK requests and office decisions.

Each agency is synced one task per kabupaten/kota partition (the office inbox's decisions as
one partition, "all"), with the registry sync's guarantees: incremental cursors committed
with the rows, quarantine with every reason, counts (never records) in the run summary.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from enum import StrEnum
from typing import Any

from prefect import flow, get_run_logger
from prefect.runtime import flow_run

from flows.sync_registry import (
    WHOLE_PROVINCE,
    SyncScope,
    publish_summary,
    run_partition_tasks,
    run_scope,
    sync_markdown,
)
from integrations.agency import READ_COLLECTIONS
from models.wilayah import get_region_registry
from tasks.registry_sync import prepare_store
from tasks.source_sync import ALL, source_spec, sync_source_partition

__all__ = [
    "DEFAULT_AGENCIES",
    "SourceAgency",
    "run_source_partitions",
    "source_markdown",
    "summarise_sources",
    "sync_and_publish",
    "sync_sources_flow",
]


class SourceAgency(StrEnum):
    """Agencies the `sync-sources` flow reads (PKH reports have their own flow)."""

    desa = "desa"
    pertanian = "pertanian"
    statistik = "statistik"
    kecamatan = "kecamatan"


DEFAULT_AGENCIES = [
    SourceAgency.desa,
    SourceAgency.pertanian,
    SourceAgency.statistik,
    SourceAgency.kecamatan,
]

_COLUMNS = ("fetched", "upserted", "unchanged", "quarantined")


def _partitions_of(agency: str, scope: SyncScope) -> dict[str, list[str]]:
    collections = READ_COLLECTIONS[agency]
    if all(source_spec(agency, c).partitioned for c in collections):
        return scope.partitions()
    # Read whole: one task, whatever the scope (an office's answer may concern any region).
    return {ALL: []}


def run_source_partitions(
    agencies: Sequence[str], scope: SyncScope
) -> tuple[dict[tuple[str, str], dict[str, Any]], dict[tuple[str, str], str]]:
    """Run one sync task per (agency, partition); return results and failures by that pair."""
    return run_partition_tasks(
        sync_source_partition,
        {
            (agency, partition): {
                "agency": agency,
                "collections": list(READ_COLLECTIONS[agency]),
                "partition": partition,
                "kecamatan": kecamatan,
                "full_resync": scope.full_resync,
                "page_limit": scope.page_limit,
            }
            for agency in agencies
            for partition, kecamatan in _partitions_of(agency, scope).items()
        },
    )


def _region_name(partition: str) -> str:
    if partition == ALL:
        return "all offices"
    region = get_region_registry().get(partition)
    return region.name if region is not None else ""


def summarise_sources(
    results: dict[tuple[str, str], dict[str, Any]], failed: dict[tuple[str, str], str]
) -> dict[str, Any]:
    """Totals per source and the per-partition rows of the summary artifact (counts only)."""
    totals: dict[str, Counter[str]] = {}
    reasons: Counter[str] = Counter()
    rows: list[dict[str, Any]] = []
    for (agency, partition), res in sorted(results.items()):
        for collection in READ_COLLECTIONS[agency]:
            c = res.get(collection)
            if not c:
                continue
            source = source_spec(agency, collection).source
            totals.setdefault(source, Counter()).update({k: c[k] for k in _COLUMNS})
            reasons.update({f"{source}/{k}": v for k, v in c["reasons"].items()})
            rows.append(
                {
                    "source": source,
                    "partition": partition,
                    "name": _region_name(partition),
                    **{k: c[k] for k in _COLUMNS},
                    "quarantine reasons": ", ".join(
                        f"{k} {v}" for k, v in sorted(c["reasons"].items())
                    ),
                }
            )
    for (agency, partition), why in sorted(failed.items()):
        rows.append(
            {
                "source": f"{agency} (FAILED)",
                "partition": partition,
                "name": _region_name(partition),
                **dict.fromkeys(_COLUMNS, 0),
                "quarantine reasons": why,
            }
        )
    return {
        "partitions": len(results) + len(failed),
        "failed": {f"{agency} {partition}": why for (agency, partition), why in failed.items()},
        "totals": {k: dict(v) for k, v in sorted(totals.items())},
        "quarantine_reasons": dict(reasons),
        "rows": rows,
    }


def source_markdown(summary: dict[str, Any], title: str) -> str:
    """The run report: totals per source, quarantine by reason, failed partitions."""
    return sync_markdown(summary, title, "source")


def sync_and_publish(
    agencies: Sequence[str], scope: SyncScope, *, key: str, title: str
) -> dict[str, Any]:
    """Sync the agencies' partitions of scope and publish the summary artifacts.

    Raises if any partition failed (after publishing what the others did).
    """
    results, failed = run_source_partitions(agencies, scope)
    label = scope.label()
    return publish_summary(
        summarise_sources(results, failed),
        key=key,
        title=f"{title} · {label}",
        column="source",
        table_description=f"{title} per partition · {label}",
        report_description=f"{title}: totals and quarantine reasons",
        jobs=len(results) + len(failed),
    )


def _run_name() -> str:
    agencies = flow_run.parameters.get("agencies") or DEFAULT_AGENCIES
    return f"sync-sources · {','.join(str(a) for a in agencies)} · {run_scope().label()}"


@flow(name="sync-sources", flow_run_name=_run_name, log_prints=False)
def sync_sources_flow(
    scope: SyncScope = WHOLE_PROVINCE, agencies: list[SourceAgency] = DEFAULT_AGENCIES
) -> dict[str, Any]:
    """Sync BLT-DD lists, e-RDKK needs, KSK requests/submissions and office decisions."""
    logger = get_run_logger()
    prepare_store()
    chosen = [SourceAgency(a).value for a in dict.fromkeys(agencies)]
    logger.info("syncing %s for %s", ", ".join(chosen), scope.label())
    return sync_and_publish(chosen, scope, key="source-sync", title="Source sync")
