"""The `sync-registry` flow: incremental, partitioned sync of the social registry."""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping
from enum import StrEnum
from typing import Any, TypeVar

from prefect import flow, get_run_logger
from prefect.artifacts import create_markdown_artifact, create_table_artifact
from prefect.futures import wait
from prefect.runtime import flow_run
from prefect.task_runners import ProcessPoolTaskRunner, TaskRunner, ThreadPoolTaskRunner
from prefect.tasks import Task
from pydantic import BaseModel, ConfigDict, Field

from integrations.settings import get_settings
from models.contracts.registry import HOUSEHOLDS, RECIPIENTS
from models.wilayah import KodeKecamatan, KodeWilayah, get_region_registry
from tasks.registry_sync import prepare_store, sync_registry_partition


class Collection(StrEnum):
    """Registry collections the hub syncs."""

    households = HOUSEHOLDS
    recipients = RECIPIENTS


class SyncScope(BaseModel):
    """What to sync: the whole province (default), some kabupaten/kota, or some kecamatan."""

    model_config = ConfigDict(frozen=True)

    kabupaten: list[KodeWilayah] = Field(
        default_factory=list, description="Kabupaten/kota codes like 35.78; empty = all."
    )
    kecamatan: list[KodeKecamatan] = Field(
        default_factory=list, description="Kecamatan codes like 35.78.01 (added to kabupaten)."
    )
    collections: list[Collection] = Field(
        default_factory=lambda: [Collection.households, Collection.recipients]
    )
    full_resync: bool = Field(default=False, description="Ignore watermarks and re-read all.")
    page_limit: int | None = Field(default=None, ge=1, le=5000, description="Records per page.")

    def label(self) -> str:
        """Short human label for run names."""
        if not self.kabupaten and not self.kecamatan:
            return "province"
        parts = [*self.kabupaten, *self.kecamatan]
        return ",".join(parts[:3]) + (f" +{len(parts) - 3}" if len(parts) > 3 else "")

    def partitions(self) -> dict[str, list[str]]:
        """Kecamatan codes grouped by kabupaten/kota: one task per group."""
        reg = get_region_registry()
        groups: dict[str, set[str]] = {}
        if not self.kabupaten and not self.kecamatan:
            for kab in reg.kabupaten_kota():
                groups[kab.code] = {k.code for k in reg.kecamatan(kab.code)}
        for kab_code in self.kabupaten:
            if reg.require(kab_code).level != 2:
                raise ValueError(f"{kab_code} is not a kabupaten/kota code")
            groups.setdefault(kab_code, set()).update(k.code for k in reg.kecamatan(kab_code))
        for kec in self.kecamatan:
            groups.setdefault(kec[:5], set()).add(kec)
        return {kab: sorted(kecs) for kab, kecs in sorted(groups.items())}


WHOLE_PROVINCE = SyncScope()

_K = TypeVar("_K")


def run_scope() -> SyncScope:
    """The `scope` parameter of the current flow run (the whole province when absent)."""
    scope = flow_run.parameters.get("scope") or {}
    if isinstance(scope, dict):
        scope = SyncScope.model_validate(scope)
    return scope


def _run_name() -> str:
    return f"sync-registry · {run_scope().label()}"


class SyncIncomplete(RuntimeError):
    """Some partitions failed; the others were synced and counted."""


def summarise(results: dict[str, dict[str, Any]], failed: dict[str, str]) -> dict[str, Any]:
    """Totals per collection plus the per-kabupaten rows of the summary artifact."""
    reg = get_region_registry()
    totals: dict[str, Counter[str]] = {}
    reasons: Counter[str] = Counter()
    rows = []
    for kab, res in sorted(results.items()):
        for coll in (HOUSEHOLDS, RECIPIENTS):
            c = res.get(coll)
            if not c:
                continue
            totals.setdefault(coll, Counter()).update(
                {k: v for k, v in c.items() if isinstance(v, int)}
            )
            reasons.update({f"{coll}/{k}": v for k, v in c["reasons"].items()})
            rows.append(
                {
                    "kabupaten": kab,
                    "name": reg.require(kab).name,
                    "collection": coll,
                    "fetched": c["fetched"],
                    "upserted": c["upserted"],
                    "unchanged": c["unchanged"],
                    "quarantined": c["quarantined"],
                    "quarantine reasons": ", ".join(
                        f"{k} {v}" for k, v in sorted(c["reasons"].items())
                    ),
                }
            )
    for kab, why in sorted(failed.items()):
        rows.append(
            {
                "kabupaten": kab,
                "name": reg.require(kab).name,
                "collection": "FAILED",
                "fetched": 0,
                "upserted": 0,
                "unchanged": 0,
                "quarantined": 0,
                "quarantine reasons": why,
            }
        )
    return {
        "partitions": len(results) + len(failed),
        "failed": failed,
        "totals": {k: dict(v) for k, v in totals.items()},
        "quarantine_reasons": dict(reasons),
        "rows": rows,
    }


def sync_markdown(summary: dict[str, Any], title: str, column: str = "collection") -> str:
    """The run report: totals per collection or source, quarantine by reason, failed partitions."""
    lines = [f"# {title}", ""]
    lines.append(f"| {column} | fetched | upserted | unchanged | quarantined |")
    lines.append("|---|---:|---:|---:|---:|")
    for name, t in summary["totals"].items():
        lines.append(
            f"| {name} | {t.get('fetched', 0):,} | {t.get('upserted', 0):,} | "
            f"{t.get('unchanged', 0):,} | {t.get('quarantined', 0):,} |"
        )
    if summary["quarantine_reasons"]:
        lines += ["", "## Quarantined by reason", "", "| reason | records |", "|---|---:|"]
        for reason, n in sorted(summary["quarantine_reasons"].items(), key=lambda kv: -kv[1]):
            lines.append(f"| `{reason}` | {n:,} |")
    if summary["failed"]:
        lines += ["", "## Failed partitions", ""]
        lines += [f"- {job}: {why}" for job, why in sorted(summary["failed"].items())]
    return "\n".join(lines)


def publish_summary(
    summary: dict[str, Any],
    *,
    key: str,
    title: str,
    column: str,
    table_description: str,
    report_description: str,
    jobs: int,
) -> dict[str, Any]:
    """Publish a sync's table and markdown artifacts; raise SyncIncomplete if a partition failed."""
    create_table_artifact(
        key=f"{key}-summary", table=summary["rows"], description=table_description
    )
    create_markdown_artifact(
        key=f"{key}-report",
        markdown=sync_markdown(summary, title, column),
        description=report_description,
    )
    summary.pop("rows")
    failed = summary["failed"]
    if failed:
        raise SyncIncomplete(
            f"{len(failed)} of {jobs} partitions failed: {', '.join(sorted(failed))}"
        )
    return summary


def partition_runner(partitions: int) -> TaskRunner[Any]:
    """Partitions one after another by default; in parallel processes when configured."""
    workers = min(get_settings().sync_workers, partitions)
    if workers > 1:
        # Validation is CPU-bound: threads would only take turns on the interpreter lock.
        return ProcessPoolTaskRunner(max_workers=workers)
    return ThreadPoolTaskRunner(max_workers=1)


def run_partition_tasks(
    task: Task[..., dict[str, Any]], jobs: Mapping[_K, dict[str, Any]]
) -> tuple[dict[_K, dict[str, Any]], dict[_K, str]]:
    """Run `task` once per job's parameters; return the results and the failures by job."""
    results: dict[_K, dict[str, Any]] = {}
    failed: dict[_K, str] = {}
    with partition_runner(len(jobs)) as runner:
        futures = {job: runner.submit(task, parameters) for job, parameters in jobs.items()}
        wait(list(futures.values()))
        for job, fut in futures.items():
            state = fut.state
            if state.is_completed():
                results[job] = fut.result()
            else:
                # The state message is the sanitised error text (no tokens, no payloads).
                failed[job] = (state.message or state.name or "failed")[:300]
    return results, failed


@flow(name="sync-registry", flow_run_name=_run_name, log_prints=False)
def sync_registry(scope: SyncScope = WHOLE_PROVINCE) -> dict[str, Any]:
    """Sync DTKS/DTSEN households, members and programme recipients into the hub's store."""
    logger = get_run_logger()
    prepare_store()
    partitions = scope.partitions()
    collections = [c.value for c in scope.collections]
    logger.info(
        "syncing %s: %d partitions, %d kecamatan, collections %s",
        scope.label(),
        len(partitions),
        sum(len(v) for v in partitions.values()),
        ", ".join(collections),
    )
    results, failed = run_partition_tasks(
        sync_registry_partition,
        {
            kab: {
                "partition": kab,
                "kecamatan": kecs,
                "collections": collections,
                "full_resync": scope.full_resync,
                "page_limit": scope.page_limit,
            }
            for kab, kecs in partitions.items()
        },
    )
    return publish_summary(
        summarise(results, failed),
        key="registry-sync",
        title=f"Registry sync · {scope.label()}",
        column="collection",
        table_description=f"Registry sync per kabupaten/kota · {scope.label()}",
        report_description="Registry sync totals and quarantine reasons",
        jobs=len(partitions),
    )
