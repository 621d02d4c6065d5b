"""Office decisions applied to their handoffs: the store loads, `models.decisions` decides.

A decision moves its handoff only when `models.decisions.decide` says it is applied; every
decision is marked with its outcome, so a rerun never applies one twice. Approved
household updates become update proposals to the registry; rejected ones go back to the
PKH desk as new handoffs with the kecamatan's reason.
"""

from __future__ import annotations

import hashlib
import json
from collections import defaultdict
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from pydantic import ValidationError
from sqlalchemy import Connection, and_, bindparam, or_, select

from integrations.store.audit import ChainWriter
from integrations.store.bulk import insert_new
from integrations.store.common import CHUNK, chunks, handoff_ids_in_scope, stored_utc, to_utc
from integrations.store.handoffs import (
    PKH_AGENCY,
    Change,
    apply_changes,
    create_findings,
    handoff_rows,
)
from integrations.store.tables import DECISION, PROPOSAL, REPORT
from models.checks import Finding
from models.contracts.registry import HouseholdChanges
from models.decisions import HandoffView, decide
from models.handoffs import HandoffKind, HandoffState, Office, OfficeKind, safe_text
from models.plain import AsDict
from models.scope import WHOLE_PROVINCE, RegionScope
from models.workdays import WorkCalendar

__all__ = ["DecisionCounts", "apply_decisions", "proposal_id"]


@dataclass(slots=True)
class DecisionCounts(AsDict):
    """What became of the office decisions applied in one call."""

    applied: int = 0
    repeat: int = 0
    # Answers that arrive after the handoff was settled (by a submission, the kabupaten, or
    # the office's own earlier answer): kept, but they change nothing.
    superseded: int = 0
    illegal: int = 0
    unknown: int = 0
    # Decisions about handoffs not yet recorded as delivered: kept for the next run.
    deferred: int = 0
    proposals: int = 0
    returned: int = 0


def proposal_id(handoff_id: str, report_id: str) -> str:
    """Stable id (and idempotency key) of the update proposal of one verified report."""
    digest = hashlib.sha256(f"{handoff_id}\n{report_id}".encode()).hexdigest()[:32]
    return f"UP-{digest}"


def _report_ids(evidence: Mapping[str, Any]) -> list[str]:
    value = evidence.get("report_ids", "")
    return sorted({v.strip() for v in str(value).split(",") if v.strip()})


def _no_changes(text: str) -> bool:
    try:
        return HouseholdChanges.model_validate_json(text).empty
    except ValidationError:
        return False


def _proposals_for(
    conn: Connection, approved: Sequence[tuple[Any, datetime]]
) -> list[dict[str, Any]]:
    """Update proposal rows of approved household updates: one per report with changes."""
    wanted: dict[str, tuple[Any, datetime]] = {}
    for handoff, decided_at in approved:
        for rid in _report_ids(json.loads(handoff.evidence)):
            wanted.setdefault(rid, (handoff, decided_at))
    rows = []
    for part in chunks(sorted(wanted)):
        reports = conn.execute(
            select(REPORT.c.id, REPORT.c.household_id, REPORT.c.changes)
            .where(REPORT.c.id.in_(list(part)))
            .order_by(REPORT.c.id)
        )
        for rep in reports:
            # A report without changes has nothing to propose; a malformed one is still
            # queued, so the proposal outbox records why it cannot be sent.
            if not rep.changes or _no_changes(rep.changes):
                continue
            handoff, decided_at = wanted[rep.id]
            rows.append(
                {
                    "id": proposal_id(handoff.id, rep.id),
                    "household_id": rep.household_id,
                    "report_id": rep.id,
                    "handoff_id": handoff.id,
                    "changes": rep.changes,
                    "verified_by": handoff.origin_office,
                    "verified_at": decided_at,
                    "status": "pending",
                    "attempts": 0,
                    "receipt_id": None,
                    "sent_at": None,
                }
            )
    return rows


def _returned_finding(handoff: Any, reason: str) -> Finding:
    """The rejected household update, back to the PKH desk with the reason."""
    evidence = json.loads(handoff.evidence)
    back: dict[str, str | int | float] = {
        "verification_handoff_id": handoff.id,
        "rejected_by": handoff.origin_office,
        "reason": safe_text(reason, 300),
        "kecamatan_code": handoff.kecamatan_code,
    }
    for name in ("facilitator_ids", "report_ids"):
        if name in evidence:
            back[name] = evidence[name]
    return Finding(
        kind=HandoffKind.HOUSEHOLD_UPDATE_REJECTED,
        subject_token=handoff.subject_token,
        period=handoff.period,
        receivers=(Office(kind=OfficeKind.AGENCY, code=PKH_AGENCY),),
        evidence=back,
    )


def apply_decisions(
    conn: Connection,
    now: datetime,
    calendar: WorkCalendar | None = None,
    scope: RegionScope = WHOLE_PROVINCE,
) -> DecisionCounts:
    """Apply unapplied office decisions in decided_at order; every one is marked with its outcome.

    A scoped run applies only the decisions about the scope's handoffs (decisions about
    unknown handoffs wait for a province run, which marks them).
    """
    chain = ChainWriter(conn)
    counts = DecisionCounts()
    applied_at = to_utc(now)
    # Current state per handoff as decisions are applied: two answers in one batch see
    # each other.
    states: dict[str, str] = {}
    last: tuple[datetime, str] | None = None
    while True:
        stmt = select(DECISION).where(
            DECISION.c.applied_at.is_(None), handoff_ids_in_scope(scope, DECISION.c.handoff_id)
        )
        if last is not None:
            stmt = stmt.where(
                or_(
                    DECISION.c.decided_at > last[0],
                    and_(DECISION.c.decided_at == last[0], DECISION.c.id > last[1]),
                )
            )
        decisions = conn.execute(
            stmt.order_by(DECISION.c.decided_at, DECISION.c.id).limit(CHUNK)
        ).all()
        if not decisions:
            break
        last = (decisions[-1].decided_at, decisions[-1].id)
        handoffs = handoff_rows(conn, (d.handoff_id for d in decisions))
        changes: list[Change] = []
        outcomes: list[dict[str, Any]] = []
        approved: list[tuple[Any, datetime]] = []
        returned: dict[str, list[Finding]] = defaultdict(list)
        for d in decisions:
            h = handoffs.get(d.handoff_id)
            view = None
            if h is not None:
                # Two answers in one batch see each other: the state as applied so far.
                view = HandoffView(h.id, states.get(h.id, h.state), h.office, h.origin_office)
            outcome = decide(view, d.office, d.decision)
            if outcome == "deferred":
                # Left unapplied: the next run sees it again once the delivery is on record.
                counts.deferred += 1
                continue
            if h is not None and view is not None and outcome == "applied":
                decided_at = stored_utc(d.decided_at) or applied_at
                officer = safe_text(d.officer, 60)
                changes.append(
                    Change(
                        h.id,
                        view.state,
                        HandoffState(d.decision),
                        officer,
                        safe_text(f"{d.office}: {d.reason}" if d.reason else d.office, 500),
                        decided_at,
                        officer=officer,
                        decision_reason=safe_text(d.reason, 500),
                    )
                )
                states[h.id] = d.decision
                if h.kind == HandoffKind.HOUSEHOLD_UPDATE_VERIFICATION:
                    if d.decision == HandoffState.RESOLVED:
                        approved.append((h, decided_at))
                    elif d.decision == HandoffState.REJECTED:
                        returned[h.origin_office].append(_returned_finding(h, d.reason))
            setattr(counts, outcome, getattr(counts, outcome) + 1)
            outcomes.append({"b_id": d.id, "b_outcome": outcome})
        apply_changes(conn, chain, changes)
        if outcomes:
            conn.execute(
                DECISION.update()
                .where(DECISION.c.id == bindparam("b_id"))
                .values(applied_at=applied_at, outcome=bindparam("b_outcome")),
                outcomes,
            )
        proposals = _proposals_for(conn, approved)
        counts.proposals += insert_new(conn, PROPOSAL, proposals, key=("id",))
        # Sent by the kecamatan that rejected the update.
        for sender, findings in sorted(returned.items()):
            made = create_findings(
                conn, chain, findings, sender=sender, now=applied_at, calendar=calendar
            )
            counts.returned += made.created
    chain.flush()
    return counts
