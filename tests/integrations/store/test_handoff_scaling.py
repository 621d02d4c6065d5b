"""Queueing deliveries and finding overdue handoffs in a store 4x larger cost about 4x.

Measured in SQLite's virtual-machine steps. Both page through the handoffs by key; a state
condition in the paging query let SQLite search the state index and sort what was left of
it for every page, so the cost grew with the square of the open handoffs (711,000
deliveries queued in 757 s at province scale).
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, date, datetime
from pathlib import Path

from sqlalchemy import Connection, Engine, func, insert, select

from integrations.store.engine import make_engine, upgrade
from integrations.store.handoffs import overdue_pages
from integrations.store.outbox import queue_deliveries
from integrations.store.tables import DELIVERY, HANDOFF

T = datetime(2026, 11, 2, 1, tzinfo=UTC)
N = 10_000
# 4x the handoffs may cost a little more than 4x (B-tree depth); the quadratic path was ~9x.
MAX_GROWTH = 5.0


def _store(path: Path, n: int) -> Engine:
    engine = make_engine(f"sqlite:///{path}")
    upgrade(engine)
    states = ["open", "open", "open", "escalated", "delivered"]
    rows = [
        {
            "id": f"{i * 2654435761 % 2**32:08x}{i:08d}",
            "kind": "blt_overlap",
            "subject_token": f"t{i}",
            "period": "2026-Q4",
            "sender": "hub",
            "origin_office": "kecamatan:35.07.01",
            "office": "kecamatan:35.07.01" if i % 4 else "kabupaten:35.07",
            "kecamatan_code": "35.07.01",
            "kabupaten_code": "35.07",
            "evidence": "{}",
            "state": states[i % len(states)],
            "created_at": T,
            "due_date": date(2026, 11, 20),
            "updated_at": T,
        }
        for i in range(n)
    ]
    with engine.begin() as conn:
        conn.execute(insert(HANDOFF), rows)
    return engine


def _steps(engine: Engine, work: Callable[[Connection], int]) -> tuple[int, int]:
    """(virtual-machine steps, what `work` counted) of `work` in one transaction."""
    ticks = 0

    def tick() -> int:
        nonlocal ticks
        ticks += 1
        return 0

    with engine.begin() as conn:
        raw = conn.connection.driver_connection
        assert raw is not None
        raw.set_progress_handler(tick, 100)
        try:
            counted = work(conn)
        finally:
            raw.set_progress_handler(None, 0)
    return ticks * 100, counted


def _queue_steps(engine: Engine) -> tuple[int, int]:
    return _steps(engine, lambda conn: queue_deliveries(conn, T))


def test_queueing_deliveries_grows_linearly(tmp_path: Path) -> None:
    small, large = _store(tmp_path / "n.db", N), _store(tmp_path / "4n.db", 4 * N)
    (a, queued_a), (b, queued_b) = _queue_steps(small), _queue_steps(large)
    # Open and escalated handoffs: 4 in 5.
    assert (queued_a, queued_b) == (N * 4 // 5, 4 * N * 4 // 5)
    assert b / a <= MAX_GROWTH, f"{a:,} VM steps for {N:,} handoffs, {b:,} for {4 * N:,}"
    # Queued once: a second pass finds every delivery queued already.
    assert _queue_steps(small)[1] == 0
    with small.connect() as conn:
        assert conn.execute(select(func.count()).select_from(DELIVERY)).scalar_one() == queued_a
    small.dispose()
    large.dispose()


def test_finding_overdue_handoffs_grows_linearly(tmp_path: Path) -> None:
    small, large = _store(tmp_path / "n.db", N), _store(tmp_path / "4n.db", 4 * N)
    later = datetime(2026, 12, 1, 3, tzinfo=UTC)

    def overdue(conn: Connection) -> int:
        return sum(len(page) for page in overdue_pages(conn, later))

    (a, found_a), (b, found_b) = _steps(small, overdue), _steps(large, overdue)
    # Open and escalated (4 in 5) at a kecamatan office (3 in 4), all due weeks ago.
    assert found_a > 0 and found_b == 4 * found_a
    assert b / a <= MAX_GROWTH, f"{a:,} VM steps for {N:,} handoffs, {b:,} for {4 * N:,}"
    small.dispose()
    large.dispose()
