"""Spreadsheet intake into the store: one desa's file, written like any synced page.

The file's rows are read and checked by `models.intake` (the source's contract and rules,
the file's desa, ids kept as text); valid rows go through `write_source_page`, so the
source's write rule holds (newer `updated_at` wins: a re-sent file changes nothing and a
corrected file applies only its fixes), and bad rows go to quarantine with their row number
and every reason, in the same transaction. Intake keeps its own cursor per desa
(partition `intake:<desa>`): it counts what came by spreadsheet and never moves the API
sync's cursors.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from datetime import UTC, datetime

from sqlalchemy import Engine

from integrations.store.cursors import load_cursor
from integrations.store.engine import write_lock
from integrations.store.pages import write_source_page
from models.intake import (
    IntakeCheck,
    check_rows,
    file_desa,
    read_sheet,
    rejected_workbook,
    template_of,
)
from models.plain import AsDict

__all__ = ["IntakeCounts", "IntakeResult", "content_hash", "ingest_file", "intake_partition"]


def intake_partition(desa_code: str) -> str:
    """The cursor and quarantine partition of a desa's spreadsheet intake."""
    return f"intake:{desa_code}"


def content_hash(content: bytes) -> str:
    """SHA-256 of a file's bytes: the same file sent twice has the same hash."""
    return hashlib.sha256(content).hexdigest()


@dataclass(slots=True)
class IntakeCounts(AsDict):
    """What one file did: counts and reason keys only, never rows or ids."""

    source: str
    desa_code: str
    file_hash: str
    rows: int = 0
    written: int = 0
    unchanged: int = 0
    rejected: int = 0
    reasons: dict[str, int] = field(default_factory=dict)


@dataclass(slots=True)
class IntakeResult:
    """The counts and the rejected-rows workbook (None when every row was accepted)."""

    counts: IntakeCounts
    rejected_xlsx: bytes | None


def ingest_file(
    engine: Engine,
    source: str,
    desa_code: str,
    filename: str,
    content: bytes,
    *,
    key: bytes,
    now: datetime | None = None,
) -> IntakeResult:
    """Check and write one desa's spreadsheet of `source`; the rows and quarantine commit together.

    Raises `models.intake.IntakeFileError` for a file that cannot be read as the template
    (nothing is written then) and ValueError for a source without a template or an unknown desa.
    """
    template_of(source)
    desa_code = file_desa(desa_code)
    now = now or datetime.now(UTC)
    rows = read_sheet(source, filename, content)
    checked: IntakeCheck = check_rows(source, rows, desa_code, key, now)
    partition = intake_partition(desa_code)
    with write_lock(engine), engine.begin() as conn:
        state = load_cursor(conn, source, partition)
        state.start_pass(full=False)
        page_counts = write_source_page(conn, source, checked.page, state, None, now=now)
    counts = IntakeCounts(
        source=source,
        desa_code=desa_code,
        file_hash=content_hash(content),
        rows=checked.rows,
        written=page_counts.upserted,
        unchanged=page_counts.unchanged,
        rejected=page_counts.quarantined,
        reasons=dict(sorted(page_counts.reasons.items())),
    )
    workbook = rejected_workbook(source, checked.rejected_rows) if checked.rejected_rows else None
    return IntakeResult(counts, workbook)
