"""Read-ahead: order kept, bounded, errors raised in place, producer stopped on close."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator

import pytest

from integrations.sync.prefetch import prefetch


def test_items_arrive_in_order() -> None:
    assert list(prefetch(range(100), depth=3)) == list(range(100))


def test_the_producer_stays_at_most_depth_ahead() -> None:
    produced: list[int] = []

    def source() -> Iterator[int]:
        for i in range(50):
            produced.append(i)
            yield i

    it = prefetch(source(), depth=2)
    assert next(it) == 0
    time.sleep(0.3)
    # one consumed, two buffered, one in hand waiting for room
    assert len(produced) <= 4
    it.close()


def test_a_producer_error_is_raised_after_the_items_before_it() -> None:
    def source() -> Iterator[int]:
        yield 1
        yield 2
        raise RuntimeError("agency down")

    got = []
    with pytest.raises(RuntimeError, match="agency down"):
        for item in prefetch(source()):
            got.append(item)
    assert got == [1, 2]


def test_closing_early_stops_the_producer() -> None:
    def source() -> Iterator[int]:
        i = 0
        while True:  # endless: only closing can end it
            yield i
            i += 1

    it = prefetch(source(), depth=1)
    assert next(it) == 0
    it.close()
    assert not any(t.name == "cettar-prefetch" and t.is_alive() for t in threading.enumerate())


def test_depth_must_be_positive() -> None:
    with pytest.raises(ValueError, match="depth"):
        list(prefetch([1], depth=0))
