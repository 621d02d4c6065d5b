"""A page of any source, prepared: store rows, child rows, rejects, warnings, high-water mark."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from models.validation import Rejection, reason_counts


@dataclass(slots=True)
class PreparedPage:
    """Rows ready to write, the rejects to quarantine, and warning counts."""

    rows: list[dict[str, Any]] = field(default_factory=list)
    children: list[dict[str, Any]] = field(default_factory=list)
    rejected: list[Rejection] = field(default_factory=list)
    warnings: Counter[str] = field(default_factory=Counter)
    high: datetime | None = None

    @property
    def fetched(self) -> int:
        """Records on the page, valid or not."""
        return len(self.rows) + len(self.rejected)

    def seen(self, updated_at: datetime) -> datetime:
        """Note a valid record's version (UTC) for the page's high-water mark; return it."""
        ts = updated_at.astimezone(UTC)
        if self.high is None or ts > self.high:
            self.high = ts
        return ts

    def reason_counts(self) -> Counter[str]:
        """How many rejected records carry each reason key."""
        return reason_counts(self.rejected)
