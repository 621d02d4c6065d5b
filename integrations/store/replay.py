"""Replay of a source's open quarantine after a fix: re-validate, write what is valid now."""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy import Engine, RowMapping, bindparam, literal, select, update

from integrations.store.engine import write_lock
from integrations.store.intake import INTAKE_PARTITION_PREFIX
from integrations.store.pages import write_rows
from integrations.store.quarantine import PARTIAL_REASON, reasons_json
from integrations.store.tables import QUARANTINE
from models.plain import AsDict
from models.prepared import PreparedPage
from models.sources import prepare_page, source_spec

__all__ = ["ReplayCounts", "replay_quarantined"]


@dataclass(slots=True)
class ReplayCounts(AsDict):
    """Outcome of replaying one source's open quarantine: counts and reasons only."""

    source: str
    examined: int = 0
    replayed: int = 0
    written: int = 0
    unchanged: int = 0
    still_invalid: int = 0
    reasons: Counter[str] = field(default_factory=Counter)


def _open_batches(
    engine: Engine, source: str, batch: int, reason: str | None = None
) -> Iterator[list[RowMapping]]:
    q = QUARANTINE
    last = 0
    # One reason key among the row's comma-separated ones, matched whole.
    only = (
        [literal(",").concat(q.c.reason_codes).concat(",").contains(f",{reason},", autoescape=True)]
        if reason
        else []
    )
    while True:
        with engine.connect() as conn:
            rows = list(
                conn.execute(
                    select(q.c.id, q.c.payload)
                    .where(
                        q.c.source == source,
                        q.c.status == "open",
                        q.c.id > last,
                        # Moved by re-validation without their token-kept fields: nothing
                        # to replay them from (a full re-sync reads them again).
                        ~q.c.reason_codes.contains(PARTIAL_REASON, autoescape=True),
                        # Rows a desa sent in a spreadsheet went back to it in the rejected
                        # rows' workbook; they come again in its corrected file, checked by
                        # the file's own rules too (the row's desa is the file's), which a
                        # replay of the row alone would skip.
                        ~q.c.partition.startswith(INTAKE_PARTITION_PREFIX, autoescape=True),
                        *only,
                    )
                    .order_by(q.c.id)
                    .limit(batch)
                ).mappings()
            )
        if not rows:
            return
        yield rows
        last = rows[-1]["id"]


def replay_quarantined(
    engine: Engine,
    source: str,
    *,
    key: bytes,
    now: datetime,
    batch: int = 500,
    reason: str | None = None,
) -> ReplayCounts:
    """Re-validate a source's open quarantine; write what is valid now, refresh the rest.

    With `reason` (a reason key such as `members.nik:nik_invalid`) only the records held
    for that reason are replayed.

    Valid records go through the source's row writes (newer wins, decisions insert-only)
    and their quarantine rows become `replayed`; still-invalid ones stay `open` with their
    reasons as validated today. Records re-validation moved without their token-kept
    fields are not examined and stay `open`. Each batch commits on its own, so a rerun
    resumes.
    """
    if batch < 1:
        raise ValueError("batch must be at least 1")
    spec = source_spec(source)  # fails early on an unknown source
    counts = ReplayCounts(source)
    q = QUARANTINE
    refresh = (
        update(q)
        .where(q.c.id == bindparam("qid"))
        .values(reason_codes=bindparam("codes"), reasons=bindparam("why"))
    )
    for rows in _open_batches(engine, source, batch, reason):
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
            page = prepare_page(source, [payload], key, now)
            if page.rejected:
                rejection = page.rejected[0]
                counts.reasons.update(rejection.reason_codes)
                invalid.append(
                    {
                        "qid": row["id"],
                        "codes": ",".join(rejection.reason_codes)[:400],
                        "why": reasons_json(rejection),
                    }
                )
            else:
                valid.rows.extend(page.rows)
                valid.children.extend(page.children)
                replayed.append(row["id"])
        with write_lock(engine), engine.begin() as conn:
            written, _children = write_rows(conn, spec, valid)
            if replayed:
                conn.execute(update(q).where(q.c.id.in_(replayed)).values(status="replayed"))
            if invalid:
                conn.execute(refresh, invalid)
        counts.replayed += len(replayed)
        counts.still_invalid += len(invalid)
        counts.written += written
        counts.unchanged += len(valid.rows) - written
    return counts
