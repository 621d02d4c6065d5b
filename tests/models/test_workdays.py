"""Working days: weekends, Indonesian public holidays and cuti bersama, overrides, time zones."""

from __future__ import annotations

import random
from datetime import UTC, date, datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import holidays
import pytest

import models.workdays as workdays_module
from models.workdays import (
    CALENDAR_FILE,
    JAKARTA,
    CalendarFileError,
    WorkCalendar,
    default_calendar,
    due_date,
    is_overdue,
    local_date,
    operator_instant,
    read_calendar_file,
)

# Dates below are what holidays.Indonesia(categories=("public", "government")) returns
# (package 0.109): cuti bersama are the "... Joint Holiday" entries.


@pytest.fixture(scope="module")
def cal() -> WorkCalendar:
    return WorkCalendar()


def d(text: str) -> date:
    return date.fromisoformat(text)


def utc(text: str) -> datetime:
    return datetime.fromisoformat(text).replace(tzinfo=UTC)


# --- the calendar itself ---------------------------------------------------------------------


def test_weekends_are_not_workdays(cal: WorkCalendar) -> None:
    # 2026-03-02 is a Monday in a week without holidays.
    week = [d("2026-03-02") + timedelta(days=i) for i in range(7)]
    assert [cal.is_workday(x) for x in week] == [True] * 5 + [False, False]
    assert cal.holiday_name(d("2026-03-07")) is None  # a plain Saturday is not a holiday


@pytest.mark.parametrize(
    ("day", "name"),
    [
        ("2026-03-18", "Day of Silence Joint Holiday"),
        ("2026-03-19", "Day of Silence"),
        ("2026-03-20", "Eid al-Fitr Joint Holiday"),
        ("2026-03-21", "Eid al-Fitr"),
        ("2026-03-22", "Eid al-Fitr Second Day"),
        ("2026-03-23", "Eid al-Fitr Joint Holiday"),
        ("2026-03-24", "Eid al-Fitr Joint Holiday"),
        ("2025-12-25", "Christmas Day"),
        ("2025-12-26", "Christmas Joint Holiday"),
        ("2026-01-01", "New Year's Day"),
        ("2025-04-07", "Eid al-Fitr Joint Holiday"),
    ],
)
def test_holidays_and_cuti_bersama_are_days_off(cal: WorkCalendar, day: str, name: str) -> None:
    assert not cal.is_workday(d(day))
    assert cal.holiday_name(d(day)) == name


def test_idul_fitri_2026_stretch(cal: WorkCalendar) -> None:
    # Nyepi and Idul Fitri with their cuti bersama close offices from Wed 18 to Tue 24 March.
    days = [d("2026-03-16") + timedelta(days=i) for i in range(11)]
    working = [x.isoformat() for x in days if cal.is_workday(x)]
    assert working == ["2026-03-16", "2026-03-17", "2026-03-25", "2026-03-26"]


@pytest.mark.parametrize(
    ("start", "n", "expected"),
    [
        ("2026-03-17", 1, "2026-03-25"),  # Tuesday before the break: next day is after it
        ("2026-03-13", 5, "2026-03-27"),  # 16, 17, 25, 26, 27
        ("2026-03-16", 10, "2026-04-07"),  # also skips Good Friday 2026-04-03
        ("2026-03-20", 1, "2026-03-25"),  # from a joint holiday: the first working day after it
        ("2025-03-27", 1, "2025-04-08"),  # 2025: Nyepi, Idul Fitri and cuti bersama to 7 April
        ("2025-12-23", 5, "2026-01-02"),  # 24, (25, 26 off), 29, 30, 31, (1 Jan off), 2
        ("2025-12-24", 1, "2025-12-29"),  # Christmas and its joint holiday, then the weekend
        ("2026-03-06", 5, "2026-03-13"),  # an ordinary week
        ("2026-03-07", 1, "2026-03-09"),  # from a Saturday
    ],
)
def test_add_workdays(cal: WorkCalendar, start: str, n: int, expected: str) -> None:
    assert cal.add_workdays(d(start), n) == d(expected)


@pytest.mark.parametrize(
    ("start", "expected"),
    [
        ("2026-03-16", "2026-03-16"),  # a workday stays
        ("2026-03-14", "2026-03-16"),  # Saturday rolls to Monday
        ("2026-03-18", "2026-03-25"),  # inside the Idul Fitri break
        ("2026-01-01", "2026-01-02"),  # New Year's Day (2 January 2026 is a working Friday)
    ],
)
def test_add_zero_workdays_rolls_forward(cal: WorkCalendar, start: str, expected: str) -> None:
    assert cal.add_workdays(d(start), 0) == d(expected)


def test_add_workdays_rejects_negative(cal: WorkCalendar) -> None:
    with pytest.raises(ValueError, match="n must be >= 0"):
        cal.add_workdays(d("2026-03-16"), -1)


def test_next_workday_is_strictly_after(cal: WorkCalendar) -> None:
    assert cal.next_workday(d("2026-03-16")) == d("2026-03-17")
    assert cal.next_workday(d("2026-03-17")) == d("2026-03-25")
    assert cal.next_workday(d("2026-03-13")) == d("2026-03-16")
    start = d("2026-03-10")
    assert cal.next_workday(start) == cal.add_workdays(start, 1)


@pytest.mark.parametrize(
    ("a", "b", "expected"),
    [
        ("2026-03-16", "2026-03-16", 0),
        ("2026-03-13", "2026-03-14", 0),  # Friday → Saturday
        ("2026-03-13", "2026-03-16", 1),  # Friday → Monday
        ("2026-03-02", "2026-03-06", 4),  # (Mon, Fri]
        ("2026-03-13", "2026-03-31", 7),  # 16, 17, 25, 26, 27, 30, 31
        ("2026-03-17", "2026-03-24", 0),  # the whole break
        ("2025-12-23", "2026-01-02", 5),
        ("2026-03-31", "2026-03-13", -7),
        ("2026-03-16", "2026-03-13", -1),
    ],
)
def test_workdays_between(cal: WorkCalendar, a: str, b: str, expected: int) -> None:
    assert cal.workdays_between(d(a), d(b)) == expected


def test_workdays_between_inverts_add_workdays(cal: WorkCalendar) -> None:
    for n in range(0, 61, 3):
        start = d("2026-03-02")
        assert cal.workdays_between(start, cal.add_workdays(start, n)) == n


def test_workdays_between_matches_day_by_day_count() -> None:
    cal = WorkCalendar(
        extra_holidays=[d("2026-06-02"), d("2026-06-06")],
        extra_workdays=[d("2026-03-28"), d("2026-03-20")],
    )
    rng = random.Random(7)
    base = d("2024-11-01")
    for _ in range(300):
        a = base + timedelta(days=rng.randrange(900))
        b = a + timedelta(days=rng.randrange(-120, 400))
        lo, hi = min(a, b), max(a, b)
        count = sum(cal.is_workday(lo + timedelta(days=i)) for i in range(1, (hi - lo).days + 1))
        assert cal.workdays_between(a, b) == (count if b >= a else -count)


def test_calendar_matches_the_holidays_package_for_2025_and_2026(cal: WorkCalendar) -> None:
    official = holidays.Indonesia(categories=("public", "government"), years=(2025, 2026))
    day = d("2025-01-01")
    while day.year < 2027:
        assert cal.is_workday(day) == (day.weekday() < 5 and day not in official), day
        day += timedelta(days=1)


# --- office overrides ------------------------------------------------------------------------


def test_extra_workday_saturday() -> None:
    # The office works on Saturday 28 March 2026 to catch up after the break.
    office = WorkCalendar(extra_workdays=[d("2026-03-28")])
    assert office.is_workday(d("2026-03-28"))
    assert office.add_workdays(d("2026-03-27"), 1) == d("2026-03-28")
    assert WorkCalendar().add_workdays(d("2026-03-27"), 1) == d("2026-03-30")
    assert office.workdays_between(d("2026-03-27"), d("2026-03-30")) == 2


def test_extra_workday_overrides_a_joint_holiday() -> None:
    office = WorkCalendar(extra_workdays=[d("2026-03-20")])
    assert office.is_workday(d("2026-03-20"))
    assert office.holiday_name(d("2026-03-20")) is None
    assert office.add_workdays(d("2026-03-17"), 1) == d("2026-03-20")


def test_extra_holidays() -> None:
    office = WorkCalendar(extra_holidays=[d("2026-03-25")])
    assert not office.is_workday(d("2026-03-25"))
    assert office.holiday_name(d("2026-03-25")) == "Local holiday"
    assert office.add_workdays(d("2026-03-17"), 1) == d("2026-03-26")
    assert office.workdays_between(d("2026-03-13"), d("2026-03-31")) == 6


def test_extra_holidays_with_names_and_on_an_official_holiday() -> None:
    office = WorkCalendar(
        extra_holidays={d("2026-06-02"): "Office closure", d("2026-03-20"): "Office closure"}
    )
    assert office.holiday_name(d("2026-06-02")) == "Office closure"
    assert office.holiday_name(d("2026-03-20")) == "Eid al-Fitr Joint Holiday; Office closure"
    assert not office.is_workday(d("2026-06-02"))


def test_same_date_as_holiday_and_workday_is_refused() -> None:
    with pytest.raises(ValueError, match="2026-03-28"):
        WorkCalendar(extra_holidays=[d("2026-03-28")], extra_workdays=[d("2026-03-28")])


def test_holiday_names_in_indonesian() -> None:
    assert WorkCalendar(language="id").holiday_name(d("2026-03-19")) == "Hari Suci Nyepi"


def test_datetimes_are_refused_where_dates_are_expected(cal: WorkCalendar) -> None:
    with pytest.raises(TypeError, match="local_date"):
        cal.is_workday(datetime(2026, 3, 16, 9, tzinfo=UTC))
    with pytest.raises(TypeError):
        cal.add_workdays("2026-03-16", 1)  # type: ignore[arg-type]


# --- caching and speed -----------------------------------------------------------------------


def test_holidays_are_built_once_per_year(monkeypatch: pytest.MonkeyPatch) -> None:
    calls: list[int] = []
    real = holidays.Indonesia

    def counting(**kwargs: Any) -> object:
        calls.append(kwargs["years"])
        return real(**kwargs)

    monkeypatch.setattr(workdays_module.holidays, "Indonesia", counting)
    office = WorkCalendar()
    assert calls == []  # lazy
    for start in (d("2025-12-01"), d("2025-12-15"), d("2025-12-23")):
        office.add_workdays(start, 30)
    office.workdays_between(d("2025-01-01"), d("2026-12-31"))
    assert sorted(calls) == [2025, 2026]


def test_default_calendar_is_shared() -> None:
    assert default_calendar() is default_calendar()
    assert default_calendar().is_workday(d("2026-03-16"))


# --- time zones: due dates and overdue -------------------------------------------------------


def test_local_date_uses_jakarta() -> None:
    assert JAKARTA == "Asia/Jakarta"
    # Friday 23:30 UTC is Saturday 06:30 in Jakarta (UTC+7).
    assert local_date(utc("2026-03-06T23:30:00")) == d("2026-03-07")
    assert local_date(utc("2026-03-06T16:59:59")) == d("2026-03-06")
    assert local_date(utc("2026-03-06T17:00:00")) == d("2026-03-07")
    wita = timezone(timedelta(hours=8))
    assert local_date(datetime(2026, 3, 7, 0, 30, tzinfo=wita)) == d("2026-03-06")
    assert local_date(utc("2026-03-06T23:30:00"), "UTC") == d("2026-03-06")


def test_naive_datetimes_are_refused() -> None:
    with pytest.raises(ValueError, match="timezone-aware"):
        local_date(datetime(2026, 3, 6, 23, 30))
    with pytest.raises(ValueError, match="timezone-aware"):
        due_date(datetime(2026, 3, 6, 23, 30), 5)


def test_due_date_counts_from_the_jakarta_date(cal: WorkCalendar) -> None:
    # Created Friday 23:30 UTC = Saturday in Jakarta: with 0 days it is due on Monday, not Friday.
    friday_night = utc("2026-03-06T23:30:00")
    assert due_date(friday_night, 0, cal) == d("2026-03-09")
    assert due_date(friday_night, 5, cal) == d("2026-03-13")
    # Around Jakarta midnight on a Thursday the due date moves by one working day.
    assert due_date(utc("2026-03-05T16:59:59"), 5, cal) == d("2026-03-12")
    assert due_date(utc("2026-03-05T17:00:00"), 5, cal) == d("2026-03-13")


def test_due_date_across_idul_fitri_and_year_end(cal: WorkCalendar) -> None:
    assert due_date(utc("2026-03-16T03:00:00"), 5, cal) == d("2026-03-30")  # 17, 25, 26, 27, 30
    assert due_date(utc("2026-03-16T03:00:00"), 10, cal) == d("2026-04-07")
    assert due_date(utc("2025-12-23T02:00:00"), 5) == d("2026-01-02")


def test_is_overdue_boundaries(cal: WorkCalendar) -> None:
    due = d("2026-03-13")  # a Friday
    assert not is_overdue(due, utc("2026-03-12T10:00:00"), cal)
    assert not is_overdue(due, utc("2026-03-13T16:59:59"), cal)  # 23:59:59 on the due date
    assert is_overdue(due, utc("2026-03-13T17:00:00"), cal)  # Saturday 00:00 in Jakarta
    assert is_overdue(due, utc("2026-03-14T10:00:00"), cal)  # over the weekend
    assert is_overdue(due, utc("2026-03-15T10:00:00"), cal)
    assert is_overdue(due, utc("2026-03-16T01:00:00"), cal)


def test_a_due_date_that_became_a_day_off_moves_to_the_next_workday(cal: WorkCalendar) -> None:
    saturday = d("2026-03-14")
    assert not is_overdue(saturday, utc("2026-03-15T10:00:00"), cal)
    assert not is_overdue(saturday, utc("2026-03-16T10:00:00"), cal)
    assert is_overdue(saturday, utc("2026-03-17T10:00:00"), cal)
    joint_holiday = d("2026-03-20")
    assert not is_overdue(joint_holiday, utc("2026-03-25T10:00:00"), cal)
    assert is_overdue(joint_holiday, utc("2026-03-26T01:00:00"), cal)


def test_is_overdue_with_grace(cal: WorkCalendar) -> None:
    due = d("2026-03-13")
    assert not is_overdue(due, utc("2026-03-17T10:00:00"), cal, grace_workdays=2)
    assert is_overdue(due, utc("2026-03-17T17:00:00"), cal, grace_workdays=2)


def test_an_operator_time_without_a_zone_is_jakarta_time() -> None:
    typed = datetime(2026, 11, 11, 6, 0)
    assert operator_instant(typed) == datetime(2026, 11, 10, 23, 0, tzinfo=UTC)
    assert operator_instant(typed).utcoffset() == timedelta(hours=7)
    aware = datetime(2026, 11, 11, 6, 0, tzinfo=UTC)
    assert operator_instant(aware) is aware
    assert operator_instant(None, now=aware) is aware
    assert operator_instant(None).tzinfo is not None


def test_day_off_names_the_holiday_or_the_weekend() -> None:
    cal = WorkCalendar()
    assert cal.day_off(date(2027, 3, 10)) == "Eid al-Fitr (estimated)"
    assert cal.day_off(date(2027, 3, 12)) == "Eid al-Fitr Joint Holiday"
    assert cal.day_off(date(2026, 12, 24)) == "Christmas Joint Holiday"
    assert cal.day_off(date(2027, 3, 13)) == "Saturday"
    assert cal.day_off(date(2027, 3, 14)) == "Sunday"
    assert cal.day_off(date(2027, 3, 16)) is None


def test_the_corrections_file_moves_and_adds_days(tmp_path: Path) -> None:
    path = tmp_path / "calendar.csv"
    path.write_text(
        "# a decree moved a cuti bersama; a regional holiday\n"
        "date,kind,name\n"
        "2026-12-24,workday,\n"
        "2026-12-28,holiday,Cuti bersama Natal (SKB baru)\n"
        "\n"
        "2027-03-17,holiday,\n",
        encoding="utf-8",
    )
    extra_holidays, extra_workdays = read_calendar_file(path)
    assert extra_holidays == {
        date(2026, 12, 28): "Cuti bersama Natal (SKB baru)",
        date(2027, 3, 17): "Local holiday",
    }
    assert extra_workdays == [date(2026, 12, 24)]
    cal = WorkCalendar(extra_holidays, extra_workdays)
    assert cal.day_off(date(2026, 12, 24)) is None
    assert cal.day_off(date(2026, 12, 28)) == "Cuti bersama Natal (SKB baru)"
    # Due dates read the same calendar: Wed 23 Dec + 1 working day is now Thu 24 Dec.
    assert cal.add_workdays(date(2026, 12, 23), 1) == date(2026, 12, 24)


@pytest.mark.parametrize(
    ("line", "message"),
    [
        ("2026-13-01,holiday,x", "entry 1: date must be YYYY-MM-DD"),
        ("2026-12-01,libur,x", "entry 1: kind must be holiday or workday"),
    ],
)
def test_a_bad_corrections_line_is_named(tmp_path: Path, line: str, message: str) -> None:
    path = tmp_path / "calendar.csv"
    path.write_text(f"date,kind,name\n{line}\n", encoding="utf-8")
    with pytest.raises(CalendarFileError, match=f"calendar.csv, {message}"):
        read_calendar_file(path)


def test_the_default_calendar_reads_the_shipped_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The shipped file parses and holds no contradiction.
    read_calendar_file(CALENDAR_FILE)
    path = tmp_path / "calendar.csv"
    path.write_text("date,kind,name\n2027-03-16,holiday,Hari jadi kabupaten\n", encoding="utf-8")
    monkeypatch.setattr(workdays_module, "CALENDAR_FILE", path)
    default_calendar.cache_clear()
    try:
        assert default_calendar().day_off(date(2027, 3, 16)) == "Hari jadi kabupaten"
        created = datetime(2027, 3, 15, 9, tzinfo=workdays_module.ZoneInfo("Asia/Jakarta"))
        assert due_date(created, 1) == date(2027, 3, 17)
    finally:
        default_calendar.cache_clear()
