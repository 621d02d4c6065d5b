"""Handoffs in the store: creation, transitions, delivery and proposal outboxes, decisions.

Every function takes a Connection inside the caller's transaction and works in bulk. Any
function that changes a handoff's state appends to the audit chain through one
`ChainWriter`, which it creates first: that locks the chain's head for the rest of the
transaction, so concurrent writers queue and each reads states no one else is changing.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections import Counter, defaultdict
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime
from typing import Any

from pydantic import ValidationError
from sqlalchemy import Connection, Select, and_, bindparam, func, literal, or_, select

from integrations.audit_store import ChainWriter, audit_rows, verify_audit
from integrations.db import insert_new
from integrations.store import CHUNK, chunks, stored_utc, to_utc
from models.checks import Finding
from models.contracts.registry import HouseholdChanges
from models.handoffs import (
    ESCALATABLE_STATES,
    FINAL_STATES,
    HandoffKind,
    HandoffState,
    IllegalTransition,
    Office,
    OfficeKind,
    handoff_due_date,
    handoff_key,
    has_clear_id,
    needs_escalation,
    plan_transition,
)
from models.identity import mask_id, mask_ids_in_text
from models.tables import (
    DataRequest,
    DataSubmission,
    FacilitatorReport,
    Handoff,
    HandoffDelivery,
    OfficeDecision,
    UpdateProposal,
)
from models.workdays import WorkCalendar, default_calendar, local_date

__all__ = [
    "CHUNK",
    "HUB_ACTOR",
    "PKH_AGENCY",
    "Change",
    "DecisionCounts",
    "HandoffCounts",
    "HandoffNotFound",
    "OfficeCounts",
    "apply_changes",
    "apply_decisions",
    "apply_submissions",
    "chunks",
    "create_handoffs",
    "escalate_overdue",
    "fan_out_data_requests",
    "get_handoff",
    "handoff_audit",
    "keyset_pages",
    "list_handoffs",
    "overdue_pages",
    "proposal_id",
    "reconciliation",
    "safe_text",
    "stored_utc",
    "to_utc",
    "transition",
    "verify_audit",
]

HANDOFF = Handoff.__table__  # type: ignore[attr-defined]
DELIVERY = HandoffDelivery.__table__  # type: ignore[attr-defined]
DECISION = OfficeDecision.__table__  # type: ignore[attr-defined]
PROPOSAL = UpdateProposal.__table__  # type: ignore[attr-defined]
REPORT = FacilitatorReport.__table__  # type: ignore[attr-defined]
REQUEST = DataRequest.__table__  # type: ignore[attr-defined]
SUBMISSION = DataSubmission.__table__  # type: ignore[attr-defined]

HUB_ACTOR = "hub"
"""Audit actor of the transitions the hub makes itself (delivery, escalation)."""
PKH_AGENCY = "pkh"
"""Agency desk that gets rejected household updates back."""
STATISTIK_SENDER = "statistik"

_S = HandoffState
_DECISION_TARGETS = frozenset({_S.ACKNOWLEDGED, _S.RESOLVED, _S.REJECTED})
# Longer than a NIK: NIPs (18 digits) and pasted account numbers.
_LONG_DIGITS = re.compile(r"[0-9]{16,}")


class HandoffNotFound(LookupError):
    """No handoff with this id in the store."""


def safe_text(text: str, limit: int) -> str:
    """Text with NIK/No. KK/NIP-like digit runs masked, cut to limit characters."""
    masked = mask_ids_in_text(text)
    if has_clear_id(masked):
        masked = _LONG_DIGITS.sub(lambda m: mask_id(m.group(0)), masked)
    return masked[:limit]


def keyset_pages(conn: Connection, stmt: Select[Any], id_column: Any) -> Iterator[list[Any]]:
    """Rows of `stmt` in `id_column` order, CHUNK at a time, each page after the last id read."""
    after = ""
    while True:
        rows = list(
            conn.execute(stmt.where(id_column > after).order_by(id_column).limit(CHUNK)).all()
        )
        if not rows:
            return
        yield rows
        after = rows[-1]._mapping[id_column]


# --- counts ----------------------------------------------------------------------------------


@dataclass(slots=True)
class HandoffCounts:
    """Handoffs created by one call, and those that existed already (idempotent replays)."""

    created: int = 0
    existing: int = 0
    by_kind: Counter[str] = field(default_factory=Counter)

    def as_dict(self) -> dict[str, Any]:
        """Plain dict for task results and artifacts."""
        return {"created": self.created, "existing": self.existing, "by_kind": dict(self.by_kind)}


@dataclass(slots=True)
class DecisionCounts:
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

    def as_dict(self) -> dict[str, int]:
        """Plain dict for task results and artifacts."""
        return {
            "applied": self.applied,
            "repeat": self.repeat,
            "superseded": self.superseded,
            "illegal": self.illegal,
            "unknown": self.unknown,
            "deferred": self.deferred,
            "proposals": self.proposals,
            "returned": self.returned,
        }


@dataclass(frozen=True, slots=True)
class OfficeCounts:
    """Reconciliation of one office: deliveries sent, handoffs accepted, rejected, pending."""

    office: str
    sent: int = 0
    accepted: int = 0
    rejected: int = 0
    pending: int = 0

    def as_dict(self) -> dict[str, Any]:
        """Plain dict for task results and artifacts."""
        return {
            "office": self.office,
            "sent": self.sent,
            "accepted": self.accepted,
            "rejected": self.rejected,
            "pending": self.pending,
        }


# --- transitions -----------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Change:
    """One planned state change of a handoff, with what its audit row and columns record."""

    handoff_id: str
    from_state: str
    to_state: HandoffState
    actor: str
    reason: str
    at: datetime
    officer: str = ""
    office: str = ""
    # The office's own words, kept on the handoff; the audit reason adds who said them.
    decision_reason: str | None = None


def _update_stmt(target: HandoffState) -> Any:
    values: dict[str, Any] = {"state": target.value, "updated_at": bindparam("b_at")}
    if target is _S.DELIVERED:
        # The first delivery counts for the office's response times; later ones (to the
        # kabupaten after an escalation) do not reset it.
        values["delivered_at"] = func.coalesce(HANDOFF.c.delivered_at, bindparam("b_at"))
    elif target is _S.ESCALATED:
        values["escalated_at"] = bindparam("b_at")
        values["office"] = bindparam("b_office")
    else:
        # A resolution or rejection is also the office's first answer when it did not
        # acknowledge first.
        values["acknowledged_at"] = func.coalesce(HANDOFF.c.acknowledged_at, bindparam("b_at"))
        values["officer"] = bindparam("b_officer")
        values["decision_reason"] = bindparam("b_reason")
        if target in FINAL_STATES:
            values["closed_at"] = bindparam("b_at")
    return (
        HANDOFF.update()
        .where(HANDOFF.c.id == bindparam("b_id"), HANDOFF.c.state == bindparam("b_from"))
        .values(**values)
    )


def apply_changes(conn: Connection, chain: ChainWriter, changes: Sequence[Change]) -> None:
    """Append the audit rows in order, then update the handoffs with few statements.

    Updates run in waves: a handoff's first change in this batch, then its second, and so
    on, each wave one statement per target state, so two answers to one handoff land in order.
    """
    waves: list[dict[HandoffState, list[dict[str, Any]]]] = []
    seen: Counter[str] = Counter()
    for c in changes:
        at = to_utc(c.at)
        chain.append(c.handoff_id, c.from_state, c.to_state, actor=c.actor, reason=c.reason, at=at)
        wave = seen[c.handoff_id]
        seen[c.handoff_id] += 1
        if wave == len(waves):
            waves.append(defaultdict(list))
        waves[wave][c.to_state].append(
            {
                "b_id": c.handoff_id,
                "b_from": c.from_state,
                "b_at": at,
                "b_officer": c.officer,
                "b_reason": c.reason if c.decision_reason is None else c.decision_reason,
                "b_office": c.office,
            }
        )
    for by_target in waves:
        for target, params in by_target.items():
            for part in chunks(params):
                conn.execute(_update_stmt(target), list(part))


def _states(conn: Connection, ids: Iterable[str]) -> dict[str, Any]:
    """Current rows (id, state, office, ...) of the given handoffs."""
    wanted = sorted(set(ids))
    out: dict[str, Any] = {}
    for part in chunks(wanted):
        rows = conn.execute(
            select(
                HANDOFF.c.id,
                HANDOFF.c.state,
                HANDOFF.c.office,
                HANDOFF.c.origin_office,
                HANDOFF.c.kind,
                HANDOFF.c.subject_token,
                HANDOFF.c.period,
                HANDOFF.c.evidence,
                HANDOFF.c.kecamatan_code,
            ).where(HANDOFF.c.id.in_(list(part)))
        )
        out.update({row.id: row for row in rows})
    return out


def transition(
    conn: Connection,
    handoff_id: str,
    target: HandoffState | str,
    *,
    actor: str,
    reason: str,
    at: datetime,
) -> bool:
    """Move one handoff to target with an audit row; False for a repeat; raise if illegal."""
    chain = ChainWriter(conn)
    row = _states(conn, [handoff_id]).get(handoff_id)
    if row is None:
        raise HandoffNotFound(f"no handoff {handoff_id}")
    goal = HandoffState(target)
    if not plan_transition(row.state, goal, handoff_id=handoff_id):
        return False
    office = ""
    if goal is _S.ESCALATED:
        up = Office.parse(row.office).escalation_target
        if up is None:
            raise ValueError(f"handoff {handoff_id}: {row.office} has no office to escalate to")
        office = up.key
    clean_actor = safe_text(actor, 60)
    apply_changes(
        conn,
        chain,
        [
            Change(
                handoff_id,
                row.state,
                goal,
                clean_actor,
                safe_text(reason, 500),
                at,
                officer=clean_actor,
                office=office,
            )
        ],
    )
    chain.flush()
    return True


# --- creation --------------------------------------------------------------------------------


def _evidence_region(evidence: Mapping[str, Any]) -> str:
    """The first kecamatan the evidence names (directly or through a desa), else ""."""
    for name in ("kecamatan_code", "kecamatan_codes", "desa_code", "desa_codes"):
        value = evidence.get(name)
        if not isinstance(value, str) or not value:
            continue
        first = sorted(v.strip() for v in value.split(",") if v.strip())
        if first and re.fullmatch(r"\d\d\.\d\d\.\d\d(\.\d{4})?", first[0]):
            return first[0][:8]
    return ""


def _regions(receiver: Office, evidence: Mapping[str, Any]) -> tuple[str, str]:
    """(kecamatan_code, kabupaten_code) a handoff for receiver is counted under."""
    if receiver.kind is OfficeKind.DESA:
        kec = receiver.code[:8]
    elif receiver.kind is OfficeKind.KECAMATAN:
        kec = receiver.code
    else:
        kec = _evidence_region(evidence)
    if kec:
        return kec, kec[:5]
    return "", receiver.code if receiver.kind is OfficeKind.KABUPATEN else ""


def _evidence_json(evidence: Mapping[str, Any], handoff_id: str) -> str:
    text = json.dumps(dict(evidence), sort_keys=True, ensure_ascii=False, separators=(",", ":"))
    if has_clear_id(text):
        # Findings mask their evidence; anything else reaching here is a bug to stop, and
        # the message names neither the field's value nor the person.
        raise ValueError(f"handoff {handoff_id}: evidence holds a clear NIK/No. KK; refused")
    return text


def _existing_ids(conn: Connection, ids: Sequence[str]) -> set[str]:
    found: set[str] = set()
    for part in chunks(ids):
        found.update(
            conn.execute(select(HANDOFF.c.id).where(HANDOFF.c.id.in_(list(part)))).scalars()
        )
    return found


def _insert_new(
    conn: Connection, chain: ChainWriter, rows: Sequence[dict[str, Any]], counts: HandoffCounts
) -> None:
    """Insert rows whose id is not stored yet, each with its None -> open audit row."""
    unique: dict[str, dict[str, Any]] = {}
    for row in rows:
        unique.setdefault(row["id"], row)
    existing = _existing_ids(conn, list(unique))
    new = [row for hid, row in unique.items() if hid not in existing]
    counts.existing += len(unique) - len(new)
    for row in new:
        chain.append(
            row["id"],
            None,
            _S.OPEN,
            actor=row["sender"],
            reason=f"created for {row['origin_office']}",
            at=row["created_at"],
        )
        counts.by_kind[row["kind"]] += 1
    for part in chunks(new):
        conn.execute(HANDOFF.insert(), list(part))
    counts.created += len(new)


def _handoff_row(
    *,
    handoff_id: str,
    kind: HandoffKind,
    subject_token: str,
    period: str,
    sender: str,
    receiver: Office,
    evidence: Mapping[str, Any],
    now: datetime,
    due: date,
    source_ref: str = "",
) -> dict[str, Any]:
    kec, kab = _regions(receiver, evidence)
    return {
        "id": handoff_id,
        "kind": kind.value,
        "subject_token": subject_token,
        "period": period,
        "sender": sender,
        "origin_office": receiver.key,
        "office": receiver.key,
        "kecamatan_code": kec,
        "kabupaten_code": kab,
        "source_ref": source_ref,
        "evidence": _evidence_json(evidence, handoff_id),
        "state": _S.OPEN.value,
        "created_at": now,
        "due_date": due,
        "delivered_at": None,
        "acknowledged_at": None,
        "closed_at": None,
        "escalated_at": None,
        "decision_reason": "",
        "officer": "",
        "updated_at": now,
    }


def _check_sender(sender: str) -> str:
    if not sender or len(sender) > 60 or has_clear_id(sender):
        raise ValueError("sender must be a short office or agency name (1-60 characters)")
    return sender


def _create(
    conn: Connection,
    chain: ChainWriter,
    findings: Iterable[Finding],
    *,
    sender: str,
    now: datetime,
    calendar: WorkCalendar | None,
) -> HandoffCounts:
    _check_sender(sender)
    at = to_utc(now)
    counts = HandoffCounts()
    rows: list[dict[str, Any]] = []
    for finding in findings:
        due = handoff_due_date(finding.kind, at, calendar)
        for receiver, hid in zip(finding.receivers, finding.keys, strict=True):
            rows.append(
                _handoff_row(
                    handoff_id=hid,
                    kind=HandoffKind(finding.kind),
                    subject_token=finding.subject_token,
                    period=finding.period,
                    sender=sender,
                    receiver=receiver,
                    evidence=finding.evidence,
                    now=at,
                    due=due,
                )
            )
        if len(rows) >= CHUNK:
            _insert_new(conn, chain, rows, counts)
            rows = []
    _insert_new(conn, chain, rows, counts)
    return counts


def create_handoffs(
    conn: Connection,
    findings: Iterable[Finding],
    *,
    sender: str,
    now: datetime,
    calendar: WorkCalendar | None = None,
) -> HandoffCounts:
    """One handoff per (finding, receiver); ids that exist are left untouched (idempotent)."""
    chain = ChainWriter(conn)
    counts = _create(conn, chain, findings, sender=sender, now=now, calendar=calendar)
    chain.flush()
    return counts


# --- escalation ------------------------------------------------------------------------------


def overdue_pages(
    conn: Connection, now: datetime, calendar: WorkCalendar | None = None
) -> Iterator[list[Any]]:
    """Pages of kecamatan and desa handoffs that are overdue on working days and escalatable."""
    cal = calendar or default_calendar()
    escalatable = sorted(s.value for s in ESCALATABLE_STATES)
    # A superset in SQL (due before today, a regional office below the kabupaten); the
    # working-day rule, which moves a due date that fell on a day off, decides in Python.
    base = select(HANDOFF.c.id, HANDOFF.c.state, HANDOFF.c.due_date, HANDOFF.c.office).where(
        HANDOFF.c.state.in_(escalatable),
        HANDOFF.c.due_date < local_date(now),
        or_(HANDOFF.c.office.like("kecamatan:%"), HANDOFF.c.office.like("desa:%")),
    )
    for rows in keyset_pages(conn, base, HANDOFF.c.id):
        yield [row for row in rows if needs_escalation(row.state, row.due_date, now, cal)]


def escalate_overdue(conn: Connection, now: datetime, calendar: WorkCalendar | None = None) -> int:
    """Escalate overdue kecamatan and desa handoffs to their kabupaten/kota; returns how many."""
    chain = ChainWriter(conn)
    escalated = 0
    for rows in overdue_pages(conn, now, calendar):
        changes: list[Change] = []
        for row in rows:
            target = Office.parse(row.office).escalation_target
            if target is None:
                continue
            changes.append(
                Change(
                    row.id,
                    row.state,
                    _S.ESCALATED,
                    HUB_ACTOR,
                    f"overdue since {row.due_date.isoformat()}: {row.office} -> {target.key}",
                    now,
                    office=target.key,
                )
            )
        apply_changes(conn, chain, changes)
        escalated += len(changes)
    chain.flush()
    return escalated


# --- data requests (statistik) ---------------------------------------------------------------


def _request_period(request_id: str) -> str:
    # Handoff periods hold 20 characters; longer request ids are shortened to a stable digest.
    if len(request_id) <= 20:
        return request_id
    return hashlib.sha256(request_id.encode("utf-8")).hexdigest()[:20]


def fan_out_data_requests(conn: Connection, now: datetime) -> int:
    """One DATA_REQUEST handoff per (request, desa), due on the request's date; new ones only."""
    chain = ChainWriter(conn)
    at = to_utc(now)
    counts = HandoffCounts()
    for requests in keyset_pages(conn, select(REQUEST), REQUEST.c.id):
        rows: list[dict[str, Any]] = []
        for req in requests:
            period = _request_period(req.id)
            for code in sorted({c.strip() for c in req.desa_codes.split(",") if c.strip()}):
                receiver = Office(kind=OfficeKind.DESA, code=code)
                rows.append(
                    _handoff_row(
                        handoff_id=handoff_key(HandoffKind.DATA_REQUEST, req.id, period, receiver),
                        kind=HandoffKind.DATA_REQUEST,
                        subject_token=req.id,
                        period=period,
                        sender=STATISTIK_SENDER,
                        receiver=receiver,
                        evidence={
                            "request_id": req.id,
                            "title": safe_text(req.title, 200),
                            "ksk_id": safe_text(req.ksk_id, 64),
                            "kecamatan_code": req.kecamatan_code,
                            "desa_code": receiver.code,
                            "requested_on": req.requested_on.isoformat(),
                        },
                        now=at,
                        due=req.due_date,
                        source_ref=req.id,
                    )
                )
        _insert_new(conn, chain, rows, counts)
    chain.flush()
    return counts.created


def apply_submissions(conn: Connection, now: datetime) -> int:
    """Resolve each delivered (request, desa) handoff that has a submission; returns how many."""
    chain = ChainWriter(conn)
    open_states = sorted(s.value for s in (_S.DELIVERED, _S.ACKNOWLEDGED, _S.ESCALATED))
    # Open handoffs wait: the desa's answer is applied once the delivery is on record.
    stmt = (
        select(
            HANDOFF.c.id,
            HANDOFF.c.state,
            HANDOFF.c.origin_office,
            func.min(SUBMISSION.c.id).label("submission_id"),
            func.min(SUBMISSION.c.submitted_at).label("submitted_at"),
        )
        .select_from(
            HANDOFF.join(
                SUBMISSION,
                and_(
                    HANDOFF.c.source_ref == SUBMISSION.c.request_id,
                    HANDOFF.c.origin_office == literal("desa:") + SUBMISSION.c.desa_code,
                ),
            )
        )
        .where(
            HANDOFF.c.kind == HandoffKind.DATA_REQUEST.value,
            HANDOFF.c.state.in_(open_states),
        )
        .group_by(HANDOFF.c.id, HANDOFF.c.state, HANDOFF.c.origin_office)
        .order_by(HANDOFF.c.id)
    )
    changes = [
        Change(
            row.id,
            row.state,
            _S.RESOLVED,
            row.origin_office,
            f"submission {safe_text(row.submission_id, 64)} received",
            stored_utc(row.submitted_at) or now,
            officer=row.origin_office,
        )
        for row in conn.execute(stmt)
    ]
    apply_changes(conn, chain, changes)
    chain.flush()
    return len(changes)


# --- office decisions ------------------------------------------------------------------------


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
    conn: Connection, now: datetime, calendar: WorkCalendar | None = None
) -> DecisionCounts:
    """Apply unapplied office decisions in decided_at order; repeats and illegal ones are marked."""
    chain = ChainWriter(conn)
    counts = DecisionCounts()
    applied_at = to_utc(now)
    # Current state per handoff as decisions are applied: two answers in one batch see
    # each other.
    states: dict[str, str] = {}
    last: tuple[datetime, str] | None = None
    while True:
        stmt = select(DECISION).where(DECISION.c.applied_at.is_(None))
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
        handoffs = _states(conn, (d.handoff_id for d in decisions))
        changes: list[Change] = []
        outcomes: list[dict[str, Any]] = []
        approved: list[tuple[Any, datetime]] = []
        returned: dict[str, list[Finding]] = defaultdict(list)
        for d in decisions:
            h = handoffs.get(d.handoff_id)
            if h is None:
                outcome = "unknown"
            elif d.office not in (h.office, h.origin_office) or d.decision not in _DECISION_TARGETS:
                # Only the office holding the handoff (or the one it was for) decides, and
                # only to acknowledge, resolve or reject.
                outcome = "illegal"
            else:
                current = states.get(h.id, h.state)
                if current == _S.OPEN:
                    counts.deferred += 1
                    continue
                if current in FINAL_STATES and d.decision != current:
                    outcome = "superseded"
                else:
                    try:
                        changed = plan_transition(current, d.decision, handoff_id=h.id)
                    except (IllegalTransition, ValueError):
                        outcome = "illegal"
                    else:
                        outcome = "applied" if changed else "repeat"
                if outcome == "applied":
                    decided_at = stored_utc(d.decided_at) or applied_at
                    officer = safe_text(d.officer, 60)
                    changes.append(
                        Change(
                            h.id,
                            current,
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
                        if d.decision == _S.RESOLVED:
                            approved.append((h, decided_at))
                        elif d.decision == _S.REJECTED:
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
            made = _create(conn, chain, findings, sender=sender, now=applied_at, calendar=calendar)
            counts.returned += made.created
    chain.flush()
    return counts


# --- reconciliation and queries --------------------------------------------------------------


def reconciliation(conn: Connection) -> list[OfficeCounts]:
    """Per office: deliveries sent; handoffs accepted (acknowledged/resolved), rejected, pending."""
    sent: Counter[str] = Counter()
    for office, n in conn.execute(
        select(DELIVERY.c.office, func.count())
        .where(DELIVERY.c.status == "sent")
        .group_by(DELIVERY.c.office)
    ):
        sent[office] = int(n)
    by_state: dict[str, Counter[str]] = defaultdict(Counter)
    for office, state, n in conn.execute(
        select(HANDOFF.c.office, HANDOFF.c.state, func.count()).group_by(
            HANDOFF.c.office, HANDOFF.c.state
        )
    ):
        by_state[office][state] = int(n)
    out = []
    for office in sorted(set(sent) | set(by_state)):
        states = by_state.get(office, Counter())
        out.append(
            OfficeCounts(
                office=office,
                sent=sent[office],
                accepted=states[_S.ACKNOWLEDGED] + states[_S.RESOLVED],
                rejected=states[_S.REJECTED],
                pending=states[_S.OPEN] + states[_S.DELIVERED] + states[_S.ESCALATED],
            )
        )
    return out


_LISTED = (
    "id",
    "kind",
    "state",
    "office",
    "origin_office",
    "kecamatan_code",
    "kabupaten_code",
    "subject_token",
    "period",
    "sender",
    "due_date",
    "created_at",
    "delivered_at",
    "acknowledged_at",
    "closed_at",
    "escalated_at",
    "officer",
    "decision_reason",
)


def _shown(row: Any, columns: Iterable[str]) -> dict[str, Any]:
    """A row for operators: times in UTC, any text masked once more (stored text is masked)."""
    out: dict[str, Any] = {}
    for name in columns:
        value = row[name]
        if isinstance(value, datetime):
            value = stored_utc(value)
        elif isinstance(value, str):
            value = safe_text(value, 10_000)
        out[name] = value
    return out


def list_handoffs(
    conn: Connection,
    *,
    office: str | None = None,
    state: str | None = None,
    kind: str | None = None,
    kecamatan: str | None = None,
    limit: int = 100,
) -> list[dict[str, Any]]:
    """Handoffs matching the filters (any may be None), newest first, masked for display."""
    stmt = select(*(HANDOFF.c[name] for name in _LISTED))
    if office:
        stmt = stmt.where(HANDOFF.c.office == Office.parse(office).key)
    if state:
        stmt = stmt.where(HANDOFF.c.state == HandoffState(state).value)
    if kind:
        stmt = stmt.where(HANDOFF.c.kind == HandoffKind(kind).value)
    if kecamatan:
        stmt = stmt.where(
            HANDOFF.c.kecamatan_code == Office(kind=OfficeKind.KECAMATAN, code=kecamatan).code
        )
    stmt = stmt.order_by(HANDOFF.c.created_at.desc(), HANDOFF.c.id).limit(limit)
    return [_shown(row, _LISTED) for row in conn.execute(stmt).mappings()]


def get_handoff(conn: Connection, handoff_id: str) -> dict[str, Any] | None:
    """One handoff with its evidence and deliveries, masked for display; None if unknown."""
    row = conn.execute(select(HANDOFF).where(HANDOFF.c.id == handoff_id)).mappings().first()
    if row is None:
        return None
    shown = _shown(row, (*_LISTED, "source_ref"))
    shown["evidence"] = {
        k: safe_text(v, 10_000) if isinstance(v, str) else v
        for k, v in json.loads(row["evidence"]).items()
    }
    deliveries = conn.execute(
        select(DELIVERY)
        .where(DELIVERY.c.handoff_id == handoff_id)
        .order_by(DELIVERY.c.created_at, DELIVERY.c.key)
    ).mappings()
    shown["deliveries"] = [
        _shown(
            d,
            (
                "key",
                "office",
                "status",
                "attempts",
                "receipt_id",
                "last_error",
                "created_at",
                "sent_at",
            ),
        )
        for d in deliveries
    ]
    return shown


def handoff_audit(conn: Connection, handoff_id: str) -> list[dict[str, Any]]:
    """The audit trail of one handoff in chain order, masked for display."""
    columns = ("seq", "from_state", "to_state", "actor", "reason", "at", "prev_hash", "hash")
    return [_shown(row, columns) for row in audit_rows(conn, handoff_id)]
