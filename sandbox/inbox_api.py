"""Routes of the office inbox (agency `kecamatan`): deliver handoffs, read decisions."""

from __future__ import annotations

from fastapi import APIRouter

from models.contracts.kecamatan import (
    DECISIONS,
    HANDOFF_BATCHES,
    HANDOFFS,
    MAX_BATCH_ITEMS,
    DeliveryBatch,
    DeliveryBatchAnswer,
    DeliveryReceipt,
    HandoffDelivery,
    OfficeDecision,
)
from sandbox.paging_api import add_page_route, agency_router
from sandbox.state import SandboxState
from sandbox.write_api import add_batch_route, add_write_route

__all__ = ["AGENCY", "inbox_router"]

AGENCY = "kecamatan"


def inbox_router(state: SandboxState) -> APIRouter:
    """The office inbox's routes (mount under /kecamatan)."""
    router = agency_router(state, AGENCY)
    inbox = state.inbox
    add_write_route(
        router,
        state,
        AGENCY,
        HANDOFFS,
        HandoffDelivery,
        DeliveryReceipt,
        inbox.deliver,
        inbox.log,
        summary="Deliver a handoff to an office (idempotent)",
        description="Deliver a handoff; the office will answer (or not) according to its profile.",
        created="Delivered: the receipt.",
        key_means="The delivery key: a replay returns the first receipt.",
    )
    add_batch_route(
        router,
        state,
        AGENCY,
        HANDOFF_BATCHES,
        DeliveryBatch,
        DeliveryBatchAnswer,
        inbox.deliver,
        inbox.log,
        summary="Deliver a batch of handoffs, each under its own key (idempotent)",
        description=(
            f"Up to {MAX_BATCH_ITEMS} deliveries, each with its own `idempotency_key` and the "
            "body of `POST /v1/handoffs`, in the same idempotency store: each item is "
            "answered in order as its single POST would be (201 new, 200 replay with the "
            "first receipt, 409 key used with another body). A batch with an invalid item "
            "is refused whole (422, nothing recorded)."
        ),
    )
    add_page_route(
        router,
        state,
        AGENCY,
        DECISIONS,
        inbox.page,
        OfficeDecision,
        name=DECISIONS,
        summary="Offices' decisions about delivered handoffs, by (updated_at, id)",
        description=(
            "Decisions whose time has come on the sandbox clock; `kecamatan`: the office's."
        ),
        page_of=DECISIONS,
    )
    return router
