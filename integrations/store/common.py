"""Helpers every store module uses: times in UTC and bounded batches of rows."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import ColumnElement, Connection, Select, false, or_, select, true

from integrations.store.tables import HANDOFF
from models.scope import RegionScope

CHUNK = 1000
"""Rows per statement or per keyset page: bounded memory and parameter counts."""


def utc(ts: datetime) -> datetime:
    """Normalise to UTC so SQLite's tz-less text compares in time order."""
    return ts.astimezone(UTC)


def stored_utc(ts: datetime | None) -> datetime | None:
    """A time read from the store, aware in UTC (SQLite hands back naive UTC wall times)."""
    if ts is None:
        return None
    return ts if ts.tzinfo is not None else ts.replace(tzinfo=UTC)


def to_utc(ts: datetime, what: str = "times written to the store") -> datetime:
    """An aware time in UTC, as the store writes every time; naive times are refused."""
    if ts.tzinfo is None or ts.utcoffset() is None:
        raise ValueError(f"{what} must be timezone-aware")
    return ts.astimezone(UTC)


def chunks(items: Sequence[Any], size: int = CHUNK) -> Iterator[Sequence[Any]]:
    """Consecutive slices of at most size items: bounded IN lists and batches."""
    for i in range(0, len(items), size):
        yield items[i : i + size]


def keyset_pages(conn: Connection, stmt: Select[Any], id_column: Any) -> Iterator[list[Any]]:
    """Rows of `stmt` in `id_column` order, CHUNK at a time, each page after the last id read."""
    after = ""
    while True:
        rows = list(
            conn.execute(stmt.where(id_column > after).order_by(id_column).limit(CHUNK)).all()
        )
        if not rows:
            return
        yield rows
        after = rows[-1]._mapping[id_column]


def in_scope(
    scope: RegionScope, kecamatan_column: Any, kabupaten_column: Any = None
) -> ColumnElement[bool]:
    """SQL condition: the row's kecamatan (or, given its column, kabupaten) lies in the scope.

    `kabupaten_column` also takes rows of a kabupaten office that name no kecamatan.
    """
    if scope.is_province:
        return true()
    terms: list[ColumnElement[bool]] = []
    if scope.kecamatan:
        terms.append(kecamatan_column.in_(sorted(set(scope.kecamatan))))
    terms += [
        kecamatan_column.startswith(f"{kab}.", autoescape=True)
        for kab in sorted(set(scope.kabupaten))
    ]
    if kabupaten_column is not None and scope.kabupaten:
        terms.append(kabupaten_column.in_(sorted(set(scope.kabupaten))))
    return or_(false(), *terms)


def handoff_in_scope(scope: RegionScope) -> ColumnElement[bool]:
    """SQL condition on HANDOFF: the handoff is counted under a region of the scope."""
    return in_scope(scope, HANDOFF.c.kecamatan_code, HANDOFF.c.kabupaten_code)


def handoff_ids_in_scope(scope: RegionScope, id_column: Any) -> ColumnElement[bool]:
    """SQL condition: the handoff `id_column` refers to lies in the scope (always, province)."""
    if scope.is_province:
        return true()
    return id_column.in_(select(HANDOFF.c.id).where(handoff_in_scope(scope)))
