"""The coordination sources together: determinism, laziness per kecamatan, consistency."""

from __future__ import annotations

import tracemalloc
from typing import Any

import pytest

from models.contracts.desa import BLT_RECIPIENTS
from models.contracts.pertanian import FARMER_NEEDS
from models.contracts.pkh import REPORTS
from models.contracts.statistik import DATA_REQUESTS, SUBMISSIONS
from sandbox.config import CoordinationConfig, RegistryDataConfig, SandboxConfig
from sandbox.coordination_data import SOURCES, CoordinationData, served_registry
from sandbox.households import Households
from sandbox.registry_data import RegistryData
from sandbox.statistik_data import StatistikData


def _everything(data: CoordinationData) -> dict[str, list[dict[str, Any]]]:
    out: dict[str, list[dict[str, Any]]] = {}
    for agency, collection in SOURCES:
        records, nxt = data.pager(agency, collection)(limit=100_000)
        assert nxt is None
        out[f"{agency}/{collection}"] = records
    return out


def test_same_seed_same_data_other_seed_other_data() -> None:
    config = SandboxConfig(registry=RegistryDataConfig(households=300))
    first = _everything(CoordinationData.from_config(config))
    again = _everything(CoordinationData.from_config(config))
    other = _everything(
        CoordinationData.from_config(
            SandboxConfig(registry=RegistryDataConfig(households=300, seed=99))
        )
    )
    assert first == again
    for name, records in first.items():
        assert records, name
        assert records != other[name], name


def test_records_name_the_registry_people() -> None:
    config = SandboxConfig(registry=RegistryDataConfig(households=800, bad_rate=0.0))
    data = CoordinationData.from_config(config)
    registry = data.registry
    people: dict[str, tuple[str, str]] = {}
    for index in registry.indices():
        household = registry.household(index)
        for member in household["members"]:
            people.setdefault(member["nik"], (household["no_kk"], household["desa_code"]))
    checked = 0
    for source in (data.blt, data.reports, data.farmers):
        for item in source.all_records():
            if item.bad is not None:
                continue
            no_kk, desa = people[item.record["nik"]]
            if "no_kk" in item.record:
                assert item.record["no_kk"] == no_kk
            if "desa_code" in item.record:
                assert item.record["desa_code"] == desa
            else:
                assert item.record["kecamatan_code"] == desa[:8]
            checked += 1
    assert checked > 500


def test_new_households_bring_records_in_their_epoch() -> None:
    base = RegistryDataConfig(households=1000, new_share_per_epoch=0.05)
    before = CoordinationData.from_config(SandboxConfig(registry=base))
    after = CoordinationData.from_config(
        SandboxConfig(registry=base.model_copy(update={"epoch": 2}))
    )
    old = {r["id"] for r in before.farmers.page(limit=100_000)[0]}
    new = after.farmers.page(limit=100_000)[0]
    assert old < {r["id"] for r in new}
    # Records of old households keep their timestamps; the new ones come after them.
    fresh = [r for r in new if r["id"] not in old]
    assert fresh and min(r["updated_at"] for r in fresh) > max(
        r["updated_at"] for r in new if r["id"] in old and "updated_at" in r
    )
    window_start = after.households.timeline.to_datetime(0)
    assert all(r["updated_at"] >= window_start.isoformat() for r in fresh if "updated_at" in r)


def test_one_kecamatan_at_jatim_scale_is_generated_alone(monkeypatch: pytest.MonkeyPatch) -> None:
    config = SandboxConfig(registry=RegistryDataConfig(households=6_500_000, epoch=2))
    data = CoordinationData.from_config(config)
    viewed: list[int] = []
    requested: list[int] = []
    view, request = Households.view, StatistikData._request

    def spy_view(self: Households, index: int) -> Any:
        viewed.append(index)
        return view(self, index)

    def spy_request(self: StatistikData, kec: int, j: int) -> Any:
        requested.append(kec)
        return request(self, kec, j)

    monkeypatch.setattr(Households, "view", spy_view)
    monkeypatch.setattr(StatistikData, "_request", spy_request)
    tracemalloc.start()
    try:
        for agency, collection in SOURCES:
            records, _ = data.pager(agency, collection)(kecamatan="35.07.01", limit=300)
            assert records, collection
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert peak < 50 * 1024 * 1024
    assert viewed and {data.registry.kecamatan_of(i) for i in viewed} == {"35.07.01"}
    assert set(requested) == {data.statistik.number("35.07.01")}


def test_served_registry_plants_only_when_asked() -> None:
    registry = RegistryDataConfig(households=1000)
    plain = RegistryData(registry)
    served = served_registry(
        SandboxConfig(registry=registry, coordination=CoordinationConfig(duplicate_nik_rate=0.5))
    )
    assert all(plain.draft(i).copied_slot is None for i in range(1000))
    assert sum(served.draft(i).copied_slot is not None for i in range(1000)) > 20


def test_pagers_cover_every_collection() -> None:
    data = CoordinationData.from_config(SandboxConfig(registry=RegistryDataConfig(households=200)))
    assert {c for _, c in SOURCES} == {
        REPORTS,
        BLT_RECIPIENTS,
        FARMER_NEEDS,
        DATA_REQUESTS,
        SUBMISSIONS,
    }
    with pytest.raises(KeyError):
        data.pager("desa", REPORTS)
