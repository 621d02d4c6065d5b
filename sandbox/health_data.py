"""The puskesmas' weekly surveillance figures: one report per desa, condition and week.

Figures derive from the served registry: an area's population is its kabupaten/kota's 2024
total split by the registry's people there (valid households at epoch 0, so a served
record never changes afterwards), and each kecamatan of at least
`HealthConfig.scenario_min_population` people may carry one scenario for one condition
(an outbreak, or a near-miss: a rise that stays under the red threshold, a single bad week
that reverts). A scenario's weekly incidence target becomes the kecamatan's case count,
shared among its desa by the largest remainder of their people; elsewhere a desa reports
one background case now and then. Only (desa, condition, week) with cases are reported.

Weeks: `weeks_before` ISO weeks ending with the week before the coordination base time are
served at epoch 0; each registry epoch (a week of updates) adds the next week. A week's
reports are published on the Monday after it, 07:00 WIB.
"""

from __future__ import annotations

import threading
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from enum import StrEnum
from typing import Any

from models.contracts.puskesmas import CONDITIONS
from models.zones import kabupaten_population
from sandbox.bad_records import Breakage
from sandbox.health_config import HealthConfig
from sandbox.registry_data import Pages, Position, RegistryData
from sandbox.seeding import Salted
from sandbox.source_paging import KeyedEntry, SourceRecord, epoch_ms, keyed_pages

__all__ = [
    "OUTBREAK",
    "RISE",
    "SPIKE",
    "HealthBadKind",
    "HealthData",
    "Scenario",
    "iso_week_of",
    "registry_people",
    "split_population",
]

OUTBREAK, RISE, SPIKE = "outbreak", "rise", "spike"
_S_SCENARIO, _S_CONDITION, _S_WEEK, _S_BACKGROUND, _S_BAD, _S_BAD_KIND, _S_TESTS = range(
    0x701, 0x708
)


class HealthBadKind(StrEnum):
    """Ways a served surveillance report is broken."""

    NEGATIVE_CASES = "negative_cases"
    UNKNOWN_CONDITION = "unknown_condition"
    # A patient's name beside the aggregates: the contract admits no person in this source.
    PATIENT_FIELD = "patient_field"


@dataclass(frozen=True, slots=True)
class Scenario:
    """What one kecamatan's figures of one condition play, around its key week."""

    kind: str
    kecamatan: str
    condition: str
    # Week number (0 = first served week) of the first alert week (outbreak), the second
    # watch week (rise) or the spike.
    key_week: int


# Weekly incidence per 100,000 by week offset from the key week.
_PLANS: dict[str, dict[int, str]] = {
    OUTBREAK: {-2: "rise", -1: "watch", 0: "alert", 1: "alert", 2: "alert", 3: "fade"},
    RISE: {-2: "rise", -1: "watch", 0: "watch", 1: "rise"},
    SPIKE: {0: "alert"},
}


def iso_week_of(day: date) -> str:
    """The ISO week of a day, like 2026-W45."""
    year, week, _ = day.isocalendar()
    return f"{year}-W{week:02d}"


def registry_people(registry: RegistryData, epoch: int) -> dict[str, int]:
    """People per desa in the registry's valid households at an epoch (what the hub stores)."""
    people: dict[str, int] = {}
    for index in registry.indices(epoch=epoch):
        if registry.bad_kind(index) is not None:
            continue
        desa = registry.desa_of(index)
        people[desa] = people.get(desa, 0) + len(registry.household(index, epoch)["members"])
    return people


def split_population(people: dict[str, int]) -> dict[str, float]:
    """Each kabupaten/kota's 2024 total split to its desa and kecamatan by people."""
    totals = kabupaten_population()
    kab: dict[str, int] = {}
    kec: dict[str, int] = {}
    for desa, n in people.items():
        kab[desa[:5]] = kab.get(desa[:5], 0) + n
        kec[desa[:8]] = kec.get(desa[:8], 0) + n
    out: dict[str, float] = {}
    for code, n in [*people.items(), *kec.items()]:
        if n > 0 and kab.get(code[:5], 0) > 0:
            out[code] = totals.get(code[:5], 0) * n / kab[code[:5]]
    return out


class HealthData:
    """Every puskesmas report of the province, generated per week on demand."""

    def __init__(
        self, registry: RegistryData, base_time: datetime, config: HealthConfig, bad_rate: float
    ) -> None:
        self.registry = registry
        self.config = config
        self.tz = base_time.tzinfo
        base = base_time.date()
        self.first_monday = base - timedelta(days=base.weekday() + 7 * config.weeks_before)
        seed = registry.seed
        self._h_scenario = Salted(seed, _S_SCENARIO)
        self._h_condition = Salted(seed, _S_CONDITION)
        self._h_week = Salted(seed, _S_WEEK)
        self._h_background = Salted(seed, _S_BACKGROUND)
        self._h_tests = Salted(seed, _S_TESTS)
        self._bad = Breakage(HealthBadKind, bad_rate, seed, _S_BAD, _S_BAD_KIND)
        layout = registry.layout
        self._village_number = {v.code: n for n, v in enumerate(layout.villages)}
        self._lock = threading.Lock()
        self._base: tuple[dict[str, float], list[Scenario], dict[str, list[str]]] | None = None
        self._weeks: dict[int, list[KeyedEntry]] = {}
        self.pages: Pages = keyed_pages(self.entries)

    # ----------------------------------------------------------------------- weeks

    def week(self, number: int) -> str:
        """The ISO week of a week number (0 = the first served week)."""
        return iso_week_of(self.first_monday + timedelta(days=7 * number))

    def weeks_served(self, epoch: int | None = None) -> int:
        """How many weeks are served at an epoch (default: the registry's current one)."""
        return self.config.weeks_before + (self.registry.epoch if epoch is None else epoch)

    def published_at(self, number: int) -> datetime:
        """When a week's reports are published: the Monday after it, 07:00 local."""
        day = self.first_monday + timedelta(days=7 * (number + 1))
        return datetime.combine(day, time(7, 0), self.tz)

    # --------------------------------------------------------- population, scenarios

    def base(self) -> tuple[dict[str, float], list[Scenario], dict[str, list[str]]]:
        """Epoch-0 population per area, the scenarios, and each kecamatan's peopled desa."""
        with self._lock:
            if self._base is not None:
                return self._base
        people = registry_people(self.registry, 0)
        population = split_population(people)
        desa_of: dict[str, list[str]] = {}
        for desa in sorted(people):
            desa_of.setdefault(desa[:8], []).append(desa)
        cfg = self.config
        scenarios: list[Scenario] = []
        for number, kec in enumerate(self.registry.layout.kecamatan):
            if population.get(kec.code, 0.0) < cfg.scenario_min_population:
                continue
            u = self._h_scenario.unit1(number)
            if u < cfg.outbreak_share:
                kind = OUTBREAK
            elif u < cfg.outbreak_share + cfg.rise_share:
                kind = RISE
            elif u < cfg.outbreak_share + cfg.rise_share + cfg.spike_share:
                kind = SPIKE
            else:
                continue
            condition = CONDITIONS[self._h_condition.hash1(number) % len(CONDITIONS)]
            # Key weeks among the last four of epoch 0, so part of every scenario is history
            # and an outbreak keyed on the last week stays red in the next epoch's week.
            key_week = cfg.weeks_before - 1 - self._h_week.hash1(number) % 4
            scenarios.append(Scenario(kind, kec.code, condition, key_week))
        base = (population, scenarios, desa_of)
        with self._lock:
            self._base = base
        return base

    def scenarios(self) -> list[Scenario]:
        """Every scenario, in kecamatan order."""
        return self.base()[1]

    def _target(self, level: str) -> float:
        cfg = self.config
        return {
            "rise": cfg.rise_per_100k,
            "watch": cfg.watch_per_100k,
            "alert": cfg.alert_per_100k,
            "fade": cfg.fade_per_100k,
        }[level]

    def _scenario_cases(
        self, scenario: Scenario, number: int, population: dict[str, float], desas: list[str]
    ) -> dict[str, int]:
        level = _PLANS[scenario.kind].get(number - scenario.key_week)
        if level is None:
            return {}
        total = round(self._target(level) * population[scenario.kecamatan] / 100_000)
        # Largest remainder: the desa's shares add up to the kecamatan's count exactly.
        weights = [population[d] for d in desas]
        whole = sum(weights)
        exact = [total * w / whole for w in weights]
        cases = [int(x) for x in exact]
        order = sorted(range(len(desas)), key=lambda i: (-(exact[i] - cases[i]), desas[i]))
        for i in order[: total - sum(cases)]:
            cases[i] += 1
        return {d: n for d, n in zip(desas, cases, strict=True) if n > 0}

    def cases(self, number: int) -> dict[tuple[str, str], int]:
        """New cases per (desa, condition) of one week, before any record is broken."""
        population, scenarios, desa_of = self.base()
        out: dict[tuple[str, str], int] = {}
        planned = {(s.kecamatan, s.condition) for s in scenarios}
        rate = self.config.background_rate
        for ci, condition in enumerate(CONDITIONS):
            for kec, desas in desa_of.items():
                if (kec, condition) in planned:
                    continue
                for desa in desas:
                    v = self._village_number[desa]
                    if self._h_background.unit(v, ci, number) < rate:
                        out[desa, condition] = 1
        for s in scenarios:
            for desa, n in self._scenario_cases(
                s, number, population, desa_of[s.kecamatan]
            ).items():
                out[desa, s.condition] = n
        return out

    # ------------------------------------------------------------------- records

    def _week_entries(self, number: int) -> list[KeyedEntry]:
        with self._lock:
            cached = self._weeks.get(number)
        if cached is not None:
            return cached
        ms = epoch_ms(self.published_at(number))
        at = self.published_at(number).isoformat(timespec="milliseconds")
        week = self.week(number)
        entries: list[KeyedEntry] = []
        for (desa, condition), n in self.cases(number).items():
            v = self._village_number[desa]
            ci = CONDITIONS.index(condition)
            digits = self.registry.layout.village_digits[v]
            record: dict[str, Any] = {
                "id": f"SRV-{digits}-{week.replace('-', '')}-{ci}",
                "puskesmas_id": f"PKM-{digits[:6]}",
                "desa_code": desa,
                "week": week,
                "condition": condition,
                "new_cases": n,
                "tests": n * 4 + self._h_tests.hash(v, ci, number) % 5,
                "deaths": n // 30,
                "updated_at": at,
            }
            kind = self._bad.kind(v, ci, number)
            if kind is HealthBadKind.NEGATIVE_CASES:
                record["new_cases"] = -n
            elif kind is HealthBadKind.UNKNOWN_CONDITION:
                record["condition"] = "influenza"
            elif kind is HealthBadKind.PATIENT_FIELD:
                record["patient_name"] = "Pasien Contoh"
            item = SourceRecord(record, None if kind is None else kind.value)
            entries.append(KeyedEntry(Position(ms, v, ci), item))
        entries.sort(key=lambda e: e.position)
        with self._lock:
            self._weeks[number] = entries
        return entries

    def entries(self, kecamatan: str | None = None) -> Sequence[KeyedEntry]:
        """The served reports (of a kecamatan) with their serving positions, sorted."""
        out: list[KeyedEntry] = []
        for number in range(self.weeks_served()):
            week = self._week_entries(number)
            if kecamatan is None:
                out.extend(week)
            else:
                out.extend(
                    e for e in week if e.item.record["desa_code"].startswith(f"{kecamatan}.")
                )
        return out

    def week_items(self, number: int) -> list[SourceRecord]:
        """Every report (possibly broken) of one week, in serving order."""
        return [e.item for e in self._week_entries(number)]
