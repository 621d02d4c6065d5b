"""The desk's reads and writes: an account's handoffs, their people, decisions and reveals.

Reads are scoped in SQL to the account's area (the same area `models.desk.can_see` decides
on, which every row is checked against once more). A decision made on the desk is stored
as an office decision, like one read back from an inbox, and applied by
`integrations.store.decisions.apply_decisions`: one decision rule, one audited transition.
A decision that changes nothing (a repeat, or one that came after the handoff was settled)
and every reveal of a person's NIK/No. KK is written to the audit chain as a desk row.
"""

from __future__ import annotations

import hashlib
import json
import secrets
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any

from sqlalchemy import ColumnElement, Connection, and_, case, false, func, or_, select, true

from integrations.store.audit import AUDIT, STORE_SUBJECT_PREFIX, ChainWriter
from integrations.store.common import stored_utc, to_utc
from integrations.store.coordination_load import (
    iter_scorecard_handoffs,
    load_overlap_counts,
    load_source_counts,
)
from integrations.store.decisions import apply_decisions
from integrations.store.handoff_queries import handoff_audit
from integrations.store.tables import DECISION, HANDOFF, HOUSEHOLD, MEMBER
from models.desk import (
    MISROUTED_PREFIX,
    Account,
    DeskAction,
    HandoffAccess,
    OfficeLevel,
    actions_for,
    can_reveal,
    can_see,
    decision_of,
)
from models.handoffs import FINAL_STATES, HandoffState, safe_text
from models.identity import mask_id
from models.scope import WHOLE_PROVINCE, RegionScope
from models.scorecard import Scorecard, compute_scorecard
from models.wilayah import get_region_registry
from models.workdays import WorkCalendar

__all__ = [
    "DECISION_SUBJECT",
    "REASON_MAX",
    "REVEAL_SUBJECT",
    "STATUSES",
    "HandoffNotVisible",
    "ListFilter",
    "NotAllowed",
    "Person",
    "SummaryRow",
    "access_of",
    "decide_on_desk",
    "desk_audit_rows",
    "list_handoffs",
    "people_for",
    "province_scorecard",
    "reveal_person",
    "summary",
    "visible_handoff",
]

REVEAL_SUBJECT = f"{STORE_SUBJECT_PREFIX}desk-reveal"
"""Audit-chain subject of an officer's reveal of a person's NIK/No. KK."""
DECISION_SUBJECT = f"{STORE_SUBJECT_PREFIX}desk-decision"
"""Audit-chain subject of a desk decision that moved nothing (a repeat, superseded, ...)."""

REASON_MAX = 400
"""Longest reason an officer may type (the audit row adds the office in front)."""

STATUSES = ("open", "overdue", "escalated", "settled", "returned", "all")
"""The list's filters, in tab order."""

_FINAL = sorted(s.value for s in FINAL_STATES)


class HandoffNotVisible(LookupError):
    """No such handoff, or not one this account may see: the desk answers 404 either way."""


class NotAllowed(PermissionError):
    """The account may see the handoff but not do this to it."""


# --- scope -----------------------------------------------------------------------------------


def _office_in(column: Any, area: str) -> ColumnElement[bool]:
    """SQL: the office key in `column` is a regional office (`models.desk`) inside `area`."""
    kinds = ("kecamatan", "desa", "kabupaten", "forkopimcam")
    terms = [column.startswith(f"{kind}:{area}.", autoescape=True) for kind in kinds]
    terms += [column == f"{kind}:{area}" for kind in kinds]
    return or_(*terms)


def area_condition(account: Account) -> ColumnElement[bool]:
    """SQL condition on HANDOFF mirroring `models.desk.can_see` for the account."""
    if not account.active:
        return false()
    office = account.office
    if office.level is OfficeLevel.PROVINCE:
        return true()
    if office.level in (OfficeLevel.KABUPATEN, OfficeLevel.KECAMATAN):
        return or_(
            _office_in(HANDOFF.c.office, office.code),
            _office_in(HANDOFF.c.origin_office, office.code),
        )
    mine = office.handoff_office
    return or_(HANDOFF.c.office == mine, HANDOFF.c.origin_office == mine)


def access_of(row: Any) -> HandoffAccess:
    """The access rules' view of a handoff row."""
    return HandoffAccess(
        row.office, row.origin_office, row.kecamatan_code, row.kabupaten_code, row.state
    )


# --- people ----------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Person:
    """The person (or household) a handoff is about, as the registry holds them."""

    name: str
    nik: str
    no_kk: str
    desa_code: str
    address: str

    @property
    def masked_nik(self) -> str:
        """The NIK as every page shows it: 3578••••••••0001."""
        return mask_id(self.nik) if self.nik else ""

    @property
    def masked_kk(self) -> str:
        """The No. KK as every page shows it."""
        return mask_id(self.no_kk) if self.no_kk else ""

    @property
    def desa_name(self) -> str:
        """The desa/kelurahan's name from the region registry (its code if unknown)."""
        region = get_region_registry().get(self.desa_code) if self.desa_code else None
        return region.name if region else self.desa_code


def people_for(conn: Connection, subjects: Iterable[str]) -> dict[str, Person]:
    """The registry's person for each subject: a member's NIK token, or a household id."""
    wanted = sorted({s for s in subjects if s})
    if not wanted:
        return {}
    members = conn.execute(
        select(MEMBER.c.nik_token, MEMBER.c.household_id, MEMBER.c.name, MEMBER.c.nik)
        .where(MEMBER.c.nik_token.in_(wanted))
        .order_by(MEMBER.c.nik_token, MEMBER.c.updated_at.desc(), MEMBER.c.id)
    ).all()
    by_token: dict[str, Any] = {}
    for m in members:
        by_token.setdefault(m.nik_token, m)
    household_ids = {m.household_id for m in by_token.values()} | set(wanted)
    households = {
        h.id: h
        for h in conn.execute(
            select(
                HOUSEHOLD.c.id, HOUSEHOLD.c.no_kk, HOUSEHOLD.c.desa_code, HOUSEHOLD.c.address
            ).where(HOUSEHOLD.c.id.in_(sorted(household_ids)))
        )
    }
    # A household subject (a facilitator's update) is shown by its head.
    heads: dict[str, Any] = {}
    household_subjects = sorted(s for s in wanted if s in households and s not in by_token)
    if household_subjects:
        for m in conn.execute(
            select(MEMBER.c.household_id, MEMBER.c.name, MEMBER.c.nik, MEMBER.c.relationship)
            .where(MEMBER.c.household_id.in_(household_subjects))
            .order_by(MEMBER.c.household_id, MEMBER.c.id)
        ):
            if m.household_id not in heads or m.relationship == "kepala":
                heads[m.household_id] = m
    out: dict[str, Person] = {}
    for subject in wanted:
        member = by_token.get(subject)
        if member is not None:
            h = households.get(member.household_id)
        elif subject in households:
            h, member = households[subject], heads.get(subject)
        else:
            continue
        out[subject] = Person(
            name=member.name if member is not None else "",
            nik=member.nik if member is not None else "",
            no_kk=h.no_kk if h is not None else "",
            desa_code=h.desa_code if h is not None else "",
            address=h.address if h is not None else "",
        )
    return out


# --- lists -----------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class ListFilter:
    """The list's filters: status tab, kind, kecamatan, page (from 1)."""

    status: str = "open"
    kind: str = ""
    kecamatan: str = ""
    page: int = 1


def _status_condition(status: str, today: date) -> ColumnElement[bool]:
    if status == "open":
        return HANDOFF.c.state.not_in(_FINAL)
    if status == "overdue":
        return and_(HANDOFF.c.state.not_in(_FINAL), HANDOFF.c.due_date < today)
    if status == "escalated":
        # Escalated and not settled yet, also once delivered again to the kabupaten.
        return and_(HANDOFF.c.escalated_at.is_not(None), HANDOFF.c.state.not_in(_FINAL))
    if status == "settled":
        return HANDOFF.c.state.in_(_FINAL)
    if status == "returned":
        return and_(
            HANDOFF.c.state == HandoffState.REJECTED.value,
            HANDOFF.c.decision_reason.startswith(MISROUTED_PREFIX, autoescape=True),
        )
    return true()


_LIST_COLUMNS = (
    HANDOFF.c.id,
    HANDOFF.c.kind,
    HANDOFF.c.state,
    HANDOFF.c.office,
    HANDOFF.c.origin_office,
    HANDOFF.c.kecamatan_code,
    HANDOFF.c.kabupaten_code,
    HANDOFF.c.subject_token,
    HANDOFF.c.period,
    HANDOFF.c.due_date,
    HANDOFF.c.created_at,
    HANDOFF.c.closed_at,
    HANDOFF.c.escalated_at,
    HANDOFF.c.decision_reason,
)


def list_handoffs(
    conn: Connection,
    account: Account,
    flt: ListFilter,
    today: date,
    *,
    limit: int,
    offset: int = 0,
) -> tuple[list[Any], int]:
    """One page of the account's handoffs (soonest due first) and the count of all matching."""
    where = [area_condition(account), _status_condition(flt.status, today)]
    if flt.kind:
        where.append(HANDOFF.c.kind == flt.kind)
    if flt.kecamatan:
        where.append(HANDOFF.c.kecamatan_code == flt.kecamatan)
    total = int(conn.execute(select(func.count()).select_from(HANDOFF).where(*where)).scalar_one())
    rows = conn.execute(
        select(*_LIST_COLUMNS)
        .where(*where)
        .order_by(HANDOFF.c.due_date, HANDOFF.c.id)
        .limit(limit)
        .offset(offset)
    ).all()
    # The SQL scope mirrors the rule; the rule has the last word.
    return [r for r in rows if can_see(account, access_of(r))], total


def visible_handoff(conn: Connection, account: Account, handoff_id: str) -> Any:
    """The account's handoff `handoff_id`; HandoffNotVisible when unknown or out of its area."""
    if not isinstance(handoff_id, str) or len(handoff_id) > 32:
        raise HandoffNotVisible(handoff_id[:40])
    row = conn.execute(select(HANDOFF).where(HANDOFF.c.id == handoff_id)).first()
    if row is None or not can_see(account, access_of(row)):
        raise HandoffNotVisible(handoff_id)
    return row


def evidence_of(row: Any) -> list[tuple[str, str]]:
    """The handoff's evidence as (field, masked text) pairs."""
    try:
        evidence = json.loads(row.evidence)
    except (TypeError, ValueError):
        return []
    return [(str(k), safe_text(str(v), 2000)) for k, v in sorted(evidence.items())]


def desk_audit_rows(conn: Connection, handoff_id: str) -> list[dict[str, Any]]:
    """The handoff's audit trail with the desk's rows about it (reveals, unapplied answers)."""
    rows = handoff_audit(conn, handoff_id)
    extra = conn.execute(
        select(AUDIT.c.seq, AUDIT.c.to_state, AUDIT.c.actor, AUDIT.c.reason, AUDIT.c.at).where(
            AUDIT.c.handoff_id.in_([REVEAL_SUBJECT, DECISION_SUBJECT]),
            AUDIT.c.reason.startswith(f"handoff {handoff_id}", autoescape=True),
        )
    ).all()
    for r in extra:
        rows.append(
            {
                "seq": r.seq,
                "from_state": None,
                "to_state": r.to_state,
                "actor": safe_text(r.actor, 60),
                "reason": safe_text(r.reason, 500),
                "at": stored_utc(r.at),
            }
        )
    return sorted(rows, key=lambda r: r["seq"])


# --- writes ----------------------------------------------------------------------------------


def _actor(account: Account) -> str:
    return f"desk:{account.email}"[:60]


def _scope_of(row: Any) -> RegionScope:
    # Applying the desk's decision also applies any inbox decision about the same region
    # that is waiting: all of them by the same rule, in the order they were decided.
    if row.kecamatan_code:
        return RegionScope(kecamatan=[row.kecamatan_code])
    if row.kabupaten_code:
        return RegionScope(kabupaten=[row.kabupaten_code])
    return WHOLE_PROVINCE


def decide_on_desk(
    conn: Connection,
    account: Account,
    handoff_id: str,
    action: str,
    reason: str,
    now: datetime,
    calendar: WorkCalendar | None = None,
) -> str:
    """Record and apply an officer's decision; returns its outcome (`models.decisions.Outcome`).

    Call inside a write transaction. HandoffNotVisible when the account may not see the
    handoff, NotAllowed when it may not take this action, ValueError for a missing or too
    long reason.
    """
    row = visible_handoff(conn, account, handoff_id)
    try:
        act = DeskAction(action)
    except ValueError:
        raise NotAllowed("unknown action") from None
    if act not in actions_for(account, access_of(row)):
        raise NotAllowed(f"{act.value} is not open to this account on this handoff")
    if len(reason) > REASON_MAX:
        raise ValueError(f"alasan paling panjang {REASON_MAX} karakter")
    target, text = decision_of(act, reason)
    office = account.office.handoff_office
    assert office is not None  # actions_for offers nothing to the province
    at = to_utc(now)
    actor = _actor(account)
    nonce = secrets.token_hex(8)
    decision_id = (
        "desk-"
        + hashlib.sha256(f"{handoff_id}\n{actor}\n{at.isoformat()}\n{nonce}".encode()).hexdigest()[
            :40
        ]
    )
    conn.execute(
        DECISION.insert().values(
            id=decision_id,
            handoff_id=handoff_id,
            office=office,
            decision=target.value,
            reason=text,
            officer=actor,
            decided_at=at,
            updated_at=at,
            applied_at=None,
            outcome="",
        )
    )
    apply_decisions(conn, at, calendar, scope=_scope_of(row))
    outcome = str(
        conn.execute(select(DECISION.c.outcome).where(DECISION.c.id == decision_id)).scalar_one()
    )
    if outcome != "applied":
        chain = ChainWriter(conn)
        chain.record(
            DECISION_SUBJECT,
            (outcome or "pending")[:12],
            actor=actor,
            reason=f"handoff {handoff_id}: {target.value} by {office}",
            at=at,
        )
        chain.flush()
    return outcome


def reveal_person(
    conn: Connection, account: Account, handoff_id: str, now: datetime
) -> Person | None:
    """The handoff's person with the clear NIK/No. KK, the reveal written to the audit chain.

    Call inside a write transaction. NotAllowed unless the account is an officer of the
    addressed office.
    """
    row = visible_handoff(conn, account, handoff_id)
    if not can_reveal(account, access_of(row)):
        raise NotAllowed("only an officer of the addressed office may reveal the ids")
    person = people_for(conn, [row.subject_token]).get(row.subject_token)
    chain = ChainWriter(conn)
    chain.record(
        REVEAL_SUBJECT,
        "revealed",
        actor=_actor(account),
        reason=f"handoff {handoff_id}, office {account.office.key}: "
        + ("NIK/No. KK shown" if person else "no person on record"),
        at=to_utc(now),
    )
    chain.flush()
    return person


# --- summary ---------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class SummaryRow:
    """Counts of one region's handoffs."""

    code: str
    name: str
    total: int
    open: int
    overdue: int
    escalated: int
    settled: int


def summary(conn: Connection, account: Account, today: date) -> list[SummaryRow]:
    """Per kecamatan (for a kabupaten) or per kabupaten/kota (for the province) of the area."""
    group = (
        HANDOFF.c.kabupaten_code
        if account.office.level is OfficeLevel.PROVINCE
        else HANDOFF.c.kecamatan_code
    )
    is_open = HANDOFF.c.state.not_in(_FINAL)
    stmt = (
        select(
            group.label("code"),
            func.count().label("total"),
            func.sum(case((is_open, 1), else_=0)).label("open"),
            func.sum(case((and_(is_open, HANDOFF.c.due_date < today), 1), else_=0)).label(
                "overdue"
            ),
            func.sum(case((and_(is_open, HANDOFF.c.escalated_at.is_not(None)), 1), else_=0)).label(
                "escalated"
            ),
            func.sum(case((HANDOFF.c.state.in_(_FINAL), 1), else_=0)).label("settled"),
        )
        .where(area_condition(account))
        .group_by(group)
        .order_by(group)
    )
    registry = get_region_registry()
    out = []
    for r in conn.execute(stmt):
        region = registry.get(r.code) if r.code else None
        out.append(
            SummaryRow(
                code=r.code or "-",
                name=region.name if region else "(tanpa wilayah)",
                total=int(r.total),
                open=int(r.open or 0),
                overdue=int(r.overdue or 0),
                escalated=int(r.escalated or 0),
                settled=int(r.settled or 0),
            )
        )
    return out


def kinds_in(rows: Sequence[Any]) -> list[str]:
    """The kinds present in rows, sorted (for the filter's choices)."""
    return sorted({r.kind for r in rows})


def province_scorecard(conn: Connection, now: datetime, calendar: WorkCalendar) -> Scorecard:
    """The province's scorecard as of now, computed as the `kecamatan-scorecard` flow does."""
    kecamatan = [k.code for k in get_region_registry().kecamatan()]
    return compute_scorecard(
        iter_scorecard_handoffs(conn, now),
        as_of=now,
        sources=load_source_counts(conn),
        findings=load_overlap_counts(conn, now),
        kecamatan_codes=kecamatan,
        calendar=calendar,
    )
