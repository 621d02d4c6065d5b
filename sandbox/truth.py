"""Ground truth of the sandbox data, computed straight from the generators (no HTTP)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from sandbox.bad_records import BadKind, RecipientBadKind
from sandbox.config import RegistryDataConfig, SandboxConfig
from sandbox.coordination_data import CoordinationData, served_registry
from sandbox.coordination_truth import CoordinationTruth, compute_truth
from sandbox.health_truth import HealthTruth, compute_health_truth
from sandbox.registry_data import RegistryData

# The result type of `coordination_truth` is re-exported with it; the models it nests stay
# in sandbox.coordination_truth, which defines them.
__all__ = [
    "CoordinationTruth",
    "HealthTruth",
    "coordination_truth",
    "health_truth",
    "household_bad_kind",
    "recipient_bad_kind",
    "registry_truth",
]


def registry_truth(
    config: RegistryDataConfig | SandboxConfig, kecamatan: str | None = None
) -> dict[str, Any]:
    """Exact counts the registry serves at the config's epoch (households, bad ones, ...).

    Given a whole SandboxConfig, the counts are those of the registry a sandbox serves,
    with the duplicate NIKs the coordination config plants (life statuses differ).
    """
    if isinstance(config, SandboxConfig):
        return served_registry(config).truth(kecamatan)
    return RegistryData(config).truth(kecamatan)


def household_bad_kind(config: RegistryDataConfig, index: int) -> BadKind | None:
    """How household `index` is broken on the wire, or None if it is valid."""
    return RegistryData(config).bad_kind(index)


def recipient_bad_kind(
    config: RegistryDataConfig, index: int, programme: str
) -> RecipientBadKind | None:
    """How one recipient record of household `index` is broken, or None if it is valid."""
    return RegistryData(config).recipient_bad_kind(index, programme)


def coordination_truth(
    config: SandboxConfig, kecamatan: Sequence[str] | None = None
) -> CoordinationTruth:
    """What the coordination checks must find on the data a sandbox built from `config` serves.

    Per check kind: the exact findings (subject NIK or household id, period, receivers), the
    planted and accidental subjects and the near-misses; per collection: record counts,
    invalid ones by kind; the statistics fan-out; the offices' behaviour profiles. The
    registry epoch is the config's; for a running sandbox use GET /_admin/truth/coordination.
    """
    return compute_truth(CoordinationData.from_config(config), kecamatan)


def health_truth(config: SandboxConfig, kecamatan: Sequence[str] | None = None) -> HealthTruth:
    """Which areas the puskesmas figures of a sandbox built from `config` take into red.

    Per red entry: level, area, condition, week and red weeks so far; planted (outbreak
    scenarios) and accidental entries; the near-miss scenarios that must not turn red; the
    last week's zones by colour. The registry epoch is the config's; for a running sandbox
    use GET /_admin/truth/health.
    """
    return compute_health_truth(CoordinationData.from_config(config).health, kecamatan)
