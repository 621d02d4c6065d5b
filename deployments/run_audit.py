"""Read a finished flow run back from the Prefect API: completeness and a clear-ID scan."""

from __future__ import annotations

import os
import re
import time
from collections import Counter
from dataclasses import dataclass, field
from typing import Any
from uuid import UUID

# A clear NIK or No. KK: 16 digits standing alone (masks keep 8 digits, tokens are hex).
CLEAR_ID = re.compile(r"(?<!\d)\d{16}(?!\d)")


def count_clear_ids(text: str) -> int:
    """How many clear 16-digit IDs a text holds."""
    return len(CLEAR_ID.findall(text))


@dataclass(frozen=True)
class RunRecord:
    """What the Prefect API holds about a flow run, and how many clear IDs it contains."""

    flow_run_id: UUID
    flow_state: str
    task_runs: int
    task_states: dict[str, int]
    log_lines: int
    artifacts: int
    events: int
    clear_ids: dict[str, int] = field(default_factory=dict)

    @property
    def clear_id_total(self) -> int:
        """Clear IDs found anywhere in the run's records."""
        return sum(self.clear_ids.values())


_FLOW_PREFIX = "Flow run encountered an exception: "
_BEARER = re.compile(r"(?i)\bbearer\s+\S+")
_REASON_CHARS = 2000


def _safe(text: object, limit: int = _REASON_CHARS) -> str:
    """A text fit for a summary: IDs masked, bearer tokens redacted, cut to limit."""
    from models.identity import mask_ids_in_text

    return _BEARER.sub("Bearer ***", mask_ids_in_text(str(text)))[:limit]


def _sanitised(value: Any) -> Any:
    """value with every string made safe (counts and keys kept)."""
    if isinstance(value, dict):
        return {_safe(k, 200): _sanitised(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_sanitised(v) for v in value]
    if isinstance(value, str):
        return _safe(value)
    return value


def _failure(state: Any) -> BaseException | None:
    """The exception a failed state holds, if it can be read back."""
    try:
        data = state.result(raise_on_failure=False)
    except Exception:
        return None
    return data if isinstance(data, BaseException) else None


def _api_url() -> str | None:
    """The Prefect API in force, else the one the CLI pointed this process at, if any."""
    from prefect.settings import PREFECT_API_URL

    return PREFECT_API_URL.value() or os.environ.get("PREFECT_API_URL") or None


def _failed_children(flow_run_id: UUID) -> dict[str, Any]:
    """From the API: each subflow (step) run's outcome, else the failed task runs."""
    from prefect import get_client
    from prefect.client.schemas.filters import FlowRunFilter, FlowRunFilterId

    steps: dict[str, Any] = {}
    children = sorted(
        _children(flow_run_id), key=lambda r: str(r.start_time or r.expected_start_time)
    )
    if children:
        with get_client(sync_client=True) as client:
            names = {r.flow_id: client.read_flow(r.flow_id).name for r in children}
        for child in children:
            name = names[child.flow_id]
            if name in steps:
                name = f"{name} ({child.name})"
            state = child.state
            if state is not None and state.is_completed():
                steps[name] = {"state": state.name}
            else:
                outcome = state.name if state is not None else "unknown"
                why = (state.message if state is not None else None) or outcome
                steps[name] = {"state": outcome, "failed": _safe(why.removeprefix(_FLOW_PREFIX))}
        return steps
    # Task run states reach the API as events: send ours, then give the server a moment.
    flush_run_records()
    deadline = time.monotonic() + 5.0
    with get_client(sync_client=True) as client:
        while True:
            runs = client.read_task_runs(
                flow_run_filter=FlowRunFilter(id=FlowRunFilterId(any_=[flow_run_id]))
            )
            settled = all(r.state is not None and r.state.is_final() for r in runs)
            if settled or time.monotonic() > deadline:
                break
            time.sleep(0.2)
    failed: dict[str, str] = {}
    for r in runs:
        if r.state is None or not r.state.is_final() or r.state.is_completed():
            continue
        why = r.state.message or r.state.name or "failed"
        failed[_safe(r.name, 200)] = _safe(why.removeprefix("Task run encountered an exception "))
    return {"failed": failed}


def run_summary(state: Any) -> dict[str, Any]:
    """What a finished flow run returned or, when it did not complete, why (sanitised).

    Completed: the dict the flow returned. Otherwise `{"error": <the run's message>, ...}`:

    - a sync flow (its `SyncIncomplete` carries its summary): the summary, with "failed"
      mapping each failed partition ("registry 35.07") to its reason;
    - a flow with subflows (daily-coordination): one entry per step (subflow), with its
      state and, when it failed, {"failed": <its reason>};
    - any other flow: "failed" maps its failed task runs to their reasons.

    The subflows and task runs are read from the Prefect API, when one is configured (never
    an ephemeral one); without it only the run's own message and summary are reported.
    Every reason is the error tree's sanitised text, and masked again here: no NIK, No. KK
    or token.
    """
    if state.is_completed():
        result = state.result()
        return result if isinstance(result, dict) else {}
    message = state.message or state.name or "failed"
    summary: dict[str, Any] = {"error": _safe(message.removeprefix(_FLOW_PREFIX))}
    attached = getattr(_failure(state), "summary", None)
    if isinstance(attached, dict):
        summary.update(_sanitised(attached))
        return summary
    flow_run_id = getattr(state.state_details, "flow_run_id", None)
    url = _api_url()
    summary["failed"] = {}
    if flow_run_id is None or url is None:
        return summary
    from prefect.settings import PREFECT_API_URL, temporary_settings

    try:
        with temporary_settings(updates={PREFECT_API_URL: url}):
            children = _failed_children(flow_run_id)
    except Exception as exc:  # the report must not fail because the API is gone
        summary["api_error"] = _safe(f"{type(exc).__name__}: {exc}", 300)
        return summary
    if "failed" not in children:
        del summary["failed"]
    summary.update(children)
    return summary


def flush_run_records(timeout: float = 30.0) -> None:
    """Send this process's queued Prefect logs and events now, before they are read back.

    Prefect ships both from background workers in batches; reading the API right after a
    flow returns would otherwise race them. The workers are per process and keep the API URL
    they started with, so draining them also lets the next run report to a new server.
    """
    from prefect.events.worker import EventsWorker
    from prefect.logging.handlers import APILogWorker

    APILogWorker.drain_all(timeout=timeout, at_exit=False)
    EventsWorker.drain_all(timeout=timeout, at_exit=False)


def _dump(objs: list[Any]) -> str:
    return "\n".join(o.model_dump_json() for o in objs)


def audit_flow_run(flow_run_id: UUID, expected_tasks: int, wait_s: float = 60.0) -> RunRecord:
    """Wait until the API has every task run of the flow run, then read and scan it all."""
    from prefect import get_client
    from prefect.client.schemas.filters import (
        ArtifactFilter,
        ArtifactFilterFlowRunId,
        FlowRunFilter,
        FlowRunFilterId,
        LogFilter,
        LogFilterFlowRunId,
    )
    from prefect.events.filters import EventAnyResourceFilter, EventFilter

    flush_run_records()
    deadline = time.monotonic() + wait_s
    with get_client(sync_client=True) as client:
        while True:
            runs = client.read_task_runs(
                flow_run_filter=FlowRunFilter(id=FlowRunFilterId(any_=[flow_run_id]))
            )
            final = [r for r in runs if r.state is not None and r.state.is_final()]
            if len(final) >= expected_tasks or time.monotonic() > deadline:
                break
            time.sleep(0.5)
        flow_run = client.read_flow_run(flow_run_id)
        logs = []
        offset = 0
        while True:
            page = client.read_logs(
                log_filter=LogFilter(flow_run_id=LogFilterFlowRunId(any_=[flow_run_id])),
                limit=200,
                offset=offset,
            )
            logs.extend(page)
            offset += len(page)
            if len(page) < 200:
                break
        artifacts = client.read_artifacts(
            artifact_filter=ArtifactFilter(flow_run_id=ArtifactFilterFlowRunId(any_=[flow_run_id]))
        )
        ids = [f"prefect.flow-run.{flow_run_id}"] + [f"prefect.task-run.{r.id}" for r in runs]
        events = []
        event_page = client.read_events(
            filter=EventFilter(any_resource=EventAnyResourceFilter(id=ids)), limit=50
        )
        events.extend(event_page.events)
        while event_page.next_page is not None:
            event_page = client.read_events_page(str(event_page.next_page))
            events.extend(event_page.events)
    states: dict[str, int] = {}
    for r in runs:
        name = (r.state.name if r.state else None) or "unknown"
        states[name] = states.get(name, 0) + 1
    return RunRecord(
        flow_run_id=flow_run_id,
        flow_state=(flow_run.state.name if flow_run.state else None) or "unknown",
        task_runs=len(runs),
        task_states=dict(states),
        log_lines=len(logs),
        artifacts=len(artifacts),
        events=len(events),
        clear_ids={
            "flow_run": count_clear_ids(flow_run.model_dump_json()),
            "task_runs": count_clear_ids(_dump(runs)),
            "logs": count_clear_ids("\n".join(log.message for log in logs)),
            "artifacts": count_clear_ids(_dump(artifacts)),
            "events": count_clear_ids(_dump(events)),
        },
    )


@dataclass(frozen=True)
class TreeRecord:
    """A flow run and all its subflow runs as the API holds them, with the clear-ID scan."""

    flow_runs: int
    task_runs: int
    task_states: dict[str, int]
    log_lines: int
    artifacts: int
    events: int
    clear_ids: dict[str, int]
    # "flow-name: State" of every flow or task run that did not end Completed.
    not_completed: list[str] = field(default_factory=list)


def _children(flow_run_id: UUID) -> list[Any]:
    from prefect import get_client
    from prefect.client.schemas.filters import FlowRunFilter, FlowRunFilterParentFlowRunId

    with get_client(sync_client=True) as client:
        return list(
            client.read_flow_runs(
                flow_run_filter=FlowRunFilter(
                    parent_flow_run_id=FlowRunFilterParentFlowRunId(any_=[flow_run_id])
                )
            )
        )


def audit_flow_tree(root_id: UUID) -> TreeRecord:
    """Audit a flow run and, recursively, every subflow run it started."""
    flush_run_records()
    pending, seen = [root_id], []
    while pending:
        run_id = pending.pop()
        seen.append(run_id)
        pending.extend(child.id for child in _children(run_id))
    records = [audit_flow_run(run_id, expected_tasks=0, wait_s=0) for run_id in seen]
    states = sum((Counter(r.task_states) for r in records), Counter[str]())
    clear = sum((Counter(r.clear_ids) for r in records), Counter[str]())
    not_completed = [
        f"{r.flow_run_id}: {r.flow_state}" for r in records if r.flow_state != "Completed"
    ]
    not_completed += [f"task runs: {n} {s}" for s, n in states.items() if s != "Completed"]
    return TreeRecord(
        flow_runs=len(records),
        task_runs=sum(r.task_runs for r in records),
        task_states=dict(states),
        log_lines=sum(r.log_lines for r in records),
        artifacts=sum(r.artifacts for r in records),
        events=sum(r.events for r in records),
        clear_ids=dict(clear),
        not_completed=not_completed,
    )
