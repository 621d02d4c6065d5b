"""HTTP routes of the registry agency (DTKS/DTSEN): paged, incremental households and recipients,
and the write side, idempotent update proposals.

Pages are built from plain dicts and `json.dumps`, never through pydantic: the sandbox must
serve broken records unvalidated, and serialising ~1,500 people per page is the hot path.
The documented response models exist only for the OpenAPI document.
"""

from __future__ import annotations

from functools import partial

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
from sandbox.paging_api import ERRORS, MAX_LIMIT, page_endpoint
from sandbox.registry_data import HOUSEHOLDS, RECIPIENTS
from sandbox.state import SandboxState
from sandbox.write_api import serve_write, write_route

__all__ = ["AGENCY", "MAX_LIMIT", "registry_router"]

AGENCY = "registry"


def registry_router(state: SandboxState) -> APIRouter:
    """The registry agency's routes (mount under /registry)."""
    router = APIRouter(
        tags=["registry"],
        dependencies=[Depends(bearer_auth("registry", lambda: state.token(AGENCY)))],
        responses=ERRORS,
    )
    router.add_api_route(
        f"/v1/{HOUSEHOLDS}",
        page_endpoint(state, AGENCY, HOUSEHOLDS, partial(state.registry.page, HOUSEHOLDS)),
        methods=["GET"],
        name="households",
        summary="Households with members, by (updated_at, id)",
        description=(
            "Page through registry households, current versions only, ordered by (updated_at, id)."
        ),
        responses={200: {"model": Page[Household], "description": "One page of households."}},
    )
    router.add_api_route(
        f"/v1/{RECIPIENTS}",
        page_endpoint(state, AGENCY, RECIPIENTS, partial(state.registry.page, RECIPIENTS)),
        methods=["GET"],
        name="recipients",
        summary="Programme recipients (PKH, BPNT), by (updated_at, id)",
        description=(
            "Page through programme enrolments, current versions only, ordered by (updated_at, id)."
        ),
        responses={200: {"model": Page[Recipient], "description": "One page of recipients."}},
    )

    @router.post(
        f"/v1/{UPDATE_PROPOSALS}",
        summary="Send a verified household change (idempotent)",
        **write_route(
            UpdateProposal,
            ProposalReceipt,
            created="Recorded: the receipt.",
            key_means="The proposal id: a replay returns the first receipt.",
        ),
    )
    async def update_proposals(request: Request) -> Response:
        """Record an update proposal; the registry queues those about unknown households."""
        return await serve_write(
            state, request, AGENCY, UpdateProposal, state.proposals.submit, state.proposals.log
        )

    return router
