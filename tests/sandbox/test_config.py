"""Sandbox configuration: tokens per agency, per-agency faults, coordination rates."""

from __future__ import annotations

from datetime import datetime, timedelta

import pytest
from pydantic import ValidationError

from sandbox.admin_api import AgencyName
from sandbox.config import (
    AGENCIES,
    DEFAULT_REGISTRY_TOKEN,
    CoordinationConfig,
    FaultConfig,
    InboxConfig,
    RegistryDataConfig,
    SandboxConfig,
)


def test_every_agency_has_a_default_token() -> None:
    tokens = SandboxConfig().tokens
    assert tokens == {a: f"sandbox-{a}-token" for a in AGENCIES}
    assert tokens["registry"] == DEFAULT_REGISTRY_TOKEN
    assert tuple(AgencyName) == AGENCIES


def test_the_registry_only_config_still_builds() -> None:
    # What `cettar sandbox` and the demo pass.
    config = SandboxConfig(
        registry=RegistryDataConfig(seed=3, households=100), faults=FaultConfig(error_rate=0.1)
    )
    assert config.agency_faults == {} and config.coordination == CoordinationConfig()


def test_the_coordination_window_fits_the_households() -> None:
    with pytest.raises(ValidationError, match="span is too short"):
        SandboxConfig(
            registry=RegistryDataConfig(households=5000),
            coordination=CoordinationConfig(span=timedelta(seconds=4)),
        )


def test_agency_faults_name_known_agencies() -> None:
    config = SandboxConfig(agency_faults={"kecamatan": FaultConfig(drop_rate=0.1)})
    assert config.agency_faults["kecamatan"].drop_rate == 0.1
    with pytest.raises(ValidationError, match="unknown agencies"):
        SandboxConfig(agency_faults={"dukcapil": FaultConfig()})


@pytest.mark.parametrize(
    "changes",
    [
        {"blt_overlap_rate": 0.7, "blt_other_period_rate": 0.5},
        {"household_update_rate": 0.5, "deceased_report_rate": 0.6},
        {"farmer_two_groups_rate": 0.6, "farmer_over_cap_rate": 0.6},
        {"submission_on_time": 0.9, "submission_late": 0.2},
        {"request_share": 0.1, "second_request_share": 0.2},
        {"duplicate_nik_rate": 0.8, "duplicate_deceased_rate": 0.3},
        {"base_time": datetime(2026, 11, 2)},
        {"clock_origin": datetime(2026, 11, 2)},
        {"span": timedelta(0)},
    ],
)
def test_inconsistent_coordination_rates_are_refused(changes: dict[str, object]) -> None:
    with pytest.raises(ValidationError):
        CoordinationConfig.model_validate(changes)


def test_inbox_shares_add_up_to_one() -> None:
    assert sum(InboxConfig().shares().values()) == pytest.approx(1.0)
    with pytest.raises(ValidationError, match="add to 1"):
        InboxConfig(prompt=0.5)


def test_bad_records_off_serves_only_contract_valid_records() -> None:
    from models.contracts.registry import Household
    from sandbox.coordination_data import CoordinationData
    from sandbox.registry_data import HOUSEHOLDS, Position

    on = SandboxConfig(registry=RegistryDataConfig(households=400, bad_rate=0.2))
    off = SandboxConfig(registry={"households": 400, "bad_rate": 0.2}, bad_records=False)
    assert on.registry.bad_rate == 0.2 and on.coordination.bad_rate == 0.01
    assert off.registry.bad_rate == 0.0 and off.coordination.bad_rate == 0.0
    assert off.registry.households == 400

    def broken(config: SandboxConfig) -> int:
        data = CoordinationData.from_config(config).registry
        count = 0
        for _, record in data.scan(HOUSEHOLDS, Position(0, 0, 0)):
            try:
                Household.model_validate(record)
            except ValidationError:
                count += 1
        return count

    assert broken(on) > 40
    assert broken(off) == 0
