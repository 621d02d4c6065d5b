"""Ground truth of the puskesmas figures: which areas enter the red zone, and when.

Computed by brute force over what the sandbox serves (valid reports only, at the current
epoch), following the semantics of the zone rule the README documents, with the
thresholds of `HealthConfig` (the hub's defaults), so an area that turns red by accident
is counted like a planted one. Populations are the registry's people at the current epoch
split from each kabupaten/kota's 2024 total, as the hub splits them.
"""

from __future__ import annotations

from collections import Counter, defaultdict
from collections.abc import Sequence

from pydantic import BaseModel, Field

from sandbox.health_config import HealthConfig
from sandbox.health_data import (
    OUTBREAK,
    HealthData,
    registry_people,
    split_population,
)

__all__ = ["HealthTruth", "RedEntry", "ScenarioTruth", "compute_health_truth"]


class RedEntry(BaseModel):
    """An area entering the red zone: level (desa/kecamatan), area, condition, week."""

    level: str
    area_code: str
    condition: str
    week: str
    # Red weeks of the spell served so far, and the latest of them.
    red_weeks: int = 1
    last_red_week: str = ""


class ScenarioTruth(BaseModel):
    """A planted scenario: its kind, kecamatan, condition and key week."""

    kind: str
    kecamatan: str
    condition: str
    week: str


class HealthTruth(BaseModel):
    """Everything the puskesmas sandbox serves and plants, for the province or some kecamatan."""

    epoch: int
    weeks: list[str]
    kecamatan: list[str] | None
    records: int = 0
    valid: int = 0
    invalid_by_kind: dict[str, int] = Field(default_factory=dict)
    entries: list[RedEntry] = Field(default_factory=list)
    planted: list[RedEntry] = Field(default_factory=list)
    accidental: list[RedEntry] = Field(default_factory=list)
    # Near-miss scenarios (a rise under the threshold, a single bad week): never red.
    near_misses: list[ScenarioTruth] = Field(default_factory=list)
    scenarios: list[ScenarioTruth] = Field(default_factory=list)
    # Zones of the last served week by colour, over the areas with cases that week or the
    # week before (the zones the hub stores).
    last_week_zones: dict[str, int] = Field(default_factory=dict)

    @property
    def ongoing(self) -> list[RedEntry]:
        """Kecamatan spells red in the last served week a week or more after entering red.

        A hub that handed the spell off in an earlier week escalates it now.
        """
        last = self.weeks[-1] if self.weeks else ""
        return [
            e
            for e in self.entries
            if e.level == "kecamatan" and e.red_weeks >= 2 and e.last_red_week == last
        ]


def _zone(cases: int, previous: int, population: float, cfg: HealthConfig) -> str:
    rate = cases * 100_000 / population
    before = previous * 100_000 / population
    if cases < cfg.min_cases:
        return "yellow" if rate >= cfg.yellow_per_100k else "green"
    if rate >= cfg.red_per_100k:
        if previous >= cfg.min_cases and before >= cfg.orange_per_100k:
            return "red"
        return "orange"
    if rate >= cfg.orange_per_100k:
        return "orange"
    return "yellow" if rate >= cfg.yellow_per_100k else "green"


def compute_health_truth(data: HealthData, kecamatan: Sequence[str] | None = None) -> HealthTruth:
    """The exact red entries of the served figures at the registry's current epoch."""
    cfg = data.config
    epoch = data.registry.epoch
    served = data.weeks_served()
    weeks = [data.week(n) for n in range(served)]
    wanted = None if kecamatan is None else set(kecamatan)
    truth = HealthTruth(
        epoch=epoch, weeks=weeks, kecamatan=None if wanted is None else sorted(wanted)
    )
    cases: defaultdict[tuple[str, str], Counter[int]] = defaultdict(Counter)
    bad: Counter[str] = Counter()
    for number in range(served):
        for item in data.week_items(number):
            r = item.record
            if wanted is not None and r["desa_code"][:8] not in wanted:
                continue
            truth.records += 1
            if item.bad is not None:
                bad[item.bad] += 1
                continue
            truth.valid += 1
            cases[r["desa_code"], r["condition"]][number] += r["new_cases"]
            cases[r["desa_code"][:8], r["condition"]][number] += r["new_cases"]
    truth.invalid_by_kind = dict(sorted(bad.items()))
    population = split_population(registry_people(data.registry, epoch))
    outbreaks = {(s.kecamatan, s.condition) for s in data.scenarios() if s.kind == OUTBREAK}
    zones: Counter[str] = Counter()
    for (area, condition), by_week in sorted(cases.items()):
        pop = population.get(area, 0.0)
        if pop <= 0:
            continue
        level = "desa" if area.count(".") == 3 else "kecamatan"
        previous_zone, previous, entry = "green", 0, None
        for number in range(served):
            n = by_week.get(number, 0)
            zone = _zone(n, previous, pop, cfg) if (n or previous) else "green"
            if number == served - 1 and (n or previous):
                zones[zone] += 1
            if zone == "red" and previous_zone != "red":
                entry = RedEntry(
                    level=level,
                    area_code=area,
                    condition=condition,
                    week=weeks[number],
                    last_red_week=weeks[number],
                )
                truth.entries.append(entry)
            elif zone == "red" and entry is not None:
                entry.red_weeks += 1
                entry.last_red_week = weeks[number]
            previous_zone, previous = zone, n
    for e in truth.entries:
        (truth.planted if (e.area_code[:8], e.condition) in outbreaks else truth.accidental).append(
            e
        )
    for s in data.scenarios():
        if wanted is not None and s.kecamatan not in wanted:
            continue
        shown = ScenarioTruth(
            kind=s.kind, kecamatan=s.kecamatan, condition=s.condition, week=data.week(s.key_week)
        )
        truth.scenarios.append(shown)
        if s.kind != OUTBREAK:
            truth.near_misses.append(shown)
    truth.last_week_zones = {z: zones.get(z, 0) for z in ("green", "yellow", "orange", "red")}
    return truth
