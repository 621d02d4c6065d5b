"""Admin routes of the sandbox: faults, data epoch, request counters and ground truth.

They sit outside the agency prefixes, are never subject to fault injection, and take the
separate admin token so a hub configured with an agency token cannot change the world.
"""

from __future__ import annotations

from typing import Annotated, Any

import anyio
from fastapi import APIRouter, Depends, Query
from pydantic import BaseModel, Field
from starlette.responses import Response

from models.contracts.common import ErrorBody
from models.wilayah import KodeKecamatan
from sandbox.auth import bearer_auth
from sandbox.config import FaultConfig
from sandbox.errors import error_response
from sandbox.state import SandboxState

__all__ = ["EpochInfo", "EpochRequest", "admin_router"]


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
    async def get_faults() -> FaultConfig:
        """The fault injection in force."""
        return state.faults.config

    @router.put("/faults")
    async def put_faults(config: FaultConfig) -> FaultConfig:
        """Replace the fault injection; the seeded fault stream restarts."""
        state.faults.configure(config)
        return state.faults.config

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

    return router
