"""Wire contract of BPS statistics officers (KSK): data requests to desa and submissions."""

from __future__ import annotations

from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field, model_validator

from models.contracts.registry import RecordId
from models.plausibility import DesaCode, IsoDate, KecamatanCode, Line, RecordDate, RecordTime

__all__ = ["DATA_REQUESTS", "SUBMISSIONS", "DataRequest", "DataSubmission"]

DATA_REQUESTS = "data-requests"
SUBMISSIONS = "submissions"


class DataRequest(BaseModel):
    """A KSK's request for data from desa of one kecamatan (`GET /statistik/v1/data-requests`)."""

    model_config = ConfigDict(extra="ignore", frozen=True)

    id: RecordId
    kecamatan_code: KecamatanCode
    ksk_id: RecordId
    title: Annotated[Line, Field(max_length=200)]
    desa_codes: Annotated[list[DesaCode], Field(min_length=1, max_length=60)]
    requested_on: RecordDate
    # A deadline lies ahead by nature: only its form is checked (and that it follows the request).
    due_date: IsoDate
    updated_at: RecordTime

    @model_validator(mode="after")
    def _cross_field(self) -> DataRequest:
        outside = [c for c in self.desa_codes if not c.startswith(self.kecamatan_code + ".")]
        if outside:
            raise ValueError(f"desa {', '.join(outside[:3])} are not in {self.kecamatan_code}")
        if len(set(self.desa_codes)) != len(self.desa_codes):
            raise ValueError("a desa is listed twice")
        if self.due_date < self.requested_on:
            raise ValueError("due_date is before requested_on")
        return self


class DataSubmission(BaseModel):
    """A desa's answer to a data request (`GET /statistik/v1/submissions`)."""

    model_config = ConfigDict(extra="ignore", frozen=True)

    id: RecordId
    request_id: RecordId
    desa_code: DesaCode
    submitted_at: RecordTime
    updated_at: RecordTime
