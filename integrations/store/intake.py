"""Spreadsheet intake into the store: one desa's file, written like any synced page.

The file's rows are read and checked by `models.intake` (the source's contract and rules,
the file's desa, ids kept as text); valid rows go through `write_source_page`, so the
source's write rule holds (newer `updated_at` wins: a re-sent file changes nothing and a
corrected file applies only its fixes), and bad rows go to quarantine with their row number
and every reason, in the same transaction. Intake keeps its own cursor per desa
(partition `intake:<desa>`): it counts what came by spreadsheet and never moves the API
sync's cursors. A file a person sent (the desk's upload) is written to the audit chain with
who sent it and for which office, in the transaction of its rows; a refused one on its own.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import TypeVar

from sqlalchemy import Connection, Engine

from integrations.store.audit import STORE_SUBJECT_PREFIX, ChainWriter
from integrations.store.common import to_utc
from integrations.store.cursors import load_cursor
from integrations.store.engine import write_lock
from integrations.store.pages import write_source_page
from models.intake import (
    IntakeCheck,
    IntakeFileError,
    RejectedRow,
    check_rows,
    detect_source,
    file_desa,
    read_sheet,
    rejected_workbook,
    template_of,
)
from models.plain import AsDict

__all__ = [
    "INTAKE_PARTITION_PREFIX",
    "INTAKE_SUBJECT",
    "IntakeCounts",
    "IntakeResult",
    "content_hash",
    "ingest_file",
    "intake_partition",
    "record_refused_file",
    "source_of",
]

_T = TypeVar("_T")

INTAKE_SUBJECT = f"{STORE_SUBJECT_PREFIX}intake"
"""Audit-chain subject of a spreadsheet a person sent: who, which office, the counts."""


INTAKE_PARTITION_PREFIX = "intake:"
"""Partitions of spreadsheet intake (cursors and quarantine rows), one per desa."""


def intake_partition(desa_code: str) -> str:
    """The cursor and quarantine partition of a desa's spreadsheet intake."""
    return f"{INTAKE_PARTITION_PREFIX}{desa_code}"


def _readable(read: Callable[[], _T]) -> _T:
    """What `read` reads from a file; any parser's failure on a damaged one is IntakeFileError."""
    try:
        return read()
    except IntakeFileError:
        raise
    except Exception as exc:  # a damaged workbook raises whatever its XML or zip parser raises
        raise IntakeFileError(f"berkas rusak, tidak dapat dibaca ({type(exc).__name__})") from None


def source_of(filename: str, content: bytes) -> str:
    """The source whose template's headers a file carries; IntakeFileError also when damaged."""
    return _readable(lambda: detect_source(filename, content))


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
    # The same rows as the workbook (row number, masked cells, reasons), for a page to show.
    rejected_rows: list[RejectedRow] = field(default_factory=list)


def _audit_reason(counts: IntakeCounts, office: str) -> str:
    return (
        f"office {office[:40]}, {counts.source} of desa {counts.desa_code}: {counts.rows} rows, "
        f"{counts.written} written, {counts.unchanged} unchanged, {counts.rejected} rejected; "
        f"file sha256 {counts.file_hash}"
    )


def record_refused_file(
    conn: Connection, *, actor: str, office: str, why: str, file_hash: str, now: datetime
) -> None:
    """Audit a sent file refused as a whole; `why` is a code (`unreadable`), never its text."""
    chain = ChainWriter(conn)
    chain.record(
        INTAKE_SUBJECT,
        "refused",
        actor=actor[:60],
        reason=f"office {office[:40]}: file refused ({why[:40]})"
        + (f"; file sha256 {file_hash}" if file_hash else ""),
        at=to_utc(now),
    )
    chain.flush()


def ingest_file(
    engine: Engine,
    source: str,
    desa_code: str,
    filename: str,
    content: bytes,
    *,
    key: bytes,
    now: datetime | None = None,
    actor: str | None = None,
    office: str = "",
) -> IntakeResult:
    """Check and write one desa's spreadsheet of `source`; the rows and quarantine commit together.

    With an `actor` (a person who sent the file, e.g. `desk:<email>` of `office`), the file
    and its counts are written to the audit chain in the same transaction. Raises
    `models.intake.IntakeFileError` for a file that cannot be read as the template (nothing
    is written then) and ValueError for a source without a template or an unknown desa.
    """
    template_of(source)
    desa_code = file_desa(desa_code)
    now = now or datetime.now(UTC)
    rows = _readable(lambda: read_sheet(source, filename, content))
    checked: IntakeCheck = check_rows(source, rows, desa_code, key, now)
    partition = intake_partition(desa_code)
    with write_lock(engine), engine.begin() as conn:
        # The chain's head is locked first, as every audited write does.
        chain = ChainWriter(conn) if actor else None
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
        if chain is not None and actor:
            chain.record(
                INTAKE_SUBJECT,
                "taken",
                actor=actor[:60],
                reason=_audit_reason(counts, office),
                at=to_utc(now),
            )
            chain.flush()
    workbook = rejected_workbook(source, checked.rejected_rows) if checked.rejected_rows else None
    return IntakeResult(counts, workbook, list(checked.rejected_rows))
