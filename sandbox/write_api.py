"""The exchange contract's write side: POST with `Idempotency-Key`, shared by every agency.

Order of work: the agency's fault is drawn first; a 5xx (half of them) or a 429 answers
before anything happens. Then the key is required (400), the body validated (422 with
field errors), and the write recorded: 201 with the result for a new key, 200 with the
same result for a replay, 409 for the key with another body. The other faults strike after
the write is recorded (the other half of the 5xx, a dropped connection, a truncated body):
the hard case, where only a retry with the same key tells the hub what happened.

A batch route (`add_batch_route`) takes many such writes in one request, each item with
its own key in the same idempotency log: the fault is drawn once for the request as a
whole, the envelope and every item validated first (422 for the whole batch, nothing
recorded), then each item is recorded in order and answered as its single POST would be
(201 or 200 with the result, or 409), in one 200 answer.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Sequence
from datetime import UTC, date, datetime, timedelta
from typing import Any, Protocol, TypeVar, cast, get_args

from fastapi import APIRouter, Request
from pydantic import BaseModel, ValidationError
from starlette.responses import Response

from models.contracts.common import ErrorBody
from models.plausibility import CLOCK_SKEW, REGISTRY_EPOCH, RecordTime
from sandbox.errors import JSON, error_response
from sandbox.faults import DroppedResponse, Fault, truncated_response
from sandbox.idempotency import Accepted, Conflict, IdempotencyLog
from sandbox.paging_api import ERRORS, rate_limited, server_error
from sandbox.state import SandboxState
from sandbox.stats import OUTCOME_KEY

__all__ = [
    "BATCH_ERRORS",
    "IDEMPOTENCY_KEY",
    "IDEMPOTENCY_KEY_PATTERN",
    "WRITE_ERRORS",
    "add_batch_route",
    "add_write_route",
    "body_schema",
    "record_time_pattern",
    "serve_batch",
    "serve_write",
    "write_route",
]

IDEMPOTENCY_KEY = "Idempotency-Key"
IDEMPOTENCY_KEY_PATTERN = "^[!-~]{1,255}$"
"""An idempotency key: 1-255 visible ASCII characters (no space)."""
_KEY = re.compile(IDEMPOTENCY_KEY_PATTERN[1:-1])

M = TypeVar("M", bound=BaseModel)

WRITE_ERRORS: dict[int | str, dict[str, Any]] = {
    **{k: v for k, v in ERRORS.items() if k != 400},
    400: {
        "model": ErrorBody,
        "description": (
            "Missing (`idempotency_key_required`) or malformed (`bad_idempotency_key`) "
            "`Idempotency-Key`."
        ),
    },
    409: {
        "model": ErrorBody,
        "description": "The key was first used with another body (`idempotency_conflict`).",
    },
    422: {
        "model": ErrorBody,
        "description": "Body not JSON or invalid (`validation_error`); `fields` lists each error.",
    },
}

BATCH_ERRORS: dict[int | str, dict[str, Any]] = {
    **{k: v for k, v in ERRORS.items() if k != 400},
    422: {
        "model": ErrorBody,
        "description": (
            "Body not JSON, not a batch of 1 to the limit of items, or an item invalid "
            "(`validation_error`); `fields` locates each error (`body.items.<n>...`); "
            "nothing of the batch is recorded."
        ),
    },
}


def _keyed_map(node: dict[str, Any]) -> dict[str, Any]:
    # pydantic writes dict[Key, Value] with a constrained key as `patternProperties`, which
    # leaves keys that miss the pattern unconstrained; the model refuses them, so the
    # document says so: every name must match, every value is a Value.
    patterns = node.get("patternProperties")
    if (
        node.get("type") != "object"
        or not isinstance(patterns, dict)
        or len(patterns) != 1
        or "additionalProperties" in node
        or "properties" in node
    ):
        return node
    ((pattern, value),) = patterns.items()
    out = {k: v for k, v in node.items() if k != "patternProperties"}
    out["propertyNames"] = {**node.get("propertyNames", {}), "pattern": pattern}
    out["additionalProperties"] = value
    return out


def _inline(node: Any, defs: dict[str, Any]) -> Any:
    if isinstance(node, dict):
        ref = node.get("$ref")
        if isinstance(ref, str) and ref.startswith("#/$defs/"):
            return _inline(defs[ref.removeprefix("#/$defs/")], defs)
        return _keyed_map({k: _inline(v, defs) for k, v in node.items()})
    if isinstance(node, list):
        return [_inline(v, defs) for v in node]
    return node


def record_time_pattern(today: date) -> str:
    """The ISO times a `RecordTime` surely accepts on `today` (UTC): the document's window.

    JSON Schema has no date bounds, so the window (`REGISTRY_EPOCH` up to the validation
    time plus `CLOCK_SKEW`) is spelled as the days it holds whatever the zone: from the
    year after the epoch's up to the day before `today`. The document keeps this window as
    time passes; the contract's grows, so every time the document allows stays accepted.
    """
    first_year = REGISTRY_EPOCH.year + 1
    last = today - timedelta(days=1)
    days = r"(0[1-9]|[12][0-9]|3[01])"
    years = "|".join(str(y) for y in range(first_year, last.year))
    spans = [f"({years})-(0[1-9]|1[0-2])-{days}"] if years else []
    if last.month > 1:
        months = "|".join(f"{m:02d}" for m in range(1, last.month))
        spans.append(f"{last.year}-({months})-{days}")
    upto = "|".join(f"{d:02d}" for d in range(1, last.day + 1))
    spans.append(f"{last.year}-{last.month:02d}-({upto})")
    hour = r"([01][0-9]|2[0-3])"
    clock = rf"T{hour}:[0-5][0-9]:[0-5][0-9](\.[0-9]{{1,6}})?(Z|[+-]{hour}:[0-5][0-9])"
    return f"^({'|'.join(spans)}){clock}$"


def _windowed(model: type[BaseModel], schema: dict[str, Any], today: date) -> None:
    # Record times carry a window the JSON schema of their type cannot state.
    window = get_args(RecordTime)[1:]
    properties = schema.get("properties", {})
    for name, field in model.model_fields.items():
        node = properties.get(name)
        if node is None:
            continue
        if any(any(m is w for w in window) for m in field.metadata):
            node["pattern"] = record_time_pattern(today)
            node["description"] = (
                f"ISO 8601 time with a zone, from {REGISTRY_EPOCH.isoformat()} up to now "
                f"plus {CLOCK_SKEW.days} day (the pattern spells the surely valid days)."
            )
        elif isinstance(field.annotation, type) and issubclass(field.annotation, BaseModel):
            _windowed(field.annotation, node, today)


def body_schema(model: type[BaseModel], today: date | None = None) -> dict[str, Any]:
    """The OpenAPI request body of a write route, with nested models inlined."""
    schema = model.model_json_schema()
    defs = schema.pop("$defs", {})
    inlined = _inline(schema, defs)
    _windowed(model, inlined, today or datetime.now(UTC).date())
    return {
        "required": True,
        "content": {"application/json": {"schema": inlined}},
    }


def write_route(
    body: type[BaseModel], receipt: type[BaseModel], *, created: str, key_means: str
) -> dict[str, Any]:
    """The OpenAPI options of an idempotent write route: 201/200 receipts, body, key header."""
    return {
        "status_code": 201,
        "responses": {
            **WRITE_ERRORS,
            200: {"model": receipt, "description": "Replay: the first receipt."},
            201: {"model": receipt, "description": created},
        },
        "openapi_extra": {
            "requestBody": body_schema(body),
            "parameters": [
                {
                    "name": IDEMPOTENCY_KEY,
                    "in": "header",
                    "required": True,
                    "schema": {"type": "string", "pattern": IDEMPOTENCY_KEY_PATTERN},
                    "description": key_means,
                }
            ],
        },
    }


def _json_number(text: str) -> int | float:
    # JSON Schema counts 2.0 as the integer 2, and the document is JSON Schema: a number
    # without a fraction reads as an int (a float field takes an int as well).
    value = float(text)
    return int(value) if value.is_integer() else value


def _fields(exc: ValidationError) -> list[dict[str, Any]]:
    return [
        {
            "loc": ["body", *(p if isinstance(p, int) else str(p) for p in e["loc"])],
            "msg": str(e["msg"]),
            "type": str(e["type"]),
        }
        for e in exc.errors(include_url=False, include_input=False)
    ]


def _fault_after(fault: Fault, aux: float) -> bool:
    """Whether a drawn fault strikes after the write is recorded (half the 5xx, drops, cuts)."""
    return fault in (Fault.DROP, Fault.TRUNCATE) or (fault is Fault.SERVER_ERROR and aux >= 0.5)


async def _parsed_body(request: Request) -> Any | Response:
    """The request's JSON document, or the 422 of a body that is not JSON."""
    raw = await request.body()
    try:
        return json.loads(raw, parse_float=_json_number)
    except (ValueError, UnicodeDecodeError):
        return error_response(
            422,
            "validation_error",
            "the body is not JSON",
            fields=[{"loc": ["body"], "msg": "invalid JSON", "type": "json_invalid"}],
        )


def _answer_faulted(
    request: Request, fault: Fault, aux: float, content: bytes, status: int
) -> Response:
    """The answer of a fault that strikes after the write: a 5xx, a drop or a cut body."""
    if fault is Fault.SERVER_ERROR:
        return server_error((aux - 0.5) * 2.0)
    if fault is Fault.DROP:
        dropped = DroppedResponse(content, aux)
        dropped.status_code = status
        return dropped
    setattr(request.state, OUTCOME_KEY, "truncated")
    cut = truncated_response(content, aux)
    cut.status_code = status
    return cut


async def serve_write(
    state: SandboxState,
    request: Request,
    agency: str,
    model: type[M],
    submit: Callable[[str, M], Accepted | Conflict],
    log: IdempotencyLog,
) -> Response:
    """Validate and record one idempotent write, with the agency's faults applied."""
    fault, aux = await state.inject(agency)
    # Half of the server errors strike before the write, half after it is recorded.
    after_commit = _fault_after(fault, aux)
    if fault is Fault.SERVER_ERROR and not after_commit:
        return server_error(aux * 2.0)
    if fault is Fault.RATE_LIMITED:
        return rate_limited(state, agency)
    key = request.headers.get(IDEMPOTENCY_KEY)
    if key is None or not _KEY.fullmatch(key):
        return error_response(
            400,
            "idempotency_key_required" if key is None else "bad_idempotency_key",
            f"an '{IDEMPOTENCY_KEY}' header of 1-255 visible ASCII characters is required",
        )
    parsed = await _parsed_body(request)
    if isinstance(parsed, Response):
        return parsed
    try:
        body = model.model_validate(parsed)
    except ValidationError as exc:
        return error_response(
            422, "validation_error", "the body has invalid fields", fields=_fields(exc)
        )
    outcome = submit(key, body)
    if isinstance(outcome, Conflict):
        return _conflict()
    status = 201 if outcome.created else 200
    content = json.dumps(outcome.entry.result, separators=(",", ":")).encode()
    if not after_commit:
        return Response(content, status_code=status, media_type=JSON)
    log.mark_faulted(key)
    return _answer_faulted(request, fault, aux, content, status)


def _conflict() -> Response:
    """The 409 of a key first used with another body."""
    return error_response(
        409,
        "idempotency_conflict",
        f"this {IDEMPOTENCY_KEY} was first used with another body",
    )


# A batch item's 409: the error body its single write would get.
_CONFLICT_BODY = {
    "error": "idempotency_conflict",
    "detail": "this idempotency key was first used with another body",
    "fields": [],
}


class BatchItem(Protocol):
    """What a batch item model holds: its idempotency key and the single write's body."""

    @property
    def idempotency_key(self) -> str:
        """The item's idempotency key."""
        ...

    @property
    def body(self) -> Any:
        """The item's body, as the single write takes it."""
        ...


class Batch(Protocol):
    """What a batch model holds: its items, in order."""

    @property
    def items(self) -> Sequence[BatchItem]:
        """The batch's items."""
        ...


async def serve_batch(
    state: SandboxState,
    request: Request,
    agency: str,
    model: type[BaseModel],
    submit: Callable[[str, Any], Accepted | Conflict],
    log: IdempotencyLog,
) -> Response:
    """Validate and record a batch of idempotent writes, the agency's faults on the request."""
    fault, aux = await state.inject(agency)
    after_commit = _fault_after(fault, aux)
    if fault is Fault.SERVER_ERROR and not after_commit:
        return server_error(aux * 2.0)
    if fault is Fault.RATE_LIMITED:
        return rate_limited(state, agency)
    parsed = await _parsed_body(request)
    if isinstance(parsed, Response):
        return parsed
    try:
        batch = cast(Batch, model.model_validate(parsed))
    except ValidationError as exc:
        return error_response(
            422, "validation_error", "the batch has invalid fields", fields=_fields(exc)
        )
    results: list[dict[str, Any]] = []
    recorded: list[str] = []
    for item in batch.items:
        key = item.idempotency_key
        outcome = submit(key, item.body)
        if isinstance(outcome, Conflict):
            results.append({"idempotency_key": key, "status": 409, "error": _CONFLICT_BODY})
            continue
        recorded.append(key)
        status = 201 if outcome.created else 200
        results.append({"idempotency_key": key, "status": status, "receipt": outcome.entry.result})
    content = json.dumps({"results": results}, separators=(",", ":")).encode()
    if not after_commit:
        return Response(content, status_code=200, media_type=JSON)
    for key in recorded:
        log.mark_faulted(key)
    return _answer_faulted(request, fault, aux, content, 200)


def add_write_route(
    router: APIRouter,
    state: SandboxState,
    agency: str,
    collection: str,
    model: type[M],
    receipt: type[BaseModel],
    submit: Callable[[str, M], Accepted | Conflict],
    log: IdempotencyLog,
    *,
    summary: str,
    description: str,
    created: str,
    key_means: str,
) -> None:
    """Add the POST /v1/<collection> route recording idempotent writes through `serve_write`."""

    async def write(request: Request) -> Response:
        return await serve_write(state, request, agency, model, submit, log)

    router.add_api_route(
        f"/v1/{collection}",
        write,
        methods=["POST"],
        name=collection.replace("-", "_"),
        summary=summary,
        description=description,
        **write_route(model, receipt, created=created, key_means=key_means),
    )


def add_batch_route(
    router: APIRouter,
    state: SandboxState,
    agency: str,
    collection: str,
    model: type[BaseModel],
    answer: type[BaseModel],
    submit: Callable[[str, Any], Accepted | Conflict],
    log: IdempotencyLog,
    *,
    summary: str,
    description: str,
) -> None:
    """Add the POST /v1/<collection> route recording batches of writes through `serve_batch`."""

    async def write_batch(request: Request) -> Response:
        return await serve_batch(state, request, agency, model, submit, log)

    router.add_api_route(
        f"/v1/{collection}",
        write_batch,
        methods=["POST"],
        name=collection.replace("-", "_"),
        summary=summary,
        description=description,
        status_code=200,
        responses={
            **BATCH_ERRORS,
            200: {"model": answer, "description": "One result per item, in order."},
        },
        openapi_extra={"requestBody": body_schema(model)},
    )
