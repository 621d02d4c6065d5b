"""Paging of the coordination collections in (updated_at, id) order, with seekable positions.

Two shapes of collection:
- Household sources (pkh reports, BLT-DD lists, e-RDKK lines) derive their records from
  registry households. A household's records share one timestamp that increases with its
  index inside its creation epoch, so the registry's `Position(segment, index, slot)` orders
  them (slot = rank of the record id within the household) and a page seeks straight to its
  start: nothing is materialised.
- Keyed lists (statistics requests and submissions, office decisions) are small, bounded by
  the region list or by what the inbox received. Each entry carries a `Position(ms, a, b)`
  whose order equals (updated_at, id) order; a page bisects the sorted list.
"""

from __future__ import annotations

import bisect
from abc import ABC, abstractmethod
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from sandbox.households import Households
from sandbox.registry_data import Pages, Position, seek_position

__all__ = [
    "HouseholdSource",
    "KeyedEntry",
    "SourceRecord",
    "epoch_ms",
    "keyed_pages",
    "since_ms",
]

_UNIX = datetime(1970, 1, 1, tzinfo=UTC)
_US = timedelta(microseconds=1)


@dataclass(frozen=True, slots=True)
class SourceRecord:
    """One served record, how it is broken (None if valid) and what was planted with it."""

    record: dict[str, Any]
    bad: str | None = None
    plant: str | None = None

    @property
    def id(self) -> str:
        """The record's id."""
        return str(self.record["id"])


@dataclass(frozen=True, slots=True)
class KeyedEntry:
    """A record of a keyed list and its serving position."""

    position: Position
    item: SourceRecord


def epoch_ms(when: datetime) -> int:
    """Milliseconds since 1970-01-01 UTC, rounded up (so a bound stays inclusive)."""
    micros = (when - _UNIX) // _US
    return -((-micros) // 1000)


def since_ms(since: datetime | None) -> Position:
    """The first keyed position at or after an inclusive `updated_since`."""
    return Position(0 if since is None else max(0, epoch_ms(since)), 0, 0)


def keyed_pages(entries: Callable[[str | None], Sequence[KeyedEntry]]) -> Pages:
    """The pages of a keyed list: `entries(kecamatan)`, sorted by position, is bisected."""

    def scan(start: Position, kecamatan: str | None) -> Iterator[tuple[Position, dict[str, Any]]]:
        listed = entries(kecamatan)
        for i in range(bisect.bisect_left(listed, start, key=lambda e: e.position), len(listed)):
            yield listed[i].position, listed[i].item.record

    return Pages(since_ms, scan)


class HouseholdSource(ABC):
    """A collection whose records derive from registry households, served without storage."""

    collection: str

    def __init__(self, households: Households) -> None:
        self.households = households
        self.page = Pages(self.seek, self._wire)

    @abstractmethod
    def records(self, index: int) -> list[SourceRecord]:
        """The household's records in id order (possibly broken; often none)."""

    def seek(self, since: datetime | None) -> Position:
        """The first position whose records' updated_at is >= since."""
        return seek_position(self.households.timeline, since)

    def scan(
        self, start: Position, kecamatan: str | None = None, epoch: int | None = None
    ) -> Iterator[tuple[Position, SourceRecord]]:
        """Records at or after `start`, in (updated_at, id) order."""
        households = self.households
        e = households.epoch if epoch is None else epoch
        tl = households.timeline
        pattern = None if kecamatan is None else households.registry.pattern(kecamatan)
        for segment in range(start.segment, e + 1):
            # Records are issued once, with their household: a segment holds only the
            # households created in it.
            low = 0 if segment == 0 else tl.households_at(segment - 1)
            high = tl.households_at(segment)
            if segment == start.segment:
                low = max(low, start.index)
            candidates = range(low, high) if pattern is None else pattern.indices(low, high)
            for index in candidates:
                for slot, item in enumerate(self.records(index)):
                    pos = Position(segment, index, slot)
                    if pos >= start:
                        yield pos, item

    def _wire(
        self, start: Position, kecamatan: str | None
    ) -> Iterator[tuple[Position, dict[str, Any]]]:
        for pos, item in self.scan(start, kecamatan):
            yield pos, item.record

    def all_records(
        self, kecamatan: str | None = None, epoch: int | None = None
    ) -> Iterator[SourceRecord]:
        """Every record served now (of a kecamatan), in serving order."""
        for _, item in self.scan(Position(0, 0, 0), kecamatan, epoch):
            yield item
