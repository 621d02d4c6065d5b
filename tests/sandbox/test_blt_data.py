"""BLT-DD lists: desa only, clean lists name non-enrolled families, plants at known rates."""

from __future__ import annotations

from collections import Counter

import pytest

from models.contracts.desa import BltRecipient
from sandbox.bad_records import BltBadKind
from sandbox.blt_data import BLT_PLANTS
from sandbox.coordination_data import CoordinationData
from tests.sandbox.conftest import bad_kinds, coordination_data


@pytest.fixture(scope="module")
def data() -> CoordinationData:
    """6,000 households with many broken BLT records."""
    return coordination_data(6000, bad_rate=0.2)


def test_every_bad_record_fails_the_contract_and_every_good_one_passes(
    data: CoordinationData,
) -> None:
    kinds = bad_kinds(data.blt.all_records(), BltRecipient)
    assert set(kinds) == {k.value for k in BltBadKind}


def test_lists_follow_the_registry_families(data: CoordinationData) -> None:
    registry = data.registry
    h = data.households
    plants = Counter[str | None]()
    listed_clean = eligible_clean = 0
    for index in registry.indices():
        items = data.blt.records(index)
        view = h.view(index)
        if not view.urban and not view.programmes:
            eligible_clean += 1
            listed_clean += bool(items)
        if not items:
            continue
        assert not view.urban, "kelurahan get no Dana Desa"
        (item,) = items
        r = item.record
        plants[item.plant] += 1
        assert item.plant in (None, *BLT_PLANTS)
        if item.bad is not None:
            continue
        draft = view.draft
        assert r["desa_code"] == view.desa and r["no_kk"] == draft.no_kk
        assert r["nik"] in (draft.members[0]["nik"], draft.members[draft.pengurus]["nik"])
        if item.plant is None:
            assert not view.programmes
        else:
            assert view.programmes and r["status"] == "approved"
        expected_period = h.previous_period if item.plant == "other_period" else h.period
        assert r["period"] == expected_period
        if item.plant == "inactive":
            assert view.all_enrolments_inactive()
    # 12% of non-enrolled desa families are listed (sd about 0.6 points here).
    assert 0.09 < listed_clean / eligible_clean < 0.15
    assert all(plants[p] > 0 for p in BLT_PLANTS)
    assert plants["overlap"] > plants["other_period"] > 0
