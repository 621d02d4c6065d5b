"""Writes of every synced source: rows, quarantine and cursor together; quarantine replay.

A page of any source (`<agency>.<collection>`) is written by `write_source_page`: its rows
(newer `updated_at` wins; office decisions are insert-only, so the handoff engine's
`applied_at`/`outcome` are never overwritten), its rejected records and its partition's
cursor, in the caller's transaction. `replay_quarantined` re-validates a source's open
quarantine after a fix and sends what is valid now through the same row writes.
"""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from types import MappingProxyType
from typing import Any

from sqlalchemy import Connection, Engine, RowMapping, Table, bindparam, func, select, update
from sqlmodel import SQLModel

from integrations.db import insert_new, upsert_newer, write_lock
from integrations.registry_store import write_rows as write_registry_rows
from integrations.store import QUARANTINE, CursorState, PageCounts, finish_page
from models.contracts import desa, kecamatan, pertanian, pkh, statistik
from models.identity import mask_ids_in_text
from models.source_rows import PreparedPage, prepare_source_page, source_name
from models.tables import (
    BltRecipient,
    DataRequest,
    DataSubmission,
    FacilitatorReport,
    FarmerNeed,
    OfficeDecision,
)
from models.validation import Rejection

__all__ = [
    "INSERT_ONLY",
    "SOURCE_TABLES",
    "QuarantineGroup",
    "ReplayCounts",
    "quarantine_summary",
    "quarantine_totals",
    "replay_quarantined",
    "write_rows",
    "write_source_page",
]

_REGISTRY = "registry"


def _table(model: type[SQLModel]) -> Table:
    return model.__table__  # type: ignore[attr-defined]


SOURCE_TABLES: Mapping[str, Table] = MappingProxyType(
    {
        source_name("pkh", pkh.REPORTS): _table(FacilitatorReport),
        source_name("desa", desa.BLT_RECIPIENTS): _table(BltRecipient),
        source_name("pertanian", pertanian.FARMER_NEEDS): _table(FarmerNeed),
        source_name("statistik", statistik.DATA_REQUESTS): _table(DataRequest),
        source_name("statistik", statistik.SUBMISSIONS): _table(DataSubmission),
        source_name("kecamatan", kecamatan.DECISIONS): _table(OfficeDecision),
    }
)
"""Store table of each non-registry source (the registry's rows span several tables)."""

INSERT_ONLY = frozenset({source_name("kecamatan", kecamatan.DECISIONS)})
"""Sources whose stored rows are never updated: a decision, once stored, is what was applied."""


def write_rows(conn: Connection, source: str, page: PreparedPage) -> tuple[int, int]:
    """Write a page's valid rows of `source`; returns (records written, child rows written)."""
    agency, _, collection = source.partition(".")
    if agency == _REGISTRY:
        return write_registry_rows(conn, collection, page)
    try:
        table = SOURCE_TABLES[source]
    except KeyError:
        raise KeyError(f"unknown source {source!r}") from None
    if source in INSERT_ONLY:
        return insert_new(conn, table, page.rows, key=("id",)), 0
    return upsert_newer(conn, table, page.rows), 0


def write_source_page(
    conn: Connection,
    source: str,
    page: PreparedPage,
    state: CursorState,
    next_cursor: str | None,
    *,
    now: datetime,
) -> PageCounts:
    """Write a page's rows, quarantine its rejects and advance its cursor, in `conn`'s transaction.

    Callers run this inside one transaction (possibly with more pages): the rows and the
    cursor that says they were read commit together or not at all.
    """
    if state.source != source:
        raise ValueError(f"the cursor of {state.source!r} cannot record a page of {source!r}")
    return finish_page(conn, page, state, next_cursor, write_rows(conn, source, page), now=now)


# --- quarantine: what is there, and replay after a fix ---------------------------------------


@dataclass(slots=True)
class QuarantineGroup:
    """Quarantined records of one source sharing one reason (a record counts once per reason)."""

    source: str
    reason: str
    records: int
    sightings: int
    first_seen: datetime | None
    last_seen: datetime | None
    # One masked message of this reason, to tell an operator what went wrong.
    example: str = ""

    def as_dict(self) -> dict[str, Any]:
        """Plain dict for JSON output."""
        return {
            "source": self.source,
            "reason": self.reason,
            "records": self.records,
            "sightings": self.sightings,
            "first_seen": self.first_seen.isoformat() if self.first_seen else None,
            "last_seen": self.last_seen.isoformat() if self.last_seen else None,
            "example": self.example,
        }


def _codes(reason_codes: str) -> list[str]:
    return [c for c in reason_codes.split(",") if c]


def _messages(reasons_json: str) -> dict[str, str]:
    """Reason key -> its (masked) message, from a quarantine row's stored reasons."""
    try:
        reasons = json.loads(reasons_json)
    except ValueError:
        return {}
    out: dict[str, str] = {}
    for r in reasons if isinstance(reasons, list) else []:
        if not isinstance(r, dict):
            continue
        loc, code = str(r.get("loc", "")), str(r.get("code", ""))
        key = f"{loc}:{code}" if loc else code
        out.setdefault(key, mask_ids_in_text(str(r.get("message", ""))))
    return out


def quarantine_summary(
    conn: Connection, *, source: str | None = None, status: str | None = "open"
) -> list[QuarantineGroup]:
    """Quarantined records counted by source and reason (status None: every status)."""
    q = QUARANTINE
    stmt = select(
        q.c.source,
        q.c.reason_codes,
        func.count().label("records"),
        func.sum(q.c.seen_count).label("sightings"),
        func.min(q.c.first_seen).label("first_seen"),
        func.max(q.c.last_seen).label("last_seen"),
        func.min(q.c.id).label("example_id"),
    ).group_by(q.c.source, q.c.reason_codes)
    if source is not None:
        stmt = stmt.where(q.c.source == source)
    if status is not None:
        stmt = stmt.where(q.c.status == status)
    groups: dict[tuple[str, str], QuarantineGroup] = {}
    examples: dict[int, list[tuple[str, str]]] = {}
    for row in conn.execute(stmt).mappings():
        for code in _codes(row["reason_codes"]):
            group = groups.get((row["source"], code))
            if group is None:
                group = groups[(row["source"], code)] = QuarantineGroup(
                    row["source"], code, 0, 0, row["first_seen"], row["last_seen"]
                )
                examples.setdefault(row["example_id"], []).append((row["source"], code))
            group.records += row["records"]
            group.sightings += int(row["sightings"] or 0)
            group.first_seen = _earliest(group.first_seen, row["first_seen"])
            group.last_seen = _latest(group.last_seen, row["last_seen"])
    if examples:
        rows = conn.execute(select(q.c.id, q.c.reasons).where(q.c.id.in_(list(examples))))
        for example_id, reasons_json in rows:
            messages = _messages(reasons_json)
            for key in examples[example_id]:
                groups[key].example = messages.get(key[1], "")
    return sorted(groups.values(), key=lambda g: (g.source, -g.records, g.reason))


def quarantine_totals(
    conn: Connection, *, source: str | None = None, status: str | None = "open"
) -> dict[str, int]:
    """Quarantined records per source (each record once, whatever its number of reasons)."""
    q = QUARANTINE
    stmt = select(q.c.source, func.count()).group_by(q.c.source).order_by(q.c.source)
    if source is not None:
        stmt = stmt.where(q.c.source == source)
    if status is not None:
        stmt = stmt.where(q.c.status == status)
    return {name: int(n) for name, n in conn.execute(stmt)}


def _earliest(a: datetime | None, b: datetime | None) -> datetime | None:
    return b if a is None else a if b is None else min(a, b)


def _latest(a: datetime | None, b: datetime | None) -> datetime | None:
    return b if a is None else a if b is None else max(a, b)


@dataclass(slots=True)
class ReplayCounts:
    """Outcome of replaying one source's open quarantine: counts and reasons only."""

    source: str
    examined: int = 0
    replayed: int = 0
    written: int = 0
    unchanged: int = 0
    still_invalid: int = 0
    reasons: Counter[str] = field(default_factory=Counter)

    def as_dict(self) -> dict[str, Any]:
        """Plain dict for JSON output."""
        return {
            "source": self.source,
            "examined": self.examined,
            "replayed": self.replayed,
            "written": self.written,
            "unchanged": self.unchanged,
            "still_invalid": self.still_invalid,
            "reasons": dict(self.reasons),
        }


def _reasons_json(rejection: Rejection) -> str:
    # The same shape `integrations.store.quarantine` stores.
    return json.dumps(
        [{"loc": r.loc, "code": r.code, "message": r.message} for r in rejection.reasons],
        ensure_ascii=False,
    )


def _open_batches(engine: Engine, source: str, batch: int) -> Iterator[list[RowMapping]]:
    q = QUARANTINE
    last = 0
    while True:
        with engine.connect() as conn:
            rows = list(
                conn.execute(
                    select(q.c.id, q.c.payload)
                    .where(q.c.source == source, q.c.status == "open", q.c.id > last)
                    .order_by(q.c.id)
                    .limit(batch)
                ).mappings()
            )
        if not rows:
            return
        yield rows
        last = rows[-1]["id"]


def replay_quarantined(
    engine: Engine, source: str, *, key: bytes, now: datetime, batch: int = 500
) -> ReplayCounts:
    """Re-validate a source's open quarantine; write what is valid now, refresh the rest.

    Valid records go through the source's row writes (newer wins, decisions insert-only)
    and their quarantine rows become `replayed`; still-invalid ones stay `open` with their
    reasons as validated today. Each batch commits on its own, so a rerun resumes.
    """
    if batch < 1:
        raise ValueError("batch must be at least 1")
    prepare_source_page(source, [], key, now)  # fails early on an unknown source
    counts = ReplayCounts(source)
    q = QUARANTINE
    refresh = (
        update(q)
        .where(q.c.id == bindparam("qid"))
        .values(reason_codes=bindparam("codes"), reasons=bindparam("why"))
    )
    for rows in _open_batches(engine, source, batch):
        valid = PreparedPage()
        replayed: list[int] = []
        invalid: list[dict[str, Any]] = []
        for row in rows:
            counts.examined += 1
            try:
                payload = json.loads(row["payload"])
            except ValueError:
                payload = row["payload"]  # validated as-is: rejected with a type reason
            # One record per call: which quarantine row each outcome belongs to stays known.
            page = prepare_source_page(source, [payload], key, now)
            if page.rejected:
                rejection = page.rejected[0]
                counts.reasons.update(rejection.reason_codes)
                invalid.append(
                    {
                        "qid": row["id"],
                        "codes": ",".join(rejection.reason_codes)[:400],
                        "why": _reasons_json(rejection),
                    }
                )
            else:
                valid.rows.extend(page.rows)
                valid.children.extend(page.children)
                replayed.append(row["id"])
        with write_lock(engine), engine.begin() as conn:
            written, _children = write_rows(conn, source, valid)
            if replayed:
                conn.execute(update(q).where(q.c.id.in_(replayed)).values(status="replayed"))
            if invalid:
                conn.execute(refresh, invalid)
        counts.replayed += len(replayed)
        counts.still_invalid += len(invalid)
        counts.written += written
        counts.unchanged += len(valid.rows) - written
    return counts
