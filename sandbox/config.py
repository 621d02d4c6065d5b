"""Configuration of the sandbox agencies: synthetic data, fault injection, tokens."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

from pydantic import BaseModel, ConfigDict, Field, model_validator

__all__ = [
    "DEFAULT_ADMIN_TOKEN",
    "DEFAULT_REGISTRY_TOKEN",
    "WIB",
    "FaultConfig",
    "RegistryDataConfig",
    "SandboxConfig",
]

WIB = timezone(timedelta(hours=7), "WIB")
"""Western Indonesian Time, the zone of Jawa Timur and of every sandbox timestamp."""

DEFAULT_REGISTRY_TOKEN = "sandbox-registry-token"  # noqa: S105 - public sandbox default
DEFAULT_ADMIN_TOKEN = "sandbox-admin-token"  # noqa: S105 - public sandbox default


class RegistryDataConfig(BaseModel):
    """Seeded parameters of the synthetic social registry (DTKS/DTSEN)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    seed: int = 35
    households: int = Field(default=2000, ge=1, le=50_000_000)
    bad_rate: float = Field(default=0.01, ge=0.0, le=1.0)
    epoch: int = Field(default=0, ge=0)
    updated_share_per_epoch: float = Field(default=0.05, ge=0.0, le=1.0)
    new_share_per_epoch: float = Field(default=0.01, ge=0.0, le=1.0)
    base_time: datetime = datetime(2026, 1, 5, tzinfo=WIB)
    # The initial load is spread over the base span before base_time; epoch e>0 re-issues
    # records in [base_time + (e-1)*epoch_span, base_time + e*epoch_span).
    base_span: timedelta = timedelta(days=365)
    epoch_span: timedelta = timedelta(days=7)
    # Bounds the growth from new households so NIK serial capacity can be sized up front.
    max_epochs: int = Field(default=100, ge=0, le=10_000)
    period: str = "2026-Q4"

    @model_validator(mode="after")
    def _check(self) -> RegistryDataConfig:
        if self.base_time.tzinfo is None:
            raise ValueError("base_time must carry a time zone")
        if self.epoch > self.max_epochs:
            raise ValueError("epoch must not exceed max_epochs")
        # Timestamps have millisecond resolution and must be strictly increasing per window.
        if self.base_span < timedelta(milliseconds=self.households):
            raise ValueError("base_span is too short for this many households")
        if self.epoch_span < timedelta(milliseconds=self.households_at(self.max_epochs)):
            raise ValueError("epoch_span is too short for this many households")
        return self

    @property
    def new_per_epoch(self) -> int:
        """Households that appear in each epoch after the first load."""
        return round(self.households * self.new_share_per_epoch)

    def households_at(self, epoch: int) -> int:
        """Number of households that exist once `epoch` has been reached."""
        return self.households + epoch * self.new_per_epoch


class FaultConfig(BaseModel):
    """Faults injected into agency /v1 requests, drawn from a seeded stream."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    error_rate: float = Field(default=0.0, ge=0.0, le=1.0)
    rate_limit_rate: float = Field(default=0.0, ge=0.0, le=1.0)
    retry_after_s: float = Field(default=1.0, ge=0.0)
    latency_ms: int = Field(default=0, ge=0, le=60_000)
    drop_rate: float = Field(default=0.0, ge=0.0, le=1.0)
    truncate_rate: float = Field(default=0.0, ge=0.0, le=1.0)
    seed: int = 35

    @model_validator(mode="after")
    def _check(self) -> FaultConfig:
        total = self.error_rate + self.rate_limit_rate + self.drop_rate + self.truncate_rate
        if total > 1.0 + 1e-9:
            raise ValueError("the fault rates must add up to at most 1")
        return self


class SandboxConfig(BaseModel):
    """Everything one sandbox process serves: data, faults and bearer tokens."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    registry: RegistryDataConfig = Field(default_factory=RegistryDataConfig)
    faults: FaultConfig = Field(default_factory=FaultConfig)
    tokens: dict[str, str] = Field(default_factory=lambda: {"registry": DEFAULT_REGISTRY_TOKEN})
    admin_token: str = DEFAULT_ADMIN_TOKEN
