"""The hub's Prefect events: what operations must react to, one stable name each.

Every event names a source, a region, an agency or the audit chain as its resource, never a
person; payloads hold counts and sanitised reasons only. The automations that react to them
(`deployments/automations.py`) import these names, so an event and its automation cannot
drift apart. Emitted inside a flow run, each event also carries that run as a related
resource (Prefect adds it), which is how the Prefect UI links an alert to its run.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from prefect.events import emit_event

from integrations.agencies.errors import AuthError, CircuitOpen, InvalidEndpoint, Unreachable
from models.identity import mask_ids_in_text

__all__ = [
    "AGENCY_UNREACHABLE",
    "AUDIT_CHAIN_BROKEN",
    "DEAD_AGENCY_ERRORS",
    "EVENTS",
    "HANDOFFS_OVERDUE",
    "QUARANTINE_SPIKE",
    "SYNC_FAILED",
    "SYNC_PARTITION_FAILED",
    "emit_audit_broken",
    "emit_overdue",
    "emit_partition_failures",
    "emit_quarantine_spikes",
]

SYNC_PARTITION_FAILED = "cettar.sync.partition-failed"
"""A sync partition failed; resource `cettar.partition.<agency>.<partition>`."""
SYNC_FAILED = "cettar.sync.failed"
"""A sync run ended with failed partitions (one event per run); resource
`cettar.sync-run.<flow run id>`, label `cettar.rerun` "true" when the run was itself a re-run
(the automation re-runs only first failures, so a dead agency is not retried in a loop)."""
AGENCY_UNREACHABLE = "cettar.agency.unreachable"
"""An agency (or an office inbox) refused connections, failed TLS or the token; resource
`cettar.agency.<agency>`."""
QUARANTINE_SPIKE = "cettar.quarantine.spike"
"""A source's quarantine rate in one run above `CETTAR_QUARANTINE_ALERT_RATE`; resource
`cettar.source.<source>`."""
HANDOFFS_OVERDUE = "cettar.handoffs.overdue"
"""A kabupaten/kota has overdue or escalated handoffs; resource `cettar.region.<code>`."""
AUDIT_CHAIN_BROKEN = "cettar.audit.broken"
"""The audit chain does not verify; resource `cettar.audit-chain`."""

EVENTS = (
    SYNC_PARTITION_FAILED,
    SYNC_FAILED,
    AGENCY_UNREACHABLE,
    QUARANTINE_SPIKE,
    HANDOFFS_OVERDUE,
    AUDIT_CHAIN_BROKEN,
)
"""Every event the hub emits (the README lists them)."""

DEAD_AGENCY_ERRORS = (Unreachable, CircuitOpen, InvalidEndpoint, AuthError)
"""Errors that mean the agency cannot be reached at all (not a passing fault)."""


def _emit(event: str, resource: dict[str, str], payload: Mapping[str, Any]) -> None:
    emit_event(event=event, resource=resource, payload=dict(payload))


def emit_partition_failures(
    failed: Mapping[tuple[str, str], str],
    dead: Iterable[str] = (),
    *,
    flow_run_id: str | None = None,
    rerun: bool = False,
) -> None:
    """One event per failed (agency, partition), per unreachable agency, and one for the run."""
    if failed and flow_run_id:
        _emit(
            SYNC_FAILED,
            {
                "prefect.resource.id": f"cettar.sync-run.{flow_run_id}",
                "prefect.resource.name": "sync run",
                "cettar.flow-run-id": flow_run_id,
                "cettar.rerun": "true" if rerun else "false",
            },
            {"partitions": sorted(f"{a} {p}" for a, p in failed)},
        )
    for (agency, partition), why in sorted(failed.items()):
        _emit(
            SYNC_PARTITION_FAILED,
            {
                "prefect.resource.id": f"cettar.partition.{agency}.{partition}",
                "prefect.resource.name": f"{agency} {partition}",
                "cettar.agency": agency,
                "cettar.partition": partition,
            },
            {"reason": mask_ids_in_text(why)[:500]},
        )
    for agency in sorted(set(dead)):
        reasons = [why for (a, _p), why in sorted(failed.items()) if a == agency]
        _emit(
            AGENCY_UNREACHABLE,
            {
                "prefect.resource.id": f"cettar.agency.{agency}",
                "prefect.resource.name": agency,
                "cettar.agency": agency,
            },
            {"reason": mask_ids_in_text(reasons[0] if reasons else "")[:500]},
        )


def emit_quarantine_spikes(totals: Mapping[str, Mapping[str, int]], threshold: float) -> list[str]:
    """An event per source whose quarantined share of fetched records exceeds `threshold`."""
    spiked: list[str] = []
    for source, t in sorted(totals.items()):
        fetched, quarantined = int(t.get("fetched", 0)), int(t.get("quarantined", 0))
        if not fetched or quarantined / fetched <= threshold:
            continue
        spiked.append(source)
        _emit(
            QUARANTINE_SPIKE,
            {
                "prefect.resource.id": f"cettar.source.{source}",
                "prefect.resource.name": source,
                "cettar.source": source,
            },
            {
                "fetched": fetched,
                "quarantined": quarantined,
                "rate": round(quarantined / fetched, 4),
                "threshold": threshold,
            },
        )
    return spiked


def emit_overdue(lines: Iterable[Mapping[str, Any]]) -> int:
    """An event per kabupaten/kota line with overdue or escalated handoffs; how many."""
    sent = 0
    for line in lines:
        overdue, escalated = int(line["overdue"] or 0), int(line["escalations"] or 0)
        if not overdue and not escalated:
            continue
        sent += 1
        _emit(
            HANDOFFS_OVERDUE,
            {
                "prefect.resource.id": f"cettar.region.{line['code']}",
                "prefect.resource.name": str(line["name"]),
                "cettar.region": str(line["code"]),
            },
            {"overdue": overdue, "escalated": escalated, "backlog": int(line["backlog"] or 0)},
        )
    return sent


def emit_audit_broken(checked: int, problem: str | None) -> None:
    """The audit chain failed verification: how far it was checked and the first problem."""
    _emit(
        AUDIT_CHAIN_BROKEN,
        {"prefect.resource.id": "cettar.audit-chain", "prefect.resource.name": "audit chain"},
        {"checked": checked, "problem": mask_ids_in_text(problem or "")[:500]},
    )
