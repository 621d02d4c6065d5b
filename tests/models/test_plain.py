"""Plain dicts of count dataclasses: Counters copied as counts, times in ISO 8601."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from datetime import UTC, datetime

from models.plain import as_plain


@dataclass
class _Counts:
    source: str
    written: int = 0
    reasons: Counter[str] = field(default_factory=Counter)
    first_seen: datetime | None = None


def test_counters_stay_counts_and_times_become_iso_text() -> None:
    counts = _Counts(
        "desa.blt-recipients", 3, Counter({"desa_code:x": 2}), datetime(2026, 11, 3, tzinfo=UTC)
    )
    plain = as_plain(counts)
    assert plain == {
        "source": "desa.blt-recipients",
        "written": 3,
        "reasons": {"desa_code:x": 2},
        "first_seen": "2026-11-03T00:00:00+00:00",
    }
    assert type(plain["reasons"]) is dict
