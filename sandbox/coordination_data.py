"""The coordination agencies' data, all derived from one registry: pkh, desa, pertanian, statistik.

`CoordinationData` ties the generators together over the same `RegistryData` (the one the
sandbox serves, with its planted duplicate NIKs), so a BLT-DD recipient, a facilitator's
report and an e-RDKK line name the same people as the registry does.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from models.contracts.desa import BLT_RECIPIENTS
from models.contracts.pertanian import FARMER_NEEDS
from models.contracts.pkh import REPORTS
from models.contracts.puskesmas import SURVEILLANCE
from models.contracts.statistik import DATA_REQUESTS, SUBMISSIONS
from models.wilayah import RegionRegistry
from sandbox.blt_data import BltSource
from sandbox.config import CoordinationConfig, SandboxConfig
from sandbox.farmer_data import FarmerSource
from sandbox.health_data import HealthData
from sandbox.households import Households
from sandbox.registry_data import Position, RegistryData
from sandbox.report_data import ReportSource
from sandbox.statistik_data import StatistikData

__all__ = ["SOURCES", "CoordinationData", "Pager", "served_registry"]

Pager = Callable[..., tuple[list[dict[str, Any]], Position | None]]
"""page(since=, after=, kecamatan=, limit=) -> (records, next position)."""

SOURCES: tuple[tuple[str, str], ...] = (
    ("pkh", REPORTS),
    ("desa", BLT_RECIPIENTS),
    ("pertanian", FARMER_NEEDS),
    ("statistik", DATA_REQUESTS),
    ("statistik", SUBMISSIONS),
)
"""(agency, collection) of every read-only coordination collection."""


def served_registry(config: SandboxConfig, regions: RegionRegistry | None = None) -> RegistryData:
    """The registry generator the sandbox serves: the config's, with its planted duplicates."""
    coordination = config.coordination
    return RegistryData(
        config.registry,
        regions,
        duplicate_nik_rate=coordination.duplicate_nik_rate,
        duplicate_deceased_rate=coordination.duplicate_deceased_rate,
    )


class CoordinationData:
    """Every coordination source over one registry, at the registry's current epoch."""

    def __init__(self, registry: RegistryData, config: CoordinationConfig) -> None:
        self.registry = registry
        self.config = config
        self.households = Households(registry, config)
        self.reports = ReportSource(self.households)
        self.blt = BltSource(self.households)
        self.farmers = FarmerSource(self.households)
        self.statistik = StatistikData(registry.seed, registry.layout, config)
        self.health = HealthData(registry, config.base_time, config.health, config.bad_rate)

    @classmethod
    def from_config(
        cls, config: SandboxConfig, regions: RegionRegistry | None = None
    ) -> CoordinationData:
        """The coordination data a sandbox built from `config` serves at the config's epoch."""
        return cls(served_registry(config, regions), config.coordination)

    def pager(self, agency: str, collection: str) -> Pager:
        """The page function of one read collection; KeyError if there is none."""
        if agency == "statistik" and collection in (DATA_REQUESTS, SUBMISSIONS):
            return self.statistik.pages(collection)
        if (agency, collection) == ("puskesmas", SURVEILLANCE):
            return self.health.pages
        sources = {
            ("pkh", REPORTS): self.reports,
            ("desa", BLT_RECIPIENTS): self.blt,
            ("pertanian", FARMER_NEEDS): self.farmers,
        }
        return sources[agency, collection].page
