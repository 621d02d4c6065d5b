"""SQLAlchemy handles of the store's tables, defined once for every store module."""

from __future__ import annotations

from sqlalchemy import Table
from sqlmodel import SQLModel

from models import tables
from models.sources import source_spec


def table_of(model: type[SQLModel]) -> Table:
    """The SQLAlchemy table of a SQLModel table class."""
    return model.__table__  # type: ignore[attr-defined]


REGION = table_of(tables.Region)
HOUSEHOLD = table_of(tables.Household)
MEMBER = table_of(tables.Member)
ENROLMENT = table_of(tables.Enrolment)
CURSOR = table_of(tables.SyncCursor)
QUARANTINE = table_of(tables.Quarantine)
REPORT = table_of(tables.FacilitatorReport)
BLT = table_of(tables.BltRecipient)
FARM = table_of(tables.FarmerNeed)
REQUEST = table_of(tables.DataRequest)
SUBMISSION = table_of(tables.DataSubmission)
DECISION = table_of(tables.OfficeDecision)
HANDOFF = table_of(tables.Handoff)
DELIVERY = table_of(tables.HandoffDelivery)
AUDIT = table_of(tables.HandoffAudit)
HEAD = table_of(tables.AuditHead)
PROPOSAL = table_of(tables.UpdateProposal)


def source_table(source: str) -> Table:
    """The table a catalogue source (`<agency>.<collection>`) writes its rows to."""
    return table_of(source_spec(source).table)
