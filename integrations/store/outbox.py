"""The hub's outboxes: handoff deliveries to the office inbox, update proposals to the registry.

A row is queued (pending) in the store, sent under its idempotency key, then its receipt is
recorded. Sending and recording are separate steps on purpose: a crash between them leaves
the row pending, and sending it again under the same key returns the first receipt, so each
office sees each delivery once and the registry each proposal once.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from pydantic import BaseModel, ValidationError
from sqlalchemy import Column, Connection, Row, Select, bindparam, select

from integrations.store.audit import ChainWriter
from integrations.store.bulk import insert_new
from integrations.store.common import (
    chunks,
    handoff_ids_in_scope,
    handoff_in_scope,
    keyset_pages,
    stored_utc,
    to_utc,
)
from integrations.store.handoffs import HUB_ACTOR, Change, apply_changes
from integrations.store.tables import DELIVERY, HANDOFF, PROPOSAL
from models.contracts.kecamatan import HandoffDelivery as DeliveryBody
from models.contracts.registry import UpdateProposal as ProposalBody
from models.handoffs import HandoffState, safe_text
from models.scope import WHOLE_PROVINCE, RegionScope

__all__ = [
    "OutboxItem",
    "SendResult",
    "delivery_key",
    "load_deliveries",
    "load_proposals",
    "pending_deliveries",
    "pending_proposals",
    "queue_deliveries",
    "record_deliveries",
    "record_proposals",
]


@dataclass(frozen=True, slots=True)
class OutboxItem:
    """One write to send: its idempotency key and the body (None when it cannot be built)."""

    key: str
    body: dict[str, Any] | None
    problem: str = ""


@dataclass(frozen=True, slots=True)
class SendResult:
    """Outcome of sending one outbox item: a receipt, or an error (permanent or not)."""

    key: str
    receipt_id: str | None = None
    error: str = ""
    permanent: bool = False


# --- deliveries to the office inbox -----------------------------------------------------------


def delivery_key(handoff_id: str, office: str) -> str:
    """Idempotency key of delivering a handoff to an office (a new one after escalation)."""
    return hashlib.sha256(f"{handoff_id}{office}".encode()).hexdigest()[:32]


def queue_deliveries(conn: Connection, now: datetime, scope: RegionScope = WHOLE_PROVINCE) -> int:
    """Queue one pending delivery per handoff of the scope not yet sent to its current office."""
    at = to_utc(now)
    waiting = {s.value for s in (HandoffState.OPEN, HandoffState.ESCALATED)}
    # Pages walk the handoffs' key with no other condition, and the state is read off each
    # page: with `state IN (...)` in the query, SQLite searched the state index and sorted
    # all that was left of it for every page of 1,000 (711,000 deliveries took 757 s). A
    # delivery already queued for the handoff's current office has the same key, which
    # the insert skips.
    base = select(HANDOFF.c.id, HANDOFF.c.office, HANDOFF.c.state).where(handoff_in_scope(scope))
    queued = 0
    for rows in keyset_pages(conn, base, HANDOFF.c.id):
        queued += insert_new(
            conn,
            DELIVERY,
            [
                {
                    "key": delivery_key(r.id, r.office),
                    "handoff_id": r.id,
                    "office": r.office,
                    "status": "pending",
                    "attempts": 0,
                    "receipt_id": None,
                    "last_error": "",
                    "created_at": at,
                    "sent_at": None,
                }
                for r in rows
                if r.state in waiting
            ],
            key=("key",),
        )
    return queued


def _pending(
    conn: Connection, key: Column[Any], since: Column[Any], limit: int | None, scope: RegionScope
) -> list[str]:
    """Keys of an outbox's pending rows whose handoff lies in the scope, oldest first."""
    table = key.table
    stmt = (
        select(key)
        .where(table.c.status == "pending", handoff_ids_in_scope(scope, table.c.handoff_id))
        .order_by(since, key)
    )
    if limit is not None:
        stmt = stmt.limit(limit)
    return list(conn.execute(stmt).scalars())


def pending_deliveries(
    conn: Connection, limit: int | None = None, scope: RegionScope = WHOLE_PROVINCE
) -> list[str]:
    """Keys of pending deliveries (of the scope's handoffs), oldest first."""
    return _pending(conn, DELIVERY.c.key, DELIVERY.c.created_at, limit, scope)


def _body_problem(exc: ValidationError) -> str:
    # Locations and error types only: pydantic's messages may echo values.
    shown = sorted({".".join(str(p) for p in e["loc"]) or e["type"] for e in exc.errors()})
    return "invalid body: " + ", ".join(shown[:5])


def _item(key: str, model: type[BaseModel], /, **fields: Any) -> OutboxItem:
    """The outbox item of `key` with its `model` body, or the problem that stops building it."""
    try:
        body = model(**fields)
    except ValidationError as exc:
        return OutboxItem(key, None, _body_problem(exc))
    return OutboxItem(key, body.model_dump(mode="json"))


def _failure_counts(failed: Sequence[SendResult]) -> dict[str, int]:
    """Failed sends counted as permanent failures and as retries."""
    return {
        "failed": sum(1 for r in failed if r.permanent),
        "retry": sum(1 for r in failed if not r.permanent),
    }


def _load_pending(
    conn: Connection,
    base: Select[Any],
    key: Column[Any],
    keys: Sequence[str],
    item: Callable[[Row[Any]], OutboxItem],
) -> list[OutboxItem]:
    """The items of the outbox rows among keys still pending, in key order."""
    items: list[OutboxItem] = []
    for part in chunks(keys):
        rows = conn.execute(
            base.where(key.in_(list(part)), key.table.c.status == "pending").order_by(key)
        )
        items.extend(item(r) for r in rows)
    return items


def _delivery_item(r: Row[Any]) -> OutboxItem:
    """The delivery of one row, with the inbox body of its handoff."""
    return _item(
        r.key,
        DeliveryBody,
        handoff_id=r.id,
        office=r.target,
        kind=r.kind,
        subject_token=r.subject_token,
        period=r.period,
        sender=r.sender,
        due_date=r.due_date,
        evidence=json.loads(r.evidence),
        escalated_from=r.origin_office if r.origin_office != r.target else None,
    )


def load_deliveries(conn: Connection, keys: Sequence[str]) -> list[OutboxItem]:
    """The pending deliveries among keys, each with the inbox body of its handoff."""
    base = select(
        DELIVERY.c.key,
        DELIVERY.c.office.label("target"),
        HANDOFF.c.id,
        HANDOFF.c.kind,
        HANDOFF.c.subject_token,
        HANDOFF.c.period,
        HANDOFF.c.sender,
        HANDOFF.c.due_date,
        HANDOFF.c.evidence,
        HANDOFF.c.origin_office,
    ).select_from(DELIVERY.join(HANDOFF, HANDOFF.c.id == DELIVERY.c.handoff_id))
    return _load_pending(conn, base, DELIVERY.c.key, keys, _delivery_item)


def _record_failures(
    conn: Connection, table: Any, key_column: str, failed: list[SendResult]
) -> None:
    has_error = "last_error" in table.c
    for permanent in (False, True):
        params = [
            {"b_key": r.key, "b_error": safe_text(r.error, 300)}
            for r in failed
            if r.permanent is permanent
        ]
        if not params:
            continue
        values: dict[str, Any] = {"attempts": table.c.attempts + 1}
        if has_error:
            values["last_error"] = bindparam("b_error")
        if permanent:
            values["status"] = "failed"
        stmt = (
            table.update()
            .where(table.c[key_column] == bindparam("b_key"), table.c.status == "pending")
            .values(**values)
        )
        if not has_error:
            params = [{"b_key": p["b_key"]} for p in params]
        conn.execute(stmt, params)


def record_deliveries(
    conn: Connection, results: Sequence[SendResult], now: datetime
) -> dict[str, int]:
    """Record receipts (sent; the handoff becomes delivered) and failures of one batch."""
    chain = ChainWriter(conn)
    at = to_utc(now)
    sent = [r for r in results if r.receipt_id is not None]
    failed = [r for r in results if r.receipt_id is None]
    keys = [r.key for r in sent]
    rows: dict[str, Any] = {}
    for part in chunks(keys):
        for row in conn.execute(
            select(
                DELIVERY.c.key,
                DELIVERY.c.handoff_id,
                DELIVERY.c.office,
                DELIVERY.c.status,
                HANDOFF.c.state,
                HANDOFF.c.office.label("current_office"),
            )
            .select_from(DELIVERY.join(HANDOFF, HANDOFF.c.id == DELIVERY.c.handoff_id))
            .where(DELIVERY.c.key.in_(list(part)))
        ):
            rows[row.key] = row
    receipts = []
    changes: list[Change] = []
    for r in sent:
        found = rows.get(r.key)
        # Recorded already (a replayed batch): nothing more to do.
        if found is None or found.status != "pending":
            continue
        receipts.append({"b_key": r.key, "b_receipt": r.receipt_id, "b_at": at})
        # A delivery to an office the handoff has since left (escalated meanwhile) is kept
        # on record but does not make the handoff delivered.
        if found.current_office == found.office and found.state in (
            HandoffState.OPEN,
            HandoffState.ESCALATED,
        ):
            changes.append(
                Change(
                    found.handoff_id,
                    found.state,
                    HandoffState.DELIVERED,
                    HUB_ACTOR,
                    f"delivered to {found.office}, receipt {safe_text(str(r.receipt_id), 64)}",
                    at,
                )
            )
    if receipts:
        conn.execute(
            DELIVERY.update()
            .where(DELIVERY.c.key == bindparam("b_key"), DELIVERY.c.status == "pending")
            .values(
                status="sent",
                receipt_id=bindparam("b_receipt"),
                sent_at=bindparam("b_at"),
                attempts=DELIVERY.c.attempts + 1,
                last_error="",
            ),
            receipts,
        )
    apply_changes(conn, chain, changes)
    _record_failures(conn, DELIVERY, "key", failed)
    chain.flush()
    return {"sent": len(receipts), "delivered": len(changes), **_failure_counts(failed)}


# --- update proposal outbox ------------------------------------------------------------------


def pending_proposals(
    conn: Connection, limit: int | None = None, scope: RegionScope = WHOLE_PROVINCE
) -> list[str]:
    """Ids of update proposals (of the scope's handoffs) the registry has not accepted yet."""
    return _pending(conn, PROPOSAL.c.id, PROPOSAL.c.verified_at, limit, scope)


def _proposal_item(r: Row[Any]) -> OutboxItem:
    """The proposal of one row, with its registry body."""
    return _item(
        r.id,
        ProposalBody,
        id=r.id,
        household_id=r.household_id,
        changes=json.loads(r.changes),
        report_id=r.report_id,
        handoff_id=r.handoff_id,
        verified_by=r.verified_by,
        verified_at=stored_utc(r.verified_at),
    )


def load_proposals(conn: Connection, ids: Sequence[str]) -> list[OutboxItem]:
    """The pending proposals among ids, each with its registry body."""
    return _load_pending(conn, select(PROPOSAL), PROPOSAL.c.id, ids, _proposal_item)


def record_proposals(
    conn: Connection, results: Sequence[SendResult], now: datetime
) -> dict[str, int]:
    """Record the registry's receipts and the failures of one batch of proposals."""
    at = to_utc(now)
    sent = [
        {"b_key": r.key, "b_receipt": r.receipt_id, "b_at": at}
        for r in results
        if r.receipt_id is not None
    ]
    failed = [r for r in results if r.receipt_id is None]
    written = 0
    if sent:
        result = conn.execute(
            PROPOSAL.update()
            .where(PROPOSAL.c.id == bindparam("b_key"), PROPOSAL.c.status == "pending")
            .values(
                status="sent",
                receipt_id=bindparam("b_receipt"),
                sent_at=bindparam("b_at"),
                attempts=PROPOSAL.c.attempts + 1,
            ),
            sent,
        )
        written = max(result.rowcount or 0, 0)
    _record_failures(conn, PROPOSAL, "id", failed)
    return {"sent": written, **_failure_counts(failed)}
