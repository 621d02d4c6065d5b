"""When records were issued: the first load, the update epochs and each record's timestamps.

Time is counted in milliseconds relative to ``base_time``. Segment 0 is the first load, spread
over ``[base_time - base_span, base_time)``; segment ``e >= 1`` is epoch e's window
``[base_time + (e-1)*epoch_span, base_time + e*epoch_span)``. Inside a segment a record's
timestamp strictly increases with its household index, so serving order (updated_at, id) is
the same as (segment, index): that is what lets a page seek straight to its position.

A household is re-issued at epochs ``c + G1, c + G1 + G2, ...`` (c its creation epoch, G
geometric with p = updated_share_per_epoch): the same law as an independent p-draw per epoch,
but "is this record still in its first version?" costs one hash instead of one per epoch.
"""

from __future__ import annotations

import math
from datetime import datetime, timedelta, timezone

from sandbox.config import RegistryDataConfig
from sandbox.seeding import Salted

__all__ = ["Schedule", "Timeline"]

_MS = timedelta(milliseconds=1)
_DAY_MS = 86_400_000
_MAX_CACHED_DAYS = 4096


def _to_ms(delta: timedelta) -> int:
    return delta // _MS


class Timeline:
    """Creation, update epochs and timestamps of every household index."""

    def __init__(self, config: RegistryDataConfig) -> None:
        self.config = config
        self.seed = config.seed
        self.share = config.updated_share_per_epoch
        self.base_time = config.base_time
        self.base_span_ms = _to_ms(config.base_span)
        self.epoch_span_ms = _to_ms(config.epoch_span)
        self.initial = config.households
        self.new_per_epoch = config.new_per_epoch
        self._day_prefix: dict[int, str] | None = None
        offset = self.base_time.utcoffset()
        if isinstance(self.base_time.tzinfo, timezone) and offset is not None:
            local = self.base_time.replace(tzinfo=None)
            self._local_epoch = datetime(local.year, local.month, local.day)
            self._local_midnight_ms = _to_ms(local - self._local_epoch)
            self._offset_text = self.base_time.isoformat()[-6:]
            self._day_prefix = {}

    def households_at(self, epoch: int) -> int:
        """Number of household indices that exist at `epoch`."""
        return self.initial + epoch * self.new_per_epoch

    def created_epoch(self, index: int) -> int:
        """The epoch in which a household first appeared (0 for the first load)."""
        if index < self.initial:
            return 0
        return 1 + (index - self.initial) // self.new_per_epoch

    def schedule(self, salt: int) -> Schedule:
        """The re-issue schedule of one kind of record (households, recipients)."""
        return Schedule(self, salt)

    def window_ms(self, segment: int) -> tuple[int, int]:
        """[start, end) of a segment in ms relative to base_time."""
        if segment == 0:
            return -self.base_span_ms, 0
        start = (segment - 1) * self.epoch_span_ms
        return start, start + self.epoch_span_ms

    def _denominator(self, segment: int) -> int:
        return self.initial if segment == 0 else self.households_at(segment)

    def time_ms(self, segment: int, index: int) -> int:
        """Timestamp of a record version in ms relative to base_time."""
        start, end = self.window_ms(segment)
        return start + (index * (end - start)) // self._denominator(segment)

    def first_index_at_or_after(self, segment: int, at_ms: int) -> int:
        """Smallest index whose timestamp in `segment` is >= at_ms (ms relative to base)."""
        start, end = self.window_ms(segment)
        d = at_ms - start
        if d <= 0:
            return 0
        # floor(i * span / D) >= d  <=>  i >= ceil(d * D / span)
        return -((-d * self._denominator(segment)) // (end - start))

    def segment_of_ms(self, at_ms: int) -> int:
        """The segment whose window holds at_ms (0 for anything before base_time)."""
        if at_ms < 0:
            return 0
        return 1 + at_ms // self.epoch_span_ms

    def to_ms(self, when: datetime) -> int:
        """A datetime as ms relative to base_time, rounded up to the next whole ms."""
        delta = when - self.base_time
        micros = delta // timedelta(microseconds=1)
        return -((-micros) // 1000)

    def to_datetime(self, rel_ms: int) -> datetime:
        """Ms relative to base_time as an aware datetime in the base_time's zone."""
        return self.base_time + timedelta(milliseconds=rel_ms)

    def format_ms(self, rel_ms: int) -> str:
        """Wire form of a timestamp: ISO 8601 with milliseconds and the +07:00 offset."""
        if self._day_prefix is None:
            when = self.base_time + timedelta(milliseconds=rel_ms)
            return when.isoformat(timespec="milliseconds")
        # Fixed-offset zone: build the text from integers, several times cheaper than
        # datetime arithmetic, with one cached date prefix per day.
        day, ms = divmod(self._local_midnight_ms + rel_ms, _DAY_MS)
        prefix = self._day_prefix.get(day)
        if prefix is None:
            prefix = (self._local_epoch + timedelta(days=day)).strftime("%Y-%m-%dT")
            if len(self._day_prefix) > _MAX_CACHED_DAYS:
                self._day_prefix.clear()
            self._day_prefix[day] = prefix
        seconds, millis = divmod(ms, 1000)
        minutes, sec = divmod(seconds, 60)
        hours, minute = divmod(minutes, 60)
        return f"{prefix}{hours:02d}:{minute:02d}:{sec:02d}.{millis:03d}{self._offset_text}"


class Schedule:
    """The epochs at which records of one kind are re-issued: geometric gaps per index."""

    def __init__(self, timeline: Timeline, salt: int) -> None:
        self.timeline = timeline
        self._hash = Salted(timeline.seed, salt)
        p = timeline.share
        self._never = p <= 0.0
        self._always = p >= 1.0
        self._log_q = math.log1p(-p) if 0.0 < p < 1.0 else -1.0

    def _gap(self, index: int, k: int) -> int:
        if self._always:
            return 1
        # 1 - u lies in (0, 1], so the logarithm is finite.
        # index and k share one hash input: k stays below 2**14 because epochs are bounded.
        u = 1.0 - self._hash.unit1(index << 14 | k)
        return 1 + int(math.log(u) / self._log_q)

    def update_epochs(self, index: int, upto: int) -> list[int]:
        """The epochs <= `upto` in which the record was re-issued, ascending."""
        e = self.timeline.created_epoch(index)
        out: list[int] = []
        if self._never:
            return out
        k = 0
        while True:
            k += 1
            e += self._gap(index, k)
            if e > upto:
                return out
            out.append(e)

    def version(self, index: int, epoch: int) -> int:
        """The segment of the record's current version at `epoch`."""
        e = self.timeline.created_epoch(index)
        # Fast path: most records are still in their first version.
        if self._never or e + self._gap(index, 1) > epoch:
            return e
        points = self.update_epochs(index, epoch)
        return points[-1] if points else e
