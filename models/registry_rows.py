"""Turn a page of raw registry records into store rows: validation, tokens, warnings.

Pure and picklable in and out, so pages can be prepared in worker processes while the
parent process fetches the next page and writes the previous one.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from models.contracts.registry import HOUSEHOLDS, RECIPIENTS, Household, Recipient
from models.identity import id_token, record_warnings
from models.validation import Rejection, reason_counts, validate_batch


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


def prepare_households(records: Sequence[Any], key: bytes, now: datetime) -> PreparedPage:
    """Validate households; build household and member rows (members carry its version)."""
    batch = validate_batch(records, Household)
    page = PreparedPage(rejected=batch.rejected)
    for hh in batch.valid:
        ts = page.seen(hh.updated_at)
        page.rows.append(
            {
                "id": hh.id,
                "no_kk": hh.no_kk,
                "kk_token": id_token(hh.no_kk, key),
                "desa_code": hh.desa_code,
                "kecamatan_code": hh.desa_code[:8],
                "kabupaten_code": hh.desa_code[:5],
                "address": hh.address,
                "desil": hh.desil,
                "member_count": len(hh.members),
                "updated_at": ts,
                "synced_at": now,
            }
        )
        for m in hh.members:
            page.children.append(
                {
                    "id": m.id,
                    "household_id": hh.id,
                    "nik": m.nik,
                    "nik_token": id_token(m.nik, key),
                    "name": m.name,
                    "sex": m.sex,
                    "birth_date": m.birth_date,
                    "relationship": m.relationship,
                    "status": m.status,
                    "updated_at": ts,
                }
            )
            for code in record_warnings(m.nik, m.birth_date, m.sex):
                page.warnings[f"members.nik:{code}"] += 1
    return page


def prepare_recipients(records: Sequence[Any], key: bytes, now: datetime) -> PreparedPage:
    """Validate programme enrolments; rows hold tokens only (matching never needs a NIK)."""
    batch = validate_batch(records, Recipient)
    page = PreparedPage(rejected=batch.rejected)
    for r in batch.valid:
        ts = page.seen(r.updated_at)
        page.rows.append(
            {
                "id": r.id,
                "programme": r.programme,
                "household_id": r.household_id,
                "nik_token": id_token(r.nik_pengurus, key),
                "kk_token": id_token(r.no_kk, key),
                "desa_code": r.desa_code,
                "kecamatan_code": r.desa_code[:8],
                "period": r.period,
                "status": r.status,
                "updated_at": ts,
                "synced_at": now,
            }
        )
    return page


PREPARE: dict[str, Callable[[Sequence[Any], bytes, datetime], PreparedPage]] = {
    HOUSEHOLDS: prepare_households,
    RECIPIENTS: prepare_recipients,
}


def prepare_page(
    collection: str, records: Sequence[Any], key: bytes, now: datetime
) -> PreparedPage:
    """Prepare one page of a registry collection."""
    return PREPARE[collection](records, key, now)
