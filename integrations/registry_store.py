"""Apply validated registry pages (households with members, recipients) to the store."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import Connection

from integrations.db import upsert_newer
from integrations.store import (
    CursorState,
    PageCounts,
    delete_stale_children,
    quarantine,
    save_cursor,
    utc,
)
from models.contracts.registry import Household, Recipient
from models.identity import id_token, record_warnings
from models.tables import Enrolment, Member
from models.tables import Household as HouseholdRow
from models.validation import Batch

HOUSEHOLD = HouseholdRow.__table__  # type: ignore[attr-defined]
MEMBER = Member.__table__  # type: ignore[attr-defined]
ENROLMENT = Enrolment.__table__  # type: ignore[attr-defined]


def household_rows(
    households: Sequence[Household], key: bytes, now: datetime
) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """Store rows for households and for their members."""
    hh_rows: list[dict[str, Any]] = []
    members: list[dict[str, Any]] = []
    for hh in households:
        ts = utc(hh.updated_at)
        hh_rows.append(
            {
                "id": hh.id,
                "no_kk": hh.no_kk,
                "kk_token": id_token(hh.no_kk, key),
                "desa_code": hh.desa_code,
                "kecamatan_code": hh.desa_code[:8],
                "kabupaten_code": hh.desa_code[:5],
                "address": hh.address,
                "desil": hh.desil,
                "member_count": len(hh.members),
                "updated_at": ts,
                "synced_at": now,
            }
        )
        members.extend(
            {
                "id": m.id,
                "household_id": hh.id,
                "nik": m.nik,
                "nik_token": id_token(m.nik, key),
                "name": m.name,
                "sex": m.sex.value,
                "birth_date": m.birth_date,
                "relationship": m.relationship.value,
                "status": m.status.value,
                "updated_at": ts,
            }
            for m in hh.members
        )
    return hh_rows, members


def member_warnings(households: Sequence[Household]) -> dict[str, int]:
    """Count warnings (NIK date/sex disagreeing with the record, old kecamatan codes)."""
    counts: dict[str, int] = {}
    for hh in households:
        for m in hh.members:
            for code in record_warnings(m.nik, m.birth_date, m.sex.value):
                counts[f"members.nik:{code}"] = counts.get(f"members.nik:{code}", 0) + 1
    return counts


def apply_households(
    conn: Connection,
    batch: Batch[Household],
    state: CursorState,
    next_cursor: str | None,
    *,
    key: bytes,
    now: datetime,
) -> PageCounts:
    """Upsert a page of households and members, quarantine its rejects, advance the cursor."""
    hh_rows, member_rows = household_rows(batch.valid, key, now)
    applied = upsert_newer(conn, HOUSEHOLD, hh_rows)
    # Members carry their household's version, so the same "newer wins" rule gates them;
    # members who left a household are older than it afterwards and are removed.
    written_members = upsert_newer(conn, MEMBER, member_rows)
    delete_stale_children(conn, MEMBER, HOUSEHOLD, [row["id"] for row in hh_rows], "household_id")
    quarantine(conn, state.source, state.partition, batch.rejected, now=now)
    high = max((hh.updated_at for hh in batch.valid), default=None)
    state.advance(next_cursor, high, len(batch.valid) + len(batch.rejected))
    save_cursor(conn, state, now=now)
    counts = PageCounts(
        fetched=len(batch.valid) + len(batch.rejected),
        upserted=applied,
        unchanged=len(hh_rows) - applied,
        quarantined=len(batch.rejected),
        members_upserted=written_members,
        pages=1,
        reasons=batch.reason_counts(),
    )
    counts.warnings.update(member_warnings(batch.valid))
    return counts


def recipient_rows(
    recipients: Sequence[Recipient], key: bytes, now: datetime
) -> list[dict[str, Any]]:
    """Store rows for programme enrolments (tokens only: matching never needs the clear NIK)."""
    return [
        {
            "id": r.id,
            "programme": r.programme.value,
            "household_id": r.household_id,
            "nik_token": id_token(r.nik_pengurus, key),
            "kk_token": id_token(r.no_kk, key),
            "desa_code": r.desa_code,
            "kecamatan_code": r.desa_code[:8],
            "period": r.period,
            "status": r.status.value,
            "updated_at": utc(r.updated_at),
            "synced_at": now,
        }
        for r in recipients
    ]


def apply_recipients(
    conn: Connection,
    batch: Batch[Recipient],
    state: CursorState,
    next_cursor: str | None,
    *,
    key: bytes,
    now: datetime,
) -> PageCounts:
    """Upsert a page of programme enrolments, quarantine its rejects, advance the cursor."""
    rows = recipient_rows(batch.valid, key, now)
    applied = upsert_newer(conn, ENROLMENT, rows)
    quarantine(conn, state.source, state.partition, batch.rejected, now=now)
    high = max((r.updated_at for r in batch.valid), default=None)
    state.advance(next_cursor, high, len(batch.valid) + len(batch.rejected))
    save_cursor(conn, state, now=now)
    return PageCounts(
        fetched=len(batch.valid) + len(batch.rejected),
        upserted=applied,
        unchanged=len(rows) - applied,
        quarantined=len(batch.rejected),
        pages=1,
        reasons=batch.reason_counts(),
    )
