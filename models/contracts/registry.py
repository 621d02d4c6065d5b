"""Wire contract of the social-registry agency (DTKS/DTSEN): households, members, recipients."""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, Strict, StringConstraints, model_validator

from models.identity import NIK, NoKK
from models.plausibility import (
    BirthDate,
    DesaCode,
    IsoTime,
    Line,
    OptionalLine,
    RecordId,
    RecordTime,
    StrictInt,
)

Name = Annotated[Line, Field(max_length=120)]
"""A person's name: one line, not blank, at most 120 characters."""
Period = Annotated[str, Strict(), StringConstraints(pattern=r"^20\d\d-Q[1-4]$")]
"""Payment period: a quarter (tahap) such as 2026-Q4."""

HOUSEHOLDS = "households"
RECIPIENTS = "recipients"
UPDATE_PROPOSALS = "update-proposals"
"""Write collection: verified household changes sent back (POST, Idempotency-Key)."""


# Literal types rather than enums: the same JSON schema, and plain str values on the hot path.
Sex = Literal["L", "P"]
"""Sex as the civil registry records it."""
Relationship = Literal["kepala", "pasangan", "anak", "lainnya"]
"""Relationship to the head of the household (hubungan dalam keluarga)."""
MemberStatus = Literal["active", "deceased", "moved"]
"""Life status of a member as the registry knows it."""
Programme = Literal["PKH", "BPNT"]
"""Social-assistance programmes the registry targets."""
EnrolmentStatus = Literal["active", "suspended", "ended"]
"""State of a programme enrolment."""


class Member(BaseModel):
    """One person (anggota rumah tangga) of a registry household."""

    model_config = ConfigDict(extra="ignore", frozen=True)

    id: RecordId
    nik: NIK
    name: Name
    sex: Sex
    birth_date: BirthDate
    relationship: Relationship
    status: MemberStatus = "active"


class Household(BaseModel):
    """One registry household (rumah tangga) with its members."""

    model_config = ConfigDict(extra="ignore", frozen=True)

    id: RecordId
    no_kk: NoKK
    desa_code: DesaCode
    address: Annotated[OptionalLine, Field(max_length=200)] = ""
    desil: Annotated[StrictInt, Field(ge=1, le=10)] | None = None
    updated_at: RecordTime
    members: Annotated[list[Member], Field(min_length=1, max_length=30)]

    @model_validator(mode="after")
    def _cross_field(self) -> Household:
        # A NIK typed into the KK field (or the reverse) is the commonest swap error.
        niks = [m.nik for m in self.members]
        if self.no_kk in niks:
            raise ValueError("a member's NIK equals the household's No. KK (NIK/KK swapped?)")
        if len(set(niks)) != len(niks):
            raise ValueError("the same NIK appears twice in one household")
        ids = [m.id for m in self.members]
        if len(set(ids)) != len(ids):
            raise ValueError("the same member id appears twice in one household")
        return self


class Recipient(BaseModel):
    """A programme enrolment (PKH, BPNT) of a registry household, paid to its pengurus."""

    model_config = ConfigDict(extra="ignore", frozen=True)

    id: RecordId
    programme: Programme
    household_id: RecordId
    nik_pengurus: NIK
    no_kk: NoKK
    desa_code: DesaCode
    period: Period
    status: EnrolmentStatus
    updated_at: RecordTime


class HouseholdChanges(BaseModel):
    """Household fields a facilitator saw changed; None means unchanged."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    address: Annotated[Line, Field(max_length=200)] | None = None
    desil: Annotated[StrictInt, Field(ge=1, le=10)] | None = None
    # Members who left the household (married out, moved away), by registry member id.
    members_left: Annotated[list[RecordId], Field(max_length=30)] = Field(default_factory=list)

    @property
    def empty(self) -> bool:
        """True when nothing would change."""
        return self.address is None and self.desil is None and not self.members_left


class UpdateProposal(BaseModel):
    """A verified household change sent to the registry (`POST /registry/v1/update-proposals`).

    Sent with `Idempotency-Key: <id>`: a replay returns the first receipt, the same key with
    another body is 409.
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    id: RecordId
    household_id: RecordId
    changes: HouseholdChanges
    report_id: RecordId
    handoff_id: RecordId
    verified_by: Annotated[str, Strict(), StringConstraints(pattern=r"^kecamatan:35\.\d\d\.\d\d$")]
    verified_at: RecordTime


class ProposalReceipt(BaseModel):
    """The registry's receipt of an update proposal."""

    model_config = ConfigDict(extra="ignore", frozen=True)

    receipt_id: RecordId
    proposal_id: RecordId
    status: Literal["accepted", "queued"]
    received_at: IsoTime
