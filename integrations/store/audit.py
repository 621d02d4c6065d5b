"""The handoff audit hash chain in the store: append under the head lock, stream to verify."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import Connection, select

from integrations.store.bulk import insert_new
from integrations.store.tables import AUDIT, HEAD
from models.handoffs import (
    GENESIS,
    AuditEntry,
    ChainReport,
    HandoffState,
    chain_entry,
    entry_hash,
    has_clear_id,
    verify_chain,
)

__all__ = [
    "AUDIT",
    "CHAIN",
    "HEAD",
    "STORE_SUBJECT_PREFIX",
    "ChainWriter",
    "audit_rows",
    "verify_audit",
]

CHAIN = "handoffs"
"""Name of the one global chain in audit_head."""

STORE_SUBJECT_PREFIX = "store:"
"""Subject prefix of the chain's store-maintenance rows (a handoff id is hex, never this)."""

# Rows read per round trip while verifying: the chain streams, memory stays flat.
_VERIFY_BATCH = 5000
# Audit rows written per INSERT: bounded so PostgreSQL's parameter limit is never reached.
_WRITE_BATCH = 2000


def _aware(ts: datetime) -> datetime:
    # SQLite hands back naive datetimes; the store writes UTC, so re-attach it.
    return ts if ts.tzinfo is not None else ts.replace(tzinfo=UTC)


class ChainWriter:
    """Appends audit rows for one transaction; holds the chain's head lock until it ends.

    Creating a writer locks the head row (`SELECT ... FOR UPDATE` on PostgreSQL; on SQLite
    the head insert takes the database's write lock), so concurrent writers queue instead of
    both appending after the same row. Create it before reading anything the transition
    depends on, and call `flush` before the transaction commits.
    """

    def __init__(self, conn: Connection) -> None:
        self.conn = conn
        # A no-op insert when the head exists; its first use creates it. Being a write, it
        # also makes SQLite's transaction a write transaction before anything is read.
        insert_new(
            conn,
            HEAD,
            [{"chain": CHAIN, "last_seq": 0, "last_hash": GENESIS, "count": 0}],
            key=("chain",),
        )
        head = conn.execute(
            select(HEAD.c.last_seq, HEAD.c.last_hash, HEAD.c.count.label("rows"))
            .where(HEAD.c.chain == CHAIN)
            .with_for_update()
        ).one()
        self._count = int(head.rows)
        self._last: AuditEntry | None = None
        if head.last_seq:
            # Only seq and hash of the previous row feed the next link.
            self._last = AuditEntry(
                seq=int(head.last_seq),
                handoff_id="-",
                from_state=None,
                to_state=HandoffState.OPEN.value,
                actor="-",
                reason="",
                at=datetime.now(UTC),
                prev_hash=GENESIS,
                hash=str(head.last_hash),
            )
        self._pending: list[dict[str, Any]] = []
        self.appended = 0

    def append(
        self,
        handoff_id: str,
        from_state: HandoffState | str | None,
        to_state: HandoffState | str,
        *,
        actor: str,
        reason: str,
        at: datetime,
    ) -> AuditEntry:
        """Add the next link for a legal transition (raises on an illegal one)."""
        entry = chain_entry(
            self._last, handoff_id, from_state, to_state, actor=actor, reason=reason, at=at
        )
        self._queue(entry)
        return entry

    def _queue(self, entry: AuditEntry) -> None:
        """Make `entry` the chain's last link and queue its row (written in batches)."""
        self._last = entry
        self._pending.append(
            {
                "seq": entry.seq,
                "handoff_id": entry.handoff_id,
                "from_state": entry.from_state,
                "to_state": entry.to_state,
                "actor": entry.actor,
                "reason": entry.reason,
                "at": entry.at,
                "prev_hash": entry.prev_hash,
                "hash": entry.hash,
            }
        )
        if len(self._pending) >= _WRITE_BATCH:
            self._write()

    @property
    def last_seq(self) -> int | None:
        """Seq of the chain's last link as this writer sees it (None: the chain is empty)."""
        return None if self._last is None else self._last.seq

    def record(self, subject: str, action: str, *, actor: str, reason: str, at: datetime) -> None:
        """Add a store-maintenance link (a quarantine purge, a revalidation) to the chain.

        Not a handoff transition, so the state machine is not consulted: `subject` names
        what was maintained ("store:quarantine"), `action` what was done ("purged"), and
        `reason` carries counts only. The link is hashed and verified like any other.
        """
        if not subject.startswith(STORE_SUBJECT_PREFIX) or len(subject) > 32:
            raise ValueError(f"a store audit subject starts with {STORE_SUBJECT_PREFIX!r}")
        if not action or len(action) > 12 or not actor or len(reason) > 500:
            raise ValueError("a store audit row needs an action (<= 12), an actor, a reason <= 500")
        if has_clear_id(reason):
            raise ValueError("a store audit reason must hold counts, never an id")
        if at.tzinfo is None or at.utcoffset() is None:
            raise ValueError("audit time must be timezone-aware")
        seq = 1 if self._last is None else self._last.seq + 1
        prev_hash = GENESIS if self._last is None else self._last.hash
        at_utc = at.astimezone(UTC)
        digest = entry_hash(seq, subject, None, action, actor, reason, at_utc, prev_hash)
        self._queue(
            AuditEntry(seq, subject, None, action, actor, reason, at_utc, prev_hash, digest)
        )

    def _write(self) -> None:
        if not self._pending:
            return
        # seq is the primary key: a writer that appended after a stale head fails here
        # rather than forking the chain.
        self.conn.execute(AUDIT.insert(), self._pending)
        self._count += len(self._pending)
        self.appended += len(self._pending)
        self._pending = []

    def flush(self) -> None:
        """Write the pending rows and move the head to the last one."""
        self._write()
        if self._last is None:
            return
        self.conn.execute(
            HEAD.update()
            .where(HEAD.c.chain == CHAIN)
            .values(last_seq=self._last.seq, last_hash=self._last.hash, count=self._count)
        )


def _stream(conn: Connection) -> Iterator[Any]:
    stmt = select(AUDIT).order_by(AUDIT.c.seq).execution_options(yield_per=_VERIFY_BATCH)
    yield from conn.execute(stmt)


def verify_audit(conn: Connection) -> ChainReport:
    """Verify the whole chain in seq order against the head: edited, missing or extra rows."""
    head = conn.execute(
        select(HEAD.c.last_hash, HEAD.c.count.label("rows")).where(HEAD.c.chain == CHAIN)
    ).first()
    if head is None:
        # No head yet: only an empty chain is consistent.
        return verify_chain(_stream(conn), expected_last_hash=GENESIS, expected_count=0)
    return verify_chain(
        _stream(conn), expected_last_hash=str(head.last_hash), expected_count=int(head.rows)
    )


def audit_rows(conn: Connection, handoff_id: str) -> list[dict[str, Any]]:
    """The audit rows of one handoff in chain order, times in UTC."""
    rows = conn.execute(
        select(AUDIT).where(AUDIT.c.handoff_id == handoff_id).order_by(AUDIT.c.seq)
    ).mappings()
    return [{**row, "at": _aware(row["at"])} for row in rows]
