"""What the coordination agencies know of a registry household, shared by every generator.

The pkh, desa and pertanian records all derive from registry households: the same people,
the same No. KK, the same desa. A view bundles a household's first-issued draft with its
programmes and where it lives; a few hundred recent views are cached because each
household is looked at by several generators in a row.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from dataclasses import dataclass
from datetime import date, datetime

from sandbox.config import CoordinationConfig, RegistryDataConfig
from sandbox.registry_data import Draft, RegistryData
from sandbox.timeline import Timeline

__all__ = ["HouseholdView", "Households", "previous_period"]

_CACHE = 512


def previous_period(period: str) -> str:
    """The quarter before a period: 2026-Q4 -> 2026-Q3, 2026-Q1 -> 2025-Q4."""
    year, quarter = int(period[:4]), int(period[-1])
    return f"{year - 1}-Q4" if quarter == 1 else f"{year}-Q{quarter - 1}"


def _age_on(born: str, day: date) -> int:
    b = date.fromisoformat(born)
    return day.year - b.year - ((day.month, day.day) < (b.month, b.day))


@dataclass(frozen=True, slots=True)
class HouseholdView:
    """A registry household as first issued, with its programmes and its place."""

    index: int
    draft: Draft
    kecamatan: str
    desa: str
    desa_digits: str
    kecamatan_digits: str
    urban: bool
    programmes: tuple[str, ...]
    # Programme -> status of the enrolment as first issued.
    base_status: dict[str, str]

    @property
    def household_id(self) -> str:
        """The registry id of the household."""
        return self.draft.id

    def own_slots(self) -> list[int]:
        """Member slots holding this household's own people (not a planted copy)."""
        return [s for s in range(len(self.draft.members)) if s != self.draft.copied_slot]

    def adults(self, day: date) -> list[int]:
        """Own living member slots aged 17 or more on a day."""
        return [
            s
            for s in self.own_slots()
            if self.draft.members[s]["status"] == "active"
            and _age_on(self.draft.members[s]["birth_date"], day) >= 17
        ]

    def all_enrolments_inactive(self) -> bool:
        """True when the household is enrolled and every enrolment began suspended or ended."""
        return bool(self.programmes) and all(s != "active" for s in self.base_status.values())


class Households:
    """Registry households as the coordination agencies see them, plus their timeline."""

    def __init__(self, registry: RegistryData, config: CoordinationConfig) -> None:
        self.registry = registry
        self.config = config
        self.layout = registry.layout
        self.seed = registry.seed
        self.period = registry.config.period
        self.previous_period = previous_period(self.period)
        # The coordination sources' records share the registry's epochs but sit in their
        # own window before `config.base_time`.
        shifted: RegistryDataConfig = registry.config.model_copy(
            update={"base_time": config.base_time, "base_span": config.span}
        )
        self.timeline = Timeline(shifted)
        self._views: OrderedDict[int, HouseholdView] = OrderedDict()
        self._lock = threading.Lock()
        layout = self.layout
        kelurahan: dict[int, str] = {}
        for number, kec in enumerate(layout.village_kecamatan):
            if layout.village_urban[number]:
                kelurahan.setdefault(kec, layout.villages[number].code)
        urban = zip(layout.villages, layout.village_urban, strict=True)
        first = next(v.code for v, is_urban in urban if is_urban)
        self._kelurahan = [kelurahan.get(k, first) for k in range(len(layout.kecamatan))]

    @property
    def epoch(self) -> int:
        """The registry's current epoch (households created so far)."""
        return self.registry.epoch

    def urban(self, index: int) -> bool:
        """True when the household lives in a kelurahan (no Dana Desa there)."""
        return self.layout.village_urban[self.layout.village_of(index)]

    def kelurahan_near(self, index: int) -> str:
        """A kelurahan code of the household's kecamatan (or of the province if it has none)."""
        return self._kelurahan[self.layout.kecamatan_of(index)]

    def view(self, index: int) -> HouseholdView:
        """The household's view (cached for the last few hundred households)."""
        with self._lock:
            cached = self._views.get(index)
            if cached is not None:
                self._views.move_to_end(index)
                return cached
        view = self._build(index)
        with self._lock:
            self._views[index] = view
            if len(self._views) > _CACHE:
                self._views.popitem(last=False)
        return view

    def _build(self, index: int) -> HouseholdView:
        data = self.registry
        layout = self.layout
        village = layout.village_of(index)
        desa = layout.villages[village].code
        programmes = data.programmes(index)
        return HouseholdView(
            index=index,
            draft=data.draft(index),
            kecamatan=desa[:8],
            desa=desa,
            desa_digits=layout.village_digits[village],
            kecamatan_digits=layout.village_digits[village][:6],
            urban=layout.village_urban[village],
            programmes=programmes,
            base_status={p: data.base_enrolment_status(index, p) for p in programmes},
        )

    def segment(self, index: int) -> int:
        """The epoch in which the household (and so its coordination records) appeared."""
        return self.timeline.created_epoch(index)

    def updated_ms(self, index: int) -> int:
        """Timestamp (ms after the coordination base time) of the household's records."""
        return self.timeline.time_ms(self.segment(index), index)

    def updated_at(self, index: int) -> str:
        """Wire `updated_at` of the household's coordination records."""
        return self.timeline.format_ms(self.updated_ms(index))

    def updated_time(self, index: int) -> datetime:
        """`updated_at` of the household's coordination records as a datetime."""
        return self.timeline.to_datetime(self.updated_ms(index))
