"""Handoffs between offices: states and transitions, idempotency keys, SLA and the audit chain."""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, date, datetime
from enum import StrEnum
from types import MappingProxyType
from typing import Protocol

from pydantic import BaseModel, ConfigDict, ValidationInfo, field_validator

from models.identity import HEX_DIGEST, mask_id, mask_ids_in_text
from models.wilayah import normalise_region_code
from models.workdays import JAKARTA, WorkCalendar, due_date, is_overdue

__all__ = [
    "DEFAULT_DUE_WORKDAYS",
    "ESCALATABLE_STATES",
    "ESCALATE_AFTER_WORKDAYS",
    "FINAL_STATES",
    "GENESIS",
    "TRANSITIONS",
    "AuditEntry",
    "AuditRecord",
    "ChainReport",
    "HandoffKind",
    "HandoffState",
    "IllegalTransition",
    "Office",
    "OfficeKind",
    "chain_entry",
    "check_transition",
    "entry_hash",
    "handoff_due_date",
    "handoff_key",
    "needs_escalation",
    "plan_transition",
    "safe_text",
    "verify_chain",
]


class HandoffState(StrEnum):
    """Stored state of a handoff; "overdue" is a condition checked against the due date."""

    OPEN = "open"
    DELIVERED = "delivered"
    ACKNOWLEDGED = "acknowledged"
    RESOLVED = "resolved"
    REJECTED = "rejected"
    ESCALATED = "escalated"


class OfficeKind(StrEnum):
    """Kind of office that sends or receives handoffs."""

    KECAMATAN = "kecamatan"
    DESA = "desa"
    KABUPATEN = "kabupaten"
    AGENCY = "agency"
    # The camat, kapolsek and danramil of a kecamatan, addressed by the kecamatan's code.
    FORKOPIMCAM = "forkopimcam"


class HandoffKind(StrEnum):
    """What a handoff asks the receiving office to act on."""

    BLT_PKH_OVERLAP = "blt_pkh_overlap"
    NIK_MULTIPLE_HOUSEHOLDS = "nik_multiple_households"
    DECEASED_RECEIVING_AID = "deceased_receiving_aid"
    MOVED_RECEIVING_AID = "moved_receiving_aid"
    FARMER_MULTIPLE_GROUPS = "farmer_multiple_groups"
    FARMER_OVER_LAND_CAP = "farmer_over_land_cap"
    HOUSEHOLD_UPDATE_VERIFICATION = "household_update_verification"
    # A household update the kecamatan rejected, back to the facilitator with the reason.
    HOUSEHOLD_UPDATE_REJECTED = "household_update_rejected"
    DATA_REQUEST = "data_request"
    # A kecamatan or desa whose surveillance figures entered the red zone (subject: the
    # region code, period: condition and first red week), and the notice of it to the
    # kecamatan's Forkopimcam.
    HEALTH_RED_ZONE = "health_red_zone"
    HEALTH_RED_ZONE_NOTICE = "health_red_zone_notice"


# --- offices ---------------------------------------------------------------------------------

# Number of dotted parts of the region code each regional office kind uses.
_CODE_PARTS: Mapping[OfficeKind, int] = MappingProxyType(
    {
        OfficeKind.KABUPATEN: 2,
        OfficeKind.KECAMATAN: 3,
        OfficeKind.FORKOPIMCAM: 3,
        OfficeKind.DESA: 4,
    }
)
_AGENCY_CODE = re.compile(r"[a-z][a-z0-9_-]{0,39}")


class Office(BaseModel):
    """An office identified by kind and code: "kecamatan:35.78.01", "agency:registry"."""

    model_config = ConfigDict(frozen=True)

    kind: OfficeKind
    code: str

    @field_validator("code")
    @classmethod
    def _check_code(cls, value: str, info: ValidationInfo) -> str:
        kind = info.data.get("kind")
        if kind is None:  # the kind failed validation and is reported on its own
            return value
        code = value.strip()
        if kind is OfficeKind.AGENCY:
            if not _AGENCY_CODE.fullmatch(code):
                raise ValueError(
                    "agency code must be a lowercase name such as registry or pkh "
                    "(letters, digits, _ or -, at most 40)"
                )
            return code
        # Undotted codes are stored dotted, so both spellings give one key.
        dotted = normalise_region_code(code)
        parts = _CODE_PARTS[kind]
        if dotted.count(".") + 1 != parts:
            example = {2: "35.78", 3: "35.78.01", 4: "35.78.01.1001"}[parts]
            raise ValueError(f"{dotted} is not a {kind} code (expected the form {example})")
        return dotted

    @property
    def key(self) -> str:
        """Stable text form "kind:code", used in keys, tags and the store."""
        return f"{self.kind}:{self.code}"

    @classmethod
    def parse(cls, key: str) -> Office:
        """Parse "kind:code" (the form produced by key) or raise ValueError."""
        if not isinstance(key, str):
            raise ValueError(f"office key must be text, got {type(key).__name__}")
        kind, sep, code = key.strip().partition(":")
        if not sep:
            # Masked and cut short: a NIK pasted into the wrong column must not reach the logs.
            shown = mask_ids_in_text(key[:40])
            raise ValueError(f"office key must look like kecamatan:35.78.01, got {shown!r}")
        try:
            office_kind = OfficeKind(kind)
        except ValueError:
            allowed = ", ".join(k.value for k in OfficeKind)
            shown = mask_ids_in_text(kind[:20])
            raise ValueError(f"unknown office kind {shown!r} (expected {allowed})") from None
        return cls(kind=office_kind, code=code)

    @property
    def escalation_target(self) -> Office | None:
        """The kabupaten/kota over a kecamatan or desa; None for kabupaten and agencies."""
        if self.kind in (OfficeKind.KECAMATAN, OfficeKind.DESA):
            return Office(kind=OfficeKind.KABUPATEN, code=self.code[:5])
        return None

    def __str__(self) -> str:
        return self.key


# --- state machine ---------------------------------------------------------------------------

_S = HandoffState
TRANSITIONS: Mapping[HandoffState, frozenset[HandoffState]] = MappingProxyType(
    {
        _S.OPEN: frozenset({_S.DELIVERED, _S.ESCALATED}),
        _S.DELIVERED: frozenset({_S.ACKNOWLEDGED, _S.RESOLVED, _S.REJECTED, _S.ESCALATED}),
        _S.ACKNOWLEDGED: frozenset({_S.RESOLVED, _S.REJECTED, _S.ESCALATED}),
        # Escalated handoffs go to the kabupaten, which may need a fresh delivery first.
        _S.ESCALATED: frozenset({_S.DELIVERED, _S.ACKNOWLEDGED, _S.RESOLVED, _S.REJECTED}),
        _S.RESOLVED: frozenset(),
        _S.REJECTED: frozenset(),
    }
)
"""Allowed target states from each state; resolved and rejected are final."""

FINAL_STATES: frozenset[HandoffState] = frozenset(s for s, nxt in TRANSITIONS.items() if not nxt)
"""States no transition leaves."""

ESCALATABLE_STATES: frozenset[HandoffState] = frozenset(
    s for s, nxt in TRANSITIONS.items() if HandoffState.ESCALATED in nxt
)
"""States in which an overdue handoff is escalated to the kabupaten."""

# Canonical order for messages, independent of set iteration order.
_ORDER = {state: i for i, state in enumerate(HandoffState)}


def _state(value: HandoffState | str, what: str) -> HandoffState:
    try:
        return HandoffState(value)
    except ValueError:
        allowed = ", ".join(s.value for s in HandoffState)
        shown = mask_ids_in_text(str(value)[:30])
        raise ValueError(f"unknown {what} state {shown!r} (expected {allowed})") from None


class IllegalTransition(ValueError):
    """A state change the handoff state machine does not allow."""

    def __init__(
        self, current: HandoffState, target: HandoffState, handoff_id: str | None = None
    ) -> None:
        allowed = sorted(TRANSITIONS[current], key=_ORDER.__getitem__)
        shown = ", ".join(s.value for s in allowed) or "none"
        who = f"handoff {handoff_id}" if handoff_id else "handoff"
        super().__init__(
            f"{who}: cannot go from {current.value} to {target.value}; "
            f"allowed from {current.value}: {shown}"
        )
        self.current = current
        self.target = target
        self.handoff_id = handoff_id

    def __reduce__(self) -> tuple[type[IllegalTransition], tuple[object, ...]]:
        # Exceptions are pickled as cls(*args); args here is the message, not the inputs.
        return (type(self), (self.current, self.target, self.handoff_id))


def check_transition(
    current: HandoffState | str,
    target: HandoffState | str,
    *,
    handoff_id: str | None = None,
    idempotent_ok: bool = False,
) -> bool:
    """True if current→target is a change to record; False for an allowed repeat; else raise."""
    cur, tgt = _state(current, "current"), _state(target, "target")
    if cur is tgt and idempotent_ok:
        # At-least-once delivery replays decisions; the second copy must change nothing.
        return False
    if tgt not in TRANSITIONS[cur]:
        raise IllegalTransition(cur, tgt, handoff_id)
    return True


def plan_transition(
    current: HandoffState | str, target: HandoffState | str, *, handoff_id: str | None = None
) -> bool:
    """True if a change must be recorded, False for a repeat of the same state; else raise."""
    return check_transition(current, target, handoff_id=handoff_id, idempotent_ok=True)


# --- idempotency key and SLA -----------------------------------------------------------------

# A clear NIK or No. KK shows up as a run of 16 or more digits. Hex digests (tokens, keys,
# hashes) are set aside first: by chance they often hold such runs, and they reveal nothing.
_LONG_DIGITS = re.compile(r"[0-9]{16,}")


def has_clear_id(text: str) -> bool:
    """True when text holds a run of 16+ digits outside hex digests: a clear NIK/No. KK or NIP."""
    return _LONG_DIGITS.search(HEX_DIGEST.sub(" ", text)) is not None


def safe_text(text: str, limit: int) -> str:
    """Text with NIK/No. KK/NIP-like digit runs masked, cut to limit characters."""
    masked = mask_ids_in_text(text)
    if has_clear_id(masked):
        masked = _LONG_DIGITS.sub(lambda m: mask_id(m.group(0)), masked)
    return masked[:limit]


_KEY_VERSION = "handoff-key/1"


def handoff_key(kind: HandoffKind | str, subject_token: str, period: str, receiver: Office) -> str:
    """Deterministic idempotency key (32 hex) of a finding: same inputs, same handoff."""
    hk = HandoffKind(kind)
    if not subject_token or not period:
        raise ValueError("handoff_key needs a non-empty subject_token and period")
    if has_clear_id(subject_token):
        # An unkeyed hash of a NIK is reversible by enumeration: callers must pass id_token().
        raise ValueError("subject_token looks like a clear NIK/No. KK: pass its id_token()")
    # JSON keeps the fields apart, so no separator inside a field can make two inputs collide.
    payload = json.dumps(
        [_KEY_VERSION, hk.value, subject_token, period, receiver.key],
        ensure_ascii=False,
        separators=(",", ":"),
    )
    return hashlib.sha256(payload.encode("utf-8")).hexdigest()[:32]


DEFAULT_DUE_WORKDAYS: Mapping[HandoffKind, int] = MappingProxyType(
    {
        HandoffKind.BLT_PKH_OVERLAP: 5,
        HandoffKind.NIK_MULTIPLE_HOUSEHOLDS: 5,
        HandoffKind.DECEASED_RECEIVING_AID: 5,
        HandoffKind.MOVED_RECEIVING_AID: 5,
        HandoffKind.FARMER_MULTIPLE_GROUPS: 5,
        HandoffKind.FARMER_OVER_LAND_CAP: 5,
        # Both need field visits or collection from several desa.
        HandoffKind.HOUSEHOLD_UPDATE_VERIFICATION: 10,
        HandoffKind.HOUSEHOLD_UPDATE_REJECTED: 10,
        HandoffKind.DATA_REQUEST: 10,
        # A red zone is urgent: the office answers within one working day.
        HandoffKind.HEALTH_RED_ZONE: 1,
        HandoffKind.HEALTH_RED_ZONE_NOTICE: 1,
    }
)
"""Working days the receiving office has to settle a handoff, by kind."""

ESCALATE_AFTER_WORKDAYS = 0
"""Grace in working days after the due date before escalation (0: as soon as overdue)."""


def handoff_due_date(
    kind: HandoffKind | str,
    created_at: datetime,
    calendar: WorkCalendar | None = None,
    *,
    workdays: int | None = None,
) -> date:
    """Due date of a new handoff: its kind's default working days after local creation."""
    n = DEFAULT_DUE_WORKDAYS[HandoffKind(kind)] if workdays is None else workdays
    return due_date(created_at, n, calendar)


def needs_escalation(
    state: HandoffState | str,
    due: date,
    now: datetime,
    calendar: WorkCalendar | None = None,
    *,
    tz: str = JAKARTA,
) -> bool:
    """True if a handoff in state is overdue and may still be escalated."""
    if _state(state, "current") not in ESCALATABLE_STATES:
        return False
    return is_overdue(due, now, calendar, tz, grace_workdays=ESCALATE_AFTER_WORKDAYS)


# --- audit hash chain ------------------------------------------------------------------------

GENESIS = "0" * 64
"""prev_hash of the first row of the chain."""


class AuditRecord(Protocol):
    """Anything with the audit row attributes: AuditEntry or a store row."""

    @property
    def seq(self) -> int: ...
    @property
    def handoff_id(self) -> str: ...
    @property
    def from_state(self) -> str | None: ...
    @property
    def to_state(self) -> str: ...
    @property
    def actor(self) -> str: ...
    @property
    def reason(self) -> str: ...
    @property
    def at(self) -> datetime: ...
    @property
    def prev_hash(self) -> str: ...
    @property
    def hash(self) -> str: ...


@dataclass(frozen=True, slots=True)
class AuditEntry:
    """One transition in the global audit chain, linked to the previous row by its hash."""

    seq: int
    handoff_id: str
    from_state: str | None
    to_state: str
    actor: str
    reason: str
    at: datetime
    prev_hash: str
    hash: str


def _utc_text(at: datetime) -> str:
    # SQLite drops the offset but the store always writes UTC, so a naive value read back is UTC.
    utc = at.replace(tzinfo=UTC) if at.tzinfo is None else at.astimezone(UTC)
    return utc.isoformat(timespec="microseconds")


def entry_hash(
    seq: int,
    handoff_id: str,
    from_state: str | None,
    to_state: str,
    actor: str,
    reason: str,
    at: datetime,
    prev_hash: str,
) -> str:
    """SHA-256 hex of the canonical JSON of an audit row's fields (sorted keys, UTC time)."""
    fields = {
        "seq": seq,
        "handoff_id": handoff_id,
        "from_state": None if from_state is None else str(from_state),
        "to_state": str(to_state),
        "actor": actor,
        "reason": reason,
        "at": _utc_text(at),
        "prev_hash": prev_hash,
    }
    text = json.dumps(fields, sort_keys=True, ensure_ascii=False, separators=(",", ":"))
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def chain_entry(
    prev: AuditRecord | None,
    handoff_id: str,
    from_state: HandoffState | str | None,
    to_state: HandoffState | str,
    *,
    actor: str,
    reason: str,
    at: datetime,
) -> AuditEntry:
    """Build the row that follows prev (None: the first row) for a legal transition."""
    # The chain is global and ordered by seq: the store must make seq unique so that two
    # writers cannot both append after the same row and fork it.
    if not handoff_id or not actor:
        raise ValueError("an audit row needs a handoff_id and an actor")
    if has_clear_id(reason):
        # Audit rows are kept for good and shown to reviewers; the digits are not echoed here.
        raise ValueError(
            "reason contains a run of 16 or more digits (a clear NIK/No. KK?): "
            "mask it with mask_id() or refer to the person by token"
        )
    if at.tzinfo is None or at.utcoffset() is None:
        raise ValueError("audit time must be timezone-aware")
    target = _state(to_state, "target")
    if from_state is None:
        if target is not HandoffState.OPEN:
            raise ValueError(f"handoff {handoff_id}: the first row must create it as open")
        source = None
    else:
        source = _state(from_state, "current")
        check_transition(source, target, handoff_id=handoff_id)
    seq = 1 if prev is None else prev.seq + 1
    prev_hash = GENESIS if prev is None else prev.hash
    at_utc = at.astimezone(UTC)
    from_value = None if source is None else source.value
    digest = entry_hash(seq, handoff_id, from_value, target.value, actor, reason, at_utc, prev_hash)
    return AuditEntry(
        seq=seq,
        handoff_id=handoff_id,
        from_state=from_value,
        to_state=target.value,
        actor=actor,
        reason=reason,
        at=at_utc,
        prev_hash=prev_hash,
        hash=digest,
    )


@dataclass(frozen=True, slots=True)
class ChainReport:
    """Outcome of verify_chain: ok, rows that verified, and the first problem found."""

    ok: bool
    # Rows verified before the first problem (all of them when ok).
    checked: int
    first_bad_seq: int | None = None
    problem: str | None = None
    # The last verified row: store it as the anchor (expected_last_hash) for the next check.
    last_seq: int = 0
    last_hash: str = GENESIS


def _content_hash(row: AuditRecord) -> str:
    return entry_hash(
        row.seq,
        row.handoff_id,
        row.from_state,
        row.to_state,
        row.actor,
        row.reason,
        row.at,
        row.prev_hash,
    )


def verify_chain(
    entries: Iterable[AuditRecord],
    expected_last_hash: str | None = None,
    expected_count: int | None = None,
) -> ChainReport:
    """Check rows given in seq order: content hashes, links, gaps, order, and the expected end."""
    # One pass with at most one row of look-ahead, so a chain of millions of rows streams.
    rows = iter(entries)
    checked = 0
    last_seq, last_hash = 0, GENESIS

    def bad(seq: int, problem: str) -> ChainReport:
        return ChainReport(False, checked, seq, problem, last_seq, last_hash)

    for row in rows:
        want = last_seq + 1
        if row.seq != want:
            if row.seq > want:
                following = next(rows, None)
                if following is not None and want <= following.seq < row.seq:
                    return bad(
                        want, f"rows out of order: row {row.seq} comes before row {following.seq}"
                    )
                if last_seq == 0:
                    return bad(want, f"row {want} missing: the chain starts at row {row.seq}")
                return bad(want, f"row {want} missing: sequence jumps from {last_seq} to {row.seq}")
            if row.seq == last_seq:
                return bad(row.seq, f"row {row.seq} appears twice")
            return bad(want, f"rows out of order: row {row.seq} comes after row {last_seq}")
        if _content_hash(row) != row.hash:
            return bad(row.seq, f"row {row.seq} edited: hash does not match its content")
        if row.prev_hash != last_hash:
            if last_seq == 0:
                return bad(row.seq, f"row {row.seq}: prev_hash is not the genesis hash")
            return bad(row.seq, f"row {row.seq}: prev_hash does not match row {last_seq}")
        checked += 1
        last_seq, last_hash = row.seq, row.hash

    if expected_count is not None and checked != expected_count:
        if checked < expected_count:
            end = f"ends at row {last_seq}" if last_seq else "is empty"
            return bad(
                checked + 1,
                f"row {checked + 1} missing: the chain {end}, expected {expected_count} rows",
            )
        return bad(expected_count + 1, f"the chain has {checked} rows, expected {expected_count}")
    if expected_last_hash is not None and last_hash != expected_last_hash:
        where = f"row {last_seq}" if last_seq else "the empty chain"
        return bad(
            max(last_seq, 1),
            f"{where} does not end with the expected last hash: "
            "rows after it were deleted or the chain was rewritten",
        )
    return ChainReport(True, checked, None, None, last_seq, last_hash)
