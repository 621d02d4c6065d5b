"""Write prepared registry pages (households with members, recipients) to the store."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import Connection

from integrations.db import upsert_newer
from integrations.store import CursorState, PageCounts, delete_stale_children, finish_page
from models.contracts.registry import HOUSEHOLDS
from models.registry_rows import PreparedPage
from models.tables import Enrolment, Member
from models.tables import Household as HouseholdRow

HOUSEHOLD = HouseholdRow.__table__  # type: ignore[attr-defined]
MEMBER = Member.__table__  # type: ignore[attr-defined]
ENROLMENT = Enrolment.__table__  # type: ignore[attr-defined]


def write_rows(conn: Connection, collection: str, page: PreparedPage) -> tuple[int, int]:
    """Upsert a page's valid rows (newer wins); returns (records written, members written)."""
    if collection != HOUSEHOLDS:
        return upsert_newer(conn, ENROLMENT, page.rows), 0
    written = upsert_newer(conn, HOUSEHOLD, page.rows)
    # Members carry their household's version, so the same "newer wins" rule gates them;
    # members who left a household are older than it afterwards and are removed.
    members = upsert_newer(conn, MEMBER, page.children)
    delete_stale_children(conn, MEMBER, HOUSEHOLD, [row["id"] for row in page.rows], "household_id")
    return written, members


def write_page(
    conn: Connection,
    collection: str,
    page: PreparedPage,
    state: CursorState,
    next_cursor: str | None,
    *,
    now: datetime,
) -> PageCounts:
    """Upsert a page's rows, quarantine its rejects and advance its cursor: one transaction."""
    written = write_rows(conn, collection, page)
    return finish_page(conn, page, state, next_cursor, written, now=now)
