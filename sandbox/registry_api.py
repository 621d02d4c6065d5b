"""HTTP routes of the registry agency (DTKS/DTSEN): paged, incremental households and recipients,
and the write side, idempotent update proposals.

Pages are built from plain dicts and `json.dumps`, never through pydantic: the sandbox must
serve broken records unvalidated, and serialising ~1,500 people per page is the hot path.
The documented response models exist only for the OpenAPI document.
"""

from __future__ import annotations

from fastapi import APIRouter

from models.contracts.registry import (
    UPDATE_PROPOSALS,
    Household,
    ProposalReceipt,
    Recipient,
    UpdateProposal,
)
from sandbox.paging_api import MAX_LIMIT, add_page_route, agency_router, page_description
from sandbox.registry_data import HOUSEHOLDS, RECIPIENTS
from sandbox.state import SandboxState
from sandbox.write_api import add_write_route

__all__ = ["AGENCY", "MAX_LIMIT", "registry_router"]

AGENCY = "registry"

# Collection, record model, what its summary calls the records, what they are to page through.
_READS = (
    (HOUSEHOLDS, Household, "Households with members", "registry households"),
    (RECIPIENTS, Recipient, "Programme recipients (PKH, BPNT)", "programme enrolments"),
)


def registry_router(state: SandboxState) -> APIRouter:
    """The registry agency's routes (mount under /registry)."""
    router = agency_router(state, AGENCY)
    for collection, model, summary, what in _READS:
        add_page_route(
            router,
            state,
            AGENCY,
            collection,
            state.registry.pages(collection),
            model,
            name=collection,
            summary=f"{summary}, by (updated_at, id)",
            description=page_description(what),
            page_of=collection,
        )
    add_write_route(
        router,
        state,
        AGENCY,
        UPDATE_PROPOSALS,
        UpdateProposal,
        ProposalReceipt,
        state.proposals.submit,
        state.proposals.log,
        summary="Send a verified household change (idempotent)",
        description=(
            "Record an update proposal; the registry queues those about unknown households."
        ),
        created="Recorded: the receipt.",
        key_means="The proposal id: a replay returns the first receipt.",
    )
    return router
