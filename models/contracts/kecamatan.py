"""Wire contract of the office inbox: handoffs delivered to offices, decisions coming back.

Every office (kecamatan, desa, kabupaten, agency desk) reads its handoffs from one inbox
system. The hub delivers with `POST /kecamatan/v1/handoffs` and `Idempotency-Key: <delivery
key>`: a replay of the key returns the first receipt (same `receipt_id`), the same key with
a different body is 409, so an office sees each delivery once however often the hub retries.
`POST /kecamatan/v1/handoff-batches` takes up to `MAX_BATCH_ITEMS` such deliveries in one
request, each with its own key in the same idempotency store: each item is answered as its
single POST would be (the first receipt, 201 or 200 on a replay, or 409), in order, so a
handoff sent singly and later in a batch (or the reverse) is received once. A batch with any
invalid item is refused whole (422, nothing recorded). Offices answer through `GET
/kecamatan/v1/decisions` (incremental, paged, `kecamatan` filters on the office's
kecamatan); an office may answer late, never, or twice.
"""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, Strict, StringConstraints

from models.contracts.common import ErrorBody
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
    "HANDOFF_BATCHES",
    "MAX_BATCH_ITEMS",
    "BatchItemReceipt",
    "BatchItemRefused",
    "DecisionKind",
    "DeliveryBatch",
    "DeliveryBatchAnswer",
    "DeliveryBatchItem",
    "DeliveryReceipt",
    "HandoffDelivery",
    "OfficeDecision",
]

HANDOFFS = "handoffs"
"""Write collection: handoffs delivered to an office (POST, Idempotency-Key)."""
HANDOFF_BATCHES = "handoff-batches"
"""Write collection: up to `MAX_BATCH_ITEMS` handoff deliveries per POST, one key per item."""
DECISIONS = "decisions"
MAX_BATCH_ITEMS = 500
"""Most deliveries in one batch request; a larger batch is refused (422)."""

OfficeKey = Annotated[
    str,
    Strict(),
    StringConstraints(pattern=r"^(kecamatan|desa|kabupaten|agency|forkopimcam):[a-z0-9._-]{2,40}$"),
]
"""Office as "kind:code", e.g. kecamatan:35.78.01, desa:35.78.01.1001, kabupaten:35.78."""
Token = Annotated[str, Strict(), StringConstraints(pattern=r"^[0-9a-f]{16,64}$")]
IdempotencyKey = Annotated[str, Strict(), StringConstraints(pattern=r"^[!-~]{1,255}$")]
"""An idempotency key: 1-255 visible ASCII characters (no space), as the header carries."""

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


class DeliveryBatchItem(BaseModel):
    """One delivery of a batch: its idempotency key and the single POST's body."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    idempotency_key: IdempotencyKey
    body: HandoffDelivery


class DeliveryBatch(BaseModel):
    """A batch of deliveries, answered item by item in the same order."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    items: Annotated[list[DeliveryBatchItem], Field(min_length=1, max_length=MAX_BATCH_ITEMS)]


class BatchItemReceipt(BaseModel):
    """A batch item recorded (201) or replayed (200): the receipt its single POST would get."""

    model_config = ConfigDict(extra="ignore", frozen=True)

    idempotency_key: IdempotencyKey
    status: Literal[200, 201]
    receipt: DeliveryReceipt


class BatchItemRefused(BaseModel):
    """A batch item refused: 409, its key was first used with another body."""

    model_config = ConfigDict(extra="ignore", frozen=True)

    idempotency_key: IdempotencyKey
    status: Literal[409]
    error: ErrorBody


class DeliveryBatchAnswer(BaseModel):
    """The answer to a batch: one result per item, in the items' order."""

    model_config = ConfigDict(extra="ignore", frozen=True)

    results: list[BatchItemReceipt | BatchItemRefused]
