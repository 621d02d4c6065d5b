"""Store tables of the office desk (SQLModel): its accounts and the digests it mailed."""

from __future__ import annotations

from datetime import date, datetime
from typing import Any

from sqlalchemy import Column, DateTime
from sqlmodel import Field, SQLModel

__all__ = ["DeskAccount", "DeskDigest"]


def _ts(*, nullable: bool = False) -> Column[Any]:
    # As in models/tables.py: aware on PostgreSQL, the UTC wall time on SQLite.
    return Column(DateTime(timezone=True), nullable=nullable)


class DeskAccount(SQLModel, table=True):
    """A person's sign-in to the desk, bound to one office with one role."""

    __tablename__ = "desk_account"

    id: int | None = Field(default=None, primary_key=True)
    email: str = Field(max_length=54, unique=True)
    # A desk office key: "kecamatan:35.78.01", "province:35", "programme:pkh".
    office: str = Field(max_length=60, index=True)
    role: str = Field(max_length=10)
    password_hash: str = Field(max_length=200)
    # Set for a new or reset account: the first sign-in must choose a password.
    must_change_password: bool = True
    active: bool = True
    # Raised on every password change, reset and disable: older session cookies stop working.
    session_version: int = 1
    created_at: datetime = Field(sa_column=_ts())
    updated_at: datetime = Field(sa_column=_ts())
    last_sign_in_at: datetime | None = Field(default=None, sa_column=_ts(nullable=True))


class DeskDigest(SQLModel, table=True):
    """One daily digest of one office: claimed before it is mailed, so a day gets one."""

    __tablename__ = "desk_digest"

    # A handoff office key: "kecamatan:35.78.01", "kabupaten:35.78".
    office: str = Field(max_length=60, primary_key=True)
    day: date = Field(primary_key=True)
    # "office" (new, due soon, overdue) or "escalations" (a kabupaten's).
    kind: str = Field(max_length=12, primary_key=True)
    # "sending" while the mail is out, then "sent"; a failed send removes the row.
    status: str = Field(max_length=8)
    recipients: int = 0
    created_at: datetime = Field(sa_column=_ts())
    sent_at: datetime | None = Field(default=None, sa_column=_ts(nullable=True))
