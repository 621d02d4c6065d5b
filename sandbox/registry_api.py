"""HTTP routes of the registry agency (DTKS/DTSEN): paged, incremental households and recipients,
and the write side, idempotent update proposals.

Pages are built from plain dicts and `json.dumps`, never through pydantic: the sandbox must
serve broken records unvalidated, and serialising ~1,500 people per page is the hot path.
The documented response models exist only for the OpenAPI document.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from fastapi import APIRouter, Depends, Request
from starlette.responses import Response

from models.contracts.common import Page
from models.contracts.registry import (
    UPDATE_PROPOSALS,
    Household,
    ProposalReceipt,
    Recipient,
    UpdateProposal,
)
from sandbox.auth import bearer_auth
from sandbox.coordination_data import Pager
from sandbox.paging_api import (
    DEFAULT_LIMIT,
    ERRORS,
    MAX_LIMIT,
    Cursor,
    Kecamatan,
    Limit,
    UpdatedSince,
    serve_page,
)
from sandbox.registry_data import HOUSEHOLDS, RECIPIENTS, Position
from sandbox.state import SandboxState
from sandbox.write_api import IDEMPOTENCY_KEY, WRITE_ERRORS, body_schema, serve_write

__all__ = ["AGENCY", "MAX_LIMIT", "registry_router"]

AGENCY = "registry"


def _pager(state: SandboxState, collection: str) -> Pager:
    def page(
        *,
        since: datetime | None = None,
        after: Position | None = None,
        kecamatan: str | None = None,
        limit: int = DEFAULT_LIMIT,
    ) -> tuple[list[dict[str, Any]], Position | None]:
        return state.registry.page(
            collection, since=since, after=after, kecamatan=kecamatan, limit=limit
        )

    return page


def registry_router(state: SandboxState) -> APIRouter:
    """The registry agency's routes (mount under /registry)."""
    router = APIRouter(
        tags=["registry"],
        dependencies=[Depends(bearer_auth("registry", lambda: state.token(AGENCY)))],
        responses=ERRORS,
    )
    households_page = _pager(state, HOUSEHOLDS)
    recipients_page = _pager(state, RECIPIENTS)

    @router.get(
        "/v1/households",
        summary="Households with members, by (updated_at, id)",
        responses={200: {"model": Page[Household], "description": "One page of households."}},
    )
    async def households(
        request: Request,
        updated_since: UpdatedSince = None,
        cursor: Cursor = None,
        limit: Limit = DEFAULT_LIMIT,
        kecamatan: Kecamatan = None,
    ) -> Response:
        """Page through registry households, current versions only, ordered by (updated_at, id)."""
        return await serve_page(
            state,
            request,
            AGENCY,
            HOUSEHOLDS,
            households_page,
            updated_since,
            cursor,
            limit,
            kecamatan,
        )

    @router.get(
        "/v1/recipients",
        summary="Programme recipients (PKH, BPNT), by (updated_at, id)",
        responses={200: {"model": Page[Recipient], "description": "One page of recipients."}},
    )
    async def recipients(
        request: Request,
        updated_since: UpdatedSince = None,
        cursor: Cursor = None,
        limit: Limit = DEFAULT_LIMIT,
        kecamatan: Kecamatan = None,
    ) -> Response:
        """Page through programme enrolments, current versions only, ordered by (updated_at, id)."""
        return await serve_page(
            state,
            request,
            AGENCY,
            RECIPIENTS,
            recipients_page,
            updated_since,
            cursor,
            limit,
            kecamatan,
        )

    @router.post(
        f"/v1/{UPDATE_PROPOSALS}",
        summary="Send a verified household change (idempotent)",
        status_code=201,
        responses={
            **WRITE_ERRORS,
            200: {"model": ProposalReceipt, "description": "Replay: the first receipt."},
            201: {"model": ProposalReceipt, "description": "Recorded: the receipt."},
        },
        openapi_extra={
            "requestBody": body_schema(UpdateProposal),
            "parameters": [
                {
                    "name": IDEMPOTENCY_KEY,
                    "in": "header",
                    "required": True,
                    "schema": {"type": "string", "maxLength": 255},
                    "description": "The proposal id: a replay returns the first receipt.",
                }
            ],
        },
    )
    async def update_proposals(request: Request) -> Response:
        """Record an update proposal; the registry queues those about unknown households."""
        return await serve_write(
            state, request, AGENCY, UpdateProposal, state.proposals.submit, state.proposals.log
        )

    return router
