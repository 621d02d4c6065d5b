"""The one region scope: validation, labels, partitions, membership."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from models.scope import WHOLE_PROVINCE, RegionScope
from models.wilayah import get_region_registry


def test_partitions_group_kecamatan_by_kabupaten() -> None:
    parts = RegionScope(kabupaten=["35.79"], kecamatan=["35.78.01", "350701"]).partitions()
    assert list(parts) == ["35.07", "35.78", "35.79"]
    assert parts["35.78"] == ["35.78.01"] and parts["35.07"] == ["35.07.01"]
    assert len(parts["35.79"]) == len(get_region_registry().kecamatan("35.79"))
    assert len(WHOLE_PROVINCE.partitions()) == 38
    assert sum(len(k) for k in WHOLE_PROVINCE.partitions().values()) == 666


def test_a_kecamatan_code_is_not_a_kabupaten() -> None:
    with pytest.raises(ValidationError, match="not a kabupaten/kota code"):
        RegionScope(kabupaten=["35.78.01"])


def test_labels_and_membership() -> None:
    assert WHOLE_PROVINCE.is_province and WHOLE_PROVINCE.label() == "province"
    scope = RegionScope(kabupaten=["35.07", "35.09"], kecamatan=["35.78.01", "35.78.02"])
    assert scope.label() == "35.07,35.09,35.78.01 +1"
    assert scope.covers_kecamatan("35.07.12") and scope.covers_kecamatan("35.78.02")
    assert not scope.covers_kecamatan("35.78.03") and not scope.covers_kecamatan("all")
    assert WHOLE_PROVINCE.covers_kecamatan("35.29.01")
