"""Quarantine: rejected records kept whole with every reason, what is there, and its purge.

Replay after a fix lives in `integrations.store.replay`; re-validation of stored rows
against the current contracts in `integrations.store.revalidate`.
"""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import Connection, Engine, delete, func, select

from integrations.store.audit import STORE_SUBJECT_PREFIX, ChainWriter
from integrations.store.bulk import insert_or_count
from integrations.store.common import chunks, to_utc
from integrations.store.engine import write_lock
from integrations.store.tables import QUARANTINE
from models.identity import mask_ids_in_text
from models.plain import AsDict
from models.validation import Rejection

__all__ = [
    "PARTIAL_REASON",
    "PURGE_SUBJECT",
    "PurgeCounts",
    "QuarantineGroup",
    "purge_quarantine",
    "quarantine",
    "quarantine_summary",
    "quarantine_totals",
]


PARTIAL_REASON = "revalidated_partial"
"""Reason code of a stored record re-validated without the fields kept only as tokens.

Its payload lacks those fields, so replay leaves it alone; a full re-sync reads it again.
"""


def reasons_json(rejection: Rejection) -> str:
    return json.dumps(
        [{"loc": r.loc, "code": r.code, "message": r.message} for r in rejection.reasons],
        ensure_ascii=False,
    )


def quarantine(
    conn: Connection, source: str, partition: str, rejected: Sequence[Rejection], *, now: datetime
) -> None:
    """Keep every rejected record whole with its reasons; a record seen again is counted once."""
    if not rejected:
        return
    rows: dict[str, dict[str, Any]] = {}
    for rej in rejected:
        rows[rej.payload_hash] = {
            "source": source,
            "partition": partition,
            "record_id": rej.record_id,
            "payload_hash": rej.payload_hash,
            "reason_codes": ",".join(rej.reason_codes)[:400],
            "reasons": reasons_json(rej),
            "payload": rej.payload_json,
            "status": "open",
            "first_seen": now,
            "last_seen": now,
            "seen_count": 1,
        }
    insert_or_count(
        conn,
        QUARANTINE,
        list(rows.values()),
        key=("source", "payload_hash"),
        last_seen="last_seen",
        count="seen_count",
    )


# --- quarantine: what is there, and replay after a fix ---------------------------------------


@dataclass(slots=True)
class QuarantineGroup(AsDict):
    """Quarantined records of one source sharing one reason (a record counts once per reason)."""

    source: str
    reason: str
    records: int
    sightings: int
    first_seen: datetime | None
    last_seen: datetime | None
    # One masked message of this reason, to tell an operator what went wrong.
    example: str = ""


def _codes(reason_codes: str) -> list[str]:
    return [c for c in reason_codes.split(",") if c]


def _messages(reasons_json: str) -> dict[str, str]:
    """Reason key -> its (masked) message, from a quarantine row's stored reasons."""
    try:
        reasons = json.loads(reasons_json)
    except ValueError:
        return {}
    out: dict[str, str] = {}
    for r in reasons if isinstance(reasons, list) else []:
        if not isinstance(r, dict):
            continue
        loc, code = str(r.get("loc", "")), str(r.get("code", ""))
        key = f"{loc}:{code}" if loc else code
        out.setdefault(key, mask_ids_in_text(str(r.get("message", ""))))
    return out


def quarantine_summary(
    conn: Connection, *, source: str | None = None, status: str | None = "open"
) -> list[QuarantineGroup]:
    """Quarantined records counted by source and reason (status None: every status)."""
    q = QUARANTINE
    stmt = select(
        q.c.source,
        q.c.reason_codes,
        func.count().label("records"),
        func.sum(q.c.seen_count).label("sightings"),
        func.min(q.c.first_seen).label("first_seen"),
        func.max(q.c.last_seen).label("last_seen"),
        func.min(q.c.id).label("example_id"),
    ).group_by(q.c.source, q.c.reason_codes)
    if source is not None:
        stmt = stmt.where(q.c.source == source)
    if status is not None:
        stmt = stmt.where(q.c.status == status)
    groups: dict[tuple[str, str], QuarantineGroup] = {}
    examples: dict[int, list[tuple[str, str]]] = {}
    for row in conn.execute(stmt).mappings():
        for code in _codes(row["reason_codes"]):
            group = groups.get((row["source"], code))
            if group is None:
                group = groups[(row["source"], code)] = QuarantineGroup(
                    row["source"], code, 0, 0, row["first_seen"], row["last_seen"]
                )
                examples.setdefault(row["example_id"], []).append((row["source"], code))
            group.records += row["records"]
            group.sightings += int(row["sightings"] or 0)
            group.first_seen = _earliest(group.first_seen, row["first_seen"])
            group.last_seen = _latest(group.last_seen, row["last_seen"])
    if examples:
        rows = conn.execute(select(q.c.id, q.c.reasons).where(q.c.id.in_(list(examples))))
        for example_id, reasons_json in rows:
            messages = _messages(reasons_json)
            for key in examples[example_id]:
                groups[key].example = messages.get(key[1], "")
    return sorted(groups.values(), key=lambda g: (g.source, -g.records, g.reason))


def quarantine_totals(
    conn: Connection, *, source: str | None = None, status: str | None = "open"
) -> dict[str, int]:
    """Quarantined records per source (each record once, whatever its number of reasons)."""
    q = QUARANTINE
    stmt = select(q.c.source, func.count()).group_by(q.c.source).order_by(q.c.source)
    if source is not None:
        stmt = stmt.where(q.c.source == source)
    if status is not None:
        stmt = stmt.where(q.c.status == status)
    return {name: int(n) for name, n in conn.execute(stmt)}


def _earliest(a: datetime | None, b: datetime | None) -> datetime | None:
    return b if a is None else a if b is None else min(a, b)


def _latest(a: datetime | None, b: datetime | None) -> datetime | None:
    return b if a is None else a if b is None else max(a, b)


# --- retention: quarantined payloads hold clear ids, so they are not kept for ever ----------

PURGE_SUBJECT = f"{STORE_SUBJECT_PREFIX}quarantine"
"""Subject of the purge's rows in the audit chain."""


@dataclass(slots=True)
class PurgeCounts(AsDict):
    """Outcome of one quarantine purge: counts per source and status, never a record."""

    cutoff: datetime
    retention_days: int
    dry_run: bool
    purged: int = 0
    by_source: Counter[str] = field(default_factory=Counter)
    by_status: Counter[str] = field(default_factory=Counter)
    audit_seq: int | None = None


def _purge_reason(counts: PurgeCounts) -> str:
    sources = ", ".join(f"{name} {n}" for name, n in sorted(counts.by_source.items()))
    statuses = ", ".join(f"{name} {n}" for name, n in sorted(counts.by_status.items()))
    text = (
        f"purged {counts.purged} quarantined records last seen before "
        f"{counts.cutoff.isoformat(timespec='seconds')} (retention {counts.retention_days} "
        f"days); by source: {sources}; by status: {statuses}"
    )
    return text[:500]


def purge_quarantine(
    engine: Engine,
    *,
    now: datetime,
    retention_days: int,
    dry_run: bool = False,
    actor: str = "hub:purge-quarantine",
) -> PurgeCounts:
    """Delete quarantine rows last seen more than `retention_days` ago, with one audit row.

    Every status goes (open, replayed): each row keeps its payload, clear ids included. A
    row sighted again since (a sync re-quarantined it) has a fresh `last_seen` and stays.
    One transaction: the audit row (counts only) commits with the deletion, and a run with
    nothing to purge writes none, so a second run changes nothing. `dry_run` only counts.
    """
    if retention_days < 1:
        raise ValueError("retention_days must be at least 1")
    cutoff = to_utc(now, "the purge's time") - timedelta(days=retention_days)
    counts = PurgeCounts(cutoff=cutoff, retention_days=retention_days, dry_run=dry_run)
    q = QUARANTINE
    due = q.c.last_seen < cutoff
    with write_lock(engine), engine.begin() as conn:
        # The chain's head lock first: it also makes SQLite's transaction a writer, so no
        # sighting can move a counted row's last_seen before it is deleted.
        chain = None if dry_run else ChainWriter(conn)
        stmt = select(q.c.id, q.c.source, q.c.status).where(due).order_by(q.c.id)
        if not dry_run:
            stmt = stmt.with_for_update()
        rows = conn.execute(stmt).all()
        for row in rows:
            counts.by_source[row.source] += 1
            counts.by_status[row.status] += 1
        counts.purged = len(rows)
        if dry_run or chain is None or not rows:
            return counts
        for ids in chunks([row.id for row in rows]):
            conn.execute(delete(q).where(q.c.id.in_(list(ids))))
        chain.record(PURGE_SUBJECT, "purged", actor=actor, reason=_purge_reason(counts), at=now)
        chain.flush()
        counts.audit_seq = chain.last_seq
    return counts
