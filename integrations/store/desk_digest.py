"""The desk's daily digests in the store: who gets one, what it counts, which day it went out.

Forkopimcam offices are desk offices by default; their digests also go to the addresses of
`models/data/forkopimcam.csv`.

A digest is claimed (one row per office, day and kind) in its own transaction before it is
mailed, marked sent afterwards, and released when the mail server refuses it: a second run
on the same day finds the claim and sends nothing. A run killed between claiming and
sending leaves the claim, so that office misses that day's digest rather than getting two.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Mapping, Sequence
from datetime import date, datetime, timedelta

from sqlalchemy import Connection, and_, func, select

from integrations.store.bulk import insert_new
from integrations.store.common import to_utc
from integrations.store.desk_accounts import ACCOUNT
from integrations.store.tables import HANDOFF, table_of
from models.desk import (
    DIGEST_ITEMS,
    DeskOffice,
    DigestItem,
    EscalationDigest,
    OfficeDigest,
    OfficeLevel,
)
from models.desk_tables import DeskDigest
from models.forkopimcam import ForumMember, forkopimcam_contacts, mail_addresses
from models.handoffs import FINAL_STATES
from models.workdays import WorkCalendar

__all__ = [
    "DIGEST",
    "DUE_SOON_WORKDAYS",
    "claim_digest",
    "claimed_on",
    "digest_recipients",
    "digest_sent",
    "escalation_digest",
    "office_digest",
    "release_digest",
    "since_last_workday",
]

DIGEST = table_of(DeskDigest)
DUE_SOON_WORKDAYS = 2
"""A handoff due within this many working days is "due soon" in a digest."""

_FINAL = sorted(s.value for s in FINAL_STATES)


def since_last_workday(now: datetime, today: date, calendar: WorkCalendar) -> datetime:
    """The same time on the previous working day: "new" counts from there (Monday: Friday)."""
    previous = today - timedelta(days=1)
    while not calendar.is_workday(previous) and (today - previous).days < 30:
        previous -= timedelta(days=1)
    return to_utc(now) - timedelta(days=(today - previous).days)


def digest_recipients(
    conn: Connection, forums: Mapping[str, Sequence[ForumMember]] | None = None
) -> dict[str, list[str]]:
    """Active accounts' e-mails per handoff office ("kecamatan:35.78.01"); not the province.

    A Forkopimcam's digest also goes to the forum's addresses (`forums`, by default the
    shipped `models/data/forkopimcam.csv`, placeholders left out): its members mostly have
    no desk account, and the forum must still hear of a red zone in its kecamatan.
    """
    out: dict[str, list[str]] = defaultdict(list)
    rows = conn.execute(
        select(ACCOUNT.c.office, ACCOUNT.c.email)
        .where(ACCOUNT.c.active.is_(True))
        .order_by(ACCOUNT.c.office, ACCOUNT.c.email)
    )
    for row in rows:
        try:
            office = DeskOffice.parse(row.office)
        except ValueError:
            continue  # an office the registry no longer knows has no handoffs to mail
        if office.level is not OfficeLevel.PROVINCE and office.handoff_office:
            out[office.handoff_office].append(row.email)
    for forum, members in (forkopimcam_contacts() if forums is None else forums).items():
        addresses = mail_addresses(members)
        if addresses:
            out[forum] = sorted({*out.get(forum, ()), *addresses})
    return dict(out)


def _items(conn: Connection, *where: object) -> tuple[DigestItem, ...]:
    rows = conn.execute(
        select(HANDOFF.c.id, HANDOFF.c.kind, HANDOFF.c.due_date, HANDOFF.c.kecamatan_code)
        .where(*where)  # type: ignore[arg-type]
        .order_by(HANDOFF.c.due_date, HANDOFF.c.id)
        .limit(DIGEST_ITEMS)
    )
    return tuple(DigestItem(r.id, r.kind, r.due_date, r.kecamatan_code or "") for r in rows)


def office_digest(
    conn: Connection, office: str, now: datetime, today: date, calendar: WorkCalendar
) -> OfficeDigest:
    """The counts of the handoffs an office holds: new, due soon, overdue, open; the urgent."""
    since = since_last_workday(now, today, calendar)
    soon = calendar.add_workdays(today, DUE_SOON_WORKDAYS)
    is_open = and_(HANDOFF.c.office == office, HANDOFF.c.state.not_in(_FINAL))
    new = HANDOFF.c.created_at >= since
    due_soon = and_(HANDOFF.c.due_date >= today, HANDOFF.c.due_date <= soon)
    overdue = HANDOFF.c.due_date < today
    row = conn.execute(
        select(
            func.count().label("open"),
            func.count().filter(new).label("new"),
            func.count().filter(due_soon).label("due_soon"),
            func.count().filter(overdue).label("overdue"),
        ).where(is_open)
    ).one()
    return OfficeDigest(
        office=office,
        day=today,
        new=int(row.new),
        due_soon=int(row.due_soon),
        overdue=int(row.overdue),
        open=int(row.open),
        items=_items(conn, is_open, HANDOFF.c.due_date <= soon),
    )


def escalation_digest(
    conn: Connection, office: str, now: datetime, today: date, calendar: WorkCalendar
) -> EscalationDigest:
    """The escalations a kabupaten/kota holds: open, new since yesterday, overdue, per kecamatan."""
    since = since_last_workday(now, today, calendar)
    held = and_(
        HANDOFF.c.office == office,
        HANDOFF.c.escalated_at.is_not(None),
        HANDOFF.c.state.not_in(_FINAL),
    )
    row = conn.execute(
        select(
            func.count().label("escalated"),
            func.count().filter(HANDOFF.c.escalated_at >= since).label("new"),
            func.count().filter(HANDOFF.c.due_date < today).label("overdue"),
        ).where(held)
    ).one()
    per = conn.execute(
        select(HANDOFF.c.kecamatan_code, func.count())
        .where(held)
        .group_by(HANDOFF.c.kecamatan_code)
        .order_by(func.count().desc(), HANDOFF.c.kecamatan_code)
    ).all()
    return EscalationDigest(
        office=office,
        day=today,
        escalated=int(row.escalated),
        new=int(row.new),
        overdue=int(row.overdue),
        per_kecamatan=tuple((str(code or ""), int(n)) for code, n in per),
        items=_items(conn, held),
    )


def claimed_on(conn: Connection, day: date) -> set[tuple[str, str]]:
    """The (office, kind) pairs whose digest of the day was claimed or sent already."""
    rows = conn.execute(select(DIGEST.c.office, DIGEST.c.kind).where(DIGEST.c.day == day))
    return {(r.office, r.kind) for r in rows}


def claim_digest(conn: Connection, office: str, day: date, kind: str, now: datetime) -> bool:
    """Claim the office's digest of the day; False when it was claimed (or sent) already."""
    row = {
        "office": office,
        "day": day,
        "kind": kind,
        "status": "sending",
        "recipients": 0,
        "created_at": to_utc(now),
        "sent_at": None,
    }
    return insert_new(conn, DIGEST, [row], key=("office", "day", "kind")) == 1


def digest_sent(
    conn: Connection, office: str, day: date, kind: str, recipients: int, now: datetime
) -> None:
    """Mark a claimed digest as sent to that many recipients."""
    conn.execute(
        DIGEST.update()
        .where(DIGEST.c.office == office, DIGEST.c.day == day, DIGEST.c.kind == kind)
        .values(status="sent", recipients=recipients, sent_at=to_utc(now))
    )


def release_digest(conn: Connection, office: str, day: date, kind: str) -> None:
    """Drop a claim whose mail was refused, so a later run of the day tries again."""
    conn.execute(
        DIGEST.delete().where(
            DIGEST.c.office == office,
            DIGEST.c.day == day,
            DIGEST.c.kind == kind,
            DIGEST.c.status == "sending",
        )
    )
