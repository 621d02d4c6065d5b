"""Writes of a synced page: its rows (by the source's write rule), quarantine and cursor."""

from __future__ import annotations

import dataclasses
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime

from sqlalchemy import Connection, Table, delete, select

from integrations.store.bulk import insert_new, upsert_newer
from integrations.store.cursors import CursorState, save_cursor
from integrations.store.quarantine import quarantine
from integrations.store.tables import table_of
from models.plain import AsDict
from models.prepared import PreparedPage
from models.sources import SourceSpec, WriteRule, source_spec

__all__ = ["PageCounts", "delete_stale_children", "finish_page", "write_rows", "write_source_page"]


@dataclass(slots=True)
class PageCounts(AsDict):
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
        for f in dataclasses.fields(self):
            mine = getattr(self, f.name)
            if isinstance(mine, Counter):
                mine.update(getattr(other, f.name))
            else:
                setattr(self, f.name, mine + getattr(other, f.name))


def delete_stale_children(
    conn: Connection, child: Table, parent: Table, parent_ids: Sequence[str], fk: str
) -> int:
    """Remove child rows older than their (just updated) parent: members who left a household."""
    if not parent_ids:
        return 0
    newer = select(parent.c.updated_at).where(parent.c.id == child.c[fk]).scalar_subquery()
    result = conn.execute(
        delete(child).where(child.c[fk].in_(list(parent_ids)), child.c.updated_at < newer)
    )
    return result.rowcount or 0


def write_rows(conn: Connection, spec: SourceSpec, page: PreparedPage) -> tuple[int, int]:
    """Write a page's valid rows by the source's rule; returns (records, child rows) written."""
    table = table_of(spec.table)
    if spec.write is WriteRule.INSERT_ONLY:
        return insert_new(conn, table, page.rows, key=("id",)), 0
    written = upsert_newer(conn, table, page.rows)
    if spec.children is None:
        return written, 0
    child = table_of(spec.children)
    # Children carry their parent's version, so the same "newer wins" rule gates them;
    # children who left a parent are older than it afterwards and are removed.
    children = upsert_newer(conn, child, page.children)
    delete_stale_children(conn, child, table, [row["id"] for row in page.rows], spec.child_key)
    return written, children


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


def write_source_page(
    conn: Connection,
    source: str,
    page: PreparedPage,
    state: CursorState,
    next_cursor: str | None,
    *,
    now: datetime,
) -> PageCounts:
    """Write a page's rows, quarantine its rejects and advance its cursor, in `conn`'s transaction.

    Callers run this inside one transaction (possibly with more pages): the rows and the
    cursor that says they were read commit together or not at all.
    """
    if state.source != source:
        raise ValueError(f"the cursor of {state.source!r} cannot record a page of {source!r}")
    written = write_rows(conn, source_spec(source), page)
    return finish_page(conn, page, state, next_cursor, written, now=now)
