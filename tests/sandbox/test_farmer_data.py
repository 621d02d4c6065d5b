"""e-RDKK lines: adults of desa households, one poktan per season, plants by design."""

from __future__ import annotations

from collections import Counter, defaultdict
from datetime import date
from typing import Any

import pytest

from models.contracts.pertanian import FarmerNeed
from sandbox.bad_records import FarmerBadKind
from sandbox.coordination_data import CoordinationData
from sandbox.farmer_data import FARMER_PLANTS
from sandbox.source_paging import SourceRecord
from tests.sandbox.conftest import bad_kinds, coordination_data


@pytest.fixture(scope="module")
def data() -> CoordinationData:
    """2,000 households with many broken lines and many plants."""
    return coordination_data(
        2000,
        bad_rate=0.1,
        farmer_two_groups_rate=0.1,
        farmer_over_cap_rate=0.1,
        farmer_exact_cap_rate=0.1,
        farmer_cross_season_rate=0.1,
        duplicate_nik_rate=0.3,
    )


def test_every_bad_line_fails_the_contract_and_every_good_one_passes(
    data: CoordinationData,
) -> None:
    kinds = bad_kinds(data.farmers.all_records(), FarmerNeed)
    assert set(kinds) == {k.value for k in FarmerBadKind}


def test_farmers_and_their_lines_follow_the_design(data: CoordinationData) -> None:
    year_start = date(data.config.farming_year, 1, 1)
    first_season = f"{data.config.farming_year}-MT1"
    plants = Counter[str | None]()
    for index in data.registry.indices():
        items = data.farmers.records(index)
        if not items:
            continue
        view = data.households.view(index)
        assert not view.urban
        farmers: defaultdict[int, list[SourceRecord]] = defaultdict(list)
        for item in items:
            # RDKK-<desa>-<index>-<slot + 1>-<season><letter>
            slot = int(item.id.split("-")[3]) - 1
            assert slot in view.adults(year_start) and slot != view.draft.copied_slot
            farmers[slot].append(item)
        for lines in farmers.values():
            plant = lines[0].plant
            assert {line.plant for line in lines} == {plant}
            if any(line.bad is not None for line in lines):
                continue
            plants[plant] += 1
            seasons: defaultdict[str, list[dict[str, Any]]] = defaultdict(list)
            for line in lines:
                seasons[line.record["season"]].append(line.record)
            first = seasons[first_season]
            area = round(sum(x["land_area_ha"] for x in first), 6)
            groups = {x["poktan_id"] for x in first}
            every_group = {line.record["poktan_id"] for line in lines}
            if plant is None:
                assert all(len(v) == 1 and v[0]["land_area_ha"] <= 1.5 for v in seasons.values())
                assert len(every_group) == 1
            elif plant == "two_groups":
                assert len(groups) == 2 and area <= 2.0
            elif plant == "over_cap":
                assert len(groups) == 1 and area > 2.0
            elif plant == "exact_cap":
                assert len(first) == 2 and len(groups) == 1 and area == 2.0
            else:
                assert len(seasons) >= 2 and all(len(v) == 1 for v in seasons.values())
                assert len(every_group) == 2
    assert all(plants[p] > 0 for p in FARMER_PLANTS) and plants[None] > 0
