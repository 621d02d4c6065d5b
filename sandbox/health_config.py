"""Seeded parameters of the simulated puskesmas' weekly surveillance figures."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field, model_validator

__all__ = ["HealthConfig"]


class HealthConfig(BaseModel):
    """How the sandbox's puskesmas report, and what it plants in their figures.

    Weekly incidences are per 100,000 people of the area, the population being each
    kabupaten/kota's 2024 figure split by the registry's people (as the hub does). The
    targets sit well apart from the thresholds the truth applies (`yellow`...`red`, the
    hub's defaults), so a planted scenario means the same under either's rounding.
    Scenarios, one per chosen kecamatan and condition:
    - outbreak (planted): rise, watch, then three alert weeks and a fade: the kecamatan
      enters red at the first alert week and stays red the next;
    - rise (near-miss): rise, two watch weeks, rise: orange at most, never red;
    - spike (near-miss): one alert week from a quiet baseline, then quiet: a single bad
      week that reverts.
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    # Weeks served at epoch 0, ending with the week before the coordination base time;
    # each registry epoch (a week) adds the next one.
    weeks_before: int = Field(default=8, ge=6, le=52)
    # Share of (desa, condition, week) with one background case outside the scenarios.
    background_rate: float = Field(default=0.03, ge=0.0, le=1.0)
    outbreak_share: float = Field(default=0.05, ge=0.0, le=1.0)
    rise_share: float = Field(default=0.03, ge=0.0, le=1.0)
    spike_share: float = Field(default=0.03, ge=0.0, le=1.0)
    # Scenarios go to kecamatan this populous, where even a watch week makes a cluster.
    scenario_min_population: float = Field(default=20_000.0, gt=0)
    rise_per_100k: float = 12.0
    watch_per_100k: float = 30.0
    alert_per_100k: float = 120.0
    fade_per_100k: float = 6.0
    # The thresholds the truth applies to the served figures (the hub's defaults).
    yellow_per_100k: float = 10.0
    orange_per_100k: float = 20.0
    red_per_100k: float = 40.0
    min_cases: int = Field(default=5, ge=1)

    @model_validator(mode="after")
    def _check(self) -> HealthConfig:
        if self.outbreak_share + self.rise_share + self.spike_share > 1.0 + 1e-9:
            raise ValueError("the scenario shares must add up to at most 1")
        if not 0 < self.yellow_per_100k < self.orange_per_100k < self.red_per_100k:
            raise ValueError("the thresholds must rise: yellow < orange < red")
        return self
