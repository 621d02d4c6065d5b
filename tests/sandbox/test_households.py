"""Household views shared by the coordination generators."""

from __future__ import annotations

from datetime import date

import pytest

from sandbox.config import RegistryDataConfig, SandboxConfig
from sandbox.coordination_data import CoordinationData
from sandbox.households import previous_period


@pytest.mark.parametrize(
    ("period", "before"), [("2026-Q4", "2026-Q3"), ("2026-Q1", "2025-Q4"), ("2030-Q2", "2030-Q1")]
)
def test_previous_period(period: str, before: str) -> None:
    assert previous_period(period) == before


def test_views_describe_the_household_as_first_issued() -> None:
    data = CoordinationData.from_config(
        SandboxConfig(registry=RegistryDataConfig(households=500, epoch=4))
    )
    h = data.households
    for index in range(0, 500, 7):
        view = h.view(index)
        assert h.view(index) is view  # cached
        assert view.household_id == data.registry.household_id(index)
        assert view.desa == data.registry.desa_of(index)
        assert view.kecamatan == data.registry.kecamatan_of(index)
        assert view.desa.endswith(view.desa_digits[6:]) and view.urban == (view.desa[9] == "1")
        assert set(view.base_status) == set(view.programmes)
        for slot in view.adults(date(2026, 1, 1)):
            assert view.draft.members[slot]["status"] == "active"
        kel = h.kelurahan_near(index)
        assert kel.split(".")[3].startswith("1")
        # Records of the first load sit in the window before the coordination base time.
        assert h.updated_time(index) < data.config.base_time
        assert h.updated_time(index) >= data.config.base_time - data.config.span
