"""Read a finished flow run back from the Prefect API: completeness and a clear-ID scan."""

from __future__ import annotations

import re
import time
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


def run_summary(state: Any) -> dict[str, Any]:
    """The summary a completed flow run returned, or an empty dict for any other state."""
    if not state.is_completed():
        return {}
    result = state.result()
    return result if isinstance(result, dict) else {}


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
        task_states=states,
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
