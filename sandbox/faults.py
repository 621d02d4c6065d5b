"""Fault injection for agency /v1 routes: latency, 5xx, 429, dropped connections, cut bodies."""

from __future__ import annotations

import logging
import random
import threading
from enum import StrEnum

from starlette.responses import Response
from starlette.types import Receive, Scope, Send

from sandbox.config import FaultConfig
from sandbox.errors import JSON

__all__ = [
    "ConnectionDropped",
    "DroppedResponse",
    "Fault",
    "FaultInjector",
    "hide_injected_drops",
    "truncated_response",
]


class Fault(StrEnum):
    """What happens to one request."""

    NONE = "none"
    SERVER_ERROR = "server_error"
    RATE_LIMITED = "rate_limited"
    DROP = "drop"
    TRUNCATE = "truncate"


class ConnectionDropped(Exception):
    """Raised after a partial body so the server closes the socket mid-response."""


class FaultInjector:
    """Draws one fault per request from a seeded stream; reconfigurable at runtime."""

    def __init__(self, config: FaultConfig) -> None:
        self._lock = threading.Lock()
        self.config = config
        self._rng = random.Random(config.seed)

    def configure(self, config: FaultConfig) -> None:
        """Replace the fault settings and restart the seeded stream."""
        with self._lock:
            self.config = config
            self._rng = random.Random(config.seed)

    def draw(self) -> tuple[Fault, float]:
        """The fault of the next request and an auxiliary uniform draw for its details."""
        with self._lock:
            c = self.config
            u, aux = self._rng.random(), self._rng.random()
        edge = c.error_rate
        if u < edge:
            return Fault.SERVER_ERROR, aux
        edge += c.rate_limit_rate
        if u < edge:
            return Fault.RATE_LIMITED, aux
        edge += c.drop_rate
        if u < edge:
            return Fault.DROP, aux
        edge += c.truncate_rate
        if u < edge:
            return Fault.TRUNCATE, aux
        return Fault.NONE, aux


def truncated_response(body: bytes, aux: float) -> Response:
    """A 200 whose JSON body is cut mid-way; Content-Length matches what is sent."""
    cut = max(1, min(len(body) - 1, int(len(body) * (0.2 + 0.6 * aux))))
    return Response(body[:cut], media_type=JSON)


class DroppedResponse(Response):
    """Announces the full body length, sends part of it, then kills the connection."""

    def __init__(self, body: bytes, aux: float) -> None:
        super().__init__(body, media_type=JSON)
        self._cut = max(0, min(len(body) - 1, int(len(body) * (0.1 + 0.6 * aux))))

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Send the headers and a prefix of the body, then abort the response."""
        await send(
            {"type": "http.response.start", "status": self.status_code, "headers": self.raw_headers}
        )
        await send(
            {"type": "http.response.body", "body": self.body[: self._cut], "more_body": True}
        )
        # The server closes the socket on an exception after the response started: to the
        # client this is a peer that vanished mid-body, exactly like a real network drop.
        raise ConnectionDropped("sandbox dropped the connection mid-response")


class _HideInjectedDrops(logging.Filter):
    """Keep the server from logging each deliberate drop as an application crash."""

    def filter(self, record: logging.LogRecord) -> bool:
        """False for records caused by a ConnectionDropped fault."""
        exc = record.exc_info[1] if record.exc_info else None
        while exc is not None:
            if isinstance(exc, ConnectionDropped):
                return False
            exc = exc.__cause__ or exc.__context__
        return True


_DROP_FILTER = _HideInjectedDrops()


def hide_injected_drops(logger_name: str = "uvicorn.error") -> None:
    """Silence the server's error log for injected drops (idempotent)."""
    logger = logging.getLogger(logger_name)
    if _DROP_FILTER not in logger.filters:
        logger.addFilter(_DROP_FILTER)
