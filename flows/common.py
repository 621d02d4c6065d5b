"""Helpers every flow shares: a failed state's message, partition tasks, sync summaries."""

from __future__ import annotations

import hashlib
from collections import Counter
from collections.abc import Callable, Mapping, Sequence
from datetime import datetime
from enum import StrEnum
from typing import Annotated, Any, TypeVar
from zoneinfo import ZoneInfo

from prefect import get_run_logger
from prefect.artifacts import create_markdown_artifact, create_table_artifact
from prefect.futures import wait
from prefect.runtime import flow_run
from prefect.states import Completed, State
from prefect.task_runners import ProcessPoolTaskRunner, TaskRunner, ThreadPoolTaskRunner
from prefect.tasks import Task
from pydantic import Field

from flows.guards import store_guard
from flows.signals import DEAD_AGENCY_ERRORS, emit_partition_failures, emit_quarantine_spikes
from integrations.agencies.breaker import AGENCY_BREAKER
from integrations.settings import AGENCIES, Settings, get_settings
from integrations.store.engine import get_engine
from integrations.store.statistics import refresh_statistics, written_tables
from integrations.sync.engine import ALL
from models.scope import RegionScope
from models.sources import CATALOGUE, sources_of
from models.wilayah import get_region_registry
from models.workdays import JAKARTA, default_calendar, local_date, operator_instant
from tasks.sync import prepare_store, sync_partition

__all__ = [
    "FullResync",
    "PageLimit",
    "SourceName",
    "SyncIncomplete",
    "day_off_state",
    "failed_message",
    "partition_runner",
    "publish_summary",
    "run_instant",
    "run_name",
    "run_partition_tasks",
    "run_scope",
    "summarise",
    "sync_and_publish",
    "sync_markdown",
]

SourceName = StrEnum(  # type: ignore[misc]
    "SourceName", {name: name for name in CATALOGUE}, module=__name__
)
"""Every source the hub syncs (from the source catalogue), a dropdown in the run forms."""
SourceName.__doc__ = "A synced source of the catalogue."

_K = TypeVar("_K")

FullResync = Annotated[bool, Field(description="Ignore watermarks and re-read everything.")]
"""The `full_resync` parameter of every sync flow."""
PageLimit = Annotated[int | None, Field(ge=1, le=5000, description="Records per page.")]
"""The `page_limit` parameter of every sync flow (None: the setting)."""
_COLUMNS = ("fetched", "upserted", "unchanged", "quarantined")


class SyncIncomplete(RuntimeError):
    """Some partitions failed; the others were synced and counted."""


def failed_message(state: State[Any], limit: int = 300) -> str:
    """Why a task or subflow run failed, cut to `limit` characters.

    The state message is the sanitised error text (no tokens, no payloads).
    """
    return (state.message or state.name or "failed")[:limit]


def partition_runner(partitions: int) -> TaskRunner[Any]:
    """Partitions one after another by default; in parallel processes or on Dask when configured.

    `CETTAR_SYNC_WORKERS` > 1 runs them in as many local processes; `CETTAR_TASK_RUNNER=dask`
    or a `CETTAR_DASK_ADDRESS` runs them on a Dask cluster (`_dask_runner`).
    """
    settings = get_settings()
    if settings.task_runner == "dask" or settings.dask_address:
        return _dask_runner(settings, partitions)
    workers = min(settings.sync_workers, partitions)
    if workers > 1:
        # Validation is CPU-bound: threads would only take turns on the interpreter lock.
        return ProcessPoolTaskRunner(max_workers=workers)
    return ThreadPoolTaskRunner(max_workers=1)


def _shared_settings_digest() -> str:
    """A digest of what every partition of a run must share: the store, PII key, agencies.

    A worker with another store URL would write elsewhere, and one with another PII key
    would store tokens that never match the others'; only the digest crosses the wire.
    """
    settings = get_settings()
    parts = [settings.sqlalchemy_url, settings.pii_key.get_secret_value()]
    parts += [part for agency in AGENCIES for part in settings.agency_endpoint(agency)]
    return hashlib.sha256("\0".join(parts).encode()).hexdigest()


def _prepare_dask_worker(run: str | None) -> str:
    """On each Dask worker as a run's partitions start: close the run's circuits there.

    `run_partition_tasks` resets the breaker of this process, but on Dask the partitions
    (and their breakers) live in long-lived worker processes that may have seen this run
    before (a retried flow run keeps its id). Returns the worker's settings digest.
    """
    if run is not None:
        AGENCY_BREAKER.reset(run)
    return _shared_settings_digest()


def _flush_dask_worker() -> None:
    """On each Dask worker as a run's partitions end: send its queued logs and events now.

    Prefect ships them from background threads in batches: a local cluster's processes
    would take the run's last ones with them, and a remote worker's would reach the API
    after the flow run ended.
    """
    from prefect.events.worker import EventsWorker
    from prefect.logging.handlers import APILogWorker

    APILogWorker.drain_all(timeout=30, at_exit=False)
    EventsWorker.drain_all(timeout=30, at_exit=False)


def _dask_runner(settings: Settings, partitions: int) -> TaskRunner[Any]:
    """Partitions on Dask: the cluster at `dask_address`, else a local cluster of processes.

    Each worker process builds its own store engine and agency clients on its first
    partition and reads the `CETTAR_*` settings of its own environment: a local cluster's
    workers inherit this process's, remote workers must be started with the same ones
    (checked when the partitions start: `_prepare_dask_worker`).
    """
    # Imported here: distributed is a heavy import that local runs never need.
    import dask
    from prefect_dask import DaskTaskRunner

    run = flow_run.get_id()
    expected = _shared_settings_digest()

    class HubDaskTaskRunner(DaskTaskRunner):
        def __enter__(self) -> HubDaskTaskRunner:
            super().__enter__()
            try:
                # Workers that are not daemons may start the page-preparation processes
                # (`CETTAR_PREPARE_PROCESSES`); Dask's default daemon workers could not.
                with dask.config.set({"distributed.worker.daemon": False}):
                    client = self.client
                digests = client.run(_prepare_dask_worker, run)
            except BaseException:
                self.__exit__(None, None, None)
                raise
            strangers = sorted(addr for addr, digest in digests.items() if digest != expected)
            if strangers:
                self.__exit__(None, None, None)
                raise RuntimeError(
                    f"Dask workers {', '.join(strangers)} have another store, PII key or "
                    "agency endpoints than this flow run: start every worker with the "
                    "hub's CETTAR_* settings"
                )
            return self

        def __exit__(self, *args: Any) -> None:
            try:
                if self._client is not None:
                    self._client.run(_flush_dask_worker)
            except Exception as exc:  # the partitions' outcome stands; only their logs lag
                self.logger.warning("could not flush the Dask workers' Prefect logs: %s", exc)
            finally:
                super().__exit__(*args)

    if settings.dask_address:
        return HubDaskTaskRunner(address=settings.dask_address)
    return HubDaskTaskRunner(
        cluster_class="distributed.LocalCluster",
        cluster_kwargs={
            "n_workers": min(settings.dask_workers, partitions),
            # One partition per process: validation is CPU-bound (see above).
            "threads_per_worker": 1,
            "processes": True,
            # No dashboard port to collide with (an operator's own scheduler has one).
            "dashboard_address": None,
        },
    )


def _is_dead_agency(state: State[Any]) -> bool:
    """True when a failed run's error says its agency cannot be reached at all."""
    try:
        error = state.result(raise_on_failure=False)
    except Exception:  # a result that cannot be read back says nothing about the agency
        return False
    return isinstance(error, DEAD_AGENCY_ERRORS)


def run_partition_tasks(
    task: Task[..., dict[str, Any]], jobs: Mapping[_K, dict[str, Any]]
) -> tuple[dict[_K, dict[str, Any]], dict[_K, str], set[_K]]:
    """Run `task` once per job; return the results, the failures and the dead-agency jobs.

    Every job runs and is reported, even once an agency is known to be down: its partition
    tasks then fail at once through the agency's circuit breaker (see
    integrations/agencies/breaker.py), which starts closed for each run of these tasks.
    """
    run = flow_run.get_id()
    if run is not None:
        AGENCY_BREAKER.reset(run)
    results: dict[_K, dict[str, Any]] = {}
    failed: dict[_K, str] = {}
    dead: set[_K] = set()
    with partition_runner(len(jobs)) as runner:
        futures = {job: runner.submit(task, parameters) for job, parameters in jobs.items()}
        wait(list(futures.values()))
        for job, fut in futures.items():
            state = fut.state
            if state.is_completed():
                results[job] = fut.result()
            else:
                # The sanitised error text ("Unreachable: registry GET ... -> ..."), room
                # left for a circuit breaker's note.
                why = failed_message(state, 500)
                failed[job] = why.removeprefix("Task run encountered an exception ")
                if _is_dead_agency(state):
                    dead.add(job)
    return results, failed, dead


def _partitions_of(agency: str, scope: RegionScope) -> dict[str, list[str]]:
    if all(spec.partitioned for spec in sources_of(agency)):
        return scope.partitions()
    # Read whole: one task, whatever the scope (an office's answer may concern any region).
    return {ALL: []}


def _region_name(partition: str) -> str:
    if partition == ALL:
        return "all offices"
    region = get_region_registry().get(partition)
    return region.name if region is not None else ""


def summarise(
    results: dict[tuple[str, str], dict[str, Any]], failed: dict[tuple[str, str], str]
) -> dict[str, Any]:
    """Totals per source and the per-partition rows of the summary artifact (counts only)."""
    totals: dict[str, Counter[str]] = {}
    reasons: Counter[str] = Counter()
    rows: list[dict[str, Any]] = []
    for (agency, partition), res in sorted(results.items()):
        for spec in sources_of(agency):
            c = res.get(spec.collection)
            if not c:
                continue
            totals.setdefault(spec.name, Counter()).update(
                {k: v for k, v in c.items() if isinstance(v, int)}
            )
            reasons.update({f"{spec.name}/{k}": v for k, v in c["reasons"].items()})
            rows.append(
                {
                    "source": spec.name,
                    "partition": partition,
                    "name": _region_name(partition),
                    **{k: c[k] for k in _COLUMNS},
                    "quarantine reasons": ", ".join(
                        f"{k} {v}" for k, v in sorted(c["reasons"].items())
                    ),
                    "failure": "",
                }
            )
    for (agency, partition), why in sorted(failed.items()):
        rows.append(
            {
                "source": f"{agency} (FAILED)",
                "partition": partition,
                "name": _region_name(partition),
                **dict.fromkeys(_COLUMNS, 0),
                "quarantine reasons": "",
                "failure": why,
            }
        )
    return {
        "partitions": len(results) + len(failed),
        "failed": {f"{agency} {partition}": why for (agency, partition), why in failed.items()},
        "totals": {k: dict(v) for k, v in totals.items()},
        "quarantine_reasons": dict(reasons),
        "rows": rows,
    }


def sync_markdown(summary: dict[str, Any], title: str) -> str:
    """The run report: totals per source, quarantine by reason, failed partitions."""
    lines = [f"# {title}", ""]
    lines.append("| source | fetched | upserted | unchanged | quarantined |")
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


def publish_summary(summary: dict[str, Any], *, key: str, title: str, label: str) -> dict[str, Any]:
    """Publish a sync's table and markdown artifacts; raise SyncIncomplete if a partition failed."""
    create_table_artifact(
        key=f"{key}-summary",
        table=summary["rows"],
        description=f"{title} per kabupaten/kota · {label}",
    )
    create_markdown_artifact(
        key=f"{key}-report",
        markdown=sync_markdown(summary, f"{title} · {label}"),
        description=f"{title}: totals and quarantine reasons",
    )
    summary.pop("rows")
    failed = summary["failed"]
    if failed:
        raise SyncIncomplete(
            f"{len(failed)} of {summary['partitions']} partitions failed: "
            f"{', '.join(sorted(failed))}"
        )
    return summary


def sync_and_publish(
    collections: Mapping[str, Sequence[str]],
    scope: RegionScope,
    *,
    full_resync: bool,
    page_limit: int | None,
    key: str,
    title: str,
    rerun: bool = False,
) -> dict[str, Any]:
    """Prepare the store, sync each agency's collections over the scope; publish the summary.

    The run holds the store guard of every agency it syncs (flows/guards.py) throughout.

    One task per (agency, partition). Raises `SyncIncomplete` if any partition failed (after
    publishing what the others did): its message lists the failed partitions and then each
    distinct reason, and its `summary` attribute holds this summary (counts and sanitised
    reasons only), which `deployments.run_audit.run_summary` reports for a failed run.
    """
    with store_guard(collections, what=flow_run.get_name() or title):
        prepare_store()
        results, failed, dead = run_partition_tasks(
            sync_partition,
            {
                (agency, partition): {
                    "agency": agency,
                    "collections": [str(c) for c in dict.fromkeys(wanted)],
                    "partition": partition,
                    "kecamatan": kecamatan,
                    "full_resync": full_resync,
                    "page_limit": page_limit,
                }
                for agency, wanted in collections.items()
                for partition, kecamatan in _partitions_of(agency, scope).items()
            },
        )
        summary = summarise(results, failed)
        written = [name for name, t in summary["totals"].items() if t.get("upserted", 0)]
        if written:
            # In the flow, not a task of its own: a no-op on SQLite, a second or two on
            # PostgreSQL after a large load, and the checks that follow plan on it.
            refresh_statistics(get_engine(), written_tables(written))
        run_id = flow_run.get_id()
        emit_partition_failures(
            failed, dead={agency for agency, _partition in dead}, flow_run_id=run_id, rerun=rerun
        )
        emit_quarantine_spikes(summary["totals"], get_settings().quarantine_alert_rate)
        try:
            return publish_summary(summary, key=key, title=title, label=scope.label())
        except SyncIncomplete as exc:
            # The run's message says why, not only where: each distinct reason in the order met
            # (a dead agency gives its reason, then the breaker's "circuit open" note).
            reasons = list(Counter(failed.values()).items())
            shown = "; ".join(
                f"{why} [{n} partition{'s' if n > 1 else ''}]" for why, n in reasons[:3]
            )
            more = f"; and {len(reasons) - 3} other reasons" if len(reasons) > 3 else ""
            incomplete = SyncIncomplete(f"{exc}. Reasons: {shown}{more}")
            incomplete.summary = summary  # type: ignore[attr-defined]
            raise incomplete from None


def run_scope() -> RegionScope:
    """The `scope` parameter of the current flow run (the whole province when absent)."""
    scope = flow_run.parameters.get("scope") or {}
    return scope if isinstance(scope, RegionScope) else RegionScope.model_validate(scope)


def run_instant(parameters: Mapping[str, Any]) -> datetime:
    """The instant a run works at: its `as_of` (zone-less read as WIB), else now."""
    as_of = parameters.get("as_of")
    return operator_instant(as_of if isinstance(as_of, datetime) else None)


def run_name(
    flow: str,
    detail: Callable[[Mapping[str, Any]], str | None] | None = None,
    *,
    with_time: bool = False,
) -> Callable[[], str]:
    """A `flow_run_name` callable: the flow, an optional detail, the scope and the run's day.

    For instance "check-programme-overlaps · 2026-Q4 · 35.07 · 2026-11-11": the day (with
    the hour when `with_time`) is the run's `as_of` in WIB, or the day it starts, so
    scheduled runs are named too; the detail is left out when it gives None.
    """

    def name() -> str:
        parameters = flow_run.parameters
        extra = detail(parameters) if detail is not None else None
        at = run_instant(parameters).astimezone(ZoneInfo(JAKARTA))
        when = at.strftime("%Y-%m-%d %H:%M" if with_time else "%Y-%m-%d")
        return " · ".join(part for part in (flow, extra, run_scope().label(), when) if part)

    return name


def day_off_state(now: datetime, skip_days_off: bool) -> State[Any] | None:
    """A Completed state naming the holiday when a working-day run falls on a day off."""
    day = local_date(now)
    closed = default_calendar().day_off(day)
    if not skip_days_off or closed is None:
        return None
    # Working-day schedules are crons (Mon-Fri); the holiday calendar lives here, in the
    # same calendar the due dates use, so the run ends at once and says why.
    message = f"no work on {day.isoformat()}: {closed} (offices are closed)"
    get_run_logger().info(message)
    return Completed(message=message, data={"skipped": day.isoformat(), "day_off": closed})
