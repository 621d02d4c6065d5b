"""Sign-in attempts limited per account and address: wrong passwords lock the pair for a while.

In memory, in the one desk process: after `max_failures` wrong passwords for one e-mail from
one address within `window_s` seconds, that pair is refused without checking the password
until the oldest failure leaves the window. A success clears the pair.
"""

from __future__ import annotations

import threading
from collections import deque

__all__ = ["LoginLimiter"]

# Pairs kept at most: a flood of made-up e-mails must not grow memory without bound.
_MAX_PAIRS = 50_000


class LoginLimiter:
    """Counts wrong passwords per (e-mail, address) in a sliding window."""

    def __init__(self, max_failures: int, window_s: float) -> None:
        self.max_failures = max_failures
        self.window_s = window_s
        self._failures: dict[tuple[str, str], deque[float]] = {}
        self._lock = threading.Lock()

    def _recent(self, key: tuple[str, str], now: float) -> deque[float]:
        times = self._failures.get(key, deque())
        while times and now - times[0] >= self.window_s:
            times.popleft()
        return times

    def retry_after(self, email: str, address: str, now: float) -> float:
        """Seconds until the pair may try again; 0 when it may try now."""
        key = (email.strip().lower(), address)
        with self._lock:
            times = self._recent(key, now)
            if len(times) < self.max_failures:
                return 0.0
            return max(0.0, self.window_s - (now - times[0]))

    def failed(self, email: str, address: str, now: float) -> None:
        """Count one wrong password for the pair."""
        key = (email.strip().lower(), address)
        with self._lock:
            if key not in self._failures and len(self._failures) >= _MAX_PAIRS:
                self._prune(now)
            times = self._recent(key, now)
            times.append(now)
            self._failures[key] = times

    def succeeded(self, email: str, address: str) -> None:
        """Forget the pair's failures."""
        with self._lock:
            self._failures.pop((email.strip().lower(), address), None)

    def _prune(self, now: float) -> None:
        for key in list(self._failures):
            if not self._recent(key, now):
                del self._failures[key]
        while len(self._failures) >= _MAX_PAIRS:
            # Still full of live pairs: the oldest entry goes first.
            del self._failures[next(iter(self._failures))]
