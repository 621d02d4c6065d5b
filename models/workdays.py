"""Working-day arithmetic for Indonesian offices: weekends, public holidays and cuti bersama."""

from __future__ import annotations

import csv
import functools
import threading
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import date, datetime, timedelta, tzinfo
from pathlib import Path
from zoneinfo import ZoneInfo

import holidays

__all__ = [
    "CALENDAR_FILE",
    "JAKARTA",
    "CalendarFileError",
    "WorkCalendar",
    "default_calendar",
    "due_date",
    "is_overdue",
    "local_date",
    "operator_instant",
    "read_calendar_file",
]

JAKARTA = "Asia/Jakarta"
"""Time zone of Jawa Timur (WIB, UTC+7), the zone every deadline is counted in."""

# "public" alone misses the joint leave days (cuti bersama) set by the ministers' joint decree.
_CATEGORIES = ("public", "government")
_LOCAL_HOLIDAY = "Local holiday"
_WEEKEND = ("Saturday", "Sunday")

CALENDAR_FILE = Path(__file__).parent / "data" / "calendar.csv"
"""The shipped, editable corrections to the national calendar (see the file's header)."""
_SATURDAY = 5
_ONE_DAY = timedelta(days=1)


@dataclass(frozen=True, slots=True)
class _Year:
    """The exceptions to Monday–Friday in one calendar year."""

    closed_weekdays: frozenset[date]
    open_weekend_days: frozenset[date]
    names: Mapping[date, str]


def _weekdays_through(d: date) -> int:
    """Number of Mondays–Fridays from 0001-01-01 (a Monday) through d."""
    weeks, rest = divmod(d.toordinal(), 7)
    return weeks * 5 + min(rest, 5)


class WorkCalendar:
    """Monday–Friday less Indonesian public holidays and cuti bersama, with office overrides."""

    def __init__(
        self,
        extra_holidays: Iterable[date] = (),
        extra_workdays: Iterable[date] = (),
        *,
        language: str = "en_US",
    ) -> None:
        # A mapping of extra holidays (date -> name) keeps its names; a plain iterable gets a
        # generic one.
        if isinstance(extra_holidays, Mapping):
            self._extra_names: dict[date, str] = {
                _as_date(d): str(name) for d, name in extra_holidays.items()
            }
        else:
            self._extra_names = {_as_date(d): _LOCAL_HOLIDAY for d in extra_holidays}
        self._extra_workdays = frozenset(_as_date(d) for d in extra_workdays)
        both = sorted(self._extra_workdays & self._extra_names.keys())
        if both:
            shown = ", ".join(d.isoformat() for d in both)
            raise ValueError(f"dates given both as extra holidays and extra workdays: {shown}")
        # Pinned so holiday names do not depend on the machine's locale.
        self._language = language
        self._years: dict[int, _Year] = {}
        self._lock = threading.Lock()

    def __repr__(self) -> str:
        return (
            f"WorkCalendar(extra_holidays={len(self._extra_names)}, "
            f"extra_workdays={len(self._extra_workdays)})"
        )

    def _year(self, year: int) -> _Year:
        cached = self._years.get(year)
        if cached is not None:
            return cached
        with self._lock:
            cached = self._years.get(year)
            if cached is None:
                cached = self._build_year(year)
                self._years[year] = cached
        return cached

    def _build_year(self, year: int) -> _Year:
        official = holidays.Indonesia(categories=_CATEGORIES, years=year, language=self._language)
        names: dict[date, str] = {d: str(n) for d, n in official.items() if d.year == year}
        for d, name in self._extra_names.items():
            if d.year == year:
                names[d] = f"{names[d]}; {name}" if d in names else name
        for d in self._extra_workdays:
            names.pop(d, None)
        closed = frozenset(d for d in names if d.weekday() < _SATURDAY)
        open_weekend = frozenset(
            d for d in self._extra_workdays if d.year == year and d.weekday() >= _SATURDAY
        )
        return _Year(closed, open_weekend, names)

    def is_workday(self, d: date) -> bool:
        """True if offices work on d."""
        return self._works(_as_date(d))

    def _works(self, d: date) -> bool:
        year = self._year(d.year)
        if d.weekday() < _SATURDAY:
            return d not in year.closed_weekdays
        return d in year.open_weekend_days

    def holiday_name(self, d: date) -> str | None:
        """Name of the holiday on d (several joined by "; "), or None; plain weekends are None."""
        d = _as_date(d)
        return self._year(d.year).names.get(d)

    def day_off(self, d: date) -> str | None:
        """Why offices are closed on d (the holiday's name, or the weekend day), or None."""
        d = _as_date(d)
        if self._works(d):
            return None
        return self.holiday_name(d) or _WEEKEND[d.weekday() - _SATURDAY]

    def next_workday(self, d: date) -> date:
        """The first working day strictly after d."""
        d = _as_date(d) + _ONE_DAY
        while not self._works(d):
            d += _ONE_DAY
        return d

    def add_workdays(self, start: date, n: int) -> date:
        """The date n working days after start (start not counted); n=0 rolls to a workday."""
        if n < 0:
            raise ValueError(f"n must be >= 0, got {n}")
        start = _as_date(start)
        if n == 0:
            return start if self._works(start) else self.next_workday(start)
        d = start
        while n:
            d += _ONE_DAY
            if self._works(d):
                n -= 1
        return d

    def workdays_between(self, a: date, b: date) -> int:
        """Working days in (a, b]; negative when b is before a."""
        a, b = _as_date(a), _as_date(b)
        if b < a:
            return -self.workdays_between(b, a)
        # Closed form for Monday–Friday, then correct by each year's few exceptions, so long
        # spans (backlog ages, scorecards) cost a handful of set scans, not one step per day.
        count = _weekdays_through(b) - _weekdays_through(a)
        for y in range(a.year, b.year + 1):
            year = self._year(y)
            count -= sum(1 for d in year.closed_weekdays if a < d <= b)
            count += sum(1 for d in year.open_weekend_days if a < d <= b)
        return count


def _as_date(value: date) -> date:
    # datetime is a subclass of date; comparing the two raises, so strip the time explicitly.
    if isinstance(value, datetime):
        raise TypeError("expected a date, got a datetime: convert it with local_date() first")
    if not isinstance(value, date):
        raise TypeError(f"expected a date, got {type(value).__name__}")
    return value


@functools.cache
def _zone(tz: str) -> tzinfo:
    return ZoneInfo(tz)


def local_date(moment: datetime, tz: str = JAKARTA) -> date:
    """The calendar date of an aware datetime in the given zone (Jakarta by default)."""
    if not isinstance(moment, datetime):
        raise TypeError(f"expected a datetime, got {type(moment).__name__}")
    if moment.tzinfo is None or moment.utcoffset() is None:
        raise ValueError("datetime must be timezone-aware (a naive time is ambiguous)")
    return moment.astimezone(_zone(tz)).date()


class CalendarFileError(ValueError):
    """The calendar corrections file cannot be read; the message names the line."""


def read_calendar_file(path: Path) -> tuple[dict[date, str], list[date]]:
    """Extra holidays (date -> name) and extra working days from a corrections file.

    One line per date: `date,kind,name` with kind `holiday` (offices closed: a regional
    holiday, a moved cuti bersama, the real date of an estimated holiday) or `workday`
    (offices open although the national calendar says otherwise: a cancelled cuti bersama,
    the estimated date of a holiday that fell elsewhere). Lines starting with `#` are notes.
    """
    holidays_: dict[date, str] = {}
    workdays: list[date] = []
    with path.open(encoding="utf-8", newline="") as handle:
        lines = (line for line in handle if line.strip() and not line.lstrip().startswith("#"))
        for n, row in enumerate(csv.DictReader(lines), start=1):
            where = f"{path.name}, entry {n}"
            try:
                day = date.fromisoformat((row.get("date") or "").strip())
            except ValueError:
                raise CalendarFileError(f"{where}: date must be YYYY-MM-DD") from None
            kind = (row.get("kind") or "").strip()
            if kind == "holiday":
                holidays_[day] = (row.get("name") or "").strip() or _LOCAL_HOLIDAY
            elif kind == "workday":
                workdays.append(day)
            else:
                raise CalendarFileError(f"{where}: kind must be holiday or workday")
    return holidays_, workdays


@functools.cache
def default_calendar() -> WorkCalendar:
    """The national calendar with the shipped corrections (`CALENDAR_FILE`) applied."""
    extra_holidays, extra_workdays = read_calendar_file(CALENDAR_FILE)
    return WorkCalendar(extra_holidays, extra_workdays)


def due_date(created_at: datetime, workdays: int, calendar: WorkCalendar | None = None) -> date:
    """Due date of a work item: `workdays` after its creation date in Jawa Timur (WIB)."""
    cal = calendar if calendar is not None else default_calendar()
    return cal.add_workdays(local_date(created_at), workdays)


def is_overdue(
    due: date,
    now: datetime,
    calendar: WorkCalendar | None = None,
    tz: str = JAKARTA,
    *,
    grace_workdays: int = 0,
) -> bool:
    """True once the local date of now is after the due date (plus any grace working days)."""
    cal = calendar if calendar is not None else default_calendar()
    # A due date that has since become a day off (a newly decreed cuti bersama, an office
    # holiday) moves to the next working day rather than expiring while nobody works.
    deadline = cal.add_workdays(_as_date(due), grace_workdays)
    return local_date(now, tz) > deadline


def operator_instant(value: datetime | None, *, now: datetime | None = None) -> datetime:
    """An operator's time as an aware instant; a time without a zone is read as WIB.

    Forms, the CLI and deployment parameters give times as typed: a bare
    `2026-11-11T06:00` means 06:00 in Jawa Timur (Asia/Jakarta), in every step of a run.
    None means `now` (the current time when not given).
    """
    if value is None:
        return now if now is not None else datetime.now(_zone(JAKARTA))
    if value.tzinfo is None or value.utcoffset() is None:
        return value.replace(tzinfo=_zone(JAKARTA))
    return value
