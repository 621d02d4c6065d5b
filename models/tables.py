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
    __table_args__ = (
        # Covering: the NIK checks read a member's household and status off the index.
        Index("ix_member_nik_token", "nik_token", "household_id", "status"),
        {"sqlite_with_rowid": False},
    )

    id: str = Field(primary_key=True, max_length=64)
    household_id: str = Field(max_length=64, index=True)
    nik: str = Field(max_length=16)
    nik_token: str = Field(max_length=32)
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


# --- other agencies' sources (people by keyed token only: matching never needs a clear NIK) ---


class FacilitatorReport(SQLModel, table=True):
    """A PKH facilitator's report about a registry household (newest `updated_at` wins)."""

    __tablename__ = "facilitator_report"
    __table_args__ = {"sqlite_with_rowid": False}

    id: str = Field(primary_key=True, max_length=64)
    kind: str = Field(max_length=20)
    facilitator_id: str = Field(max_length=64)
    kecamatan_code: str = Field(max_length=8, index=True)
    household_id: str = Field(max_length=64, index=True)
    nik_token: str = Field(max_length=32, index=True)
    reported_on: date
    # Household changes as JSON ({"address", "desil", "members_left"}); "" when none.
    changes: str = Field(default="", sa_column=Column(Text, nullable=False))
    note: str = Field(default="", max_length=500)
    updated_at: datetime = Field(sa_column=_ts())
    synced_at: datetime = Field(sa_column=_ts())


class BltRecipient(SQLModel, table=True):
    """A KPM on a desa's BLT Dana Desa list for a period."""

    __tablename__ = "blt_recipient"
    __table_args__ = (
        Index("ix_blt_recipient_period", "period"),
        {"sqlite_with_rowid": False},
    )

    id: str = Field(primary_key=True, max_length=64)
    desa_code: str = Field(max_length=13)
    kecamatan_code: str = Field(max_length=8, index=True)
    period: str = Field(max_length=7)
    nik_token: str = Field(max_length=32, index=True)
    kk_token: str = Field(max_length=32, index=True)
    status: str = Field(max_length=10)
    updated_at: datetime = Field(sa_column=_ts())
    synced_at: datetime = Field(sa_column=_ts())


class FarmerNeed(SQLModel, table=True):
    """One e-RDKK line: a farmer's fertiliser need in a poktan for a season."""

    __tablename__ = "farmer_need"
    __table_args__ = {"sqlite_with_rowid": False}

    id: str = Field(primary_key=True, max_length=64)
    nik_token: str = Field(max_length=32, index=True)
    poktan_id: str = Field(max_length=64)
    desa_code: str = Field(max_length=13)
    kecamatan_code: str = Field(max_length=8, index=True)
    land_area_ha: float
    commodity: str = Field(max_length=40)
    season: str = Field(max_length=8, index=True)
    urea_kg: float = 0.0
    npk_kg: float = 0.0
    updated_at: datetime = Field(sa_column=_ts())
    synced_at: datetime = Field(sa_column=_ts())


class DataRequest(SQLModel, table=True):
    """A KSK's data request to desa of one kecamatan."""

    __tablename__ = "data_request"
    __table_args__ = {"sqlite_with_rowid": False}

    id: str = Field(primary_key=True, max_length=64)
    kecamatan_code: str = Field(max_length=8, index=True)
    ksk_id: str = Field(max_length=64)
    title: str = Field(max_length=200)
    # Comma-separated dotted desa codes (at most 60).
    desa_codes: str = Field(sa_column=Column(Text, nullable=False))
    requested_on: date
    due_date: date
    updated_at: datetime = Field(sa_column=_ts())
    synced_at: datetime = Field(sa_column=_ts())


class DataSubmission(SQLModel, table=True):
    """A desa's submission answering a data request."""

    __tablename__ = "data_submission"
    __table_args__ = {"sqlite_with_rowid": False}

    id: str = Field(primary_key=True, max_length=64)
    request_id: str = Field(max_length=64, index=True)
    desa_code: str = Field(max_length=13)
    submitted_at: datetime = Field(sa_column=_ts())
    updated_at: datetime = Field(sa_column=_ts())
    synced_at: datetime = Field(sa_column=_ts())


class OfficeDecision(SQLModel, table=True):
    """An office's decision about a handoff, as read from the inbox; applied once."""

    __tablename__ = "office_decision"
    __table_args__ = {"sqlite_with_rowid": False}

    id: str = Field(primary_key=True, max_length=64)
    handoff_id: str = Field(max_length=32, index=True)
    office: str = Field(max_length=60)
    decision: str = Field(max_length=12)
    reason: str = Field(default="", max_length=500)
    officer: str = Field(max_length=60)
    decided_at: datetime = Field(sa_column=_ts())
    updated_at: datetime = Field(sa_column=_ts())
    # Set when the decision has moved its handoff (or was found to be a repeat).
    applied_at: datetime | None = Field(default=None, sa_column=_ts(nullable=True, index=True))
    outcome: str = Field(default="", max_length=20)


class SurveillanceReport(SQLModel, table=True):
    """A puskesmas' weekly figures for one desa and condition: counts only, no person."""

    __tablename__ = "surveillance_report"
    __table_args__ = (
        Index("ix_surveillance_report_week_kecamatan", "week", "kecamatan_code"),
        {"sqlite_with_rowid": False},
    )

    id: str = Field(primary_key=True, max_length=64)
    puskesmas_id: str = Field(max_length=64)
    desa_code: str = Field(max_length=13)
    kecamatan_code: str = Field(max_length=8)
    # ISO week, 2026-W45: text order is week order.
    week: str = Field(max_length=8)
    condition: str = Field(max_length=10)
    new_cases: int = 0
    tests: int = 0
    deaths: int = 0
    updated_at: datetime = Field(sa_column=_ts())
    synced_at: datetime = Field(sa_column=_ts())


class HealthZone(SQLModel, table=True):
    """The zone of one desa or kecamatan for one condition and ISO week, with its figures."""

    __tablename__ = "health_zone"
    __table_args__ = (
        Index("ix_health_zone_kecamatan_week", "kecamatan_code", "week"),
        {"sqlite_with_rowid": False},
    )

    # A desa (35.07.01.2001) or kecamatan (35.07.01) code.
    area_code: str = Field(primary_key=True, max_length=13)
    condition: str = Field(primary_key=True, max_length=10)
    week: str = Field(primary_key=True, max_length=8)
    level: str = Field(max_length=10)
    kecamatan_code: str = Field(max_length=8)
    zone: str = Field(max_length=8)
    trend: str = Field(max_length=8)
    # For a red week: the week its red spell began (the handoff's period names it); else "".
    red_since: str = Field(default="", max_length=8)
    new_cases: int = 0
    previous_cases: int = 0
    deaths: int = 0
    population: float
    incidence_per_100k: float
    computed_at: datetime = Field(sa_column=_ts())


# --- handoffs ---------------------------------------------------------------------------------


class Handoff(SQLModel, table=True):
    """A work item for an office: a finding, its evidence (masked), state and deadline."""

    __tablename__ = "handoff"
    __table_args__ = (
        Index("ix_handoff_office_state", "office", "state"),
        Index("ix_handoff_state_due", "state", "due_date"),
        {"sqlite_with_rowid": False},
    )

    # handoff_key(kind, subject_token, period, origin office): one finding, one handoff.
    id: str = Field(primary_key=True, max_length=32)
    kind: str = Field(max_length=40)
    subject_token: str = Field(max_length=64)
    period: str = Field(max_length=20)
    sender: str = Field(max_length=60)
    # The office the finding was for, and the office that holds it now (the kabupaten
    # once escalated).
    origin_office: str = Field(max_length=60)
    office: str = Field(max_length=60)
    kecamatan_code: str = Field(max_length=8, index=True)
    kabupaten_code: str = Field(max_length=5)
    source_ref: str = Field(default="", max_length=64)
    evidence: str = Field(sa_column=Column(Text, nullable=False))
    state: str = Field(max_length=12)
    created_at: datetime = Field(sa_column=_ts())
    due_date: date
    delivered_at: datetime | None = Field(default=None, sa_column=_ts(nullable=True))
    acknowledged_at: datetime | None = Field(default=None, sa_column=_ts(nullable=True))
    closed_at: datetime | None = Field(default=None, sa_column=_ts(nullable=True))
    escalated_at: datetime | None = Field(default=None, sa_column=_ts(nullable=True))
    decision_reason: str = Field(default="", max_length=500)
    officer: str = Field(default="", max_length=60)
    updated_at: datetime = Field(sa_column=_ts())


class HandoffDelivery(SQLModel, table=True):
    """Outbox row of one delivery of a handoff to one office, keyed by its idempotency key."""

    __tablename__ = "handoff_delivery"
    __table_args__ = {"sqlite_with_rowid": False}

    key: str = Field(primary_key=True, max_length=32)
    handoff_id: str = Field(max_length=32, index=True)
    office: str = Field(max_length=60)
    status: str = Field(default="pending", max_length=10, index=True)
    attempts: int = 0
    receipt_id: str | None = Field(default=None, max_length=64)
    last_error: str = Field(default="", max_length=300)
    created_at: datetime = Field(sa_column=_ts())
    sent_at: datetime | None = Field(default=None, sa_column=_ts(nullable=True))


class HandoffAudit(SQLModel, table=True):
    """One state transition of a handoff: a link of the audit hash chain."""

    __tablename__ = "handoff_audit"

    seq: int = Field(primary_key=True, sa_column_kwargs={"autoincrement": False})
    handoff_id: str = Field(max_length=32, index=True)
    from_state: str | None = Field(default=None, max_length=12)
    to_state: str = Field(max_length=12)
    actor: str = Field(max_length=60)
    reason: str = Field(default="", max_length=500)
    at: datetime = Field(sa_column=_ts())
    prev_hash: str = Field(max_length=64)
    hash: str = Field(max_length=64)


class AuditHead(SQLModel, table=True):
    """Last link of the audit chain, written with it: a deleted tail row is detected."""

    __tablename__ = "audit_head"

    chain: str = Field(primary_key=True, max_length=20)
    last_seq: int = 0
    last_hash: str = Field(max_length=64)
    count: int = 0


class UpdateProposal(SQLModel, table=True):
    """A verified household change queued for, then sent to, the registry."""

    __tablename__ = "update_proposal"
    __table_args__ = {"sqlite_with_rowid": False}

    id: str = Field(primary_key=True, max_length=64)
    household_id: str = Field(max_length=64)
    report_id: str = Field(max_length=64)
    handoff_id: str = Field(max_length=32, index=True)
    changes: str = Field(sa_column=Column(Text, nullable=False))
    verified_by: str = Field(max_length=60)
    verified_at: datetime = Field(sa_column=_ts())
    status: str = Field(default="pending", max_length=10, index=True)
    attempts: int = 0
    receipt_id: str | None = Field(default=None, max_length=64)
    sent_at: datetime | None = Field(default=None, sa_column=_ts(nullable=True))
