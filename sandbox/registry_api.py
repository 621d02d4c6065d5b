"""HTTP routes of the registry agency (DTKS/DTSEN): paged, incremental households and recipients.

Pages are built from plain dicts and `json.dumps`, never through pydantic: the sandbox must
serve broken records unvalidated, and serialising ~1,500 people per page is the hot path.
The documented response models exist only for the OpenAPI document.
"""

from __future__ import annotations

import json
from datetime import datetime
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query, Request
from pydantic import AwareDatetime
from starlette.responses import Response

from models.contracts.common import ErrorBody, Page
from models.contracts.registry import Household, Recipient
from models.wilayah import KodeKecamatan
from sandbox.auth import bearer_auth
from sandbox.cursor import CursorError, decode_cursor, encode_cursor
from sandbox.errors import JSON, BadCursor, error_response
from sandbox.faults import DroppedResponse, Fault, truncated_response
from sandbox.registry_data import HOUSEHOLDS, RECIPIENTS
from sandbox.state import SandboxState
from sandbox.stats import OUTCOME_KEY

__all__ = ["AGENCY", "MAX_LIMIT", "registry_router"]

AGENCY = "registry"
DEFAULT_LIMIT = 500
MAX_LIMIT = 5000

_ERRORS: dict[int | str, dict[str, Any]] = {
    400: {"model": ErrorBody, "description": "Invalid cursor (`bad_cursor`)."},
    401: {"model": ErrorBody, "description": "Missing or wrong bearer token."},
    422: {"model": ErrorBody, "description": "Invalid parameter; `fields` lists each one."},
    429: {
        "model": ErrorBody,
        "description": "Rate limited; wait `Retry-After` seconds.",
        "headers": {
            "Retry-After": {"description": "Seconds to wait", "schema": {"type": "number"}}
        },
    },
    500: {"model": ErrorBody, "description": "Transient server error; retry."},
    503: {"model": ErrorBody, "description": "Transient unavailability; retry."},
}

UpdatedSince = Annotated[
    AwareDatetime | None,
    Query(description="Only records with updated_at >= this instant (ISO 8601 with offset)."),
]
Cursor = Annotated[
    str | None, Query(description="Opaque next_cursor of the previous page of the same query.")
]
Limit = Annotated[int, Query(ge=1, le=MAX_LIMIT, description="Records per page.")]
Kecamatan = Annotated[
    KodeKecamatan | None,
    Query(description="Only households of this kecamatan (35.xx.yy); absent: whole province."),
]


def _retry_after(seconds: float) -> str:
    return f"{seconds:g}"


async def _serve(
    state: SandboxState,
    request: Request,
    collection: str,
    updated_since: datetime | None,
    cursor: str | None,
    limit: int,
    kecamatan: str | None,
) -> Response:
    fault, aux = await state.inject()
    if fault is Fault.SERVER_ERROR:
        status = 503 if aux < 0.5 else 500
        return error_response(status, "unavailable" if status == 503 else "internal_error")
    if fault is Fault.RATE_LIMITED:
        seconds = state.faults.config.retry_after_s
        return error_response(
            429,
            "rate_limited",
            f"too many requests; retry after {seconds:g} s",
            headers={"Retry-After": _retry_after(seconds)},
        )
    after = None
    if cursor is not None:
        try:
            after = decode_cursor(cursor, collection, kecamatan)
        except CursorError as exc:
            raise BadCursor(str(exc)) from None
    records, nxt = state.registry.page(
        collection, since=updated_since, after=after, kecamatan=kecamatan, limit=limit
    )
    next_cursor = None if nxt is None else encode_cursor(collection, kecamatan, nxt)
    body = json.dumps(
        {"data": records, "next_cursor": next_cursor}, ensure_ascii=False, separators=(",", ":")
    ).encode()
    if fault is Fault.DROP:
        return DroppedResponse(body, aux)
    if fault is Fault.TRUNCATE:
        setattr(request.state, OUTCOME_KEY, "truncated")
        return truncated_response(body, aux)
    return Response(body, media_type=JSON)


def registry_router(state: SandboxState) -> APIRouter:
    """The registry agency's routes (mount under /registry)."""
    router = APIRouter(
        tags=["registry"],
        dependencies=[Depends(bearer_auth("registry", lambda: state.token(AGENCY)))],
        responses=_ERRORS,
    )

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
        return await _serve(state, request, HOUSEHOLDS, updated_since, cursor, limit, kecamatan)

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
        return await _serve(state, request, RECIPIENTS, updated_since, cursor, limit, kecamatan)

    return router
