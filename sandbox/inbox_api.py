"""Routes of the office inbox (agency `kecamatan`): deliver handoffs, read decisions."""

from __future__ import annotations

from fastapi import APIRouter, Depends, Request
from starlette.responses import Response

from models.contracts.common import Page
from models.contracts.kecamatan import (
    DECISIONS,
    HANDOFFS,
    DeliveryReceipt,
    HandoffDelivery,
    OfficeDecision,
)
from sandbox.auth import bearer_auth
from sandbox.paging_api import ERRORS, page_endpoint
from sandbox.state import SandboxState
from sandbox.write_api import serve_write, write_route

__all__ = ["AGENCY", "inbox_router"]

AGENCY = "kecamatan"


def inbox_router(state: SandboxState) -> APIRouter:
    """The office inbox's routes (mount under /kecamatan)."""
    router = APIRouter(
        tags=[AGENCY],
        dependencies=[Depends(bearer_auth(AGENCY, lambda: state.token(AGENCY)))],
        responses=ERRORS,
    )

    @router.post(
        f"/v1/{HANDOFFS}",
        summary="Deliver a handoff to an office (idempotent)",
        **write_route(
            HandoffDelivery,
            DeliveryReceipt,
            created="Delivered: the receipt.",
            key_means="The delivery key: a replay returns the first receipt.",
        ),
    )
    async def handoffs(request: Request) -> Response:
        """Deliver a handoff; the office will answer (or not) according to its profile."""
        return await serve_write(
            state, request, AGENCY, HandoffDelivery, state.inbox.deliver, state.inbox.log
        )

    router.add_api_route(
        f"/v1/{DECISIONS}",
        page_endpoint(state, AGENCY, DECISIONS, state.inbox.page),
        methods=["GET"],
        name="decisions",
        summary="Offices' decisions about delivered handoffs, by (updated_at, id)",
        description=(
            "Decisions whose time has come on the sandbox clock; `kecamatan`: the office's."
        ),
        responses={200: {"model": Page[OfficeDecision], "description": "One page of decisions."}},
    )

    return router
