"""The idempotency log: first result kept, replays counted, other bodies refused."""

from __future__ import annotations

from typing import Any

from sandbox.idempotency import Accepted, Conflict, IdempotencyLog, fingerprint


def test_first_result_is_kept_and_replayed() -> None:
    log = IdempotencyLog()
    made: list[int] = []

    def create(seq: int) -> dict[str, Any]:
        made.append(seq)
        return {"receipt": seq}

    first = log.submit("a", {"x": 1, "y": [1, 2]}, create)
    assert isinstance(first, Accepted) and first.created and first.entry.result == {"receipt": 1}
    again = log.submit("a", {"y": [1, 2], "x": 1}, create)
    assert isinstance(again, Accepted) and not again.created and again.entry is first.entry
    other = log.submit("b", {"x": 1, "y": [1, 2]}, create)
    assert isinstance(other, Accepted) and other.entry.result == {"receipt": 2}
    clash = log.submit("a", {"x": 2}, create)
    assert isinstance(clash, Conflict) and clash.entry.result == {"receipt": 1}
    log.mark_faulted("a")
    assert made == [1, 2]
    entry = log.get("a")
    assert entry is not None
    assert (entry.posts, entry.conflicts, entry.faulted_after_commit) == (2, 1, 1)
    assert [e.key for e in log.entries()] == ["a", "b"] and len(log) == 2
    log.reset()
    assert len(log) == 0 and log.get("a") is None


def test_fingerprint_ignores_key_order_only() -> None:
    assert fingerprint({"a": 1, "b": {"c": 2}}) == fingerprint({"b": {"c": 2}, "a": 1})
    assert fingerprint({"a": 1}) != fingerprint({"a": "1"})
