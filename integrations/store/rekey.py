"""PII key rotation: the store's keyed tokens recomputed under the new `CETTAR_PII_KEY`.

A token is an HMAC of a NIK or No. KK under the key, so every token changes with it:

- the registry's own tables keep the clear ids beside their tokens (`household.no_kk`,
  `member.nik`): their tokens are recomputed here, in place;
- the other sources keep people by token only (`models/source_rows.py`): a token cannot be
  turned back into its id, so their rows are deleted with their sync cursors, and the next
  sync of each source reads it whole again from the agency under the new key (a full
  re-sync would not do: the agencies' rows keep their `updated_at`, and newer-wins leaves
  a row with the same `updated_at` as it is);
- quarantined records keep their payloads whole: a replay computes their tokens then;
- handoffs keep the keys and subject tokens they were created with (their deliveries and the
  offices' answers are keyed by them). The checks key a finding by its period too, so a
  rotation between two periods opens nothing twice; inside a period the period's checks
  would find the same people under new tokens and open their handoffs again, which is why
  the rotation refuses while the period has handoffs (unless forced);
- the audit chain keeps what it recorded (a person check's token under the old key); the
  rotation adds one row with its counts.

One transaction: a rotation that fails leaves the store as it was. A store already keyed
with the current key is left alone, so running the command twice changes nothing.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, Engine, Table, bindparam, delete, func, select, update

from integrations.store.audit import STORE_SUBJECT_PREFIX, ChainWriter
from integrations.store.engine import write_lock
from integrations.store.tables import CURSOR, HANDOFF, HOUSEHOLD, MEMBER, source_table
from models.identity import id_token
from models.sources import CATALOGUE

__all__ = ["REKEY_SUBJECT", "RekeyCounts", "RekeyRefused", "rekey_store", "token_only_sources"]

REKEY_SUBJECT = f"{STORE_SUBJECT_PREFIX}rekey"
_BATCH = 5000
# The registry's tables that keep each id in clear beside its token: (table, id, token).
_RECOMPUTED: tuple[tuple[Table, str, str], ...] = (
    (HOUSEHOLD, "no_kk", "kk_token"),
    (MEMBER, "nik", "nik_token"),
)


class RekeyRefused(RuntimeError):
    """The rotation would do harm now (handoffs of the period, an empty registry)."""


@dataclass
class RekeyCounts:
    """What a rotation recomputed and what it left for the next syncs to read again."""

    recomputed: dict[str, int] = field(default_factory=dict)
    cleared: dict[str, int] = field(default_factory=dict)
    already_keyed: bool = False
    audit_seq: int | None = None

    def as_dict(self) -> dict[str, Any]:
        """Counts only, for the CLI's JSON line and the audit row."""
        return {
            "recomputed": dict(self.recomputed),
            "cleared": dict(self.cleared),
            "already_keyed": self.already_keyed,
            "audit_seq": self.audit_seq,
        }


def token_only_sources() -> list[str]:
    """The catalogue's sources that keep people by token only: re-read after a rotation."""
    recomputed = {t.name for t, _, _ in _RECOMPUTED}
    return [
        name
        for name in CATALOGUE
        if source_table(name).name not in recomputed
        and any(column.name.endswith("_token") for column in source_table(name).c)
    ]


def _keyed_with(conn: Connection, key: bytes) -> bool | None:
    """Whether the registry's first household is keyed with `key` (None: no household)."""
    row = conn.execute(
        select(HOUSEHOLD.c.no_kk, HOUSEHOLD.c.kk_token).order_by(HOUSEHOLD.c.id).limit(1)
    ).first()
    return None if row is None else id_token(row.no_kk, key) == row.kk_token


def _pages(conn: Connection, table: Table, clear: str) -> Iterator[list[Any]]:
    # Keyset pages by primary key: memory stays one page whatever the registry's size.
    last: str | None = None
    while True:
        stmt = select(table.c.id, table.c[clear]).order_by(table.c.id).limit(_BATCH)
        if last is not None:
            stmt = stmt.where(table.c.id > last)
        rows = list(conn.execute(stmt))
        if not rows:
            return
        yield rows
        last = rows[-1].id


def rekey_store(
    engine: Engine,
    *,
    key: bytes,
    now: datetime,
    period: str,
    force: bool = False,
    actor: str = "hub:rekey",
) -> RekeyCounts:
    """Recompute the registry's tokens under `key`; clear token-only sources for a re-read."""
    counts = RekeyCounts()
    with write_lock(engine), engine.begin() as conn:
        chain = ChainWriter(conn)
        keyed = _keyed_with(conn, key)
        if keyed:
            counts.already_keyed = True
            return counts
        if keyed is None and not force:
            raise RekeyRefused(
                "the registry holds no household to recompute: nothing tells this store's "
                "key apart from the new one (--force clears the token-only sources anyway)"
            )
        in_period = conn.execute(
            select(func.count()).select_from(HANDOFF).where(HANDOFF.c.period == period)
        ).scalar_one()
        if in_period and not force:
            raise RekeyRefused(
                f"{in_period:,} handoffs of period {period} exist: their checks would "
                "open them again under the new tokens; rotate before the first checks of a "
                "new period (--force accepts that)"
            )
        for table, clear, token in _RECOMPUTED:
            stmt = (
                update(table)
                .where(table.c.id == bindparam("row_id"))
                .values({token: bindparam("new_token")})
            )
            done = 0
            for rows in _pages(conn, table, clear):
                conn.execute(
                    stmt,
                    [{"row_id": r.id, "new_token": id_token(r[1], key)} for r in rows],
                )
                done += len(rows)
            counts.recomputed[table.name] = done
        for source in token_only_sources():
            deleted = conn.execute(delete(source_table(source))).rowcount
            conn.execute(delete(CURSOR).where(CURSOR.c.source == source))
            counts.cleared[source] = int(deleted or 0)
        reason = json.dumps(
            {"recomputed": counts.recomputed, "cleared": counts.cleared}, sort_keys=True
        )
        chain.record(REKEY_SUBJECT, "rekeyed", actor=actor, reason=reason, at=now)
        chain.flush()
        counts.audit_seq = chain.last_seq
    return counts
