"""Plausibility rules: strict scalars, ISO dates in bounds, text without control characters."""

from __future__ import annotations

import json
from datetime import UTC, date, datetime, timedelta
from typing import Any

import pytest
from pydantic import TypeAdapter, ValidationError

from models.contracts.registry import Household
from models.plausibility import (
    CLOCK_SKEW,
    EARLIEST_BIRTH_DATE,
    LINE_PATTERN,
    REGISTRY_EPOCH,
    BirthDate,
    FreeText,
    IsoDate,
    IsoTime,
    Line,
    OptionalLine,
    RecordDate,
    RecordTime,
    StrictInt,
    text_problem,
    validation_context,
)
from models.validation import validate_batch
from tests.factories import household, member

NOW = datetime(2026, 11, 27, 3, 0, tzinfo=UTC)
CONTEXT = validation_context(NOW)


def _code(adapter: TypeAdapter[Any], value: object) -> str | None:
    """The error type a value gets, or None when it is valid."""
    try:
        adapter.validate_python(value, context=CONTEXT)
    except ValidationError as exc:
        return str(exc.errors()[0]["type"])
    return None


def _reasons(record: dict[str, Any]) -> list[str]:
    batch = validate_batch([record], Household, now=NOW)
    return batch.rejected[0].reason_codes if batch.rejected else []


# --- the hostile values of a registry household, each refused with its stable code ---------


def _named(i: int, name: str) -> dict[str, Any]:
    return household(i, members=[member(i * 10 + 1, name=name)])


def _born(i: int, birth: object) -> dict[str, Any]:
    return household(i, members=[member(i * 10 + 1, birth_date=birth)])


@pytest.mark.parametrize(
    ("record", "reason"),
    [
        (_named(1, "Siti\x00Aminah"), "members.name:control_character"),
        (household(2, address="Jl. Kenanga\x00 12"), "address:control_character"),
        (_born(3, "2099-01-01"), "members.birth_date:date_in_future"),
        (_born(4, "1800-01-01"), "members.birth_date:date_too_early"),
        (_born(5, 0), "members.birth_date:date_type"),
        (household(6, updated_at=0), "updated_at:datetime_type"),  # type: ignore[arg-type]
        (household(7, desil=True), "desil:int_type"),
        (household(8, desil="7"), "desil:int_type"),
        (household(9, desil=7.0), "desil:int_type"),
        (_named(10, "   "), "members.name:blank_text"),
        (household(11, address="   "), "address:blank_text"),
        (household(12, address="\u3000\u00a0"), "address:blank_text"),
        (household(13, updated_at="2026-11-29T08:00:00+07:00"), "updated_at:date_in_future"),
        (household(14, updated_at="2010-12-31T23:59:59+07:00"), "updated_at:date_too_early"),
        (household(15, updated_at="1700000000"), "updated_at:datetime_format"),
        # A NUL after a whole time (where the C ISO parser would stop reading) is refused.
        (
            household(16, updated_at="2026-01-05T08:00:00+07:00\x00"),
            "updated_at:datetime_from_date_parsing",
        ),
        (_born(17, "1985-03-14T00:00:00"), "members.birth_date:date_format"),
        (_born(18, "14/03/1985"), "members.birth_date:date_format"),
        (_named(19, "Siti\tAminah"), "members.name:control_character"),
        (_named(20, "Siti\x85Aminah"), "members.name:control_character"),
        (household(21, desa_code="35.78.01.1001\x1f"), "desa_code:control_character"),
        (
            household(22, members=[member(221, nik=f"{member(221)['nik']}\x00")]),
            "members.nik:nik_invalid",
        ),
    ],
)
def test_each_hostile_value_is_refused_with_its_reason(record: dict[str, Any], reason: str) -> None:
    assert _reasons(record) == [reason]


@pytest.mark.parametrize(
    "record",
    [
        _born(30, "1900-01-01"),
        # Born today in WIB: the validation day (NOW is 10:00 WIB on 27 November).
        household(31, members=[member(311, born=date(2026, 11, 27))]),
        household(32, updated_at="2011-01-01T00:00:00+07:00"),
        household(33, updated_at=(NOW + CLOCK_SKEW - timedelta(seconds=1)).isoformat()),
        household(34, address=""),
        household(35, desil=10),
        household(36, desil=None),
        _named(37, "Ṣāliḥah binti Mūsā"),
        _named(38, "'; DROP TABLE household; --"),
        household(39, address="<script>alert(1)</script> **Jl.** [x](http://e.test)"),
        household(40, updated_at="2026-01-05T01:00:00Z"),
    ],
)
def test_plausible_values_still_pass(record: dict[str, Any]) -> None:
    batch = validate_batch([record], Household, now=NOW)
    assert batch.rejected == []
    assert batch.valid[0].id == record["id"]


def test_injection_text_is_kept_verbatim() -> None:
    name = "Robert'); DROP TABLE member;-- <b>**x**</b>"
    (valid,) = validate_batch([household(41, members=[member(411, name=name)])], Household).valid
    assert valid.members[0].name == name


# --- the types on their own -------------------------------------------------------------------


def test_strict_int_refuses_bool_text_and_float() -> None:
    ints = TypeAdapter(StrictInt)
    assert _code(ints, 7) is None
    assert [_code(ints, v) for v in (True, "7", 7.0)] == ["int_type"] * 3


@pytest.mark.parametrize(
    ("value", "code"),
    [
        ("1985-03-14", None),
        (date(1985, 3, 14), None),
        (EARLIEST_BIRTH_DATE.isoformat(), None),
        ("1899-12-31", "date_too_early"),
        ("2026-11-28", None),  # one day of skew
        ("2026-11-29", "date_in_future"),
        (0, "date_type"),
        (True, "date_type"),
        (1.5, "date_type"),
        (None, "date_type"),
        (datetime(1985, 3, 14), "date_type"),
        ("2023-02-30", "date_format"),
        ("19850314", "date_format"),
        ("1985-W11-4", "date_format"),
        ("１９８５-03-14", "date_format"),
        ("١٩٨٥-03-14", "date_format"),
        ("1985-03-1\x00", "date_format"),
    ],
)
def test_birth_date(value: object, code: str | None) -> None:
    assert _code(TypeAdapter(BirthDate), value) == code


def test_a_record_date_lies_between_the_registry_epoch_and_the_validation_day() -> None:
    days = TypeAdapter(RecordDate)
    assert _code(days, "2011-01-01") is None
    assert _code(days, "2010-12-31") == "date_too_early"
    assert _code(days, "2026-11-28") is None
    assert _code(days, "2026-11-29") == "date_in_future"
    # A deadline may lie ahead: only its form is checked.
    assert _code(TypeAdapter(IsoDate), "2099-01-01") is None
    assert _code(TypeAdapter(IsoDate), 0) == "date_type"


@pytest.mark.parametrize(
    ("value", "code"),
    [
        ("2026-11-27T10:00:00+07:00", None),
        ("2026-11-27 10:00Z", None),
        (REGISTRY_EPOCH.isoformat(), None),
        ((REGISTRY_EPOCH - timedelta(microseconds=1)).isoformat(), "date_too_early"),
        # Far offsets near each bound: the quick text comparison must not decide these.
        ("2011-01-01T06:59:00+14:00", "date_too_early"),
        ("2011-01-01T07:00:00+14:00", None),
        ("2010-12-31T05:00:00-12:00", None),
        ((NOW + CLOCK_SKEW).isoformat(), None),
        ((NOW + CLOCK_SKEW + timedelta(seconds=1)).isoformat(), "date_in_future"),
        ("2026-11-26T23:59:00-12:00", None),
        ("2026-11-27T14:59:00-12:00", None),
        ("2026-11-27T15:01:00-12:00", "date_in_future"),
        ("2026-11-28T16:59:00+14:00", None),
        ("2026-11-28T17:01:00+14:00", "date_in_future"),
        (NOW, None),
        (0, "datetime_type"),
        (1764000000.0, "datetime_type"),
        (False, "datetime_type"),
        ("1764000000", "datetime_format"),
        ("20261127T100000+0700", "datetime_format"),
        ("2026-W48-5T10:00:00+07:00", "datetime_format"),
        ("2026-11-27", "datetime_format"),
        ("2026-11-27T10:00:00+07:00\x00", "datetime_format"),
        ("2026-11-27T25:00:00+07:00", "datetime_format"),
        # Inside the bounds pydantic's own parser reads the text and names the problem.
        ("2025-02-30T10:00:00+07:00", "datetime_from_date_parsing"),
        ("2025-03-01T10:00:00+07:00 x", "datetime_from_date_parsing"),
        ("２０２６-11-27T10:00:00+07:00", "datetime_format"),
        ("2026-11-27T10:00:00", "timezone_aware"),
    ],
)
def test_record_time(value: object, code: str | None) -> None:
    assert _code(TypeAdapter(RecordTime), value) == code


def test_without_a_context_the_wall_clock_is_the_validation_time() -> None:
    times = TypeAdapter(RecordTime)
    soon = datetime.now(UTC) + timedelta(hours=1)
    assert times.validate_python(soon.isoformat()) == soon
    with pytest.raises(ValidationError, match="date_in_future"):
        times.validate_python((soon + CLOCK_SKEW).isoformat())
    # A receipt is the agency's clock: only its form and the epoch are checked.
    assert TypeAdapter(IsoTime).validate_python("2099-01-01T00:00:00Z").year == 2099


def test_validation_time_must_carry_a_zone() -> None:
    with pytest.raises(ValueError, match="time zone"):
        validation_context(datetime(2026, 11, 27))


@pytest.mark.parametrize("control", ["\x00", "\x01", "\x1b", "\x7f", "\x85", "\x9f", "\n", "\r"])
def test_no_text_holds_a_control_character(control: str) -> None:
    for kind in (Line, OptionalLine):
        assert _code(TypeAdapter(kind), f"Siti{control}Aminah") == "string_pattern_mismatch"
    assert text_problem_code(Line, f"Siti{control}Aminah") == "control_character"


def test_free_text_keeps_its_lines_but_no_other_control() -> None:
    free = TypeAdapter(FreeText)
    assert _code(free, "baris satu\n\tbaris dua\r\n") is None
    assert _code(free, "") is None
    assert text_problem_code(FreeText, "catatan\x00") == "control_character"


def test_blank_and_empty_text() -> None:
    assert text_problem_code(Line, "  \t ") == "control_character"
    assert text_problem_code(Line, "   ") == "blank_text"
    assert text_problem_code(Line, "") == "string_too_short"
    assert _code(TypeAdapter(OptionalLine), "") is None
    assert text_problem_code(OptionalLine, " ") == "blank_text"


def text_problem_code(kind: Any, value: str) -> str | None:
    """The code the quarantine gives a text a type refuses (None if it is accepted)."""
    try:
        TypeAdapter(kind).validate_python(value)
    except ValidationError as exc:
        err = exc.errors()[0]
        if err["type"] != "string_pattern_mismatch":
            return str(err["type"])
        problem = text_problem(err["ctx"]["pattern"], value)
        return problem[0] if problem else None
    return None


def test_text_problem_never_quotes_the_text_and_ignores_other_patterns() -> None:
    problem = text_problem(r"^[A-Za-z0-9._:-]+$", "x\x00")
    assert problem is None
    code, message = text_problem(LINE_PATTERN, "Siti\x00") or ("", "")
    assert code == "control_character" and "Siti" not in message


# --- what reaches the store ------------------------------------------------------------------


def test_a_raw_id_that_is_not_an_id_never_reaches_the_record_id_column() -> None:
    for bad in ("HH-1\x00", "HH 1", "ＨＨ-1", "HH-\u200b1", "x" * 65, "HH-1\n"):
        (rej,) = validate_batch([household(50, id=bad)], Household, now=NOW).rejected
        assert rej.record_id is None, repr(bad)
        assert rej.reason_codes in (["id:string_pattern_mismatch"], ["id:string_too_long"])
    (rej,) = validate_batch([household(51, desil="7")], Household, now=NOW).rejected
    assert rej.record_id == "HH-51"


def test_the_quarantine_text_holds_no_nul() -> None:
    record = household(52, address="a\x00b", members=[member(521, name="\x00")])
    record["id"] = "HH-52\x00"
    (rej,) = validate_batch([record], Household, now=NOW).rejected
    reasons = json.dumps([r.message for r in rej.reasons], ensure_ascii=False)
    for text in (rej.payload_json, reasons, ",".join(rej.reason_codes)):
        assert "\x00" not in text
    # The payload is kept whole: its NUL is escaped, not lost.
    assert json.loads(rej.payload_json)["address"] == "a\x00b"
    assert len(rej.payload_hash) == 64


def test_a_lone_surrogate_is_quarantined_with_a_storable_payload() -> None:
    record = household(53, members=[member(531, name="Siti \ud800")])
    (rej,) = validate_batch([record], Household, now=NOW).rejected
    assert rej.reason_codes == ["members.name:string_unicode"]
    rej.payload_json.encode()  # what a text column and the hash need
    assert "\\ud800" in rej.payload_json and len(rej.payload_hash) == 64
