"""Region registry, code normalisation and the pydantic region-code types."""

from __future__ import annotations

import pytest
from pydantic import BaseModel, ValidationError

from models.wilayah import (
    KodeDesa,
    KodeKecamatan,
    KodeWilayah,
    Region,
    RegionKind,
    RegionRegistry,
    UnknownRegionError,
    get_region_registry,
    normalise_region_code,
)


@pytest.fixture(scope="module")
def reg() -> RegionRegistry:
    return get_region_registry()


def test_counts(reg: RegionRegistry) -> None:
    counts = reg.counts()
    assert counts == {
        RegionKind.PROVINSI: 1,
        RegionKind.KABUPATEN: 29,
        RegionKind.KOTA: 9,
        RegionKind.KECAMATAN: 666,
        RegionKind.DESA: 7721,
        RegionKind.KELURAHAN: 773,
    }
    assert len(reg) == 1 + 38 + 666 + 8494
    assert len(reg.kabupaten_kota()) == 38
    assert len(reg.kecamatan()) == 666
    assert len(reg.villages()) == 8494
    assert len(list(reg)) == len(reg)


def test_hierarchy_is_consistent(reg: RegionRegistry) -> None:
    for region in reg:
        if region.kind is RegionKind.PROVINSI:
            assert region.parent_code is None
            continue
        parent = reg.parent(region.code)
        assert parent is not None
        assert parent.level == region.level - 1
        assert region.code.startswith(parent.code + ".")
    # Every kecamatan has at least one village.
    assert all(reg.villages(k.code) for k in reg.kecamatan())


def test_lookups(reg: RegionRegistry) -> None:
    surabaya = reg.require("35.78")
    assert surabaya == Region("35.78", "Kota Surabaya", RegionKind.KOTA, "35")
    assert surabaya.level == 2
    karang_pilang = reg.require("35.78.01")
    assert (karang_pilang.name, karang_pilang.kind, karang_pilang.level) == (
        "Karang Pilang",
        RegionKind.KECAMATAN,
        3,
    )
    village = reg.require("35.78.01.1001")
    assert village.kind is RegionKind.KELURAHAN and village.level == 4
    assert reg.require("35.01.01.2001").kind is RegionKind.DESA
    assert reg.require("35").kind is RegionKind.PROVINSI and reg.require("35").level == 1
    assert reg.require("35.01").kind is RegionKind.KABUPATEN
    assert reg.parent("35.78.01") == surabaya
    assert reg.parent("35") is None
    assert reg.kecamatan_of("35.78.01.1001") == karang_pilang
    assert reg.kecamatan_of("35.78.01") == karang_pilang
    assert reg.kecamatan_of("35.78") is None
    assert reg.kabupaten_of("3578011001") == surabaya
    assert reg.kabupaten_of("35") is None
    # A village code missing from the list still resolves to its kecamatan.
    assert reg.kecamatan_of("35.78.01.1999") == karang_pilang
    assert reg.require("35.15.14").name == "Sukodono"


def test_children_sorted(reg: RegionRegistry) -> None:
    kids = reg.children("35.78.01")
    assert kids and [r.code for r in kids] == sorted(r.code for r in kids)
    assert all(r.parent_code == "35.78.01" for r in kids)
    assert reg.children("35.78.01.1001") == []
    kec = reg.kecamatan("3578")
    assert kec[0].code == "35.78.01" and all(r.parent_code == "35.78" for r in kec)
    assert reg.villages("357801") == kids
    kk = reg.kabupaten_kota()
    assert kk[0].code == "35.01" and kk[-1].code == "35.79"
    assert sum(r.kind is RegionKind.KOTA for r in kk) == 9
    assert reg.children("35") == kk
    # Returned lists are copies.
    kids.clear()
    assert reg.children("35.78.01")


def test_wrong_level_arguments(reg: RegionRegistry) -> None:
    with pytest.raises(ValueError, match=r"35\.78\.01 is a kecamatan, expected a kabupaten/kota"):
        reg.kecamatan("35.78.01")
    with pytest.raises(ValueError, match="expected a kecamatan"):
        reg.villages("35.78")


@pytest.mark.parametrize(
    ("undotted", "dotted"),
    [("35", "35"), ("3578", "35.78"), ("357801", "35.78.01"), ("3578011001", "35.78.01.1001")],
)
def test_dotted_and_undotted(reg: RegionRegistry, undotted: str, dotted: str) -> None:
    assert normalise_region_code(undotted) == dotted
    assert normalise_region_code(f"  {dotted} ") == dotted
    assert reg.get(undotted) is reg.get(dotted) is not None
    assert undotted in reg and dotted in reg


def test_unknown_codes(reg: RegionRegistry) -> None:
    assert reg.get("35.99") is None
    assert reg.get("35.99.01.2001") is None
    assert reg.get("not a code") is None
    assert "35.30" not in reg
    assert 3578 not in reg
    with pytest.raises(UnknownRegionError) as info:
        reg.require("35.99.01.2001")
    assert str(info.value) == "unknown region code 35.99.01.2001"
    assert isinstance(info.value, KeyError)
    with pytest.raises(UnknownRegionError, match="malformed"):
        reg.require("35-78")
    with pytest.raises(UnknownRegionError):
        reg.children("36")
    with pytest.raises(ValueError, match="malformed"):
        reg.kecamatan_of("x")


@pytest.mark.parametrize(
    "bad",
    ["", "3", "357", "35780", "35780110", "357801100", "35780110011", "35.7", "3.578",
     "35.78.1", "35.78.01.100", "35.78.011001", "3578.01", "35 78", "AB", "35.7A",
     "٣٥", "35..78"],
)  # fmt: skip
def test_normalise_rejects(bad: str) -> None:
    with pytest.raises(ValueError, match="malformed region code"):
        normalise_region_code(bad)


def test_normalise_does_not_echo_long_values() -> None:
    with pytest.raises(ValueError) as info:
        normalise_region_code("3578010101900001")
    assert "3578010101900001" not in str(info.value)
    with pytest.raises(ValueError, match="must be text, got int"):
        normalise_region_code(3578)  # type: ignore[arg-type]


def test_registry_is_cached() -> None:
    assert get_region_registry() is get_region_registry()


class _Place(BaseModel):
    wilayah: KodeWilayah | None = None
    kecamatan: KodeKecamatan | None = None
    desa: KodeDesa | None = None


def test_pydantic_types_normalise() -> None:
    place = _Place(wilayah="3578", kecamatan="357801", desa=" 3578011001 ")
    assert (place.wilayah, place.kecamatan, place.desa) == ("35.78", "35.78.01", "35.78.01.1001")
    assert _Place(desa="35.01.01.2001").desa == "35.01.01.2001"


def _messages(**fields: object) -> list[str]:
    with pytest.raises(ValidationError) as info:
        _Place.model_validate(fields)
    return [e["msg"] for e in info.value.errors()]


def test_pydantic_type_errors() -> None:
    assert _messages(desa="35.99.01.2001") == ["unknown region code 35.99.01.2001"]
    assert _messages(desa="35.78") == ["35.78 is a kota, expected a desa/kelurahan code"]
    assert _messages(kecamatan="35.78.01.1001") == [
        "35.78.01.1001 is a kelurahan, expected a kecamatan code"
    ]
    assert _messages(wilayah="35.30") == ["unknown region code 35.30"]
    (msg,) = _messages(wilayah="35.7")
    assert "malformed region code '35.7'" in msg
    assert len(_messages(wilayah="99", kecamatan="35.78", desa="x")) == 3
