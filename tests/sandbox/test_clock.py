"""The sandbox clock: real time or a fixed origin, plus an offset that only grows."""

from __future__ import annotations

from datetime import datetime, timedelta

import pytest

from sandbox.clock import SandboxClock
from sandbox.config import WIB


def test_a_frozen_clock_moves_only_when_advanced() -> None:
    origin = datetime(2026, 11, 2, 9, tzinfo=WIB)
    clock = SandboxClock(origin)
    assert clock.frozen and clock.now() == origin == clock.now()
    assert clock.advance(timedelta(days=1.5)) == origin + timedelta(days=1.5)
    assert clock.offset == timedelta(days=1.5)
    with pytest.raises(ValueError, match="forward"):
        clock.advance(timedelta(seconds=-1))
    with pytest.raises(ValueError, match="time zone"):
        SandboxClock(datetime(2026, 1, 1))


def test_a_real_clock_follows_real_time_plus_the_offset() -> None:
    clock = SandboxClock()
    before = datetime.now(WIB)
    clock.advance(timedelta(days=3))
    now = clock.now()
    after = datetime.now(WIB)
    assert not clock.frozen
    assert before + timedelta(days=3) <= now <= after + timedelta(days=3)
    assert now.utcoffset() == timedelta(hours=7)
