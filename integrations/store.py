"""Writes of the sync: a page's rows, its quarantine and its cursor in one transaction."""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import Connection, Engine, delete, select

from integrations.db import insert_or_count, upsert_all
from models.registry_rows import PreparedPage
from models.tables import Quarantine, Region, SyncCursor
from models.validation import Rejection
from models.wilayah import get_region_registry

QUARANTINE = Quarantine.__table__  # type: ignore[attr-defined]
CURSOR = SyncCursor.__table__  # type: ignore[attr-defined]
REGION = Region.__table__  # type: ignore[attr-defined]

CHUNK = 1000
"""Rows per statement or per keyset page: bounded memory and parameter counts."""


def utc(ts: datetime) -> datetime:
    """Normalise to UTC so SQLite's tz-less text compares in time order."""
    return ts.astimezone(UTC)


def stored_utc(ts: datetime | None) -> datetime | None:
    """A time read from the store, aware in UTC (SQLite hands back naive UTC wall times)."""
    if ts is None:
        return None
    return ts if ts.tzinfo is not None else ts.replace(tzinfo=UTC)


def to_utc(ts: datetime, what: str = "times written to the store") -> datetime:
    """An aware time in UTC, as the store writes every time; naive times are refused."""
    if ts.tzinfo is None or ts.utcoffset() is None:
        raise ValueError(f"{what} must be timezone-aware")
    return ts.astimezone(UTC)


def chunks(items: Sequence[Any], size: int = CHUNK) -> Iterator[Sequence[Any]]:
    """Consecutive slices of at most size items: bounded IN lists and batches."""
    for i in range(0, len(items), size):
        yield items[i : i + size]


@dataclass(slots=True)
class CursorState:
    """Where one (source, partition) stands: last complete watermark and an open pass."""

    source: str
    partition: str
    watermark: datetime | None = None
    pass_since: datetime | None = None
    pass_high: datetime | None = None
    cursor: str | None = None
    pages: int = 0
    records: int = 0

    @property
    def in_pass(self) -> bool:
        """True when a previous pass stopped between pages and must be resumed."""
        return self.cursor is not None

    def start_pass(self, *, full: bool) -> None:
        """Begin a new pass from the watermark (or from scratch for a full re-sync)."""
        self.pass_since = None if full else self.watermark
        self.pass_high = None
        self.cursor = None

    def advance(self, next_cursor: str | None, page_high: datetime | None, records: int) -> None:
        """Record a committed page; close the pass on the last one."""
        if page_high is not None:
            page_high = utc(page_high)
            self.pass_high = page_high if self.pass_high is None else max(self.pass_high, page_high)
        self.pages += 1
        self.records += records
        self.cursor = next_cursor
        if next_cursor is None:
            if self.pass_high is not None:
                self.watermark = (
                    self.pass_high
                    if self.watermark is None
                    else max(self.watermark, self.pass_high)
                )
            self.pass_since = None
            self.pass_high = None


def load_cursor(conn: Connection, source: str, partition: str) -> CursorState:
    """The stored state of (source, partition), or a fresh one."""
    row = (
        conn.execute(
            select(CURSOR).where(CURSOR.c.source == source, CURSOR.c.partition == partition)
        )
        .mappings()
        .first()
    )
    if row is None:
        return CursorState(source, partition)
    return CursorState(
        source=source,
        partition=partition,
        watermark=stored_utc(row["watermark"]),
        pass_since=stored_utc(row["pass_since"]),
        pass_high=stored_utc(row["pass_high"]),
        cursor=row["cursor"],
        pages=row["pages"],
        records=row["records"],
    )


def save_cursor(conn: Connection, state: CursorState, *, now: datetime) -> None:
    """Write the cursor; callers do it in the same transaction as the page's rows."""
    upsert_all(
        conn,
        CURSOR,
        [
            {
                "source": state.source,
                "partition": state.partition,
                "watermark": state.watermark,
                "pass_since": state.pass_since,
                "pass_high": state.pass_high,
                "cursor": state.cursor,
                "pages": state.pages,
                "records": state.records,
                "changed_at": now,
            }
        ],
        key=("source", "partition"),
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
            "reasons": json.dumps(
                [{"loc": r.loc, "code": r.code, "message": r.message} for r in rej.reasons],
                ensure_ascii=False,
            ),
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


@dataclass(slots=True)
class PageCounts:
    """What happened to one page (or a sum of pages): counts only, never records."""

    fetched: int = 0
    upserted: int = 0
    unchanged: int = 0
    quarantined: int = 0
    members_upserted: int = 0
    pages: int = 0
    reasons: Counter[str] = field(default_factory=Counter)
    warnings: Counter[str] = field(default_factory=Counter)

    def add(self, other: PageCounts) -> None:
        """Accumulate another count."""
        self.fetched += other.fetched
        self.upserted += other.upserted
        self.unchanged += other.unchanged
        self.quarantined += other.quarantined
        self.members_upserted += other.members_upserted
        self.pages += other.pages
        self.reasons.update(other.reasons)
        self.warnings.update(other.warnings)

    def as_dict(self) -> dict[str, Any]:
        """Plain dict for task results and artifacts."""
        return {
            "fetched": self.fetched,
            "upserted": self.upserted,
            "unchanged": self.unchanged,
            "quarantined": self.quarantined,
            "members_upserted": self.members_upserted,
            "pages": self.pages,
            "reasons": dict(self.reasons),
            "warnings": dict(self.warnings),
        }


def finish_page(
    conn: Connection,
    page: PreparedPage,
    state: CursorState,
    next_cursor: str | None,
    written: tuple[int, int],
    *,
    now: datetime,
) -> PageCounts:
    """Quarantine a page's rejects and advance its cursor once its rows are `written`.

    `written` is (records written, child rows written); runs in `conn`'s transaction, so the
    rows, the quarantine and the cursor that says they were read commit together.
    """
    records, children = written
    quarantine(conn, state.source, state.partition, page.rejected, now=now)
    state.advance(next_cursor, page.high, page.fetched)
    save_cursor(conn, state, now=now)
    return PageCounts(
        fetched=page.fetched,
        upserted=records,
        unchanged=len(page.rows) - records,
        quarantined=len(page.rejected),
        members_upserted=children,
        pages=1,
        reasons=page.reason_counts(),
        warnings=Counter(page.warnings),
    )


def delete_stale_children(
    conn: Connection, child: Any, parent: Any, parent_ids: Sequence[str], fk: str
) -> int:
    """Remove child rows older than their (just updated) parent: members who left a household."""
    if not parent_ids:
        return 0
    newer = select(parent.c.updated_at).where(parent.c.id == child.c[fk]).scalar_subquery()
    result = conn.execute(
        delete(child).where(child.c[fk].in_(list(parent_ids)), child.c.updated_at < newer)
    )
    return result.rowcount or 0


def load_regions(engine: Engine) -> int:
    """Load the shipped region registry into the store (idempotent)."""
    rows = [
        {"code": r.code, "name": r.name, "kind": str(r.kind), "parent_code": r.parent_code}
        for r in get_region_registry()
    ]
    with engine.begin() as conn:
        for part in chunks(rows, 2000):
            upsert_all(conn, REGION, part, key=("code",))
    return len(rows)
