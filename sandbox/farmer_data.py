"""e-RDKK fertiliser needs (`GET /pertanian/v1/farmer-needs`) of farmers in desa households.

A share of the living adults of desa households farm: each is a member of one poktan
(farmer group) of the desa and files one line per planting season (MT1..MT3) with at most
1.5 ha, so a clean farmer never trips a check. At known rates per farmer the generator
plants, in the first season:
- "two_groups": a second line in another poktan, the total staying within 2 ha;
- "over_cap": more than 2 ha in one poktan (one large plot, or 1.3 + 0.9 ha);
- "exact_cap": exactly 2 ha in two lines of one poktan, 1.2 + 0.8 ha (near-miss);
- "cross_season": the farmer changes poktan between two seasons (near-miss).
"""

from __future__ import annotations

from datetime import date
from typing import Any

from models.contracts.pertanian import FARMER_NEEDS
from sandbox.bad_records import Breakage, FarmerBadKind, corrupt_farmer_need
from sandbox.households import Households, HouseholdView
from sandbox.seeding import Salted
from sandbox.source_paging import HouseholdSource, SourceRecord

__all__ = ["FARMER_PLANTS", "FarmerSource"]

FARMER_PLANTS = ("two_groups", "over_cap", "exact_cap", "cross_season")
"""What a farmer may be planted as; the plant is carried by each of the farmer's lines."""

_S_FARMER, _S_DETAIL, _S_PLANT, _S_BAD, _S_BAD_KIND, _S_BAD_HOW = range(0x401, 0x407)
_COMMODITIES = {
    1: ("padi",),
    2: ("padi", "padi", "jagung"),
    3: ("jagung", "kedelai", "tembakau", "cabai", "bawang merah", "tebu"),
}
# Recommended doses (kg per ha) behind the requested fertiliser.
_UREA_PER_HA, _NPK_PER_HA = 250.0, 300.0


def _line(
    view: HouseholdView,
    slot: int,
    season_no: int,
    letter: str,
    poktan: int,
    area: float,
    commodity: str,
    year: int,
    updated_at: str,
) -> dict[str, Any]:
    member = view.draft.members[slot]
    return {
        "id": f"RDKK-{view.desa_digits}-{view.index}-{slot + 1}-{season_no}{letter}",
        "nik": member["nik"],
        "name": member["name"],
        "poktan_id": f"PKT-{view.desa_digits}-{poktan:02d}",
        "desa_code": view.desa,
        "land_area_ha": area,
        "commodity": commodity,
        "season": f"{year}-MT{season_no}",
        "urea_kg": round(area * _UREA_PER_HA, 1),
        "npk_kg": round(area * _NPK_PER_HA, 1),
        "updated_at": updated_at,
    }


class FarmerSource(HouseholdSource):
    """The extension service's e-RDKK lines, per farmer and season."""

    collection = FARMER_NEEDS

    def __init__(self, households: Households) -> None:
        super().__init__(households)
        seed = households.seed
        self._farmer = Salted(seed, _S_FARMER)
        self._detail = Salted(seed, _S_DETAIL)
        self._plant = Salted(seed, _S_PLANT)
        self._bad = Breakage(FarmerBadKind, households.config.bad_rate, seed, _S_BAD, _S_BAD_KIND)
        self._bad_how = Salted(seed, _S_BAD_HOW)
        self._year_start = date(households.config.farming_year, 1, 1)

    def farmers(self, view: HouseholdView) -> list[int]:
        """Member slots of the household who farm (living adults of a desa household)."""
        if view.urban:
            return []
        share = self.households.config.farmer_share
        adults = view.adults(self._year_start)
        return [s for s in adults if self._farmer.unit(view.index, s) < share]

    def plant(self, index: int, slot: int) -> str | None:
        """What is planted with a farmer, or None for a clean one."""
        cfg = self.households.config
        u = self._plant.unit(index, slot)
        edge = 0.0
        for plant, rate in zip(
            FARMER_PLANTS,
            (
                cfg.farmer_two_groups_rate,
                cfg.farmer_over_cap_rate,
                cfg.farmer_exact_cap_rate,
                cfg.farmer_cross_season_rate,
            ),
            strict=True,
        ):
            edge += rate
            if u < edge:
                return plant
        return None

    def bad_kind(self, record_id: str, index: int) -> FarmerBadKind | None:
        """How one line is broken on the wire, or None (drawn per line)."""
        return self._bad.kind(index, _line_number(record_id))

    def records(self, index: int) -> list[SourceRecord]:
        """The household's e-RDKK lines in id order."""
        h = self.households
        if h.urban(index):
            return []
        view = h.view(index)
        farmers = self.farmers(view)
        if not farmers:
            return []
        updated_at = h.updated_at(index)
        year = h.config.farming_year
        groups = h.config.poktan_per_desa
        out: list[SourceRecord] = []
        for slot in farmers:
            r = self._detail.rng(index, slot)
            plant = self.plant(index, slot)
            seasons = 1 + (r.random() < 0.6) + (r.random() < 0.3)
            if plant == "cross_season":
                seasons = max(seasons, 2)
            poktan = 1 + int(r.random() * groups)
            other = 1 + (poktan + int(r.random() * (groups - 1))) % groups
            area = round(0.10 + 0.05 * int(r.random() * 29), 2)
            for season_no in range(1, seasons + 1):
                crops = _COMMODITIES[season_no]
                crop = crops[int(r.random() * len(crops))]
                lines: list[tuple[int, float]] = [(poktan, area)]
                if season_no == 1 and plant == "two_groups":
                    lines.append((other, round(0.25 + 0.05 * int(r.random() * 6), 2)))
                elif season_no == 1 and plant == "over_cap":
                    if r.random() < 0.5:
                        lines = [(poktan, round(2.1 + 0.1 * int(r.random() * 15), 2))]
                    else:
                        lines = [(poktan, 1.3), (poktan, 0.9)]
                elif season_no == 1 and plant == "exact_cap":
                    lines = [(poktan, 1.2), (poktan, 0.8)]
                elif season_no == 2 and plant == "cross_season":
                    lines = [(other, area)]
                for letter, (group, hectares) in zip("ab", lines, strict=False):
                    record = _line(
                        view, slot, season_no, letter, group, hectares, crop, year, updated_at
                    )
                    kind = self.bad_kind(record["id"], index)
                    if kind is not None:
                        corrupt_farmer_need(
                            record, kind, self._bad_how.rng(index, _line_number(record["id"]))
                        )
                    out.append(SourceRecord(record, None if kind is None else kind.value, plant))
        out.sort(key=lambda item: item.id)
        return out


def _line_number(record_id: str) -> int:
    # RDKK-<desa>-<index>-<slot>-<season><letter>: slot, season and letter as one number.
    _, _, _, slot, tail = record_id.split("-")
    return int(slot) * 100 + int(tail[:-1]) * 10 + (ord(tail[-1]) - ord("a"))
