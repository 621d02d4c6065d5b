"""Plain, JSON-ready dicts of the hub's count and summary dataclasses."""

from __future__ import annotations

import dataclasses
from collections import Counter
from datetime import date, datetime
from pathlib import PurePath
from typing import Any


def _plain_value(value: Any) -> Any:
    if isinstance(value, Counter):
        return dict(value)
    if isinstance(value, datetime | date):
        return value.isoformat()
    if isinstance(value, PurePath):
        return str(value)
    return value


def as_plain(obj: Any) -> dict[str, Any]:
    """A flat dataclass instance as a dict: Counters as dicts, dates and times in ISO 8601."""
    # Shallow on purpose: `dataclasses.asdict` rebuilds a Counter from its (key, value) pairs,
    # counting the pairs instead of copying the counts.
    return {f.name: _plain_value(getattr(obj, f.name)) for f in dataclasses.fields(obj)}


class AsDict:
    """Mixin of the count dataclasses: `as_dict()` for task results, artifacts and JSON."""

    __slots__ = ()

    def as_dict(self) -> dict[str, Any]:
        """Plain dict for task results, artifacts and JSON output."""
        return as_plain(self)
