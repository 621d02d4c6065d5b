"""Request counters per route and outcome, kept by an ASGI middleware."""

from __future__ import annotations

import threading
from collections import defaultdict
from typing import Any

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from sandbox.faults import ConnectionDropped

__all__ = ["OUTCOME_KEY", "RequestStats", "StatsMiddleware"]

# Key in the request state (scope["state"]) where a route may override the counted outcome.
OUTCOME_KEY = "sandbox_outcome"
_UNMATCHED = "<unmatched>"


class RequestStats:
    """Thread-safe counts of requests by "METHOD /route" and outcome (status, dropped...)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._counts: defaultdict[str, defaultdict[str, int]] = defaultdict(
            lambda: defaultdict(int)
        )

    def record(self, route: str, outcome: str) -> None:
        """Count one request."""
        with self._lock:
            self._counts[route][outcome] += 1

    def snapshot(self) -> dict[str, dict[str, int]]:
        """A copy of the counts, routes and outcomes sorted."""
        with self._lock:
            return {r: dict(sorted(c.items())) for r, c in sorted(self._counts.items())}

    def reset(self) -> None:
        """Forget every count."""
        with self._lock:
            self._counts.clear()


class StatsMiddleware:
    """Counts every HTTP request by its matched route template and outcome."""

    def __init__(self, app: ASGIApp, stats: RequestStats) -> None:
        self.app = app
        self.stats = stats

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Pass the request through and count it once it is answered (or dropped)."""
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        status: list[int] = []

        async def counting_send(message: Message) -> None:
            if message["type"] == "http.response.start":
                status.append(message["status"])
            await send(message)

        dropped = False
        try:
            await self.app(scope, receive, counting_send)
        except ConnectionDropped:
            dropped = True
            raise
        finally:
            state: dict[str, Any] = scope.get("state") or {}
            if dropped:
                outcome = "dropped"
            else:
                outcome = str(state.get(OUTCOME_KEY) or (status[0] if status else "error"))
            # Sandbox routes have no path parameters, so a matched path is its own template;
            # unmatched paths share one bucket so probing cannot grow the table.
            path = scope["path"] if scope.get("route") is not None else _UNMATCHED
            self.stats.record(f"{scope['method']} {path}", outcome)
