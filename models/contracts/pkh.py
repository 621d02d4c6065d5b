"""Wire contract of the PKH facilitator system: reports filed by pendamping about KPM."""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from models.contracts.registry import HouseholdChanges, RecordId
from models.identity import NIK
from models.plausibility import FreeText, KecamatanCode, RecordDate, RecordTime

__all__ = ["REPORTS", "FacilitatorReport", "ReportKind"]

REPORTS = "reports"

ReportKind = Literal["household_update", "deceased", "moved", "non_compliance", "graduation"]
"""Kinds of report a PKH facilitator files about a KPM."""


class FacilitatorReport(BaseModel):
    """A facilitator's report about a registry household and one of its members.

    `GET /pkh/v1/reports?updated_since=&cursor=&limit=&kecamatan=`; `kecamatan` filters on the
    facilitator's posting. A household update carries the changes the facilitator saw.
    """

    model_config = ConfigDict(extra="ignore", frozen=True)

    id: RecordId
    kind: ReportKind
    facilitator_id: RecordId
    kecamatan_code: KecamatanCode
    household_id: RecordId
    nik: NIK
    reported_on: RecordDate
    changes: HouseholdChanges | None = None
    note: Annotated[FreeText, Field(max_length=500)] = ""
    updated_at: RecordTime

    @model_validator(mode="after")
    def _cross_field(self) -> FacilitatorReport:
        if self.kind == "household_update" and (self.changes is None or self.changes.empty):
            raise ValueError("a household_update report must carry the changes seen")
        if self.kind != "household_update" and self.changes is not None:
            raise ValueError(f"a {self.kind} report carries no household changes")
        if self.reported_on > self.updated_at.date():
            raise ValueError("reported_on is after the record's updated_at (date in the future)")
        return self
