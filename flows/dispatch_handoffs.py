"""The `dispatch-handoffs` flow: deliver, pull decisions, escalate overdue, send proposals."""

from __future__ import annotations

from collections import Counter, deque
from datetime import datetime
from typing import Any

from prefect import flow, get_run_logger
from prefect.artifacts import create_markdown_artifact, create_table_artifact
from prefect.futures import PrefectFuture
from prefect.runtime import flow_run
from prefect.states import State
from prefect.task_runners import TaskRunner, ThreadPoolTaskRunner

from flows.common import day_off_state, failed_message, run_name
from flows.guards import COORDINATION, store_guard
from integrations.sync.engine import ALL
from models.scope import WHOLE_PROVINCE, RegionScope
from models.sources import collections_of
from models.workdays import operator_instant
from tasks.handoffs import (
    Outbox,
    apply_data_submissions,
    apply_office_decisions,
    deliver_handoffs,
    escalate_overdue_handoffs,
    fan_out_requests,
    office_channels,
    plan_outbox_batches,
    queue_handoff_deliveries,
    reconcile_offices,
    send_update_proposals,
)
from tasks.sync import prepare_store, sync_partition

__all__ = ["DispatchIncomplete", "dispatch_handoffs", "pull_office_decisions", "summarise"]

INBOX = "kecamatan"
"""The office inbox agency: handoffs go to it, decisions come back from it."""

# Outbox batches delivered at once; each posts a few requests at a time itself (to the inbox,
# `CETTAR_INBOX_BATCH_SIZE` deliveries per request).
_PARALLEL_BATCHES = 2
# Batches submitted and not yet counted, at most.
_BATCHES_AHEAD = 4 * _PARALLEL_BATCHES


class DispatchIncomplete(RuntimeError):
    """Some batches or the decisions read failed; the rest was dispatched and counted."""


def pull_office_decisions() -> str | None:
    """Sync the offices' decisions from the inbox; the error text when the read failed."""
    state = sync_partition(INBOX, collections_of(INBOX), ALL, [], return_state=True)
    return None if state.is_completed() else failed_message(state)


def _drain(
    outbox: Outbox, as_of: datetime, scope: RegionScope, run: Counter[str], failed: list[str]
) -> None:
    """Send every pending row of an outbox, one task per batch, and add up the counts."""
    task = deliver_handoffs if outbox == "deliveries" else send_update_proposals
    prefix = "delivery" if outbox == "deliveries" else "proposal"
    batches = plan_outbox_batches(outbox, scope=scope)
    if not batches:
        return

    def count(future: PrefectFuture[Any]) -> None:
        future.wait()
        state = future.state
        if state.is_completed():
            counts = future.result()
            run[f"{prefix}_sent"] += counts["sent"]
            run[f"{prefix}_failed"] += counts["failed"]
            run[f"{prefix}_retry"] += counts["retry"]
            if outbox == "deliveries":
                run["handoffs_delivered"] += counts["delivered"]
                # Of those sent: recorded on the desk of a desk-only office, not posted.
                run["delivery_on_desk"] += counts.get("desk", 0)
        else:
            failed.append(f"{outbox} batch: {failed_message(state, 200)}")

    pool: TaskRunner[Any] = ThreadPoolTaskRunner(max_workers=_PARALLEL_BATCHES)
    # A few batches submitted ahead of those running, each counted and let go once done:
    # the province's 3,500 batches (200 keys each) submitted at once held every task run's
    # future, state and keys in memory until the last.
    in_flight: deque[PrefectFuture[Any]] = deque()
    with pool as runner:
        for batch in batches:
            in_flight.append(runner.submit(task, {"keys": batch, "as_of": as_of}))
            if len(in_flight) >= _BATCHES_AHEAD:
                count(in_flight.popleft())
        while in_flight:
            count(in_flight.popleft())


def summarise(run: Counter[str], offices: list[dict[str, Any]]) -> dict[str, Any]:
    """Run counters and totals over the offices' reconciliation (counts only)."""
    totals: Counter[str] = Counter()
    for row in offices:
        totals.update({k: v for k, v in row.items() if isinstance(v, int)})
    return {"run": dict(sorted(run.items())), "totals": dict(totals), "offices": len(offices)}


def _markdown(summary: dict[str, Any], offices: list[dict[str, Any]], failed: list[str]) -> str:
    lines = ["# Handoff dispatch", "", "## This run", "", "| counter | count |", "|---|---:|"]
    lines += [f"| {name} | {n:,} |" for name, n in summary["run"].items()]
    totals = summary["totals"]
    lines += [
        "",
        f"## All offices ({summary['offices']:,})",
        "",
        "| sent | accepted | rejected | pending |",
        "|---:|---:|---:|---:|",
        f"| {totals.get('sent', 0):,} | {totals.get('accepted', 0):,} | "
        f"{totals.get('rejected', 0):,} | {totals.get('pending', 0):,} |",
    ]
    backlog = sorted(offices, key=lambda o: (-o["pending"], o["office"]))[:10]
    if backlog and backlog[0]["pending"]:
        lines += ["", "## Largest backlogs", "", "| office | pending |", "|---|---:|"]
        lines += [f"| {o['office']} | {o['pending']:,} |" for o in backlog if o["pending"]]
    if failed:
        lines += ["", "## Failed steps", ""] + [f"- {why}" for why in failed]
    return "\n".join(lines)


@flow(
    name="dispatch-handoffs",
    flow_run_name=run_name("dispatch-handoffs", with_time=True),
    log_prints=False,
)
def dispatch_handoffs(
    as_of: datetime | None = None,
    scope: RegionScope = WHOLE_PROVINCE,
    skip_days_off: bool = False,
) -> dict[str, Any] | State[Any]:
    """Deliver pending handoffs, apply decisions, escalate overdue ones, send proposals."""
    # One instant for every step: deadlines are counted in Jawa Timur's time (WIB).
    now = operator_instant(as_of)
    skipped = day_off_state(now, skip_days_off)
    if skipped is not None:
        return skipped
    # Dispatch writes handoffs and reads back the offices' decisions into the kecamatan
    # agency's tables: both parts are held for the whole run.
    with store_guard((COORDINATION, "kecamatan"), what=flow_run.get_name() or "dispatch"):
        return _dispatch(now, scope)


def _dispatch(now: datetime, scope: RegionScope) -> dict[str, Any]:
    logger = get_run_logger()
    # A malformed CETTAR_DESK_OFFICES fails the run here, before anything is delivered.
    office_channels()
    prepare_store()
    run: Counter[str] = Counter()
    failed: list[str] = []
    run["data_request_handoffs"] = fan_out_requests(now, scope)
    run["queued"] += queue_handoff_deliveries(now, scope)
    _drain("deliveries", now, scope, run, failed)
    problem = pull_office_decisions()
    if problem:
        # Decisions already synced are still applied; the next run reads the rest.
        failed.append(f"decisions read: {problem}")
    decisions = apply_office_decisions(now, scope)
    run.update({f"decisions_{k}": v for k, v in decisions.items()})
    run["data_requests_answered"] = apply_data_submissions(now, scope)
    run["escalated"] = escalate_overdue_handoffs(now, scope)
    # Escalations and handoffs returned to the PKH desk go out in the same run.
    run["queued"] += queue_handoff_deliveries(now, scope)
    _drain("deliveries", now, scope, run, failed)
    _drain("proposals", now, scope, run, failed)
    offices = reconcile_offices(scope)
    summary = {"as_of": now.isoformat(), "scope": scope.label(), **summarise(run, offices)}
    create_table_artifact(
        key="handoff-dispatch-run",
        table=[{"counter": name, "count": n} for name, n in summary["run"].items()],
        description="This dispatch run: delivered, failed, decisions applied, escalated, ...",
    )
    create_table_artifact(
        key="handoff-dispatch-offices",
        table=offices,
        description="Per office: deliveries sent, handoffs accepted, rejected, pending",
    )
    create_markdown_artifact(
        key="handoff-dispatch-report",
        markdown=_markdown(summary, offices, failed),
        description="Handoff dispatch: this run's counters and the offices' totals",
    )
    logger.info("dispatch: %s", summary["run"])
    if failed:
        raise DispatchIncomplete(f"{len(failed)} steps failed: {'; '.join(failed)[:500]}")
    return summary
