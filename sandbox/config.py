"""Configuration of the sandbox agencies: synthetic data, fault injection, tokens, clock."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, model_validator

from models.sources import AGENCIES as CATALOGUE_AGENCIES
from sandbox.health_config import HealthConfig

__all__ = [
    "AGENCIES",
    "DEFAULT_ADMIN_TOKEN",
    "DEFAULT_REGISTRY_TOKEN",
    "WIB",
    "CoordinationConfig",
    "FaultConfig",
    "InboxConfig",
    "RegistryDataConfig",
    "SandboxConfig",
    "default_token",
]

WIB = timezone(timedelta(hours=7), "WIB")
"""Western Indonesian Time, the zone of Jawa Timur and of every sandbox timestamp."""

DEFAULT_REGISTRY_TOKEN = "sandbox-registry-token"  # noqa: S105 - public sandbox default
DEFAULT_ADMIN_TOKEN = "sandbox-admin-token"  # noqa: S105 - public sandbox default

AGENCIES: tuple[str, ...] = CATALOGUE_AGENCIES
"""Every simulated agency (the hub's source catalogue's); each under /<agency> with its token."""


def default_token(agency: str) -> str:
    """The public default bearer token of an agency: sandbox-<agency>-token."""
    return f"sandbox-{agency}-token"


def _default_tokens() -> dict[str, str]:
    return {agency: default_token(agency) for agency in AGENCIES}


def _at_most_one(message: str, *rates: float) -> None:
    # Rates that split one draw between outcomes cannot claim more than all of it; the slack
    # absorbs float rounding of shares that add up to exactly 1.
    if sum(rates) > 1.0 + 1e-9:
        raise ValueError(message)


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
        _at_most_one(
            "the fault rates must add up to at most 1",
            self.error_rate,
            self.rate_limit_rate,
            self.drop_rate,
            self.truncate_rate,
        )
        return self


class InboxConfig(BaseModel):
    """How the simulated offices answer the handoffs delivered to their inbox.

    Each office gets one behaviour profile from a seeded hash of its key, with these shares:
    prompt (acknowledges within one working day, then resolves or rejects by the due date),
    late (answers only after the due date), never (no decision), twice (prompt, but every
    decision is published twice under two ids). Kabupaten offices are always prompt.
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    prompt: float = Field(default=0.70, ge=0.0, le=1.0)
    late: float = Field(default=0.15, ge=0.0, le=1.0)
    never: float = Field(default=0.10, ge=0.0, le=1.0)
    twice: float = Field(default=0.05, ge=0.0, le=1.0)
    # Share of final decisions that reject the handoff (seeded per handoff and office).
    reject_share: float = Field(default=0.20, ge=0.0, le=1.0)

    @model_validator(mode="after")
    def _check(self) -> InboxConfig:
        total = self.prompt + self.late + self.never + self.twice
        if abs(total - 1.0) > 1e-9:
            raise ValueError("the office profile shares (prompt, late, never, twice) must add to 1")
        return self

    def shares(self) -> dict[str, float]:
        """Profile name -> share, in profile order."""
        return {"prompt": self.prompt, "late": self.late, "never": self.never, "twice": self.twice}


class CoordinationConfig(BaseModel):
    """Seeded rates of the coordination agencies' data (pkh, desa, pertanian, statistik).

    Every record derives from registry households, so the same people appear everywhere.
    Rates marked "planted" create the conflicts the hub's checks look for; "near-miss" rates
    create look-alikes the checks must not flag. The seed is the registry's.
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    # The coordination sources' first load is spread over [base_time - span, base_time);
    # households created in registry epoch e > 0 bring records in that epoch's window.
    base_time: datetime = datetime(2026, 11, 2, tzinfo=WIB)
    span: timedelta = timedelta(days=35)
    bad_rate: float = Field(default=0.01, ge=0.0, le=1.0)

    # Registry: a living person also listed in the previous household of the same kecamatan
    # (planted), or listed there as deceased (near-miss). Applies to the served registry only.
    duplicate_nik_rate: float = Field(default=0.005, ge=0.0, le=1.0)
    duplicate_deceased_rate: float = Field(default=0.003, ge=0.0, le=1.0)

    # desa: BLT-DD lists (desa only). Clean share among households without PKH/BPNT; planted
    # overlaps among enrolled households; near-misses for the previous period or for
    # families whose every enrolment is suspended or ended.
    blt_share: float = Field(default=0.12, ge=0.0, le=1.0)
    blt_overlap_rate: float = Field(default=0.04, ge=0.0, le=1.0)
    blt_other_period_rate: float = Field(default=0.015, ge=0.0, le=1.0)
    blt_inactive_rate: float = Field(default=0.5, ge=0.0, le=1.0)

    # pkh: reports per PKH household.
    household_update_rate: float = Field(default=0.06, ge=0.0, le=1.0)
    deceased_report_rate: float = Field(default=0.02, ge=0.0, le=1.0)
    moved_report_rate: float = Field(default=0.02, ge=0.0, le=1.0)
    deceased_member_rate: float = Field(default=0.02, ge=0.0, le=1.0)
    deceased_inactive_rate: float = Field(default=0.5, ge=0.0, le=1.0)
    routine_report_rate: float = Field(default=0.08, ge=0.0, le=1.0)
    facilitators_per_kecamatan: int = Field(default=3, ge=1, le=50)

    # pertanian: e-RDKK lines for adults of desa households.
    farmer_share: float = Field(default=0.20, ge=0.0, le=1.0)
    poktan_per_desa: int = Field(default=3, ge=2, le=20)
    farmer_two_groups_rate: float = Field(default=0.03, ge=0.0, le=1.0)
    farmer_over_cap_rate: float = Field(default=0.02, ge=0.0, le=1.0)
    farmer_exact_cap_rate: float = Field(default=0.01, ge=0.0, le=1.0)
    farmer_cross_season_rate: float = Field(default=0.01, ge=0.0, le=1.0)
    farming_year: int = Field(default=2026, ge=2000, le=2099)

    # statistik: share of kecamatan with a data request, share with a second one (mean 1
    # request per kecamatan by default), and how each addressed desa answers.
    request_share: float = Field(default=0.85, ge=0.0, le=1.0)
    second_request_share: float = Field(default=0.15, ge=0.0, le=1.0)
    submission_on_time: float = Field(default=0.75, ge=0.0, le=1.0)
    submission_late: float = Field(default=0.15, ge=0.0, le=1.0)

    inbox: InboxConfig = Field(default_factory=InboxConfig)
    # puskesmas: weekly surveillance figures and their planted zone scenarios.
    health: HealthConfig = Field(default_factory=HealthConfig)
    # None: the sandbox clock is real time plus the admin offset; set: it starts there and
    # moves only when the admin advances it (deterministic tests).
    clock_origin: datetime | None = None

    @model_validator(mode="after")
    def _check(self) -> CoordinationConfig:
        if self.base_time.tzinfo is None:
            raise ValueError("base_time must carry a time zone")
        if self.clock_origin is not None and self.clock_origin.tzinfo is None:
            raise ValueError("clock_origin must carry a time zone")
        if self.span <= timedelta(0):
            raise ValueError("span must be positive")
        _at_most_one(
            "duplicate_nik_rate + duplicate_deceased_rate must be at most 1",
            self.duplicate_nik_rate,
            self.duplicate_deceased_rate,
        )
        _at_most_one(
            "blt_overlap_rate + blt_other_period_rate must be at most 1",
            self.blt_overlap_rate,
            self.blt_other_period_rate,
        )
        _at_most_one(
            "the pkh report rates must add up to at most 1",
            self.household_update_rate,
            self.deceased_report_rate,
            self.moved_report_rate,
            self.deceased_member_rate,
            self.routine_report_rate,
        )
        _at_most_one(
            "the planted farmer rates must add up to at most 1",
            self.farmer_two_groups_rate,
            self.farmer_over_cap_rate,
            self.farmer_exact_cap_rate,
            self.farmer_cross_season_rate,
        )
        if self.second_request_share > self.request_share:
            raise ValueError("second_request_share must not exceed request_share")
        _at_most_one(
            "submission_on_time + submission_late must be at most 1",
            self.submission_on_time,
            self.submission_late,
        )
        return self


class SandboxConfig(BaseModel):
    """Everything one sandbox process serves: data, faults and bearer tokens."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    registry: RegistryDataConfig = Field(default_factory=RegistryDataConfig)
    faults: FaultConfig = Field(default_factory=FaultConfig)
    # Per-agency fault injection replacing `faults` for that agency's routes.
    agency_faults: dict[str, FaultConfig] = Field(default_factory=dict)
    coordination: CoordinationConfig = Field(default_factory=CoordinationConfig)
    tokens: dict[str, str] = Field(default_factory=_default_tokens)
    admin_token: str = DEFAULT_ADMIN_TOKEN
    # False: no deliberately broken record anywhere (both `bad_rate`s read as 0), so every
    # served record keeps to its wire contract, e.g. to check responses against the document.
    bad_records: bool = True
    # A directory: registry pages are rendered once and then served from files there
    # (`sandbox.page_cache`), byte for byte as live, so a benchmark times the client only.
    page_cache_dir: Path | None = None

    @model_validator(mode="before")
    @classmethod
    def _without_bad_records(cls, data: Any) -> Any:
        if not isinstance(data, dict) or data.get("bad_records", True) is not False:
            return data
        out = dict(data)
        for key, model in (("registry", RegistryDataConfig), ("coordination", CoordinationConfig)):
            given = out.get(key)
            base = given if isinstance(given, model) else model.model_validate(given or {})
            out[key] = base.model_copy(update={"bad_rate": 0.0})
        return out

    @model_validator(mode="after")
    def _check(self) -> SandboxConfig:
        unknown = sorted(set(self.agency_faults) - set(AGENCIES))
        if unknown:
            raise ValueError(f"agency_faults names unknown agencies: {', '.join(unknown)}")
        # Coordination records take one millisecond per household, like the registry's.
        if self.coordination.span < timedelta(milliseconds=self.registry.households):
            raise ValueError("coordination.span is too short for this many households")
        return self
