"""Plausibility rules every wire contract shares: strict scalars, ISO dates, clean text.

JSON has no date type and pydantic's lax mode reads far more than the exchange contract
allows (`true` as 1, `"7"` as 7, `0` as 1970-01-01), so the contracts use the types here:

- integers and numbers are strict: a bool or a string is never a number;
- a date is ISO text `YYYY-MM-DD` and a time ISO 8601 text with a zone (or the Python
  object itself, when the hub builds a body); never a number;
- a birth date lies between `EARLIEST_BIRTH_DATE` and the validation day;
- a record's time (`updated_at`, a report's day, a decision's time) lies between
  `REGISTRY_EPOCH` and the validation time plus `CLOCK_SKEW`;
- text holds no control character (C0, DEL, C1; NUL included: PostgreSQL refuses it in
  text), and required text is not blank once trimmed. Free text (notes, reasons) may hold
  tabs and line breaks, nothing else of the kind.

"The validation time" is the `now` the sync passes with each page (`validation_context`),
so a record is judged against the moment it was read, not a clock read field by field;
without a context (a body the hub builds, a receipt) the wall clock stands in.

Text rules are regular expressions run by pydantic's core (no Python call per field); a
failure is told apart (control character or blank) only for the rejects, by
`text_problem`, so every rejection carries a stable code.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta, timezone
from typing import Annotated, Any, get_args

from pydantic import AwareDatetime, BeforeValidator, Strict, StringConstraints, ValidationInfo
from pydantic_core import PydanticCustomError

from models.wilayah import KodeDesa, KodeKecamatan

__all__ = [
    "BLANK_TEXT",
    "CLOCK_SKEW",
    "CONTROL_CHARACTER",
    "DATETIME_FORMAT",
    "DATETIME_TYPE",
    "DATE_FORMAT",
    "DATE_IN_FUTURE",
    "DATE_TOO_EARLY",
    "DATE_TYPE",
    "EARLIEST_BIRTH_DATE",
    "FREE_TEXT_PATTERN",
    "LINE_PATTERN",
    "OPTIONAL_LINE_PATTERN",
    "RECORD_ID",
    "REGISTRY_EPOCH",
    "TEXT_PATTERNS",
    "BirthDate",
    "Code",
    "DesaCode",
    "FreeText",
    "IsoDate",
    "IsoTime",
    "KecamatanCode",
    "Line",
    "OptionalLine",
    "RecordDate",
    "RecordId",
    "RecordTime",
    "StrictFloat",
    "StrictInt",
    "ValidationClock",
    "has_control_character",
    "text_problem",
    "validation_context",
]

WIB = timezone(timedelta(hours=7), "WIB")

EARLIEST_BIRTH_DATE = date(1900, 1, 1)
"""No living registry member was born before 1900: an earlier date is a typing error."""
REGISTRY_EPOCH = datetime(2011, 1, 1, tzinfo=WIB)
"""The registry began with the PPLS 2011 survey (the Basis Data Terpadu built from it): no
record, report or decision of the exchange can be older."""
CLOCK_SKEW = timedelta(days=1)
"""How far past the validation time a record's time may lie: agencies' clocks drift, a
day in WIB is not the day in UTC, and a record written while it is read is not wrong."""

# Stable reason codes (the `code` of a quarantine reason).
DATE_TYPE = "date_type"
DATE_FORMAT = "date_format"
DATETIME_TYPE = "datetime_type"
DATETIME_FORMAT = "datetime_format"
DATE_IN_FUTURE = "date_in_future"
DATE_TOO_EARLY = "date_too_early"
CONTROL_CHARACTER = "control_character"
BLANK_TEXT = "blank_text"

# C0 controls, DEL and C1 controls: Unicode category Cc.
_CC = r"\x00-\x1F\x7F-\x9F"
_CC_BUT_LAYOUT = r"\x00-\x08\x0B\x0C\x0E-\x1F\x7F-\x9F"
LINE_PATTERN = rf"^[^{_CC}]*[^\s{_CC}][^{_CC}]*$"
"""One line of text: no control character, at least one visible character."""
OPTIONAL_LINE_PATTERN = rf"^$|{LINE_PATTERN}"
"""An optional line: empty, or a `LINE_PATTERN` line (never only spaces)."""
FREE_TEXT_PATTERN = rf"^[^{_CC_BUT_LAYOUT}]*$"
"""Free text: tabs and line breaks allowed, no other control character; may be empty."""
CODE_PATTERN = rf"^[^{_CC}]*$"
"""A code read by its own rule afterwards (region codes): no control character."""
TEXT_PATTERNS = frozenset({LINE_PATTERN, OPTIONAL_LINE_PATTERN, FREE_TEXT_PATTERN, CODE_PATTERN})
"""The patterns whose mismatch `text_problem` explains."""

_CONTROL = re.compile(f"[{_CC}]")
_CONTROL_BUT_LAYOUT = re.compile(f"[{_CC_BUT_LAYOUT}]")


def has_control_character(text: str, *, layout: bool = False) -> bool:
    """True if text holds a control character (tabs and line breaks allowed with `layout`)."""
    return (_CONTROL_BUT_LAYOUT if layout else _CONTROL).search(text) is not None


def text_problem(pattern: str, value: object) -> tuple[str, str] | None:
    """(code, message) of a text that missed one of `TEXT_PATTERNS`; None for other patterns.

    The message never quotes the text: it may be a name or hold an id.
    """
    if pattern not in TEXT_PATTERNS or not isinstance(value, str):
        return None
    if has_control_character(value, layout=pattern == FREE_TEXT_PATTERN):
        return CONTROL_CHARACTER, "text must not contain control characters (NUL included)"
    return BLANK_TEXT, "text must not be empty or only spaces"


_DAY = timedelta(days=1)
_EPOCH_UTC = REGISTRY_EPOCH.astimezone(UTC)
_EPOCH_DAY = REGISTRY_EPOCH.date()
# A time whose own calendar day is after this one is after the epoch in any zone (offsets
# stay within a day), so most times are judged by comparing ten characters.
_AFTER_EPOCH_DAY = (_EPOCH_DAY + _DAY).isoformat()
_EARLIEST_BIRTH_TEXT = EARLIEST_BIRTH_DATE.isoformat()
_EPOCH_DAY_TEXT = _EPOCH_DAY.isoformat()


@dataclass(frozen=True, slots=True)
class ValidationClock:
    """The latest plausible record time and day of one validation run."""

    latest: datetime
    latest_day: str
    """The latest plausible day (WIB), as ISO text: ISO dates compare as text."""
    before_latest_day: str
    """A day whose times are before `latest` in any zone."""

    @classmethod
    def at(cls, now: datetime) -> ValidationClock:
        """The clock of a validation run at `now` (aware), allowing `CLOCK_SKEW`."""
        if now.tzinfo is None:
            raise ValueError("the validation time must carry a time zone")
        latest = (now + CLOCK_SKEW).astimezone(UTC)
        return cls(
            latest,
            latest.astimezone(WIB).date().isoformat(),
            (latest.date() - _DAY).isoformat(),
        )


_CLOCK_KEY = "plausibility_clock"


def validation_context(now: datetime | None = None) -> dict[str, Any]:
    """The pydantic context that makes "not in the future" mean "not after `now` + skew"."""
    return {_CLOCK_KEY: ValidationClock.at(now or datetime.now(UTC))}


# The parsers below are the hot path of every sync (a few fields per record): cheap
# character checks, then the C ISO parser; no regular expression per value.


def _is_iso_day(text: str) -> bool:
    # YYYY-MM-DD in ASCII (the C parser reads the digits; NUL would end its reading early).
    return (
        len(text) == 10
        and text[4] == "-"
        and text[7] == "-"
        and text.isascii()
        and "\x00" not in text
    )


def _is_iso_time(text: str) -> bool:
    # Calendar date in the extended form, a time after it; the C parser checks the rest.
    # The basic (20260105T08) and week (2026-W02-1) forms are refused, and so is a NUL,
    # after which the C parser would stop reading and accept what came before.
    return (
        len(text) >= 13
        and text[4] == "-"
        and text[7] == "-"
        and text[10] in "T "
        and text.isascii()
        and "\x00" not in text
    )


def _parse_day(value: object) -> tuple[str, date]:
    # `type(...) is` on purpose: a datetime is a date and a bool an int; neither is a date.
    if type(value) is str:
        if _is_iso_day(value):
            try:
                return value, date.fromisoformat(value)
            except ValueError:
                raise PydanticCustomError(
                    DATE_FORMAT, "date is not a real calendar date (YYYY-MM-DD)"
                ) from None
        raise PydanticCustomError(DATE_FORMAT, "date must be ISO text YYYY-MM-DD")
    if type(value) is date:
        return value.isoformat(), value
    raise PydanticCustomError(
        DATE_TYPE, "date must be ISO text YYYY-MM-DD, got {kind}", {"kind": type(value).__name__}
    )


def _parse_time(value: object) -> tuple[str, datetime]:
    if type(value) is str:
        if _is_iso_time(value):
            try:
                return value, datetime.fromisoformat(value)
            except ValueError:
                raise PydanticCustomError(
                    DATETIME_FORMAT, "time is not a real calendar time (ISO 8601)"
                ) from None
        raise PydanticCustomError(DATETIME_FORMAT, "time must be ISO 8601 text with a zone")
    if isinstance(value, datetime):
        return value.isoformat(), value
    raise PydanticCustomError(
        DATETIME_TYPE, "time must be ISO 8601 text, got {kind}", {"kind": type(value).__name__}
    )


def _too_early(what: str, bound: str) -> PydanticCustomError:
    return PydanticCustomError(
        DATE_TOO_EARLY, "{what} is before {bound}", {"what": what, "bound": bound}
    )


def _in_future(what: str) -> PydanticCustomError:
    return PydanticCustomError(
        DATE_IN_FUTURE,
        "{what} is in the future (after the validation time plus one day)",
        {"what": what},
    )


def _iso_date(value: object) -> date:
    return _parse_day(value)[1]


def _latest(info: ValidationInfo) -> ValidationClock:
    ctx = info.context
    clock = ctx.get(_CLOCK_KEY) if ctx else None
    return clock if clock is not None else ValidationClock.at(datetime.now(UTC))


# The common case of each rule first, inline: a plain ISO text inside the bounds, read by
# the C parser; anything else (or any doubt) takes the full path, which names the problem.


def _birth_date(value: object, info: ValidationInfo) -> date:
    # Fast path: YYYY-MM-DD inside the bounds (the C parser refuses any other 10 characters
    # with dashes there, non-ASCII digits and NUL included).
    if type(value) is str and len(value) == 10 and value[4] == "-" and value[7] == "-":
        ctx = info.context
        clock = ctx.get(_CLOCK_KEY) if ctx else None
        if clock is not None and _EARLIEST_BIRTH_TEXT <= value <= clock.latest_day:
            try:
                return date.fromisoformat(value)
            except ValueError:
                pass
    text, day = _parse_day(value)
    if text < _EARLIEST_BIRTH_TEXT:
        raise _too_early("birth date", _EARLIEST_BIRTH_TEXT)
    if text > _latest(info).latest_day:
        raise _in_future("birth date")
    return day


def _record_date(value: object, info: ValidationInfo) -> date:
    text, day = _parse_day(value)
    if text < _EPOCH_DAY_TEXT:
        raise _too_early("date", _EPOCH_DAY_TEXT)
    if text > _latest(info).latest_day:
        raise _in_future("date")
    return day


def _iso_time(value: object) -> datetime:
    text, when = _parse_time(value)
    # A naive time is left to AwareDatetime, which names the missing zone.
    if text[:10] <= _AFTER_EPOCH_DAY and when.tzinfo is not None and when < _EPOCH_UTC:
        raise _too_early("time", REGISTRY_EPOCH.isoformat())
    return when


def _record_time(value: object, info: ValidationInfo) -> datetime:
    # Fast path: an extended ISO date and a time, its day strictly inside the bounds, so
    # inside them in any zone (offsets are under a day). Left as text: pydantic's parser
    # reads it faster than it checks a datetime object, refuses what is not RFC 3339 (a
    # NUL, non-ASCII digits) and names a time that is no calendar time.
    if (
        type(value) is str
        and len(value) > 10
        and value[4] == "-"
        and value[7] == "-"
        and value[10] in "T "
    ):
        ctx = info.context
        clock = ctx.get(_CLOCK_KEY) if ctx else None
        if clock is not None and _AFTER_EPOCH_DAY < value[:10] < clock.before_latest_day:
            return value  # type: ignore[return-value]
    text, when = _parse_time(value)
    if text[:10] <= _AFTER_EPOCH_DAY and when.tzinfo is not None and when < _EPOCH_UTC:
        raise _too_early("time", REGISTRY_EPOCH.isoformat())
    clock = _latest(info)
    if text[:10] >= clock.before_latest_day and when.tzinfo is not None and when > clock.latest:
        raise _in_future("time")
    return when


StrictInt = Annotated[int, Strict()]
"""An integer that is a JSON integer: never a bool, a string or a float."""
StrictFloat = Annotated[float, Strict()]
"""A number that is a JSON number: never a bool or a string."""

RECORD_ID = re.compile(r"[A-Za-z0-9._:-]{1,64}", re.ASCII)
"""A record id of the exchange: 1-64 ASCII letters, digits and `._:-` (`fullmatch`)."""
RecordId = Annotated[
    str, Strict(), StringConstraints(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9._:-]+$")
]
"""A record id: 1-64 ASCII letters, digits and `._:-` (no space, no control character)."""

Code = Annotated[str, Strict(), StringConstraints(pattern=CODE_PATTERN)]
"""Text of a code checked by its own rule next: no control character."""
# The region rules themselves (models.wilayah) run after the text rule.
DesaCode = Annotated[Code, get_args(KodeDesa)[1]]
"""A known desa/kelurahan code (`KodeDesa`), given as text without control characters."""
KecamatanCode = Annotated[Code, get_args(KodeKecamatan)[1]]
"""A known kecamatan code (`KodeKecamatan`), given as text without control characters."""

Line = Annotated[str, Strict(), StringConstraints(min_length=1, pattern=LINE_PATTERN)]
"""Required one-line text (names, titles): not blank, no control character."""
OptionalLine = Annotated[str, Strict(), StringConstraints(pattern=OPTIONAL_LINE_PATTERN)]
"""Optional one-line text (addresses): empty, or a `Line`."""
FreeText = Annotated[str, Strict(), StringConstraints(pattern=FREE_TEXT_PATTERN)]
"""Free text (notes, reasons): may be empty or span lines, no other control character."""

IsoDate = Annotated[date, BeforeValidator(_iso_date)]
"""A date given as ISO text (or a date object), nothing else."""
BirthDate = Annotated[date, BeforeValidator(_birth_date)]
"""An ISO birth date from `EARLIEST_BIRTH_DATE` up to the validation day."""
RecordDate = Annotated[date, BeforeValidator(_record_date)]
"""An ISO date of a record (a report's day) from `REGISTRY_EPOCH` up to the validation day."""
IsoTime = Annotated[AwareDatetime, BeforeValidator(_iso_time)]
"""An ISO 8601 time with a zone, not before `REGISTRY_EPOCH` (receipts: the agency's clock)."""
RecordTime = Annotated[AwareDatetime, BeforeValidator(_record_time)]
"""A record's ISO 8601 time with a zone, from `REGISTRY_EPOCH` to the validation time + skew."""
