"""Fault injection for agency /v1 routes: latency, 5xx, 429, dropped connections, cut bodies.

`FaultInjector` draws the faults the routes themselves answer with (see `FaultConfig`).
`NetworkFaultMiddleware` adds what happens on the wire around any route: requests that
stall past the client's timeout, and POSTs that reach the agency whose answer never comes
back (so the client retries and the agency sees the same write twice).
"""

from __future__ import annotations

import logging
import random
import threading
from collections import Counter
from dataclasses import dataclass
from enum import StrEnum

import anyio
from starlette.responses import Response
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from sandbox.config import AGENCIES, FaultConfig
from sandbox.errors import JSON

__all__ = [
    "ConnectionDropped",
    "DroppedResponse",
    "Fault",
    "FaultInjector",
    "NetworkFault",
    "NetworkFaultMiddleware",
    "NetworkFaults",
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


class NetworkFault(StrEnum):
    """What the wire does to one agency request, before or after the route answers."""

    NONE = "none"
    TIMEOUT = "timeout"
    LOST_ANSWER = "lost_answer"


@dataclass(frozen=True, slots=True)
class NetworkFaults:
    """Rates of wire faults on agency /v1 requests, drawn from their own seeded stream.

    timeout_rate: the request stalls for stall_s (longer than the client's read timeout)
    before the connection is closed; a stalled POST is processed first half of the time,
    so its write is recorded and only the answer is late. lost_answer_rate: a POST reaches
    the agency and is recorded, but the answer is lost (the connection closes after the
    headers), so the client sends it again: a duplicated POST.
    """

    timeout_rate: float = 0.0
    lost_answer_rate: float = 0.0
    stall_s: float = 2.0
    seed: int = 35

    def __post_init__(self) -> None:
        if min(self.timeout_rate, self.lost_answer_rate, self.stall_s) < 0:
            raise ValueError("network fault rates and stall_s must not be negative")
        if self.timeout_rate + self.lost_answer_rate > 1.0 + 1e-9:
            raise ValueError("the network fault rates must add up to at most 1")


class NetworkFaultMiddleware:
    """Wraps the sandbox app: stalls and lost POST answers on agency /v1 routes, counted."""

    def __init__(self, app: ASGIApp, faults: NetworkFaults) -> None:
        self.app = app
        self.faults = faults
        self._lock = threading.Lock()
        self._rng = random.Random(faults.seed)
        self._counts: Counter[str] = Counter()

    def counts(self) -> dict[str, int]:
        """Injected wire faults by "METHOD fault" (e.g. "POST lost_answer"), and requests seen."""
        with self._lock:
            return dict(sorted(self._counts.items()))

    def _draw(self, method: str) -> tuple[NetworkFault, float]:
        with self._lock:
            u, aux = self._rng.random(), self._rng.random()
            f = self.faults
            if u < f.timeout_rate:
                fault = NetworkFault.TIMEOUT
            elif method == "POST" and u < f.timeout_rate + f.lost_answer_rate:
                fault = NetworkFault.LOST_ANSWER
            else:
                fault = NetworkFault.NONE
            self._counts[f"{method} requests"] += 1
            if fault is not NetworkFault.NONE:
                self._counts[f"{method} {fault.value}"] += 1
        return fault, aux

    @staticmethod
    def _agency_route(scope: Scope) -> bool:
        agency, _, rest = str(scope.get("path", "")).lstrip("/").partition("/")
        return agency in AGENCIES and rest.startswith("v1/")

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Pass the request through, unless the wire stalls it or loses its answer."""
        if scope["type"] != "http" or not self._agency_route(scope):
            await self.app(scope, receive, send)
            return
        method = str(scope["method"])
        fault, aux = self._draw(method)
        if fault is NetworkFault.NONE:
            await self.app(scope, receive, send)
            return
        processed = fault is NetworkFault.LOST_ANSWER or (method == "POST" and aux < 0.5)
        status = 500
        if processed:
            # The agency does the work; what it answers never reaches the client.
            async def swallow(message: Message) -> None:
                nonlocal status
                if message["type"] == "http.response.start":
                    status = int(message["status"])

            await self.app(scope, receive, swallow)
        if fault is NetworkFault.TIMEOUT:
            await anyio.sleep(self.faults.stall_s)
        # Headers announcing a body that never comes, then the socket closes: to the client
        # a peer that went away before answering (or a read that timed out first).
        await send(
            {
                "type": "http.response.start",
                "status": status,
                "headers": [(b"content-type", b"application/json"), (b"content-length", b"64")],
            }
        )
        await send({"type": "http.response.body", "body": b"", "more_body": True})
        raise ConnectionDropped(f"sandbox network fault: {fault.value}")
