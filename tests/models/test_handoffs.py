"""Handoffs: offices, the state machine, idempotency keys, SLA defaults and the audit chain."""

from __future__ import annotations

import dataclasses
import hashlib
import json
import pickle
from collections.abc import Iterator
from datetime import UTC, date, datetime, timedelta, timezone
from itertools import product
from types import SimpleNamespace

import pytest
from pydantic import ValidationError

from models.handoffs import (
    DEFAULT_DUE_WORKDAYS,
    ESCALATABLE_STATES,
    ESCALATE_AFTER_WORKDAYS,
    FINAL_STATES,
    GENESIS,
    TRANSITIONS,
    AuditEntry,
    ChainReport,
    HandoffKind,
    HandoffState,
    IllegalTransition,
    Office,
    OfficeKind,
    chain_entry,
    check_transition,
    entry_hash,
    handoff_due_date,
    handoff_key,
    needs_escalation,
    plan_transition,
    verify_chain,
)
from models.identity import id_token, mask_id
from models.workdays import WorkCalendar

S = HandoffState
NIK = "3578010101900001"  # well-formed test NIK (Karang Pilang, Kota Surabaya)
WIB = timezone(timedelta(hours=7))

ALLOWED = sorted((a, b) for a, targets in TRANSITIONS.items() for b in targets)
FORBIDDEN = sorted(
    (a, b) for a, b in product(HandoffState, HandoffState) if a != b and b not in TRANSITIONS[a]
)


# --- offices ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("kind", "code", "key"),
    [
        (OfficeKind.KECAMATAN, "35.78.01", "kecamatan:35.78.01"),
        (OfficeKind.DESA, "35.78.01.1001", "desa:35.78.01.1001"),
        (OfficeKind.KABUPATEN, "35.78", "kabupaten:35.78"),
        (OfficeKind.AGENCY, "registry", "agency:registry"),
        (OfficeKind.AGENCY, "pkh", "agency:pkh"),
    ],
)
def test_office_key_round_trip(kind: OfficeKind, code: str, key: str) -> None:
    office = Office(kind=kind, code=code)
    assert office.key == key
    assert str(office) == key
    assert Office.parse(key) == office


def test_office_codes_are_normalised_to_dotted() -> None:
    assert Office(kind=OfficeKind.KECAMATAN, code=" 357801 ").code == "35.78.01"
    assert Office.parse("desa:3578011001").key == "desa:35.78.01.1001"
    assert Office.parse("kecamatan:357801") == Office.parse("kecamatan:35.78.01")


@pytest.mark.parametrize(
    ("kind", "code", "message"),
    [
        (OfficeKind.KECAMATAN, "35.78", "not a kecamatan code"),
        (OfficeKind.DESA, "35.78.01", "not a desa code"),
        (OfficeKind.KABUPATEN, "35.78.01", "not a kabupaten code"),
        (OfficeKind.KECAMATAN, "35-78-01", "malformed region code"),
        (OfficeKind.AGENCY, "Registry", "lowercase"),
        (OfficeKind.AGENCY, "", "lowercase"),
        (OfficeKind.AGENCY, "pkh:reports", "lowercase"),
    ],
)
def test_office_code_must_fit_its_kind(kind: OfficeKind, code: str, message: str) -> None:
    with pytest.raises(ValidationError, match=message):
        Office(kind=kind, code=code)


@pytest.mark.parametrize("key", ["kecamatan", "35.78.01", "province:35", "", "desa:"])
def test_office_parse_rejects_bad_keys(key: str) -> None:
    with pytest.raises(ValueError):
        Office.parse(key)


def test_office_parse_error_does_not_echo_a_nik() -> None:
    with pytest.raises(ValueError) as caught:
        Office.parse(NIK)
    assert NIK not in str(caught.value)
    assert mask_id(NIK) in str(caught.value)


def test_office_is_frozen_and_hashable() -> None:
    office = Office.parse("kecamatan:35.78.01")
    with pytest.raises(ValidationError):
        office.code = "35.78.02"  # type: ignore[misc]
    assert len({office, Office.parse("kecamatan:357801")}) == 1


@pytest.mark.parametrize(
    ("key", "target"),
    [
        ("kecamatan:35.78.01", "kabupaten:35.78"),
        ("desa:35.07.14.2003", "kabupaten:35.07"),
        ("kabupaten:35.78", None),
        ("agency:registry", None),
    ],
)
def test_escalation_target(key: str, target: str | None) -> None:
    found = Office.parse(key).escalation_target
    assert (found.key if found is not None else None) == target


# --- state machine ---------------------------------------------------------------------------


def test_transition_table_is_as_designed() -> None:
    assert dict(TRANSITIONS) == {
        S.OPEN: {S.DELIVERED, S.ESCALATED},
        S.DELIVERED: {S.ACKNOWLEDGED, S.RESOLVED, S.REJECTED, S.ESCALATED},
        S.ACKNOWLEDGED: {S.RESOLVED, S.REJECTED, S.ESCALATED},
        S.ESCALATED: {S.DELIVERED, S.ACKNOWLEDGED, S.RESOLVED, S.REJECTED},
        S.RESOLVED: set(),
        S.REJECTED: set(),
    }
    assert set(FINAL_STATES) == {S.RESOLVED, S.REJECTED}
    assert set(ESCALATABLE_STATES) == {S.OPEN, S.DELIVERED, S.ACKNOWLEDGED}
    assert len(ALLOWED) == 13
    with pytest.raises(TypeError):
        TRANSITIONS[S.RESOLVED] = frozenset({S.OPEN})  # type: ignore[index]


@pytest.mark.parametrize(("current", "target"), ALLOWED)
def test_every_allowed_transition_passes(current: HandoffState, target: HandoffState) -> None:
    assert check_transition(current, target) is True
    assert plan_transition(current, target) is True
    assert plan_transition(current.value, target.value) is True


@pytest.mark.parametrize(
    ("current", "target", "allowed"),
    [
        (S.RESOLVED, S.DELIVERED, "none"),
        (S.REJECTED, S.ACKNOWLEDGED, "none"),
        (S.OPEN, S.RESOLVED, "delivered, escalated"),
        (S.OPEN, S.ACKNOWLEDGED, "delivered, escalated"),
        (S.OPEN, S.REJECTED, "delivered, escalated"),
        (S.DELIVERED, S.OPEN, "acknowledged, resolved, rejected, escalated"),
        (S.ACKNOWLEDGED, S.DELIVERED, "resolved, rejected, escalated"),
        (S.ACKNOWLEDGED, S.OPEN, "resolved, rejected, escalated"),
        (S.ESCALATED, S.OPEN, "delivered, acknowledged, resolved, rejected"),
        (S.RESOLVED, S.REJECTED, "none"),
        (S.REJECTED, S.RESOLVED, "none"),
        (S.RESOLVED, S.ESCALATED, "none"),
    ],
)
def test_illegal_transitions_have_clear_messages(
    current: HandoffState, target: HandoffState, allowed: str
) -> None:
    with pytest.raises(IllegalTransition) as caught:
        plan_transition(current, target, handoff_id="H-12")
    assert str(caught.value) == (
        f"handoff H-12: cannot go from {current} to {target}; allowed from {current}: {allowed}"
    )
    assert (caught.value.current, caught.value.target) == (current, target)
    assert caught.value.handoff_id == "H-12"


def test_illegal_transition_exact_message() -> None:
    with pytest.raises(IllegalTransition) as caught:
        check_transition("resolved", "delivered", handoff_id="H-12")
    assert str(caught.value) == (
        "handoff H-12: cannot go from resolved to delivered; allowed from resolved: none"
    )
    assert isinstance(caught.value, ValueError)


@pytest.mark.parametrize(("current", "target"), FORBIDDEN)
def test_every_other_change_is_illegal(current: HandoffState, target: HandoffState) -> None:
    with pytest.raises(IllegalTransition):
        check_transition(current, target)
    with pytest.raises(IllegalTransition):
        plan_transition(current, target)


@pytest.mark.parametrize("state", list(HandoffState))
def test_repeat_of_the_same_state(state: HandoffState) -> None:
    # A replayed decision is a no-op when allowed, and illegal otherwise.
    assert plan_transition(state, state) is False
    assert check_transition(state, state, idempotent_ok=True) is False
    with pytest.raises(IllegalTransition, match=f"cannot go from {state} to {state}"):
        check_transition(state, state)


def test_unknown_state_is_a_plain_value_error() -> None:
    with pytest.raises(ValueError, match="unknown target state 'overdue'") as caught:
        plan_transition("open", "overdue")
    assert not isinstance(caught.value, IllegalTransition)
    with pytest.raises(ValueError, match="unknown current state"):
        plan_transition("closed", "resolved")


def test_illegal_transition_survives_pickling() -> None:
    error = IllegalTransition(S.RESOLVED, S.DELIVERED, "H-12")
    copy = pickle.loads(pickle.dumps(error))
    assert str(copy) == str(error)
    assert (copy.current, copy.target, copy.handoff_id) == (S.RESOLVED, S.DELIVERED, "H-12")


# --- idempotency key -------------------------------------------------------------------------

RECEIVER = Office.parse("kecamatan:35.78.01")
TOKEN = id_token(NIK, b"test-key")


def test_handoff_key_is_stable() -> None:
    key = handoff_key(HandoffKind.BLT_PKH_OVERLAP, "subject-1", "2026-03", RECEIVER)
    # Pinned: a change here would re-create every open handoff on the next run.
    assert key == "ba7313acb47866889027aa1ff318f903"
    assert handoff_key("blt_pkh_overlap", "subject-1", "2026-03", RECEIVER) == key
    assert (
        handoff_key(
            HandoffKind.BLT_PKH_OVERLAP, "subject-1", "2026-03", Office.parse("kecamatan:357801")
        )
        == key
    )


def test_handoff_key_is_sensitive_to_each_field() -> None:
    base = (HandoffKind.BLT_PKH_OVERLAP, TOKEN, "2026-03", RECEIVER)
    variants = [
        base,
        (HandoffKind.DECEASED_RECEIVING_AID, TOKEN, "2026-03", RECEIVER),
        (HandoffKind.BLT_PKH_OVERLAP, id_token(NIK, b"other-key"), "2026-03", RECEIVER),
        (HandoffKind.BLT_PKH_OVERLAP, TOKEN, "2026-04", RECEIVER),
        (HandoffKind.BLT_PKH_OVERLAP, TOKEN, "2026-03", Office.parse("kecamatan:35.78.02")),
        (HandoffKind.BLT_PKH_OVERLAP, TOKEN, "2026-03", Office.parse("kabupaten:35.78")),
        (HandoffKind.BLT_PKH_OVERLAP, TOKEN, "2026-03", Office.parse("agency:registry")),
    ]
    keys = [handoff_key(*v) for v in variants]
    assert len(set(keys)) == len(keys)
    assert all(len(k) == 32 and int(k, 16) >= 0 for k in keys)


def test_handoff_key_fields_cannot_run_together() -> None:
    a = handoff_key(HandoffKind.DATA_REQUEST, "ab", "c", RECEIVER)
    b = handoff_key(HandoffKind.DATA_REQUEST, "a", "bc", RECEIVER)
    assert a != b


@pytest.mark.parametrize("subject", [NIK, f"pair:{NIK}", f"deceased{NIK}"])
def test_handoff_key_refuses_clear_ids(subject: str) -> None:
    with pytest.raises(ValueError, match="id_token") as caught:
        handoff_key(HandoffKind.BLT_PKH_OVERLAP, subject, "2026-03", RECEIVER)
    assert NIK not in str(caught.value)


def test_handoff_key_accepts_tokens_that_happen_to_hold_digit_runs() -> None:
    token = "1234567890123456abcdefabcdef0123"  # hex, starts with 16 decimal digits
    assert len(handoff_key(HandoffKind.BLT_PKH_OVERLAP, token, "2026-03", RECEIVER)) == 32


@pytest.mark.parametrize(("subject", "period"), [("", "2026-03"), ("s", "")])
def test_handoff_key_needs_subject_and_period(subject: str, period: str) -> None:
    with pytest.raises(ValueError, match="non-empty"):
        handoff_key(HandoffKind.BLT_PKH_OVERLAP, subject, period, RECEIVER)


# --- SLA -------------------------------------------------------------------------------------


def test_default_due_workdays_cover_every_kind() -> None:
    assert set(DEFAULT_DUE_WORKDAYS) == set(HandoffKind)
    assert DEFAULT_DUE_WORKDAYS[HandoffKind.BLT_PKH_OVERLAP] == 5
    assert DEFAULT_DUE_WORKDAYS[HandoffKind.HOUSEHOLD_UPDATE_VERIFICATION] == 10
    assert DEFAULT_DUE_WORKDAYS[HandoffKind.DATA_REQUEST] == 10
    assert ESCALATE_AFTER_WORKDAYS == 0


def test_handoff_due_date_across_idul_fitri() -> None:
    cal = WorkCalendar()
    created = datetime(2026, 3, 16, 9, 0, tzinfo=WIB)
    # 17, 25, 26, 27, 30 March: the Nyepi/Idul Fitri break (18-24 March) does not count.
    assert handoff_due_date(HandoffKind.BLT_PKH_OVERLAP, created, cal) == date(2026, 3, 30)
    # ... 31, 1, 2, (Good Friday 3 April), 6, 7 April.
    assert handoff_due_date(HandoffKind.DATA_REQUEST, created, cal) == date(2026, 4, 7)
    assert handoff_due_date("data_request", created, cal, workdays=1) == date(2026, 3, 17)


@pytest.mark.parametrize(
    ("state", "now", "expected"),
    [
        (S.DELIVERED, datetime(2026, 3, 30, 23, 0, tzinfo=WIB), False),  # on the due date
        (S.DELIVERED, datetime(2026, 3, 31, 0, 0, tzinfo=WIB), True),
        (S.OPEN, datetime(2026, 3, 31, 8, 0, tzinfo=WIB), True),
        (S.ACKNOWLEDGED, datetime(2026, 3, 31, 8, 0, tzinfo=WIB), True),
        (S.ESCALATED, datetime(2026, 4, 30, 8, 0, tzinfo=WIB), False),  # already escalated
        (S.RESOLVED, datetime(2026, 4, 30, 8, 0, tzinfo=WIB), False),
        (S.REJECTED, datetime(2026, 4, 30, 8, 0, tzinfo=WIB), False),
    ],
)
def test_needs_escalation(state: HandoffState, now: datetime, expected: bool) -> None:
    assert needs_escalation(state, date(2026, 3, 30), now, WorkCalendar()) is expected


# --- audit chain -----------------------------------------------------------------------------

T0 = datetime(2026, 3, 2, 8, 0, tzinfo=WIB)
PATHS = [
    [None, S.OPEN, S.DELIVERED, S.ACKNOWLEDGED, S.RESOLVED],
    [None, S.OPEN, S.DELIVERED, S.REJECTED],
    [None, S.OPEN, S.ESCALATED, S.DELIVERED, S.ACKNOWLEDGED, S.RESOLVED],
    [None, S.OPEN, S.DELIVERED, S.ESCALATED, S.REJECTED],
]


def transitions() -> Iterator[tuple[str, HandoffState | None, HandoffState]]:
    """Transitions of many handoffs interleaved, as the global chain records them."""
    n = 0
    while True:
        batch = [(f"H-{n + i}", path) for i, path in enumerate(PATHS)]
        n += len(PATHS)
        for step in range(max(len(p) for p in PATHS) - 1):
            for handoff_id, path in batch:
                if step + 1 < len(path):
                    target = path[step + 1]
                    assert target is not None
                    yield handoff_id, path[step], target


def build_chain(count: int = 50) -> list[AuditEntry]:
    entries: list[AuditEntry] = []
    prev: AuditEntry | None = None
    for i, (handoff_id, source, target) in enumerate(transitions()):
        if i == count:
            break
        prev = chain_entry(
            prev,
            handoff_id=handoff_id,
            from_state=source,
            to_state=target,
            actor="kecamatan:35.78.01" if i % 2 else "system:dispatch",
            reason=f"step {i}: {target}",
            at=T0 + timedelta(minutes=7 * i, microseconds=i),
        )
        entries.append(prev)
    return entries


@pytest.fixture
def chain() -> list[AuditEntry]:
    return build_chain(50)


def test_chain_entry_links_rows() -> None:
    first = chain_entry(
        None, handoff_id="H-1", from_state=None, to_state="open", actor="system", reason="", at=T0
    )
    assert (first.seq, first.prev_hash) == (1, GENESIS)
    assert first.at == datetime(2026, 3, 2, 1, 0, tzinfo=UTC)
    assert first.at.tzinfo is UTC
    second = chain_entry(
        first,
        handoff_id="H-1",
        from_state=S.OPEN,
        to_state=S.DELIVERED,
        actor="system",
        reason="delivered to kecamatan:35.78.01",
        at=T0 + timedelta(seconds=1),
    )
    assert (second.seq, second.prev_hash) == (2, first.hash)
    assert (second.from_state, second.to_state) == ("open", "delivered")
    assert type(second.to_state) is str
    assert len(second.hash) == 64 and second.hash != first.hash


def test_entry_hash_is_sha256_of_canonical_json() -> None:
    at = datetime(2026, 3, 20, 10, 4, 5, 6, tzinfo=WIB)
    canonical = json.dumps(
        {
            "seq": 7,
            "handoff_id": "H-3",
            "from_state": "delivered",
            "to_state": "acknowledged",
            "actor": "kecamatan:35.78.01",
            "reason": "diterima",
            "at": "2026-03-20T03:04:05.000006+00:00",
            "prev_hash": GENESIS,
        },
        sort_keys=True,
        separators=(",", ":"),
    )
    expected = hashlib.sha256(canonical.encode()).hexdigest()
    args = ("H-3", "delivered", "acknowledged", "kecamatan:35.78.01", "diterima")
    assert entry_hash(7, *args, at, GENESIS) == expected
    # The same instant written in another zone, or naive UTC as SQLite returns it, hashes alike.
    assert entry_hash(7, *args, at.astimezone(UTC), GENESIS) == expected
    assert entry_hash(7, *args, at.astimezone(UTC).replace(tzinfo=None), GENESIS) == expected


def test_intact_chain_verifies(chain: list[AuditEntry]) -> None:
    assert len({e.handoff_id for e in chain}) > 5  # many handoffs share the one chain
    report = verify_chain(chain, expected_last_hash=chain[-1].hash, expected_count=50)
    assert report == ChainReport(True, 50, None, None, 50, chain[-1].hash)


def test_empty_chain() -> None:
    assert verify_chain([]) == ChainReport(True, 0)
    assert verify_chain([], expected_last_hash=GENESIS, expected_count=0).ok
    report = verify_chain([], expected_count=3)
    assert (report.ok, report.first_bad_seq) == (False, 1)
    assert report.problem == "row 1 missing: the chain is empty, expected 3 rows"


def test_chain_verifies_store_rows_streamed() -> None:
    # Rows as the store returns them: other classes, naive UTC times, read lazily.
    entries = build_chain(20)

    def rows() -> Iterator[SimpleNamespace]:
        for e in entries:
            fields = dataclasses.asdict(e)
            fields["at"] = e.at.replace(tzinfo=None)
            yield SimpleNamespace(**fields)

    report = verify_chain(rows(), expected_count=20)
    assert report.ok and report.checked == 20


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("actor", "kabupaten:35.78"),
        ("reason", "step 16: resolved (edited)"),
        ("at", datetime(2026, 3, 3, 1, 0, tzinfo=UTC)),
        ("to_state", "rejected"),
        ("from_state", "acknowledged"),
        ("handoff_id", "H-999"),
    ],
)
def test_edited_field_is_detected_at_its_row(
    chain: list[AuditEntry], field: str, value: object
) -> None:
    row = chain[16]
    assert row.seq == 17 and getattr(row, field) != value
    chain[16] = dataclasses.replace(row, **{field: value})  # type: ignore[arg-type]
    report = verify_chain(chain)
    assert not report.ok
    assert report.first_bad_seq == 17
    assert report.problem == "row 17 edited: hash does not match its content"
    assert report.checked == 16


def test_one_microsecond_is_an_edit(chain: list[AuditEntry]) -> None:
    chain[30] = dataclasses.replace(chain[30], at=chain[30].at + timedelta(microseconds=1))
    report = verify_chain(chain)
    assert (report.ok, report.first_bad_seq) == (False, 31)


def test_edited_prev_hash_is_detected(chain: list[AuditEntry]) -> None:
    chain[19] = dataclasses.replace(chain[19], prev_hash=GENESIS)
    report = verify_chain(chain)
    assert (report.ok, report.first_bad_seq) == (False, 20)
    assert report.problem == "row 20 edited: hash does not match its content"


def test_deleted_middle_row(chain: list[AuditEntry]) -> None:
    del chain[17]
    report = verify_chain(chain)
    assert (report.ok, report.first_bad_seq, report.checked) == (False, 18, 17)
    assert report.problem == "row 18 missing: sequence jumps from 17 to 19"


def test_deleted_first_row(chain: list[AuditEntry]) -> None:
    report = verify_chain(chain[1:])
    assert (report.ok, report.first_bad_seq) == (False, 1)
    assert report.problem == "row 1 missing: the chain starts at row 2"


def test_deleted_last_row_needs_an_expected_end(chain: list[AuditEntry]) -> None:
    last_hash = chain[-1].hash
    del chain[-1]
    # Without an anchor a shorter chain looks complete: keep count or last hash elsewhere.
    assert verify_chain(chain).ok
    report = verify_chain(chain, expected_count=50)
    assert (report.ok, report.first_bad_seq, report.checked) == (False, 50, 49)
    assert report.problem == "row 50 missing: the chain ends at row 49, expected 50 rows"
    report = verify_chain(chain, expected_last_hash=last_hash)
    assert (report.ok, report.first_bad_seq) == (False, 49)
    assert "expected last hash" in (report.problem or "")


def test_extra_row_beyond_the_expected_count(chain: list[AuditEntry]) -> None:
    report = verify_chain(chain, expected_count=49)
    assert (report.ok, report.first_bad_seq) == (False, 50)
    assert report.problem == "the chain has 50 rows, expected 49"


def test_deleting_a_whole_handoff_is_detected(chain: list[AuditEntry]) -> None:
    victim = chain[5].handoff_id
    kept = [e for e in chain if e.handoff_id != victim]
    assert len(kept) < len(chain)
    report = verify_chain(kept)
    assert not report.ok
    assert report.first_bad_seq == next(e.seq for e in chain if e.handoff_id == victim)
    assert "missing" in (report.problem or "")


def test_swapped_rows(chain: list[AuditEntry]) -> None:
    chain[19], chain[20] = chain[20], chain[19]
    report = verify_chain(chain)
    assert (report.ok, report.first_bad_seq, report.checked) == (False, 20, 19)
    assert report.problem == "rows out of order: row 21 comes before row 20"


def test_swapped_contents_keeping_the_numbering(chain: list[AuditEntry]) -> None:
    a, b = chain[19], chain[20]
    chain[19], chain[20] = dataclasses.replace(b, seq=20), dataclasses.replace(a, seq=21)
    report = verify_chain(chain)
    assert (report.ok, report.first_bad_seq) == (False, 20)
    assert "edited" in (report.problem or "")


def test_row_moved_back(chain: list[AuditEntry]) -> None:
    moved = chain.pop(10)  # row 11 now comes after row 30
    chain.insert(30, moved)
    report = verify_chain(chain)
    assert (report.ok, report.first_bad_seq) == (False, 11)


def test_duplicated_row(chain: list[AuditEntry]) -> None:
    chain.insert(25, chain[24])
    report = verify_chain(chain)
    assert (report.ok, report.first_bad_seq) == (False, 25)
    assert report.problem == "row 25 appears twice"


def forged(seq: int, prev_hash: str) -> AuditEntry:
    fields = {
        "seq": seq,
        "handoff_id": "H-1",
        "from_state": "delivered",
        "to_state": "resolved",
        "actor": "kecamatan:35.78.01",
        "reason": "closed",
        "at": datetime(2026, 3, 3, 2, 0, tzinfo=UTC),
        "prev_hash": prev_hash,
    }
    return AuditEntry(**fields, hash=entry_hash(**fields))  # type: ignore[arg-type]


def test_inserted_row_with_own_hash_but_wrong_prev(chain: list[AuditEntry]) -> None:
    chain.insert(25, forged(26, "f" * 64))
    report = verify_chain(chain)
    assert (report.ok, report.first_bad_seq, report.checked) == (False, 26, 25)
    assert report.problem == "row 26: prev_hash does not match row 25"


def test_inserted_row_with_the_right_prev(chain: list[AuditEntry]) -> None:
    chain.insert(25, forged(26, chain[24].hash))
    report = verify_chain(chain)
    assert (report.ok, report.first_bad_seq) == (False, 26)
    assert report.problem == "row 26 appears twice"


def test_inserted_row_with_the_rest_renumbered(chain: list[AuditEntry]) -> None:
    tail = [dataclasses.replace(e, seq=e.seq + 1) for e in chain[25:]]
    report = verify_chain([*chain[:25], forged(26, chain[24].hash), *tail])
    assert (report.ok, report.first_bad_seq) == (False, 27)
    assert report.problem == "row 27 edited: hash does not match its content"


def test_first_row_must_start_from_genesis() -> None:
    report = verify_chain([forged(1, "f" * 64)])
    assert (report.ok, report.first_bad_seq) == (False, 1)
    assert report.problem == "row 1: prev_hash is not the genesis hash"


def test_rewritten_tail_is_caught_by_the_anchor(chain: list[AuditEntry]) -> None:
    anchor = verify_chain(chain).last_hash
    # Rewriting from row 30 on with fresh hashes is consistent in itself...
    rewritten = chain[:29]
    prev: AuditEntry | None = rewritten[-1]
    for e in chain[29:]:
        prev = chain_entry(
            prev,
            handoff_id=e.handoff_id,
            from_state=e.from_state,
            to_state=e.to_state,
            actor=e.actor,
            reason=e.reason + " (rewritten)",
            at=e.at,
        )
        rewritten.append(prev)
    assert verify_chain(rewritten).ok
    # ...but not with the last hash recorded before.
    report = verify_chain(rewritten, expected_last_hash=anchor, expected_count=50)
    assert (report.ok, report.first_bad_seq) == (False, 50)


def test_verify_a_long_chain_quickly() -> None:
    entries = build_chain(5000)
    report = verify_chain(iter(entries), expected_count=5000)
    assert report.ok and report.last_seq == 5000


# --- what chain_entry refuses ----------------------------------------------------------------


def entry(reason: str = "ok", **overrides: object) -> AuditEntry:
    fields: dict[str, object] = {
        "handoff_id": "H-1",
        "from_state": "delivered",
        "to_state": "resolved",
        "actor": "kecamatan:35.78.01",
        "reason": reason,
        "at": T0,
    }
    fields.update(overrides)
    return chain_entry(None, **fields)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    "reason",
    [
        f"duplicate of {NIK}",
        f"NIK{NIK} also in desa 35.78.01.1001",
        f"see {NIK}.",
        "nip 198701012010011001",  # 18 digits: also refused
    ],
)
def test_reason_with_a_clear_id_is_refused(reason: str) -> None:
    with pytest.raises(ValueError, match="16 or more digits") as caught:
        entry(reason)
    assert NIK not in str(caught.value)


@pytest.mark.parametrize(
    "reason",
    [
        f"duplicate of {mask_id(NIK)}",
        f"subject {TOKEN}",
        f"superseded by {hashlib.sha256(b'x').hexdigest()}",
        "1234567890123456abcdefabcdef0123 replayed",  # a hex key starting with 16 digits
        "phone 0812-3456-7890, batch 2026-03-20",
    ],
)
def test_reason_without_clear_ids_is_accepted(reason: str) -> None:
    assert entry(reason).reason == reason


def test_chain_entry_refuses_naive_time() -> None:
    with pytest.raises(ValueError, match="timezone-aware"):
        entry(at=datetime(2026, 3, 2, 8, 0))


def test_chain_entry_refuses_illegal_transition() -> None:
    with pytest.raises(IllegalTransition, match="handoff H-1: cannot go from resolved to open"):
        entry(from_state="resolved", to_state="open")
    with pytest.raises(IllegalTransition):
        entry(from_state="delivered", to_state="delivered")


def test_chain_entry_first_row_of_a_handoff_is_open() -> None:
    assert entry(from_state=None, to_state="open").to_state == "open"
    with pytest.raises(ValueError, match="first row must create it as open"):
        entry(from_state=None, to_state="delivered")


@pytest.mark.parametrize("field", ["handoff_id", "actor"])
def test_chain_entry_needs_ids(field: str) -> None:
    with pytest.raises(ValueError, match="needs a handoff_id and an actor"):
        entry(**{field: ""})


def test_audit_entry_is_immutable(chain: list[AuditEntry]) -> None:
    with pytest.raises(dataclasses.FrozenInstanceError):
        chain[0].reason = "x"  # type: ignore[misc]
