"""Routes of the office inbox (agency `kecamatan`): deliver handoffs, read decisions."""

from __future__ import annotations

from datetime import datetime
from typing import Any

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
from sandbox.paging_api import (
    DEFAULT_LIMIT,
    ERRORS,
    Cursor,
    Kecamatan,
    Limit,
    UpdatedSince,
    serve_page,
)
from sandbox.registry_data import Position
from sandbox.state import SandboxState
from sandbox.write_api import IDEMPOTENCY_KEY, WRITE_ERRORS, body_schema, serve_write

__all__ = ["AGENCY", "inbox_router"]

AGENCY = "kecamatan"


def inbox_router(state: SandboxState) -> APIRouter:
    """The office inbox's routes (mount under /kecamatan)."""
    router = APIRouter(
        tags=[AGENCY],
        dependencies=[Depends(bearer_auth(AGENCY, lambda: state.token(AGENCY)))],
        responses=ERRORS,
    )

    def decisions_page(
        *,
        since: datetime | None = None,
        after: Position | None = None,
        kecamatan: str | None = None,
        limit: int = DEFAULT_LIMIT,
    ) -> tuple[list[dict[str, Any]], Position | None]:
        return state.inbox.page(since=since, after=after, kecamatan=kecamatan, limit=limit)

    @router.post(
        f"/v1/{HANDOFFS}",
        summary="Deliver a handoff to an office (idempotent)",
        status_code=201,
        responses={
            **WRITE_ERRORS,
            200: {"model": DeliveryReceipt, "description": "Replay: the first receipt."},
            201: {"model": DeliveryReceipt, "description": "Delivered: the receipt."},
        },
        openapi_extra={
            "requestBody": body_schema(HandoffDelivery),
            "parameters": [
                {
                    "name": IDEMPOTENCY_KEY,
                    "in": "header",
                    "required": True,
                    "schema": {"type": "string", "maxLength": 255},
                    "description": "The delivery key: a replay returns the first receipt.",
                }
            ],
        },
    )
    async def handoffs(request: Request) -> Response:
        """Deliver a handoff; the office will answer (or not) according to its profile."""
        return await serve_write(
            state, request, AGENCY, HandoffDelivery, state.inbox.deliver, state.inbox.log
        )

    @router.get(
        f"/v1/{DECISIONS}",
        summary="Offices' decisions about delivered handoffs, by (updated_at, id)",
        responses={200: {"model": Page[OfficeDecision], "description": "One page of decisions."}},
    )
    async def decisions(
        request: Request,
        updated_since: UpdatedSince = None,
        cursor: Cursor = None,
        limit: Limit = DEFAULT_LIMIT,
        kecamatan: Kecamatan = None,
    ) -> Response:
        """Decisions whose time has come on the sandbox clock; `kecamatan`: the office's."""
        return await serve_page(
            state,
            request,
            AGENCY,
            DECISIONS,
            decisions_page,
            updated_since,
            cursor,
            limit,
            kecamatan,
        )

    return router
