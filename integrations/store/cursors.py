"""Sync cursors: where each (source, partition) stands, saved with its page's rows."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import Connection, select

from integrations.store.bulk import upsert_all
from integrations.store.common import stored_utc, utc
from integrations.store.tables import CURSOR


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
