"""Reads of handoffs for operators and reports: reconciliation per office, lists, one handoff."""

from __future__ import annotations

import json
from collections import Counter, defaultdict
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, func, select

from integrations.store.audit import audit_rows
from integrations.store.common import handoff_ids_in_scope, handoff_in_scope, stored_utc
from integrations.store.tables import DELIVERY, HANDOFF
from models.handoffs import HandoffKind, HandoffState, Office, OfficeKind, safe_text
from models.plain import AsDict
from models.scope import WHOLE_PROVINCE, RegionScope

__all__ = ["OfficeCounts", "get_handoff", "handoff_audit", "list_handoffs", "reconciliation"]

_S = HandoffState


@dataclass(frozen=True, slots=True)
class OfficeCounts(AsDict):
    """Reconciliation of one office: deliveries sent, handoffs accepted, rejected, pending."""

    office: str
    sent: int = 0
    accepted: int = 0
    rejected: int = 0
    pending: int = 0


def reconciliation(conn: Connection, scope: RegionScope = WHOLE_PROVINCE) -> list[OfficeCounts]:
    """Per office, over the scope's handoffs: deliveries sent; handoffs accepted
    (acknowledged/resolved), rejected, pending."""
    sent: Counter[str] = Counter()
    for office, n in conn.execute(
        select(DELIVERY.c.office, func.count())
        .where(DELIVERY.c.status == "sent", handoff_ids_in_scope(scope, DELIVERY.c.handoff_id))
        .group_by(DELIVERY.c.office)
    ):
        sent[office] = int(n)
    by_state: dict[str, Counter[str]] = defaultdict(Counter)
    for office, state, n in conn.execute(
        select(HANDOFF.c.office, HANDOFF.c.state, func.count())
        .where(handoff_in_scope(scope))
        .group_by(HANDOFF.c.office, HANDOFF.c.state)
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
