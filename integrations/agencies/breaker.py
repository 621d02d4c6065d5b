"""A circuit breaker per agency, shared by the partitions of one flow run in this process.

Why: a sync runs one task per kabupaten partition (38 for the whole province). When the
agency is down or refuses the hub, every partition would find out on its own: connect,
be refused, retry... An error that says so (`AgencyError.opens_circuit`: unreachable,
401/403, a malformed base URL) opens the agency's circuit for the run; each later
partition of the same run then fails at once with `CircuitOpen`, which carries the same
reason, without a request. The flow still runs every task and publishes its summary, so
the failed partitions and their reason are all in the report.

What it is not: transient failures (5xx, 429, timeouts, drops) never open it, and there is
no failure counting or half-open probing. Keep it that simple.

Scope and lifetime:

- per (run, agency): `run` is the flow run id (`run_partition_tasks` resets it when a
  run's tasks start, so that a retried flow run starts closed); another agency, or another
  run, is not affected;
- open for `open_s` seconds (`DEFAULT_OPEN_S`, 60 s), after which the next partition tries
  the agency again (and opens the circuit anew if it is still down), so a long run recovers
  from an agency that came back;
- per process: partitions run in threads of this process by default; with
  `CETTAR_SYNC_WORKERS` > 1 or on Dask each worker process has its own breaker (each finds
  the agency down once, which still bounds the run): pickled, `AGENCY_BREAKER` travels by
  name (`__reduce__`);
- thread-safe: one lock around a small dict, pruned of expired entries on each call.
"""

from __future__ import annotations

import copy
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass

from integrations.agencies.errors import AgencyError, CircuitOpen

__all__ = ["AGENCY_BREAKER", "DEFAULT_OPEN_S", "CircuitBreaker"]

DEFAULT_OPEN_S = 60.0
"""How long a circuit stays open: longer than a dead agency takes to fail a whole run."""


@dataclass(frozen=True, slots=True)
class _Trip:
    error: CircuitOpen
    until: float


class CircuitBreaker:
    """Open circuits by (run, agency); see the module docstring."""

    def __init__(
        self, open_s: float = DEFAULT_OPEN_S, *, clock: Callable[[], float] = time.monotonic
    ) -> None:
        if open_s <= 0:
            raise ValueError("open_s must be positive")
        self.open_s = open_s
        self._clock = clock
        self._lock = threading.Lock()
        self._open: dict[tuple[str, str], _Trip] = {}

    def _prune(self, now: float) -> None:
        for key in [k for k, trip in self._open.items() if trip.until <= now]:
            del self._open[key]

    def check(self, agency: str, run: str) -> None:
        """Raise `CircuitOpen` (with the first reason) if agency's circuit is open in run."""
        with self._lock:
            self._prune(self._clock())
            trip = self._open.get((run, agency))
        if trip is not None:
            # A copy per partition: one exception object raised in many threads would
            # share (and grow) one traceback.
            raise copy.copy(trip.error)

    def record(self, agency: str, run: str, error: BaseException, where: str) -> bool:
        """Open agency's circuit in run if error says the agency is down; True if it did.

        `where` names the partition that met the error (shown by the partitions failed
        because of it). While the circuit is open, the first reason is kept.
        """
        if not isinstance(error, AgencyError) or not error.opens_circuit:
            return False
        with self._lock:
            now = self._clock()
            self._prune(now)
            if (run, agency) in self._open:
                return False
            self._open[(run, agency)] = _Trip(CircuitOpen(error, where), now + self.open_s)
            return True

    @contextmanager
    def guard(self, agency: str, run: str, where: str) -> Iterator[None]:
        """Fail at once if the circuit is open; open it if the block meets the agency down."""
        self.check(agency, run)
        try:
            yield
        except AgencyError as exc:
            self.record(agency, run, exc, where)
            raise

    def reset(self, run: str | None = None) -> None:
        """Close every circuit of run (of every run when None)."""
        with self._lock:
            for key in [k for k in self._open if run is None or k[0] == run]:
                del self._open[key]

    def __reduce__(self) -> str:
        # A partition task sent to another process (process pool, Dask scheduler and
        # workers) is pickled with the globals its function uses, this breaker among them.
        # By name it becomes the breaker of the process it lands in; a copy per task would
        # forget a dead agency at once (and its lock cannot be pickled). Only the
        # process-wide breaker has a name: pickling any other instance fails.
        return "AGENCY_BREAKER"

    def open_circuits(self) -> dict[tuple[str, str], str]:
        """The open circuits: (run, agency) -> the reason, for logs and tests."""
        with self._lock:
            self._prune(self._clock())
            return {key: str(trip.error) for key, trip in self._open.items()}


AGENCY_BREAKER = CircuitBreaker()
"""The process-wide breaker of the partition sync tasks (tasks/sync.py)."""
