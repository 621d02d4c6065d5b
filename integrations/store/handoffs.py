"""Handoffs in the store: creation, transitions with their audit rows, escalation, data requests.

Every function takes a Connection inside the caller's transaction and works in bulk. Any
function that changes a handoff's state appends to the audit chain through one
`ChainWriter`, which it creates first: that locks the chain's head for the rest of the
transaction, so concurrent writers queue and each reads states no one else is changing.
Office decisions are applied by `integrations.store.decisions`; reads for operators are in
`integrations.store.handoff_queries`.
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

from sqlalchemy import Connection, and_, bindparam, func, literal, select

from integrations.store.audit import ChainWriter
from integrations.store.common import (
    CHUNK,
    chunks,
    handoff_in_scope,
    in_scope,
    keyset_pages,
    stored_utc,
    to_utc,
)
from integrations.store.tables import HANDOFF, REQUEST, SUBMISSION
from models.checks import Finding
from models.handoffs import (
    ESCALATABLE_STATES,
    FINAL_STATES,
    HandoffKind,
    HandoffState,
    Office,
    OfficeKind,
    handoff_due_date,
    handoff_key,
    has_clear_id,
    needs_escalation,
    plan_transition,
    safe_text,
)
from models.plain import AsDict
from models.scope import WHOLE_PROVINCE, RegionScope
from models.workdays import WorkCalendar, default_calendar, local_date

__all__ = [
    "FORUM_COPIES",
    "HUB_ACTOR",
    "PKH_AGENCY",
    "Change",
    "HandoffCounts",
    "HandoffNotFound",
    "apply_changes",
    "apply_submissions",
    "create_findings",
    "create_handoffs",
    "escalate_overdue",
    "fan_out_data_requests",
    "handoff_rows",
    "overdue_pages",
    "transition",
]

HUB_ACTOR = "hub"
"""Audit actor of the transitions the hub makes itself (delivery, escalation)."""
PKH_AGENCY = "pkh"
"""Agency desk that gets rejected household updates back."""
STATISTIK_SENDER = "statistik"

_S = HandoffState


class HandoffNotFound(LookupError):
    """No handoff with this id in the store."""


# --- counts ----------------------------------------------------------------------------------


@dataclass(slots=True)
class HandoffCounts(AsDict):
    """Handoffs created by one call, and those that existed already (idempotent replays)."""

    created: int = 0
    existing: int = 0
    by_kind: Counter[str] = field(default_factory=Counter)


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


def handoff_rows(conn: Connection, ids: Iterable[str]) -> dict[str, Any]:
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
    row = handoff_rows(conn, [handoff_id]).get(handoff_id)
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


def create_findings(
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
    counts = create_findings(conn, chain, findings, sender=sender, now=now, calendar=calendar)
    chain.flush()
    return counts


# --- escalation ------------------------------------------------------------------------------


def overdue_pages(
    conn: Connection,
    now: datetime,
    calendar: WorkCalendar | None = None,
    scope: RegionScope = WHOLE_PROVINCE,
) -> Iterator[list[Any]]:
    """Pages of the scope's kecamatan and desa handoffs that are overdue and escalatable."""
    cal = calendar or default_calendar()
    escalatable = {s.value for s in ESCALATABLE_STATES}
    today = local_date(now)
    # Pages walk the handoffs' key with no other condition (as `queue_deliveries` does): with
    # the state and due date in the query, SQLite searched their index and sorted what was
    # left of it for every page, a cost growing with the square of the overdue handoffs.
    # Each page keeps the candidates (due before today, a regional office below the
    # kabupaten); the working-day rule, which moves a due date that fell on a day off,
    # decides among them.
    base = select(
        HANDOFF.c.id,
        HANDOFF.c.state,
        HANDOFF.c.due_date,
        HANDOFF.c.office,
        HANDOFF.c.kind,
        HANDOFF.c.subject_token,
        HANDOFF.c.period,
        HANDOFF.c.evidence,
    ).where(handoff_in_scope(scope))
    for rows in keyset_pages(conn, base, HANDOFF.c.id):
        yield [
            row
            for row in rows
            if row.state in escalatable
            and row.due_date < today
            and row.office.startswith(("kecamatan:", "desa:"))
            and needs_escalation(row.state, row.due_date, now, cal)
        ]


# Urgent kinds whose escalation from a kecamatan is copied to the kecamatan's Forkopimcam,
# with the kind of the copy: the forum carries the response when the office does not answer.
FORUM_COPIES: Mapping[str, HandoffKind] = {
    HandoffKind.HEALTH_RED_ZONE.value: HandoffKind.HEALTH_RED_ZONE_NOTICE,
}
_COPY_SUFFIX = "/esk"


def _copy_period(period: str) -> str:
    """The copy's period: the original's marked as escalated (one copy per handoff)."""
    marked = f"{period}{_COPY_SUFFIX}"
    if len(marked) <= 20:  # the handoff table's period width
        return marked
    return hashlib.sha256(marked.encode("utf-8")).hexdigest()[:20]


def _forum_copy(
    row: Any, target: Office, now: datetime, calendar: WorkCalendar | None
) -> dict[str, Any] | None:
    """The notice to the kecamatan's Forkopimcam of an escalated urgent handoff, or None."""
    kind = FORUM_COPIES.get(row.kind)
    office = Office.parse(row.office)
    if kind is None or office.kind is not OfficeKind.KECAMATAN:
        return None
    forum = Office(kind=OfficeKind.FORKOPIMCAM, code=office.code)
    period = _copy_period(row.period)
    try:
        evidence = dict(json.loads(row.evidence or "{}"))
    except (TypeError, ValueError):
        evidence = {}
    # The figures the kecamatan got, and which handoff went up unanswered to whom.
    evidence.update(
        {
            "kecamatan_code": office.code,
            "copy_of": row.id,
            "escalated_to": target.key,
            "overdue_since": row.due_date.isoformat(),
        }
    )
    at = to_utc(now)
    return _handoff_row(
        handoff_id=handoff_key(kind, row.subject_token, period, forum),
        kind=kind,
        subject_token=row.subject_token,
        period=period,
        sender=HUB_ACTOR,
        receiver=forum,
        evidence=evidence,
        now=at,
        due=handoff_due_date(kind, at, calendar),
        source_ref=row.id,
    )


def escalate_overdue(
    conn: Connection,
    now: datetime,
    calendar: WorkCalendar | None = None,
    scope: RegionScope = WHOLE_PROVINCE,
) -> int:
    """Escalate the scope's overdue kecamatan and desa handoffs to their kabupaten/kota.

    An escalated urgent kind of `FORUM_COPIES` (a red zone's handoff to a kecamatan) is also
    copied to the kecamatan's Forkopimcam as a new notice, keyed by the escalated handoff, so
    a rerun or a second escalation creates no second copy.
    """
    chain = ChainWriter(conn)
    escalated = 0
    copies = HandoffCounts()
    for rows in overdue_pages(conn, now, calendar, scope):
        changes: list[Change] = []
        forum_rows: list[dict[str, Any]] = []
        for row in rows:
            target = Office.parse(row.office).escalation_target
            if target is None:
                continue
            copy = _forum_copy(row, target, now, calendar)
            if copy is not None:
                forum_rows.append(copy)
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
        _insert_new(conn, chain, forum_rows, copies)
        escalated += len(changes)
    chain.flush()
    return escalated


# --- data requests (statistik) ---------------------------------------------------------------


def _request_period(request_id: str) -> str:
    # Handoff periods hold 20 characters; longer request ids are shortened to a stable digest.
    if len(request_id) <= 20:
        return request_id
    return hashlib.sha256(request_id.encode("utf-8")).hexdigest()[:20]


def fan_out_data_requests(
    conn: Connection, now: datetime, scope: RegionScope = WHOLE_PROVINCE
) -> int:
    """One DATA_REQUEST handoff per (request, desa) of the scope, due on the request's date."""
    chain = ChainWriter(conn)
    at = to_utc(now)
    counts = HandoffCounts()
    requests_in_scope = select(REQUEST).where(in_scope(scope, REQUEST.c.kecamatan_code))
    for requests in keyset_pages(conn, requests_in_scope, REQUEST.c.id):
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


def apply_submissions(conn: Connection, now: datetime, scope: RegionScope = WHOLE_PROVINCE) -> int:
    """Resolve each delivered (request, desa) handoff of the scope that has a submission."""
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
            handoff_in_scope(scope),
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
