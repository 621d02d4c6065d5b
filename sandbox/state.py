"""Mutable state shared by one sandbox app: agency data, fault injector, request counters."""

from __future__ import annotations

import anyio

from models.wilayah import RegionRegistry
from sandbox.config import SandboxConfig
from sandbox.faults import Fault, FaultInjector
from sandbox.registry_data import RegistryData
from sandbox.stats import RequestStats

__all__ = ["SandboxState"]


class SandboxState:
    """Everything the routes of one sandbox app read and the admin routes change."""

    def __init__(self, config: SandboxConfig, regions: RegionRegistry | None = None) -> None:
        self.config = config
        self.registry = RegistryData(config.registry, regions)
        self.faults = FaultInjector(config.faults)
        self.stats = RequestStats()

    def token(self, agency: str) -> str | None:
        """The bearer token of an agency, None if the agency has none configured."""
        return self.config.tokens.get(agency)

    @property
    def epoch(self) -> int:
        """The data epoch shared by every agency."""
        return self.registry.epoch

    @epoch.setter
    def epoch(self, value: int) -> None:
        self.registry.epoch = value

    async def inject(self) -> tuple[Fault, float]:
        """Apply the configured latency and draw this request's fault."""
        latency = self.faults.config.latency_ms
        if latency > 0:
            await anyio.sleep(latency / 1000.0)
        return self.faults.draw()
