"""The zone rule on a table of cases: thresholds, trends, reverts, small populations."""

from __future__ import annotations

from datetime import date

import pytest

from models.handoffs import HandoffKind, Office, OfficeKind, handoff_key
from models.zones import (
    AreaWeek,
    Trend,
    Zone,
    ZoneThresholds,
    area_population,
    episode_period,
    incidence_per_100k,
    kabupaten_population,
    last_complete_week,
    previous_week,
    red_episodes,
    weeks_back,
    zone_of,
    zone_series,
)

T = ZoneThresholds()  # 10 / 20 / 40 per 100,000 and 5 cases
POP = 50_000.0  # 5 cases = 10 per 100,000; 10 = 20; 20 = 40


@pytest.mark.parametrize(
    ("cases", "previous", "population", "zone"),
    [
        (0, 0, POP, Zone.GREEN),
        (4, 0, POP, Zone.GREEN),  # 8 per 100,000, under yellow
        (5, 0, POP, Zone.YELLOW),  # exactly the yellow threshold
        (9, 5, POP, Zone.YELLOW),  # 18: under orange
        (10, 0, POP, Zone.ORANGE),  # exactly orange
        (19, 10, POP, Zone.ORANGE),  # 38: under red
        (20, 10, POP, Zone.RED),  # exactly red, previous exactly orange: confirmed
        (60, 12, POP, Zone.RED),  # rising into red after an orange week
        (20, 9, POP, Zone.ORANGE),  # previous week only yellow: a single bad week
        (200, 0, POP, Zone.ORANGE),  # a huge spike from nothing is watched, not alarmed
        (25, 30, POP, Zone.RED),  # falling but still over red after a red week
        (15, 40, POP, Zone.ORANGE),  # falling out of red
        # Small populations: 4 cases among 2,000 people is 200 per 100,000, still no cluster.
        (4, 4, 2_000.0, Zone.YELLOW),
        (1, 0, 900.0, Zone.YELLOW),
        (4, 0, 1_000_000.0, Zone.GREEN),
        # Enough cases, but the confirming week had fewer than min_cases (a small desa).
        (5, 4, 2_000.0, Zone.ORANGE),
        (5, 5, 2_000.0, Zone.RED),
    ],
)
def test_zone_of(cases: int, previous: int, population: float, zone: Zone) -> None:
    assert zone_of(cases, previous, population, T).zone is zone


def test_trend_and_incidence_are_reported() -> None:
    v = zone_of(30, 12, POP, T)
    assert v.trend is Trend.RISING and v.incidence_per_100k == 60.0 and v.previous_per_100k == 24.0
    assert zone_of(12, 30, POP, T).trend is Trend.FALLING
    assert zone_of(12, 12, POP, T).trend is Trend.STEADY


def test_bad_inputs_are_refused() -> None:
    with pytest.raises(ValueError, match="positive population"):
        incidence_per_100k(3, 0)
    with pytest.raises(ValueError, match="negative"):
        zone_of(-1, 0, POP, T)
    with pytest.raises(ValueError, match="must rise"):
        ZoneThresholds(20, 10, 40)
    with pytest.raises(ValueError, match="min_cases"):
        ZoneThresholds(min_cases=0)


def test_thresholds_are_configurable() -> None:
    strict = ZoneThresholds(yellow_per_100k=2, orange_per_100k=4, red_per_100k=8, min_cases=2)
    assert zone_of(4, 2, POP, strict).zone is Zone.RED
    assert zone_of(4, 2, POP, T).zone is Zone.GREEN


def test_weeks() -> None:
    assert last_complete_week(date(2026, 11, 3)) == "2026-W44"  # Tuesday of W45
    assert last_complete_week(date(2026, 11, 9)) == "2026-W45"  # Monday after W45
    assert last_complete_week(date(2026, 11, 8)) == "2026-W44"  # Sunday: W45 not over
    assert previous_week("2027-W01") == "2026-W53"  # 2026 is a long ISO year
    assert weeks_back("2026-W02", 3) == ["2025-W52", "2026-W01", "2026-W02"]


def _series(cases: dict[str, int], weeks: list[str], before: int = 0) -> list[AreaWeek]:
    return zone_series("35.07.01", "dbd", weeks, cases, POP, T, before=before)


def test_a_red_spell_is_one_episode_named_by_its_first_week() -> None:
    weeks = weeks_back("2026-W46", 6)
    cases = {"2026-W42": 5, "2026-W43": 12, "2026-W44": 40, "2026-W45": 50, "2026-W46": 3}
    series = _series(cases, weeks)
    assert [aw.zone for aw in series] == [
        Zone.YELLOW,
        Zone.ORANGE,
        Zone.RED,
        Zone.RED,
        Zone.GREEN,
    ]
    (episode,) = red_episodes(series)
    assert episode.start == "2026-W44" and episode.period == "dbd:2026-W44"
    assert episode.entered is not None and episode.entered.week == "2026-W44"
    assert episode.stayed is not None and episode.stayed.week == "2026-W45"


def test_a_single_bad_week_that_reverts_and_a_rise_under_red_make_no_episode() -> None:
    weeks = weeks_back("2026-W46", 6)
    spike = _series({"2026-W44": 90}, weeks)
    assert [aw.zone for aw in spike] == [Zone.ORANGE, Zone.GREEN]
    assert red_episodes(spike) == []
    rise = _series({"2026-W42": 6, "2026-W43": 15, "2026-W44": 18, "2026-W45": 6}, weeks)
    assert max(ZONE_RANK[aw.zone] for aw in rise) == ZONE_RANK[Zone.ORANGE]
    assert red_episodes(rise) == []


ZONE_RANK = {z: i for i, z in enumerate(Zone)}


def test_two_spells_and_a_spell_carried_from_before_the_window() -> None:
    weeks = weeks_back("2026-W46", 6)
    cases = {w: 30 for w in weeks}
    cases["2026-W43"] = 0
    series = _series(cases, weeks, before=30)
    episodes = red_episodes(series, carried_start="2026-W38")
    assert [e.start for e in episodes] == ["2026-W38", "2026-W45"]
    assert episodes[0].entered is None and episodes[0].stayed is not None
    assert episodes[1].entered is not None and episodes[1].stayed is not None


def test_population_is_split_by_the_registry_people() -> None:
    totals = {"35.07": 1_000_000}
    people = {"35.07.01.2001": 30, "35.07.01.2002": 10, "35.07.02.2001": 60, "35.08.01.2001": 5}
    pop = area_population(people, totals)
    assert pop["35.07.01.2001"] == 300_000 and pop["35.07.01.2002"] == 100_000
    assert pop["35.07.01"] == 400_000 and pop["35.07.02"] == 600_000
    # No total for the kabupaten: no population, so no zone.
    assert "35.08.01.2001" not in pop and "35.08.01" not in pop
    shipped = kabupaten_population()
    assert len(shipped) == 38 and sum(shipped.values()) == 41_919_906


def test_a_region_code_is_a_valid_handoff_subject() -> None:
    office = Office(kind=OfficeKind.FORKOPIMCAM, code="35.07.01")
    assert office.key == "forkopimcam:35.07.01"
    assert Office.parse("forkopimcam:35.07.01").escalation_target is None
    period = episode_period("campak", "2026-W45")
    assert len(period) <= 20
    for subject in ("35.07.01", "35.07.01.2001"):
        key = handoff_key(HandoffKind.HEALTH_RED_ZONE, subject, period, office)
        assert len(key) == 32
    with pytest.raises(ValueError, match="forkopimcam code"):
        Office(kind=OfficeKind.FORKOPIMCAM, code="35.07")
