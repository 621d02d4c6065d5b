"""Mutable state shared by one sandbox app: agency data, faults, clock, inbox, counters."""

from __future__ import annotations

import anyio

from models.wilayah import RegionRegistry
from sandbox.clock import SandboxClock
from sandbox.config import FaultConfig, SandboxConfig
from sandbox.coordination_data import CoordinationData, served_registry
from sandbox.faults import Fault, FaultInjector
from sandbox.inbox import Inbox
from sandbox.page_cache import PageCache
from sandbox.proposals import ProposalBox
from sandbox.registry_data import index_of_household_id
from sandbox.stats import RequestStats

__all__ = ["SandboxState"]


class SandboxState:
    """Everything the routes of one sandbox app read and the admin routes change."""

    def __init__(self, config: SandboxConfig, regions: RegionRegistry | None = None) -> None:
        self.config = config
        self.registry = served_registry(config, regions)
        self.page_cache = (
            None
            if config.page_cache_dir is None
            else PageCache(config.page_cache_dir, self.registry, config.coordination)
        )
        self.coordination = CoordinationData(self.registry, config.coordination)
        self.faults = FaultInjector(config.faults)
        self.agency_faults: dict[str, FaultInjector] = {
            agency: FaultInjector(faults) for agency, faults in config.agency_faults.items()
        }
        self.clock = SandboxClock(config.coordination.clock_origin)
        self.inbox = Inbox(config.registry.seed, config.coordination.inbox, self.clock)
        self.proposals = ProposalBox(self.clock, self.known_household)
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

    def known_household(self, household_id: str) -> bool:
        """True if the registry serves a household with this id now."""
        try:
            index = index_of_household_id(household_id)
        except ValueError:
            return False
        return (
            0 <= index < self.registry.households_count()
            and self.registry.household_id(index) == household_id
        )

    def injector(self, agency: str) -> FaultInjector:
        """The fault injector in force for an agency: its own override, else the shared one."""
        return self.agency_faults.get(agency, self.faults)

    def set_agency_faults(self, agency: str, config: FaultConfig | None) -> None:
        """Give an agency its own fault injection (None: back to the shared one)."""
        if config is None:
            self.agency_faults.pop(agency, None)
        else:
            self.agency_faults[agency] = FaultInjector(config)

    async def inject(self, agency: str = "registry") -> tuple[Fault, float]:
        """Apply the agency's configured latency and draw this request's fault."""
        injector = self.injector(agency)
        latency = injector.config.latency_ms
        if latency > 0:
            await anyio.sleep(latency / 1000.0)
        return injector.draw()
