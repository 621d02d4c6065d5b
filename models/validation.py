"""Validate a batch of wire records record by record, keeping every reason for the rejects."""

from __future__ import annotations

import hashlib
import json
import re
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Generic, TypeVar

from pydantic import BaseModel, ValidationError

from models.identity import mask_ids_in_text
from models.plausibility import RECORD_ID, text_problem, validation_context

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
        text = json.dumps(self.payload, sort_keys=True, ensure_ascii=False, default=str)
        try:
            text.encode()
        except UnicodeEncodeError:
            # A lone surrogate (a valid JSON escape, but no text) cannot be written to a
            # text column or hashed as UTF-8: such a payload is kept escaped instead.
            text = json.dumps(self.payload, sort_keys=True, default=str)
        return text

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
    # The quarantine's record_id column takes only an id of the contract's form: a raw id
    # with a NUL (refused by PostgreSQL), a control character or a lookalike digit is kept
    # in the payload only.
    if isinstance(raw, dict):
        rid = raw.get("id")
        if isinstance(rid, str) and RECORD_ID.fullmatch(rid):
            return rid
    return None


DUPLICATE_CONFLICT = Reason(
    loc="id",
    code="duplicate_conflict",
    message=(
        "another record with this id and updated_at was stored first with other content; "
        "the stored version stays"
    ),
)
"""Why a record that contradicts the stored version of the same id and updated_at is kept out."""


def conflict_rejection(raw: Any) -> Rejection:
    """The rejection of a record contradicting a stored record of the same id and version."""
    return Rejection(_record_id(raw), (DUPLICATE_CONFLICT,), raw)


_FIELD_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]{0,63}", re.ASCII)


def _loc_part(part: str | int) -> str:
    # A location names contract fields, except where the record itself names one (an
    # unknown key of a closed object): that name is input, so it never reaches a reason
    # key, a count or a report (where it could be markup or hold an id).
    text = str(part)
    return text if _FIELD_NAME.fullmatch(text) else "*"


def reasons_from(error: ValidationError) -> tuple[Reason, ...]:
    """Turn a pydantic error into reasons; never carries the input values, only masked text."""
    out = []
    for err in error.errors(include_url=False):
        loc = ".".join(_loc_part(p) for p in err["loc"] if not isinstance(p, int))
        code, message = err["type"], err["msg"]
        if code == "string_pattern_mismatch":
            # A text rule of models.plausibility: name the rule (control character, blank),
            # not the pattern. The input is read for that and never copied.
            problem = text_problem(err.get("ctx", {}).get("pattern", ""), err.get("input"))
            if problem is not None:
                code, message = problem
        # Our validators mask IDs already; this guards messages of any other validator.
        out.append(Reason(loc=loc, code=code, message=mask_ids_in_text(message)))
    return tuple(out)


def validate_batch(
    records: Sequence[Any], model: type[M], *, now: datetime | None = None
) -> Batch[M]:
    """Validate each record on its own so one bad record never blocks the good ones.

    `now` is the validation time the plausibility rules judge "in the future" by (the
    sync's time of reading the page); the wall clock when not given.
    """
    batch: Batch[M] = Batch()
    context = validation_context(now)
    validate = model.model_validate
    for raw in records:
        try:
            batch.valid.append(validate(raw, context=context))
        except ValidationError as exc:
            batch.rejected.append(Rejection(_record_id(raw), reasons_from(exc), raw))
    return batch
