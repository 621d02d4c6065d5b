"""Admin routes of the sandbox: faults, data epoch, clock, request counters, the inbox's and
the registry's write logs, and ground truth.

They sit outside the agency prefixes, are never subject to fault injection, and take the
separate admin token so a hub configured with an agency token cannot change the world.
"""

from __future__ import annotations

from datetime import timedelta
from enum import StrEnum
from typing import Annotated, Any

import anyio
from fastapi import APIRouter, Depends, Query
from pydantic import BaseModel, Field
from starlette.responses import Response

from models.contracts.common import ErrorBody
from models.wilayah import KodeKecamatan
from sandbox.auth import bearer_auth
from sandbox.config import AGENCIES, FaultConfig
from sandbox.coordination_truth import CoordinationTruth, compute_truth
from sandbox.errors import error_response
from sandbox.health_truth import HealthTruth, compute_health_truth
from sandbox.state import SandboxState

__all__ = ["ClockAdvance", "ClockInfo", "EpochInfo", "EpochRequest", "admin_router"]

AgencyName = StrEnum(  # type: ignore[misc]
    "AgencyName", {agency: agency for agency in AGENCIES}, module=__name__
)
"""An agency of the sandbox (from the source catalogue)."""
AgencyQuery = Annotated[
    AgencyName | None,
    Query(
        description="An agency whose own fault injection to read or set; absent: the shared one."
    ),
]
_DAY_S = 86_400.0


class ClockAdvance(BaseModel):
    """Body of POST /_admin/clock."""

    advance_days: float = Field(ge=0.0, le=3650.0)


class ClockInfo(BaseModel):
    """The sandbox clock: now, and how far it was advanced."""

    now: str
    offset_days: float
    frozen: bool


def _clock_info(state: SandboxState) -> ClockInfo:
    return ClockInfo(
        now=state.clock.now().isoformat(timespec="milliseconds"),
        offset_days=state.clock.offset.total_seconds() / _DAY_S,
        frozen=state.clock.frozen,
    )


class EpochRequest(BaseModel):
    """Body of POST /_admin/epoch."""

    epoch: int = Field(ge=0)


class EpochInfo(BaseModel):
    """The data epoch and the updated_at window of the records it issued."""

    epoch: int
    households: int
    window_start: str
    window_end: str


def _epoch_info(state: SandboxState) -> EpochInfo:
    data = state.registry
    start, end = data.epoch_window(data.epoch)
    return EpochInfo(
        epoch=data.epoch,
        households=data.households_count(),
        window_start=start.isoformat(),
        window_end=end.isoformat(),
    )


def _set_epoch(state: SandboxState, epoch: int) -> EpochInfo | Response:
    limit = state.registry.config.max_epochs
    if epoch > limit:
        return error_response(
            422,
            "validation_error",
            f"epoch must be within 0..{limit}",
            fields=[
                {"loc": ["body", "epoch"], "msg": f"at most {limit}", "type": "less_than_equal"}
            ],
        )
    state.epoch = epoch
    return _epoch_info(state)


def admin_router(state: SandboxState) -> APIRouter:
    """Routes under /_admin that drive and observe the sandbox."""
    router = APIRouter(
        prefix="/_admin",
        tags=["admin"],
        dependencies=[Depends(bearer_auth("admin", lambda: state.config.admin_token))],
        responses={
            401: {"model": ErrorBody, "description": "Missing or wrong admin token."},
            422: {"model": ErrorBody, "description": "Invalid field; `fields` lists each one."},
        },
    )

    @router.get("/faults")
    async def get_faults(agency: AgencyQuery = None) -> FaultConfig:
        """The fault injection in force (for one agency: its own, else the shared one)."""
        return state.faults.config if agency is None else state.injector(agency).config

    @router.put("/faults")
    async def put_faults(config: FaultConfig, agency: AgencyQuery = None) -> FaultConfig:
        """Replace the shared fault injection, or set one agency's own; the stream restarts."""
        if agency is None:
            state.faults.configure(config)
            return state.faults.config
        state.set_agency_faults(agency, config)
        return state.injector(agency).config

    @router.delete("/faults", status_code=204)
    async def delete_faults(
        agency: Annotated[AgencyName, Query(description="The agency to return to the shared one.")],
    ) -> Response:
        """Drop an agency's own fault injection: it follows the shared one again."""
        state.set_agency_faults(agency, None)
        return Response(status_code=204)

    @router.get("/agency-faults")
    async def get_agency_faults() -> dict[str, FaultConfig]:
        """The agencies with their own fault injection, and theirs."""
        return {a: i.config for a, i in sorted(state.agency_faults.items())}

    @router.get("/clock")
    async def get_clock() -> ClockInfo:
        """The sandbox clock that office decisions wait for."""
        return _clock_info(state)

    @router.post("/clock")
    async def post_clock(body: ClockAdvance) -> ClockInfo:
        """Let time pass: decisions due by the new time become visible."""
        state.clock.advance(timedelta(days=body.advance_days))
        return _clock_info(state)

    @router.get("/inbox")
    async def get_inbox() -> dict[str, Any]:
        """Deliveries: receipts per key, (handoff, office) pairs delivered under several
        keys, replays, conflicts, answers lost after the write, decisions scheduled."""
        return state.inbox.stats()

    @router.delete("/inbox", status_code=204)
    async def reset_inbox() -> Response:
        """Forget every delivery and decision."""
        state.inbox.reset()
        return Response(status_code=204)

    @router.get("/proposals")
    async def get_proposals() -> dict[str, Any]:
        """Update proposals the registry received, with receipts and counts."""
        return state.proposals.stats()

    @router.get("/epoch")
    async def get_epoch() -> EpochInfo:
        """The current data epoch."""
        return _epoch_info(state)

    @router.post("/epoch", response_model=EpochInfo)
    async def post_epoch(body: EpochRequest) -> EpochInfo | Response:
        """Move the data to an epoch: records re-issued up to it become current."""
        return _set_epoch(state, body.epoch)

    @router.post("/tick", response_model=EpochInfo)
    async def tick() -> EpochInfo | Response:
        """Advance the data by one epoch."""
        return _set_epoch(state, state.epoch + 1)

    @router.get("/stats")
    async def get_stats() -> dict[str, Any]:
        """Request counts per route and outcome (status code, "dropped", "truncated")."""
        return {"requests": state.stats.snapshot()}

    @router.delete("/stats", status_code=204)
    async def reset_stats() -> Response:
        """Forget the request counts."""
        state.stats.reset()
        return Response(status_code=204)

    @router.get("/truth")
    async def truth(
        kecamatan: Annotated[
            KodeKecamatan | None, Query(description="A kecamatan; absent: the whole province.")
        ] = None,
    ) -> dict[str, Any]:
        """Exact counts the generator serves now; iterates, so slow for a big province."""
        registry = await anyio.to_thread.run_sync(state.registry.truth, kecamatan)
        return {"epoch": state.epoch, "kecamatan": kecamatan, "registry": registry}

    @router.get("/truth/coordination")
    async def coordination_truth(
        kecamatan: Annotated[
            list[KodeKecamatan] | None,
            Query(description="Kecamatan (repeatable); absent: the whole province."),
        ] = None,
    ) -> CoordinationTruth:
        """What the cross-programme checks must find now, with clear NIKs (admin only)."""
        return await anyio.to_thread.run_sync(compute_truth, state.coordination, kecamatan)

    @router.get("/truth/health")
    async def health_truth(
        kecamatan: Annotated[
            list[KodeKecamatan] | None,
            Query(description="Kecamatan (repeatable); absent: the whole province."),
        ] = None,
    ) -> HealthTruth:
        """The red-zone entries the puskesmas figures served now imply, planted and not."""
        return await anyio.to_thread.run_sync(
            compute_health_truth, state.coordination.health, kecamatan
        )

    return router
