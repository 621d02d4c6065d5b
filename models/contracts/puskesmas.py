"""Wire contract of the puskesmas (health centres): weekly surveillance aggregates per desa.

A puskesmas reports, for each desa/kelurahan it covers, each ISO week and each notifiable
condition, the new cases, the tests done and the deaths: counts only. No person is named in
this source, so the contract forbids any field beyond the aggregates: a record carrying a
patient's name or NIK is refused, never stored.
"""

from __future__ import annotations

from datetime import date
from typing import Annotated, Literal

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, Strict, StringConstraints

from models.contracts.registry import RecordId
from models.plausibility import DesaCode, RecordTime, StrictInt

__all__ = ["CONDITIONS", "SURVEILLANCE", "Condition", "IsoWeek", "WeeklyReport", "week_start"]

SURVEILLANCE = "surveillance"

Condition = Literal["covid19", "dbd", "campak"]
"""Condition codes: COVID-19, dengue (demam berdarah dengue) and measles (campak)."""
CONDITIONS: tuple[str, ...] = ("covid19", "dbd", "campak")
"""Every condition code, in report order."""


def week_start(week: str) -> date:
    """The Monday of an ISO week like 2026-W45; ValueError if no such week exists."""
    year, sep, number = week.partition("-W")
    if not sep or len(year) != 4 or len(number) != 2 or not (year + number).isdigit():
        raise ValueError(f"week must look like 2026-W45, got {week[:12]!r}")
    try:
        return date.fromisocalendar(int(year), int(number), 1)
    except ValueError:
        # Week 53 exists only in long ISO years; week 00 never.
        raise ValueError(f"{year} has no ISO week {number}") from None


def _real_week(week: str) -> str:
    week_start(week)
    return week


IsoWeek = Annotated[
    str,
    Strict(),
    StringConstraints(pattern=r"^20[0-9]{2}-W[0-5][0-9]$"),
    AfterValidator(_real_week),
]
"""An ISO 8601 week (`2026-W45`, Monday to Sunday) that exists."""

Count = Annotated[StrictInt, Field(ge=0, le=1_000_000)]


class WeeklyReport(BaseModel):
    """One desa's figures for one condition and ISO week (`GET /puskesmas/v1/surveillance`)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    id: RecordId
    puskesmas_id: RecordId
    desa_code: DesaCode
    week: IsoWeek
    condition: Condition
    new_cases: Count
    tests: Count
    deaths: Count
    updated_at: RecordTime
