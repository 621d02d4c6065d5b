"""Wire contract of the agricultural extension system: e-RDKK fertiliser needs per farmer."""

from __future__ import annotations

from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field, Strict, StringConstraints

from models.contracts.registry import Name, RecordId
from models.identity import NIK
from models.plausibility import DesaCode, Line, RecordTime, StrictFloat

__all__ = ["FARMER_NEEDS", "FarmerNeed", "Season"]

FARMER_NEEDS = "farmer-needs"

Season = Annotated[str, Strict(), StringConstraints(pattern=r"^20\d\d-MT[1-3]$")]
"""Planting season (musim tanam) of a year: 2026-MT1 … 2026-MT3."""


class FarmerNeed(BaseModel):
    """One e-RDKK line (`GET /pertanian/v1/farmer-needs`): a poktan member's need in a season.

    Land over the 2 ha subsidy cap is valid data (the cross-programme check flags it);
    a non-positive or implausible area is not.
    """

    model_config = ConfigDict(extra="ignore", frozen=True)

    id: RecordId
    nik: NIK
    name: Name
    poktan_id: RecordId
    desa_code: DesaCode
    land_area_ha: Annotated[StrictFloat, Field(gt=0, le=100)]
    commodity: Annotated[Line, Field(max_length=40)]
    season: Season
    urea_kg: Annotated[StrictFloat, Field(ge=0, le=100_000)] = 0.0
    npk_kg: Annotated[StrictFloat, Field(ge=0, le=100_000)] = 0.0
    updated_at: RecordTime
