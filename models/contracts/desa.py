"""Wire contract of the village system: BLT Dana Desa recipient lists per desa and period."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, model_validator

from models.contracts.registry import Name, Period, RecordId
from models.identity import NIK, NoKK
from models.plausibility import DesaCode, RecordTime

__all__ = ["BLT_RECIPIENTS", "BltRecipient", "BltStatus"]

BLT_RECIPIENTS = "blt-recipients"

BltStatus = Literal["proposed", "approved", "removed"]
"""Place of a KPM on the list: proposed, approved by the musdes khusus, or taken off."""


class BltRecipient(BaseModel):
    """One KPM on a desa's BLT-DD list for a period (`GET /desa/v1/blt-recipients`)."""

    model_config = ConfigDict(extra="ignore", frozen=True)

    id: RecordId
    desa_code: DesaCode
    period: Period
    nik: NIK
    no_kk: NoKK
    name: Name
    status: BltStatus = "approved"
    updated_at: RecordTime

    @model_validator(mode="after")
    def _desa_only(self) -> BltRecipient:
        # Kelurahan (unit code 1xxx) get no Dana Desa, so they can have no BLT-DD list.
        if self.desa_code.rsplit(".", 1)[-1][0] == "1":
            raise ValueError(f"{self.desa_code} is a kelurahan: kelurahan get no Dana Desa")
        if self.nik == self.no_kk:
            raise ValueError("the NIK equals the No. KK (NIK/KK swapped?)")
        return self
