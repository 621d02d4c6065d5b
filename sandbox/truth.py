"""Ground truth of the sandbox data, computed straight from the generator (no HTTP)."""

from __future__ import annotations

from typing import Any

from sandbox.bad_records import BadKind, RecipientBadKind
from sandbox.config import RegistryDataConfig
from sandbox.registry_data import RegistryData

__all__ = ["household_bad_kind", "recipient_bad_kind", "registry_truth"]


def registry_truth(config: RegistryDataConfig, kecamatan: str | None = None) -> dict[str, Any]:
    """Exact counts the registry serves at the config's epoch (households, bad ones, ...)."""
    return RegistryData(config).truth(kecamatan)


def household_bad_kind(config: RegistryDataConfig, index: int) -> BadKind | None:
    """How household `index` is broken on the wire, or None if it is valid."""
    return RegistryData(config).bad_kind(index)


def recipient_bad_kind(
    config: RegistryDataConfig, index: int, programme: str
) -> RecipientBadKind | None:
    """How one recipient record of household `index` is broken, or None if it is valid."""
    return RegistryData(config).recipient_bad_kind(index, programme)
