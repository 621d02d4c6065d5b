"""Idempotent writes: the first result of a key is kept and replayed; another body is 409.

Every write the sandbox accepts (handoff deliveries, registry update proposals) goes through
an `IdempotencyLog`, which also counts what the hub sent: how often each key arrived, how
many different bodies were refused, and how many answers a fault swallowed after the write
was recorded.
"""

from __future__ import annotations

import hashlib
import json
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

__all__ = ["Accepted", "Conflict", "IdempotencyLog", "KeyEntry", "fingerprint"]


def fingerprint(body: dict[str, Any]) -> str:
    """A digest of a validated body, independent of key order and spacing."""
    text = json.dumps(body, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return hashlib.sha256(text.encode()).hexdigest()


@dataclass(slots=True)
class KeyEntry:
    """What one idempotency key produced, and how often it was sent."""

    key: str
    fingerprint: str
    body: dict[str, Any]
    result: dict[str, Any]
    posts: int = 1
    conflicts: int = 0
    # Answers lost to an injected fault after the write was recorded.
    faulted_after_commit: int = 0
    extra: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class Accepted:
    """The write's result; `created` is False for a replay of a known key."""

    entry: KeyEntry
    created: bool


@dataclass(frozen=True, slots=True)
class Conflict:
    """The key is known with another body."""

    entry: KeyEntry


class IdempotencyLog:
    """Thread-safe key -> first result store with counters."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._entries: dict[str, KeyEntry] = {}
        self._order: list[str] = []

    def submit(
        self, key: str, body: dict[str, Any], create: Callable[[int], dict[str, Any]]
    ) -> Accepted | Conflict:
        """Record a write under `key`; `create(seq)` builds the result of a new key (seq >= 1)."""
        digest = fingerprint(body)
        with self._lock:
            entry = self._entries.get(key)
            if entry is not None:
                if entry.fingerprint != digest:
                    entry.conflicts += 1
                    return Conflict(entry)
                entry.posts += 1
                return Accepted(entry, created=False)
            seq = len(self._order) + 1
            entry = KeyEntry(key, digest, body, create(seq))
            self._entries[key] = entry
            self._order.append(key)
            return Accepted(entry, created=True)

    def mark_faulted(self, key: str) -> None:
        """Count an answer that a fault swallowed after the write was recorded."""
        with self._lock:
            entry = self._entries.get(key)
            if entry is not None:
                entry.faulted_after_commit += 1

    def entries(self) -> list[KeyEntry]:
        """Every key's entry in arrival order (a snapshot)."""
        with self._lock:
            return [self._entries[k] for k in self._order]

    def get(self, key: str) -> KeyEntry | None:
        """The entry of a key, or None."""
        with self._lock:
            return self._entries.get(key)

    def __len__(self) -> int:
        with self._lock:
            return len(self._order)

    def reset(self) -> None:
        """Forget every key."""
        with self._lock:
            self._entries.clear()
            self._order.clear()
