"""Error answers in the contract's ErrorBody shape, and the handlers that produce them."""

from __future__ import annotations

import json
import re
from http import HTTPStatus
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.responses import Response

__all__ = ["JSON", "Unauthorized", "error_response", "install_error_handlers", "printable"]

JSON = "application/json"


class Unauthorized(Exception):
    """Missing or wrong bearer token."""


# Control characters (Unicode Cc) and lone surrogates, which the ErrorBody's text refuses.
_UNPRINTABLE = re.compile("[\x00-\x1f\x7f-\x9f\ud800-\udfff]")


def printable(text: str) -> str:
    """Text with each control character or lone surrogate spelled as an escape (\\x85)."""
    return _UNPRINTABLE.sub(lambda m: m.group().encode("unicode_escape").decode(), text)


def _clean(value: Any) -> Any:
    if isinstance(value, str):
        return printable(value)
    if isinstance(value, list):
        return [_clean(v) for v in value]
    if isinstance(value, dict):
        return {k: _clean(v) for k, v in value.items()}
    return value


def error_response(
    status: int,
    error: str,
    detail: str | None = None,
    *,
    fields: list[dict[str, Any]] | None = None,
    headers: dict[str, str] | None = None,
) -> Response:
    """A JSON error answer in the shape of models.contracts.common.ErrorBody.

    Field locations may echo what the client sent (a body's keys): control characters are
    escaped so the answer keeps to the ErrorBody's text rules.
    """
    body = _clean({"error": error, "detail": detail, "fields": fields or []})
    return Response(json.dumps(body).encode(), status_code=status, media_type=JSON, headers=headers)


async def _unauthorized(request: Request, exc: Exception) -> Response:
    return error_response(
        401,
        "unauthorized",
        "a valid 'Authorization: Bearer <token>' header is required",
        headers={"WWW-Authenticate": "Bearer"},
    )


async def _validation(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, RequestValidationError)
    fields = [
        {
            "loc": [p if isinstance(p, int) else str(p) for p in e.get("loc", ())],
            "msg": str(e.get("msg", "")),
            "type": str(e.get("type", "value_error")),
        }
        for e in exc.errors()
    ]
    return error_response(422, "validation_error", "the request has invalid fields", fields=fields)


async def _http_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, StarletteHTTPException)
    try:
        error = HTTPStatus(exc.status_code).phrase.lower().replace(" ", "_")
    except ValueError:
        error = "error"
    detail = exc.detail if isinstance(exc.detail, str) else None
    headers = dict(exc.headers) if exc.headers else None
    return error_response(exc.status_code, error, detail, headers=headers)


def install_error_handlers(app: FastAPI) -> None:
    """Make every error answer of the app an ErrorBody."""
    app.add_exception_handler(Unauthorized, _unauthorized)
    app.add_exception_handler(RequestValidationError, _validation)
    app.add_exception_handler(StarletteHTTPException, _http_error)
