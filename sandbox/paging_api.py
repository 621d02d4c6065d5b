"""The exchange contract's read side, shared by every agency: paged, incremental collections.

`GET /<agency>/v1/<collection>?updated_since=&cursor=&limit=&kecamatan=` answers
`{"data": [...], "next_cursor": ...}` ordered by (updated_at, id); faults are drawn from the
agency's injector before the page is built. Pages are built from plain dicts and
`json.dumps`, never through pydantic: the sandbox must serve broken records unvalidated.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import Any

from fastapi import APIRouter, Depends, Request
from pydantic import BaseModel
from starlette.responses import Response

from models.contracts.common import ErrorBody, Page
from sandbox.auth import bearer_auth
from sandbox.coordination_data import Pager
from sandbox.cursor import encode_cursor
from sandbox.errors import JSON, error_response
from sandbox.faults import DroppedResponse, Fault, truncated_response
from sandbox.page_cache import page_body
from sandbox.read_query import (
    DEFAULT_LIMIT,
    MAX_LIMIT,
    QueryError,
    ReadQuery,
    parse_read_query,
    read_parameters,
)
from sandbox.state import SandboxState
from sandbox.stats import OUTCOME_KEY

__all__ = [
    "DEFAULT_LIMIT",
    "ERRORS",
    "MAX_LIMIT",
    "Collection",
    "add_page_route",
    "agency_router",
    "fault_before",
    "page_description",
    "page_endpoint",
    "rate_limited",
    "read_router",
    "serve_page",
    "server_error",
]

UNAUTHORIZED: dict[str, Any] = {
    "model": ErrorBody,
    "description": "Missing or wrong bearer token (`unauthorized`).",
    "headers": {
        "WWW-Authenticate": {"description": "The scheme to use", "schema": {"type": "string"}}
    },
}
"""The 401 answer of every agency route."""

ERRORS: dict[int | str, dict[str, Any]] = {
    400: {
        "model": ErrorBody,
        "description": "Malformed cursor or one of another collection (`bad_cursor`).",
    },
    401: UNAUTHORIZED,
    422: {"model": ErrorBody, "description": "Invalid parameter; `fields` lists each one."},
    429: {
        "model": ErrorBody,
        "description": "Rate limited (`rate_limited`); wait `Retry-After` seconds.",
        "headers": {
            "Retry-After": {"description": "Seconds to wait", "schema": {"type": "number"}}
        },
    },
    500: {"model": ErrorBody, "description": "Transient server error (`internal_error`); retry."},
    503: {"model": ErrorBody, "description": "Transient unavailability (`unavailable`); retry."},
}
"""The error answers of every read route (faults add 429, 500 and 503)."""


def _retry_after(seconds: float) -> str:
    return f"{seconds:g}"


def server_error(aux: float) -> Response:
    """A transient 5xx: 503 for the lower half of the auxiliary draw, else 500."""
    status = 503 if aux < 0.5 else 500
    return error_response(status, "unavailable" if status == 503 else "internal_error")


def rate_limited(state: SandboxState, agency: str) -> Response:
    """A 429 with the agency's Retry-After."""
    seconds = state.injector(agency).config.retry_after_s
    return error_response(
        429,
        "rate_limited",
        f"too many requests; retry after {seconds:g} s",
        headers={"Retry-After": _retry_after(seconds)},
    )


def fault_before(state: SandboxState, agency: str, fault: Fault, aux: float) -> Response | None:
    """The answer of a fault that strikes before any work (5xx, 429), or None."""
    if fault is Fault.SERVER_ERROR:
        return server_error(aux)
    if fault is Fault.RATE_LIMITED:
        return rate_limited(state, agency)
    return None


async def serve_page(
    state: SandboxState,
    request: Request,
    agency: str,
    collection: str,
    pager: Pager,
    query: ReadQuery,
) -> Response:
    """One page of a collection, with the agency's faults applied."""
    fault, aux = await state.inject(agency)
    early = fault_before(state, agency, fault, aux)
    if early is not None:
        return early
    try:
        after = query.position(collection)
    except QueryError as exc:
        return error_response(400, exc.kind, exc.msg)

    def render() -> bytes:
        records, nxt = pager(
            since=query.updated_since, after=after, kecamatan=query.kecamatan, limit=query.limit
        )
        return page_body(records, None if nxt is None else encode_cursor(collection, nxt))

    cache = state.page_cache
    if cache is not None and cache.serves(agency, collection):
        body = cache.body(
            collection,
            render,
            since=query.updated_since,
            after=after,
            kecamatan=query.kecamatan,
            limit=query.limit,
            agency=agency,
        )
    else:
        body = render()
    if fault is Fault.DROP:
        return DroppedResponse(body, aux)
    if fault is Fault.TRUNCATE:
        setattr(request.state, OUTCOME_KEY, "truncated")
        return truncated_response(body, aux)
    return Response(body, media_type=JSON)


@dataclass(frozen=True, slots=True)
class Collection:
    """A read collection of an agency: its path name, record model (for the docs), pager."""

    name: str
    model: type[BaseModel]
    pager: Pager
    summary: str
    kecamatan_means: str


def page_endpoint(
    state: SandboxState, agency: str, collection: str, pager: Pager
) -> Callable[..., Awaitable[Response]]:
    """The GET endpoint serving one collection's pages through `serve_page`."""

    async def read(request: Request) -> Response:
        try:
            query = parse_read_query(request.query_params)
        except QueryError as exc:
            return error_response(
                exc.status, "validation_error", "the request has invalid fields", fields=[exc.field]
            )
        return await serve_page(state, request, agency, collection, pager, query)

    return read


def add_page_route(
    router: APIRouter,
    state: SandboxState,
    agency: str,
    collection: str,
    pager: Pager,
    model: type[BaseModel],
    *,
    name: str,
    summary: str,
    description: str,
    page_of: str,
) -> None:
    """Add the GET /v1/<collection> route, documented as one page of `page_of` records."""
    page_model: Any = Page[model]  # type: ignore[valid-type]
    router.add_api_route(
        f"/v1/{collection}",
        page_endpoint(state, agency, collection, pager),
        methods=["GET"],
        summary=summary,
        description=description,
        name=name,
        responses={200: {"model": page_model, "description": f"One page of {page_of}."}},
        openapi_extra={"parameters": read_parameters(collection)},
    )


def page_description(what: str) -> str:
    """The opening sentence of every read route's description."""
    return f"Page through {what}, current versions only, ordered by (updated_at, id)."


def agency_router(state: SandboxState, agency: str) -> APIRouter:
    """An empty router for an agency's routes (mount under /<agency>), behind its token."""
    return APIRouter(
        tags=[agency],
        dependencies=[Depends(bearer_auth(agency, lambda: state.token(agency)))],
        responses=ERRORS,
    )


def read_router(state: SandboxState, agency: str, collections: Sequence[Collection]) -> APIRouter:
    """An agency's read routes (mount under /<agency>), guarded by the agency's token."""
    router = agency_router(state, agency)
    for c in collections:
        add_page_route(
            router,
            state,
            agency,
            c.name,
            c.pager,
            c.model,
            name=f"{agency}_{c.name.replace('-', '_')}",
            summary=c.summary[:1].upper() + c.summary[1:],
            description=(
                f"{page_description(c.summary)} The `kecamatan` filter selects {c.kecamatan_means}."
            ),
            page_of=c.summary,
        )
    return router
