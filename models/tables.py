"""Store tables (SQLModel): reference regions, registry data, sync cursors, quarantine."""

from __future__ import annotations

from datetime import date, datetime
from typing import Any

from sqlalchemy import Column, DateTime, Index, Text, UniqueConstraint
from sqlmodel import Field, SQLModel


def _ts(*, nullable: bool = False, index: bool = False) -> Column[Any]:
    # Timezone-aware on PostgreSQL; SQLite keeps the UTC wall time the store always writes.
    return Column(DateTime(timezone=True), nullable=nullable, index=index)


class Region(SQLModel, table=True):
    """A Kemendagri region: province, kabupaten/kota, kecamatan or desa/kelurahan."""

    __tablename__ = "region"

    code: str = Field(primary_key=True, max_length=13)
    name: str = Field(max_length=100)
    kind: str = Field(max_length=12)
    parent_code: str | None = Field(default=None, max_length=10, index=True)


class Household(SQLModel, table=True):
    """A registry household as last synced (newest `updated_at` wins)."""

    __tablename__ = "household"
    # Text keys: store rows in the key's B-tree (SQLite), not beside a hidden rowid index.
    __table_args__ = {"sqlite_with_rowid": False}

    id: str = Field(primary_key=True, max_length=64)
    no_kk: str = Field(max_length=16)
    kk_token: str = Field(max_length=32, index=True)
    desa_code: str = Field(max_length=13)
    # Region queries go through the kecamatan (a kabupaten is a prefix of it).
    kecamatan_code: str = Field(max_length=8, index=True)
    kabupaten_code: str = Field(max_length=5)
    address: str = Field(default="", max_length=200)
    desil: int | None = None
    member_count: int = 0
    updated_at: datetime = Field(sa_column=_ts())
    synced_at: datetime = Field(sa_column=_ts())


class Member(SQLModel, table=True):
    """A person of a registry household; carries the household's `updated_at`."""

    __tablename__ = "member"
    __table_args__ = {"sqlite_with_rowid": False}

    id: str = Field(primary_key=True, max_length=64)
    household_id: str = Field(max_length=64, index=True)
    nik: str = Field(max_length=16)
    nik_token: str = Field(max_length=32, index=True)
    name: str = Field(max_length=120)
    sex: str = Field(max_length=1)
    birth_date: date
    relationship: str = Field(max_length=12)
    status: str = Field(max_length=12)
    updated_at: datetime = Field(sa_column=_ts())


class Enrolment(SQLModel, table=True):
    """A programme enrolment (PKH, BPNT) of a household, keyed by the agency's id."""

    __tablename__ = "enrolment"
    __table_args__ = (
        Index("ix_enrolment_programme_period", "programme", "period"),
        {"sqlite_with_rowid": False},
    )

    id: str = Field(primary_key=True, max_length=64)
    programme: str = Field(max_length=8)
    household_id: str = Field(max_length=64, index=True)
    nik_token: str = Field(max_length=32, index=True)
    kk_token: str = Field(max_length=32, index=True)
    desa_code: str = Field(max_length=13)
    kecamatan_code: str = Field(max_length=8, index=True)
    period: str = Field(max_length=7)
    status: str = Field(max_length=10)
    updated_at: datetime = Field(sa_column=_ts())
    synced_at: datetime = Field(sa_column=_ts())


class SyncCursor(SQLModel, table=True):
    """Where the sync of one (source, partition) stands; written with each page's rows."""

    __tablename__ = "sync_cursor"

    source: str = Field(primary_key=True, max_length=40)
    partition: str = Field(primary_key=True, max_length=20)
    watermark: datetime | None = Field(default=None, sa_column=_ts(nullable=True))
    pass_since: datetime | None = Field(default=None, sa_column=_ts(nullable=True))
    pass_high: datetime | None = Field(default=None, sa_column=_ts(nullable=True))
    cursor: str | None = Field(default=None, sa_column=Column(Text, nullable=True))
    pages: int = 0
    records: int = 0
    changed_at: datetime = Field(sa_column=_ts())


class Quarantine(SQLModel, table=True):
    """A record that failed validation, kept whole with every reason until replayed."""

    __tablename__ = "quarantine"
    __table_args__ = (UniqueConstraint("source", "payload_hash", name="uq_quarantine_payload"),)

    id: int | None = Field(default=None, primary_key=True)
    source: str = Field(max_length=40, index=True)
    partition: str = Field(max_length=20)
    record_id: str | None = Field(default=None, max_length=64)
    payload_hash: str = Field(max_length=64)
    reason_codes: str = Field(max_length=400)
    reasons: str = Field(sa_column=Column(Text, nullable=False))
    payload: str = Field(sa_column=Column(Text, nullable=False))
    status: str = Field(default="open", max_length=10, index=True)
    first_seen: datetime = Field(sa_column=_ts())
    last_seen: datetime = Field(sa_column=_ts())
    seen_count: int = 1
