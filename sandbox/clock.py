"""The sandbox clock: real time (or a fixed origin) plus an offset the admin API advances.

Office decisions become visible only once their `decided_at` has passed on this clock, so
tests and the demo can let days pass without waiting for them.
"""

from __future__ import annotations

import threading
from datetime import datetime, timedelta

from sandbox.config import WIB

__all__ = ["SandboxClock"]


class SandboxClock:
    """Now, as the simulated agencies see it; only ever moves forward."""

    def __init__(self, origin: datetime | None = None) -> None:
        if origin is not None and origin.tzinfo is None:
            raise ValueError("the clock origin must carry a time zone")
        self._origin = origin
        self._offset = timedelta(0)
        self._lock = threading.Lock()

    @property
    def offset(self) -> timedelta:
        """How far the clock has been advanced."""
        with self._lock:
            return self._offset

    @property
    def frozen(self) -> bool:
        """True when the clock starts at a fixed origin instead of real time."""
        return self._origin is not None

    def now(self) -> datetime:
        """The sandbox's current time in WIB."""
        with self._lock:
            offset = self._offset
        base = self._origin if self._origin is not None else datetime.now(WIB)
        return (base + offset).astimezone(WIB)

    def advance(self, delta: timedelta) -> datetime:
        """Move the clock forward by delta (never back); return the new time."""
        if delta < timedelta(0):
            raise ValueError("the sandbox clock only moves forward")
        with self._lock:
            self._offset += delta
        return self.now()
