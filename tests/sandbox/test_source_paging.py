"""Keyed-list paging: inclusive updated_since, cursor positions, the last page."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from sandbox.registry_data import Position
from sandbox.source_paging import KeyedEntry, SourceRecord, epoch_ms, keyed_pages, since_ms


def _entries() -> list[KeyedEntry]:
    base = datetime(2026, 10, 1, tzinfo=UTC)
    out = []
    for n in range(10):
        at = base + timedelta(seconds=n // 2)  # two records per second
        record = {"id": f"R-{n:02d}", "updated_at": at.isoformat()}
        out.append(KeyedEntry(Position(epoch_ms(at), n, 0), SourceRecord(record)))
    return out


def test_epoch_ms_rounds_up() -> None:
    at = datetime(1970, 1, 1, 0, 0, 1, 1, tzinfo=UTC)
    assert epoch_ms(at) == 1001
    assert since_ms(None) == Position(0, 0, 0)
    assert since_ms(datetime(1960, 1, 1, tzinfo=UTC)) == Position(0, 0, 0)


def test_pages_chain_and_updated_since_is_inclusive() -> None:
    entries = _entries()
    pages = keyed_pages(lambda kecamatan: entries)
    first, nxt = pages(limit=4)
    assert [r["id"] for r in first] == ["R-00", "R-01", "R-02", "R-03"]
    assert nxt == entries[4].position
    rest, last = pages(after=nxt, limit=100)
    assert [r["id"] for r in rest] == [f"R-{n:02d}" for n in range(4, 10)] and last is None
    since = datetime.fromisoformat(entries[6].item.record["updated_at"])
    later, _ = pages(since=since, limit=100)
    assert later[0]["id"] == "R-06"
    # A cursor behind updated_since does not rewind.
    again, _ = pages(since=since, after=entries[1].position, limit=100)
    assert again == later
    exact, done = pages(limit=10)
    assert len(exact) == 10 and done is None
