"""Validate a batch of wire records record by record, keeping every reason for the rejects."""

from __future__ import annotations

import hashlib
import json
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, Generic, TypeVar

from pydantic import BaseModel, ValidationError

from models.identity import mask_ids_in_text

M = TypeVar("M", bound=BaseModel)


@dataclass(frozen=True, slots=True)
class Reason:
    """Why a record was rejected: where, a stable code, and a message without personal data."""

    loc: str
    code: str
    message: str

    @property
    def key(self) -> str:
        """Field and error type, list indices dropped: the unit quarantine counts are kept by."""
        return f"{self.loc}:{self.code}" if self.loc else self.code


@dataclass(frozen=True, slots=True)
class Rejection:
    """A record that failed validation, with its raw payload and all its reasons."""

    record_id: str | None
    reasons: tuple[Reason, ...]
    payload: Any

    @property
    def payload_json(self) -> str:
        """The payload as canonical JSON (what the quarantine keeps)."""
        return json.dumps(self.payload, sort_keys=True, ensure_ascii=False, default=str)

    @property
    def payload_hash(self) -> str:
        """SHA-256 of the canonical payload: the quarantine's idempotency key."""
        return hashlib.sha256(self.payload_json.encode()).hexdigest()

    @property
    def reason_codes(self) -> list[str]:
        """Distinct reason keys, sorted."""
        return sorted({r.key for r in self.reasons})


@dataclass(slots=True)
class Batch(Generic[M]):
    """The outcome of validating one page: valid models and rejections."""

    valid: list[M] = field(default_factory=list)
    rejected: list[Rejection] = field(default_factory=list)

    def reason_counts(self) -> Counter[str]:
        """How many rejected records carry each reason key."""
        return reason_counts(self.rejected)


def reason_counts(rejected: Sequence[Rejection]) -> Counter[str]:
    """How many of the rejected records carry each reason key."""
    counts: Counter[str] = Counter()
    for rej in rejected:
        counts.update(rej.reason_codes)
    return counts


def _record_id(raw: Any) -> str | None:
    if isinstance(raw, dict):
        rid = raw.get("id")
        if isinstance(rid, str) and 0 < len(rid) <= 64:
            return rid
    return None


def reasons_from(error: ValidationError) -> tuple[Reason, ...]:
    """Turn a pydantic error into reasons; never carries the input values, only masked text."""
    out = []
    for err in error.errors(include_url=False, include_input=False, include_context=False):
        loc = ".".join(str(p) for p in err["loc"] if not isinstance(p, int))
        # Our validators mask IDs already; this guards messages of any other validator.
        out.append(Reason(loc=loc, code=err["type"], message=mask_ids_in_text(err["msg"])))
    return tuple(out)


def validate_batch(records: Sequence[Any], model: type[M]) -> Batch[M]:
    """Validate each record on its own so one bad record never blocks the good ones."""
    batch: Batch[M] = Batch()
    for raw in records:
        try:
            batch.valid.append(model.model_validate(raw))
        except ValidationError as exc:
            batch.rejected.append(Rejection(_record_id(raw), reasons_from(exc), raw))
    return batch
