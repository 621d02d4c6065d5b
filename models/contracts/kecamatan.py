"""Wire contract of the office inbox: handoffs delivered to offices, decisions coming back.

Every office (kecamatan, desa, kabupaten, agency desk) reads its handoffs from one inbox
system. The hub delivers with `POST /kecamatan/v1/handoffs` and `Idempotency-Key:
<delivery key>`: a replay of the key returns the first receipt (same `receipt_id`), the
same key with a different body is 409, so an office sees each delivery once however often
the hub retries. Offices answer through `GET /kecamatan/v1/decisions` (incremental, paged,
`kecamatan` filters on the office's kecamatan); an office may answer late, never, or twice.
"""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, Strict, StringConstraints

from models.contracts.registry import RecordId
from models.plausibility import (
    FreeText,
    IsoDate,
    IsoTime,
    Line,
    RecordTime,
    StrictFloat,
    StrictInt,
)

__all__ = [
    "DECISIONS",
    "HANDOFFS",
    "DecisionKind",
    "DeliveryReceipt",
    "HandoffDelivery",
    "OfficeDecision",
]

HANDOFFS = "handoffs"
"""Write collection: handoffs delivered to an office (POST, Idempotency-Key)."""
DECISIONS = "decisions"

OfficeKey = Annotated[
    str,
    Strict(),
    StringConstraints(pattern=r"^(kecamatan|desa|kabupaten|agency|forkopimcam):[a-z0-9._-]{2,40}$"),
]
"""Office as "kind:code", e.g. kecamatan:35.78.01, desa:35.78.01.1001, kabupaten:35.78."""
Token = Annotated[str, Strict(), StringConstraints(pattern=r"^[0-9a-f]{16,64}$")]

DecisionKind = Literal["acknowledged", "resolved", "rejected"]
"""What an office decided about a handoff."""


class HandoffDelivery(BaseModel):
    """A handoff as an office receives it: who must act on what, by when, and the evidence.

    The subject is a keyed token, never a clear NIK/No. KK; evidence is masked.
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    handoff_id: Token
    office: OfficeKey
    kind: Annotated[str, Strict(), StringConstraints(pattern=r"^[a-z_]{3,40}$")]
    # A keyed token of a person, or a record id (a household) for household-level findings.
    subject_token: Annotated[
        str, Strict(), StringConstraints(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9._:-]+$")
    ]
    period: Annotated[Line, Field(max_length=20)]
    sender: Annotated[Line, Field(max_length=60)]
    due_date: IsoDate
    evidence: dict[Line, FreeText | StrictInt | StrictFloat] = Field(default_factory=dict)
    escalated_from: OfficeKey | None = None


class DeliveryReceipt(BaseModel):
    """The inbox's receipt of a delivery; a replayed key returns the same receipt."""

    model_config = ConfigDict(extra="ignore", frozen=True)

    receipt_id: RecordId
    handoff_id: Token
    office: OfficeKey
    received_at: IsoTime


class OfficeDecision(BaseModel):
    """An office's decision about a delivered handoff, with the reason and the officer."""

    model_config = ConfigDict(extra="ignore", frozen=True)

    id: RecordId
    handoff_id: Token
    office: OfficeKey
    decision: DecisionKind
    reason: Annotated[FreeText, Field(max_length=500)] = ""
    officer: Annotated[Line, Field(max_length=60)]
    decided_at: RecordTime
    updated_at: RecordTime
