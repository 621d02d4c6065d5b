"""One person across programmes: every stored record and handoff about a keyed token.

The operator's NIK or No. KK is turned into its keyed token by the caller; the store is
searched by token only (the indexes every source keeps), and each check is written to the
audit chain with who asked, when and the token, never the id.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, or_, select

from integrations.store.audit import STORE_SUBJECT_PREFIX, ChainWriter
from integrations.store.tables import (
    BLT,
    ENROLMENT,
    FARM,
    HANDOFF,
    HOUSEHOLD,
    MEMBER,
    REPORT,
)

__all__ = ["PERSON_CHECK_SUBJECT", "PersonRecords", "find_person", "record_person_check"]

PERSON_CHECK_SUBJECT = f"{STORE_SUBJECT_PREFIX}person-check"
"""Audit-chain subject of an operator's person check."""


@dataclass(slots=True)
class PersonRecords:
    """What the store holds about one token, by source (rows as plain mappings)."""

    households: list[dict[str, Any]] = field(default_factory=list)
    members: list[dict[str, Any]] = field(default_factory=list)
    enrolments: list[dict[str, Any]] = field(default_factory=list)
    pkh_reports: list[dict[str, Any]] = field(default_factory=list)
    blt_recipients: list[dict[str, Any]] = field(default_factory=list)
    farmer_needs: list[dict[str, Any]] = field(default_factory=list)
    handoffs: list[dict[str, Any]] = field(default_factory=list)

    @property
    def total(self) -> int:
        """Records found, over every source and the handoffs."""
        return sum(len(getattr(self, name)) for name in self.__slots__)


def _rows(conn: Connection, stmt: Any) -> list[dict[str, Any]]:
    return [dict(r) for r in conn.execute(stmt).mappings()]


def find_person(conn: Connection, token: str) -> PersonRecords:
    """Every record whose NIK or No. KK token is `token`, with the person's households."""
    found = PersonRecords()
    found.members = _rows(conn, select(MEMBER).where(MEMBER.c.nik_token == token))
    household_ids = {m["household_id"] for m in found.members}
    found.households = _rows(
        conn,
        select(HOUSEHOLD).where(
            or_(HOUSEHOLD.c.kk_token == token, HOUSEHOLD.c.id.in_(sorted(household_ids)))
        ),
    )
    household_ids |= {h["id"] for h in found.households}
    if household_ids and not found.members:
        # A No. KK was given: the household's members are the people asked about.
        found.members = _rows(
            conn, select(MEMBER).where(MEMBER.c.household_id.in_(sorted(household_ids)))
        )
    found.enrolments = _rows(
        conn,
        select(ENROLMENT).where(or_(ENROLMENT.c.nik_token == token, ENROLMENT.c.kk_token == token)),
    )
    found.pkh_reports = _rows(conn, select(REPORT).where(REPORT.c.nik_token == token))
    found.blt_recipients = _rows(
        conn, select(BLT).where(or_(BLT.c.nik_token == token, BLT.c.kk_token == token))
    )
    found.farmer_needs = _rows(conn, select(FARM).where(FARM.c.nik_token == token))
    # A finding's subject is the person's token or, for household checks, the household id.
    found.handoffs = _rows(
        conn,
        select(HANDOFF)
        .where(HANDOFF.c.subject_token.in_(sorted({token} | household_ids)))
        .order_by(HANDOFF.c.created_at),
    )
    return found


def record_person_check(
    conn: Connection, token: str, *, actor: str, found: int, at: datetime
) -> None:
    """Write the check to the audit chain: who, when, which token, how many records."""
    chain = ChainWriter(conn)
    chain.record(
        PERSON_CHECK_SUBJECT,
        "checked",
        actor=actor[:60],
        reason=f"token {token}: {found} records shown",
        at=at,
    )
    chain.flush()
