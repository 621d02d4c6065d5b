"""Read routes of the coordination agencies: pkh, desa, pertanian, statistik and puskesmas.

Same contract as the registry: bearer token per agency, cursor pagination, inclusive
`updated_since`, optional `kecamatan`, ErrorBody errors, 429 with Retry-After, faults.
"""

from __future__ import annotations

from fastapi import APIRouter

from models.contracts.desa import BLT_RECIPIENTS, BltRecipient
from models.contracts.pertanian import FARMER_NEEDS, FarmerNeed
from models.contracts.pkh import REPORTS, FacilitatorReport
from models.contracts.puskesmas import SURVEILLANCE, WeeklyReport
from models.contracts.statistik import DATA_REQUESTS, SUBMISSIONS, DataRequest, DataSubmission
from sandbox.paging_api import Collection, read_router
from sandbox.state import SandboxState

__all__ = ["agency_routers"]


def agency_routers(state: SandboxState) -> dict[str, APIRouter]:
    """Agency name -> its read router (mount under /<agency>)."""
    data = state.coordination
    return {
        "pkh": read_router(
            state,
            "pkh",
            [
                Collection(
                    REPORTS,
                    FacilitatorReport,
                    data.pager("pkh", REPORTS),
                    "PKH facilitator reports",
                    "the reports of facilitators posted in that kecamatan",
                )
            ],
        ),
        "desa": read_router(
            state,
            "desa",
            [
                Collection(
                    BLT_RECIPIENTS,
                    BltRecipient,
                    data.pager("desa", BLT_RECIPIENTS),
                    "BLT Dana Desa recipients per desa and period",
                    "the lists of the desa of that kecamatan",
                )
            ],
        ),
        "pertanian": read_router(
            state,
            "pertanian",
            [
                Collection(
                    FARMER_NEEDS,
                    FarmerNeed,
                    data.pager("pertanian", FARMER_NEEDS),
                    "e-RDKK fertiliser needs per farmer, poktan and season",
                    "the lines of the desa of that kecamatan",
                )
            ],
        ),
        "puskesmas": read_router(
            state,
            "puskesmas",
            [
                Collection(
                    SURVEILLANCE,
                    WeeklyReport,
                    data.pager("puskesmas", SURVEILLANCE),
                    "weekly surveillance figures per desa, condition and ISO week",
                    "the figures of the desa of that kecamatan",
                )
            ],
        ),
        "statistik": read_router(
            state,
            "statistik",
            [
                Collection(
                    DATA_REQUESTS,
                    DataRequest,
                    data.pager("statistik", DATA_REQUESTS),
                    "KSK data requests to the desa of a kecamatan",
                    "the requests to that kecamatan",
                ),
                Collection(
                    SUBMISSIONS,
                    DataSubmission,
                    data.pager("statistik", SUBMISSIONS),
                    "the desa's submissions answering data requests",
                    "the submissions of the desa of that kecamatan",
                ),
            ],
        ),
    }
