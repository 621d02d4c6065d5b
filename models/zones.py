"""Health zones: weekly surveillance figures -> a zone per desa and kecamatan, and who to tell.

**Population.** Dukcapil publishes the population per kabupaten/kota (Semester II 2024,
`models/data/wilayah/jatim_population_2024s2.csv`), not per kecamatan or desa. Each
kabupaten/kota's figure is split to its kecamatan and desa in proportion to the registry's
people there (members of the households the store holds): `population(area) =
kabupaten_total * people(area) / people(kabupaten)`. An area without registry people has
no population figure and gets no zone.

**The zone rule** (`zone_of`), per area, condition and ISO week, from the week's new cases
and the previous week's, with the incidence per 100,000 people (`cases * 100000 /
population`):

1. fewer than `min_cases` new cases: at most yellow (yellow from the yellow threshold up,
   else green): a handful of cases in a small desa is no outbreak, whatever its rate;
2. incidence at or over the red threshold: **red** when the trend confirms it (the previous
   week was already at or over the orange threshold with at least `min_cases` cases), else
   orange: a single bad week from a calm baseline is watched, not alarmed, and a week
   that reverts never turns red;
3. at or over the orange threshold: orange; at or over the yellow one: yellow; else green.

An area *enters* red in a week that is red after a week that was not (or had no figures).
A kecamatan entering red gets one urgent handoff (and its Forkopimcam a notice); staying red
the next week escalates that handoff; a desa entering red gets one urgent handoff. Every
red spell is one episode, named by its condition and the week it began.
"""

from __future__ import annotations

import csv
import functools
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import date, timedelta
from enum import StrEnum
from importlib.resources import files

__all__ = [
    "ZONE_ORDER",
    "AreaWeek",
    "Episode",
    "Trend",
    "Zone",
    "ZoneThresholds",
    "ZoneVerdict",
    "area_population",
    "episode_period",
    "incidence_per_100k",
    "iso_week",
    "kabupaten_population",
    "last_complete_week",
    "previous_week",
    "red_episodes",
    "trend_of",
    "weeks_back",
    "zone_of",
    "zone_series",
]


class Zone(StrEnum):
    """Health zone of an area for one condition and week, mildest first."""

    GREEN = "green"
    YELLOW = "yellow"
    ORANGE = "orange"
    RED = "red"


ZONE_ORDER: tuple[Zone, ...] = tuple(Zone)
"""Zones from green to red."""


class Trend(StrEnum):
    """How the week's incidence compares with the previous week's."""

    RISING = "rising"
    STEADY = "steady"
    FALLING = "falling"


@dataclass(frozen=True, slots=True)
class ZoneThresholds:
    """Weekly incidence per 100,000 at which each zone starts, and the fewest cases that count."""

    yellow_per_100k: float = 10.0
    orange_per_100k: float = 20.0
    red_per_100k: float = 40.0
    min_cases: int = 5

    def __post_init__(self) -> None:
        if not 0 < self.yellow_per_100k < self.orange_per_100k < self.red_per_100k:
            raise ValueError("zone thresholds must rise: 0 < yellow < orange < red")
        if self.min_cases < 1:
            raise ValueError("min_cases must be at least 1")


def incidence_per_100k(cases: int, population: float) -> float:
    """New cases per 100,000 people; ValueError without a positive population."""
    if population <= 0:
        raise ValueError("an incidence needs a positive population")
    return cases * 100_000 / population


def trend_of(cases: int, previous_cases: int) -> Trend:
    """Rising, steady or falling: this week's cases against the previous week's."""
    if cases > previous_cases:
        return Trend.RISING
    if cases < previous_cases:
        return Trend.FALLING
    return Trend.STEADY


@dataclass(frozen=True, slots=True)
class ZoneVerdict:
    """The zone of one area-week and the figures it was decided on."""

    zone: Zone
    trend: Trend
    incidence_per_100k: float
    previous_per_100k: float


def zone_of(
    cases: int, previous_cases: int, population: float, thresholds: ZoneThresholds
) -> ZoneVerdict:
    """The zone of one area for one week (see the module's rule)."""
    if cases < 0 or previous_cases < 0:
        raise ValueError("case counts cannot be negative")
    t = thresholds
    now = incidence_per_100k(cases, population)
    before = incidence_per_100k(previous_cases, population)
    trend = trend_of(cases, previous_cases)
    if cases < t.min_cases:
        zone = Zone.YELLOW if now >= t.yellow_per_100k else Zone.GREEN
    elif now >= t.red_per_100k:
        confirmed = previous_cases >= t.min_cases and before >= t.orange_per_100k
        zone = Zone.RED if confirmed else Zone.ORANGE
    elif now >= t.orange_per_100k:
        zone = Zone.ORANGE
    elif now >= t.yellow_per_100k:
        zone = Zone.YELLOW
    else:
        zone = Zone.GREEN
    return ZoneVerdict(zone, trend, now, before)


# --- weeks -----------------------------------------------------------------------------------


def iso_week(day: date) -> str:
    """The ISO week of a day, like 2026-W45."""
    year, week, _ = day.isocalendar()
    return f"{year}-W{week:02d}"


def _monday(week: str) -> date:
    year, _, number = week.partition("-W")
    return date.fromisocalendar(int(year), int(number), 1)


def previous_week(week: str) -> str:
    """The ISO week before `week`."""
    return iso_week(_monday(week) - timedelta(days=7))


def last_complete_week(today: date) -> str:
    """The last ISO week that ended before `today` (weeks end on Sunday)."""
    return iso_week(today - timedelta(days=today.isoweekday()))


def weeks_back(last: str, count: int) -> list[str]:
    """`count` consecutive ISO weeks ending with `last`, oldest first."""
    monday = _monday(last)
    return [iso_week(monday - timedelta(days=7 * i)) for i in range(count - 1, -1, -1)]


# --- population ------------------------------------------------------------------------------


@functools.cache
def kabupaten_population() -> Mapping[str, int]:
    """Population per kabupaten/kota code (Dukcapil, Semester II 2024), the province left out."""
    text = files("models").joinpath("data", "wilayah", "jatim_population_2024s2.csv")
    rows = csv.DictReader(text.read_text(encoding="utf-8").splitlines())
    return {r["code"]: int(r["total"]) for r in rows if r["code"].count(".") == 1}


def area_population(
    people: Mapping[str, int], totals: Mapping[str, int] | None = None
) -> dict[str, float]:
    """Population of every desa and kecamatan with registry people, from people per desa.

    `people` maps dotted desa codes to the registry's people there; each kabupaten/kota's
    total is split in proportion. Kecamatan are the sums of their desa.
    """
    known = kabupaten_population() if totals is None else totals
    per_kabupaten: dict[str, int] = {}
    for desa, n in people.items():
        per_kabupaten[desa[:5]] = per_kabupaten.get(desa[:5], 0) + n
    per_kecamatan: dict[str, int] = {}
    for desa, n in people.items():
        per_kecamatan[desa[:8]] = per_kecamatan.get(desa[:8], 0) + n
    out: dict[str, float] = {}
    for code, n in (*people.items(), *per_kecamatan.items()):
        kab = code[:5]
        total, registered = known.get(kab, 0), per_kabupaten.get(kab, 0)
        if n > 0 and total > 0 and registered > 0:
            out[code] = total * n / registered
    return out


# --- a series of weeks -> zones and red episodes ---------------------------------------------


@dataclass(frozen=True, slots=True)
class AreaWeek:
    """The zone of one area (desa or kecamatan) for one condition and week, with its figures."""

    area_code: str
    condition: str
    week: str
    new_cases: int
    previous_cases: int
    population: float
    verdict: ZoneVerdict

    @property
    def zone(self) -> Zone:
        """The area's zone that week."""
        return self.verdict.zone


def zone_series(
    area_code: str,
    condition: str,
    weeks: Sequence[str],
    cases: Mapping[str, int],
    population: float,
    thresholds: ZoneThresholds,
    *,
    before: int = 0,
) -> list[AreaWeek]:
    """Zones of consecutive `weeks` (oldest first); `before`: cases of the week before them.

    A week without figures counts as no case. Only weeks with cases, or right after a week
    with cases, are returned: the other weeks are green with nothing to say.
    """
    out: list[AreaWeek] = []
    previous = before
    for week in weeks:
        n = cases.get(week, 0)
        if n or previous:
            verdict = zone_of(n, previous, population, thresholds)
            out.append(AreaWeek(area_code, condition, week, n, previous, population, verdict))
        previous = n
    return out


@dataclass(frozen=True, slots=True)
class Episode:
    """A spell of consecutive red weeks of one area and condition, and the week it began."""

    area_code: str
    condition: str
    start: str
    weeks: tuple[AreaWeek, ...]

    @property
    def period(self) -> str:
        """The handoff period of the episode: condition and first red week."""
        return episode_period(self.condition, self.start)

    @property
    def entered(self) -> AreaWeek | None:
        """The week the area entered red, when it is among the weeks given."""
        return self.weeks[0] if self.weeks[0].week == self.start else None

    @property
    def stayed(self) -> AreaWeek | None:
        """The latest red week after the first one (None: red for one week so far)."""
        last = self.weeks[-1]
        return last if last.week != self.start else None


def episode_period(condition: str, start_week: str) -> str:
    """Handoff period of a red episode, like dbd:2026-W45 (at most 20 characters)."""
    return f"{condition}:{start_week}"


def red_episodes(series: Sequence[AreaWeek], *, carried_start: str | None = None) -> list[Episode]:
    """The red spells of one area's zone weeks, oldest first (a gap in the weeks ends a spell).

    `carried_start`: the area was already red the week before the first one given, in a
    spell that began that week (a stored zone says so); a spell continuing from there keeps it.
    """
    episodes: list[Episode] = []
    current: list[AreaWeek] = []
    start = ""
    last_week: str | None = None
    for aw in series:
        contiguous = last_week is not None and previous_week(aw.week) == last_week
        if current and not (aw.zone is Zone.RED and contiguous):
            episodes.append(Episode(aw.area_code, aw.condition, start, tuple(current)))
            current = []
        if aw.zone is Zone.RED:
            if not current:
                carried = last_week is None and carried_start is not None
                start = carried_start if carried and carried_start else aw.week
            current.append(aw)
        last_week = aw.week
    if current:
        episodes.append(Episode(current[0].area_code, current[0].condition, start, tuple(current)))
    return episodes
