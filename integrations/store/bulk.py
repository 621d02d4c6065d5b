"""Dialect-aware bulk writes: newer-wins upserts, insert-only, sightings, plain upserts.

Also the one bulk read the writes need: the stored rows of a batch's keys (`stored_rows`).
"""

from __future__ import annotations

import functools
import operator
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Connection, Table, select
from sqlalchemy.dialects import postgresql, sqlite


def _insert(dialect: str, table: Table) -> Any:
    # The one dialect switch of the store: both dialects speak INSERT .. ON CONFLICT.
    if dialect == "postgresql":
        return postgresql.insert(table)
    if dialect == "sqlite":
        return sqlite.insert(table)
    raise NotImplementedError(f"bulk upsert is not implemented for the {dialect} dialect")


def _incoming_non_key(stmt: Any, table: Table, key: tuple[str, ...]) -> dict[str, Any]:
    """Every non-key column set to the incoming row's value: the SET of an overwrite."""
    return {c.name: stmt.excluded[c.name] for c in table.columns if c.name not in key}


@functools.lru_cache(maxsize=64)
def _upsert_newer_stmt(
    conn_dialect: str, table: Table, key: tuple[str, ...], version_column: str
) -> Any:
    # Built once per table: constructing ON CONFLICT clauses costs more than executing them.
    stmt = _insert(conn_dialect, table)
    stmt = stmt.on_conflict_do_update(
        index_elements=list(key),
        set_=_incoming_non_key(stmt, table, key),
        where=stmt.excluded[version_column] > table.c[version_column],
    )
    if conn_dialect == "postgresql":
        # psycopg reports no row count for a batch; the returned keys count the writes.
        stmt = stmt.returning(*(table.c[k] for k in key))
    return stmt


def upsert_newer(
    conn: Connection,
    table: Table,
    rows: Sequence[Mapping[str, Any]],
    *,
    key: Iterable[str] = ("id",),
    version_column: str = "updated_at",
) -> int:
    """Insert rows or update existing ones only when the incoming version is newer.

    Returns how many rows were written (inserted or updated); the rest were unchanged.
    """
    if not rows:
        return 0
    key = tuple(key)
    unique = _newest_per_key(rows, key, version_column)
    stmt = _upsert_newer_stmt(conn.dialect.name, table, key, version_column)
    return _write(conn, stmt, unique)


def _newest_per_key(
    rows: Sequence[Mapping[str, Any]], key: tuple[str, ...], version_column: str
) -> list[Mapping[str, Any]]:
    """The rows with the newest version per key, in first-seen order of their keys."""
    # One statement may not touch a row twice (PostgreSQL refuses). Repeats are rare, so
    # look for them at C speed first and build the per-key map only when there are some.
    keys = list(map(operator.itemgetter(*key), rows))
    if len(set(keys)) == len(keys):
        return list(rows)
    newest: dict[Any, Mapping[str, Any]] = {}
    for k, row in zip(keys, rows, strict=True):
        seen = newest.get(k)
        if seen is None or row[version_column] > seen[version_column]:
            newest[k] = row
    return list(newest.values())


@dataclass(frozen=True, slots=True)
class _Prepared:
    sql: str
    getter: Callable[[Mapping[str, Any]], tuple[Any, ...]]
    processors: tuple[tuple[int, Callable[[Any], Any]], ...]


_PREPARED: dict[tuple[int, tuple[str, ...]], _Prepared] = {}


def _sqlite_executemany(conn: Connection, stmt: Any, rows: list[Mapping[str, Any]]) -> int:
    """Run a cached INSERT .. ON CONFLICT construct as one DB-API executemany; rows written.

    SQLAlchemy cannot cache ON CONFLICT statements (they carry no cache key), and compiling
    one costs more than writing a page, so the construct is compiled once here and its
    parameters are converted with the column types' own bind processors.
    """
    columns = tuple(rows[0])
    cache_key = (id(stmt), columns)
    prepared = _PREPARED.get(cache_key)
    if prepared is None:
        # Compiled for the columns the rows carry (an autoincrement key is left out).
        compiled = stmt.compile(dialect=conn.dialect, column_keys=list(columns))
        names = tuple(compiled.positiontup or ())
        procs = [
            stmt.table.c[n].type.dialect_impl(conn.dialect).bind_processor(conn.dialect)
            for n in names
        ]
        getter = operator.itemgetter(*names)
        prepared = _PREPARED.setdefault(
            cache_key,
            _Prepared(
                compiled.string,
                (lambda row: (getter(row),)) if len(names) == 1 else getter,
                tuple((i, p) for i, p in enumerate(procs) if p is not None),
            ),
        )
    if prepared.processors:
        # Converted afresh for every row: a memo of converted values kept up to 200,000
        # entries alive (tens of MB of the sync's peak) to save microseconds.
        params: list[Any] = []
        for row in rows:
            values = list(prepared.getter(row))
            for i, proc in prepared.processors:
                v = values[i]
                if v is not None:
                    values[i] = proc(v)
            params.append(tuple(values))
    else:
        params = [prepared.getter(row) for row in rows]
    return int(conn.exec_driver_sql(prepared.sql, params).rowcount)


def _write(conn: Connection, stmt: Any, rows: list[Mapping[str, Any]]) -> int:
    """Run a cached INSERT .. ON CONFLICT construct on rows as one batch; rows written.

    On PostgreSQL the count is that of the keys the construct returns: 0 for one built
    without RETURNING, whose callers do not count.
    """
    if conn.dialect.name == "sqlite":
        return _sqlite_executemany(conn, stmt, rows)
    result = conn.execute(stmt, rows)
    return len(result.all()) if result.returns_rows else 0


@functools.lru_cache(maxsize=16)
def _sighting_stmt(
    conn_dialect: str, table: Table, key: tuple[str, ...], last_seen: str, count: str
) -> Any:
    stmt = _insert(conn_dialect, table)
    return stmt.on_conflict_do_update(
        index_elements=list(key),
        set_={last_seen: stmt.excluded[last_seen], count: table.c[count] + stmt.excluded[count]},
    )


def insert_or_count(
    conn: Connection,
    table: Table,
    rows: Sequence[Mapping[str, Any]],
    *,
    key: Iterable[str],
    last_seen: str,
    count: str,
) -> None:
    """Insert rows; a row whose key is there already adds its count and last-seen time."""
    if not rows:
        return
    _write(conn, _sighting_stmt(conn.dialect.name, table, tuple(key), last_seen, count), list(rows))


@functools.lru_cache(maxsize=64)
def _upsert_all_stmt(conn_dialect: str, table: Table, key: tuple[str, ...]) -> Any:
    stmt = _insert(conn_dialect, table)
    return stmt.on_conflict_do_update(
        index_elements=list(key), set_=_incoming_non_key(stmt, table, key)
    )


def upsert_all(
    conn: Connection, table: Table, rows: Sequence[Mapping[str, Any]], *, key: Iterable[str]
) -> None:
    """Insert rows or overwrite every non-key column of existing ones."""
    if not rows:
        return
    _write(conn, _upsert_all_stmt(conn.dialect.name, table, tuple(key)), list(rows))


@functools.lru_cache(maxsize=16)
def _insert_new_stmt(conn_dialect: str, table: Table, key: tuple[str, ...]) -> Any:
    stmt = _insert(conn_dialect, table).on_conflict_do_nothing(index_elements=list(key))
    if conn_dialect == "postgresql":
        # As in upsert_newer: the returned keys count the inserts of a batch.
        stmt = stmt.returning(*(table.c[k] for k in key))
    return stmt


def insert_new(
    conn: Connection, table: Table, rows: Sequence[Mapping[str, Any]], *, key: Iterable[str]
) -> int:
    """Insert the rows whose key is not stored yet; stored rows stay untouched. Returns inserts."""
    if not rows:
        return 0
    # A key repeated within the batch is inserted once: its first row wins, as row by row.
    return _write(conn, _insert_new_stmt(conn.dialect.name, table, tuple(key)), list(rows))


# Well under SQLite's and PostgreSQL's bound-parameter limits, one round trip per page.
_READ_CHUNK = 500


def stored_rows(
    conn: Connection,
    table: Table,
    column: str,
    values: Sequence[Any],
    *,
    columns: Sequence[str] | None = None,
) -> list[dict[str, Any]]:
    """The stored rows whose `column` is one of `values` (every column, or those named)."""
    if not values:
        return []
    selected = [table.c[c] for c in columns] if columns else list(table.columns)
    out: list[dict[str, Any]] = []
    for start in range(0, len(values), _READ_CHUNK):
        part = list(values[start : start + _READ_CHUNK])
        result = conn.execute(select(*selected).where(table.c[column].in_(part)))
        out.extend(dict(row._mapping) for row in result)
    return out
