"""Dialect-aware bulk writes: newer-wins upserts, insert-only, sightings, plain upserts.

On PostgreSQL a large newer-wins batch is copied (COPY) into a temporary staging table and
merged by one INSERT .. SELECT .. ON CONFLICT, with the same rule and count as the batch
statement used for smaller batches and on SQLite.

Also the one bulk read the writes need: the stored rows of a batch's keys (`stored_rows`).
"""

from __future__ import annotations

import functools
import hashlib
import operator
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any, cast

import psycopg
from psycopg import sql as pgsql
from sqlalchemy import Column, Connection, MetaData, Table, delete, func, select
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.exc import DBAPIError
from sqlalchemy.schema import CreateTable


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
    if conn.dialect.name == "postgresql" and len(unique) >= PG_COPY_MIN_ROWS:
        staged = _staging_plan(conn.dialect, table, tuple(unique[0]))
        if staged is not None:
            return _copy_upsert_newer(conn, staged, unique, key, version_column)
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


def keyed_plans(conn: Connection) -> None:
    """Plan the rest of this transaction's statements on their keys' indexes (PostgreSQL).

    A sync writes into tables without planner statistics until autovacuum analyzes them
    (every table of a fresh store), and PostgreSQL planned each page's keyed statements
    (members who left a household, the stored versions of a page's ids) as scans of the
    whole table: every page read every row written before it. The estimated cost of such
    plans also passes the JIT thresholds, and compiling them took about 47 ms per statement
    (the members' DELETE of 1,000 households at 600,000 members, seen from the client: 97 ms
    a page as planned, 9.5 ms with these settings). Every statement of a sync transaction is
    keyed; a staging table, which has no index, is still scanned.
    """
    if conn.dialect.name == "postgresql":
        conn.exec_driver_sql("SET LOCAL jit = off")
        conn.exec_driver_sql("SET LOCAL enable_seqscan = off")


# --- PostgreSQL: COPY into a staging table, then one INSERT .. SELECT .. ON CONFLICT ------------

PG_COPY_MIN_ROWS = 100
"""Batches of at least this many rows (after removing repeated keys) take the COPY path."""


@dataclass(frozen=True, slots=True)
class _Staging:
    """How a batch with given columns reaches `target` through a temporary table."""

    target: Table
    staging: Table
    columns: tuple[str, ...]
    # Values for the target's columns the rows leave out: their scalar column defaults, as
    # an INSERT of the rows themselves would fill in.
    defaults: tuple[Any, ...]
    processors: tuple[tuple[int, Callable[[Any], Any]], ...]
    # CREATE TEMPORARY TABLE IF NOT EXISTS, compiled once: compiling DDL per batch cost
    # more than running it.
    create_sql: str


@functools.lru_cache(maxsize=64)
def _staging_plan(dialect: Any, target: Table, row_columns: tuple[str, ...]) -> _Staging | None:
    """The staging table for rows with these columns; None when they cannot go that way."""
    if any(name not in target.c for name in row_columns):
        return None
    missing = [c for c in target.columns if c.name not in row_columns]
    if any(c.default is None or not c.default.is_scalar for c in missing):
        # A column the rows leave out without a plain default (a sequence, a callable):
        # only the ordinary INSERT knows how to fill it.
        return None
    columns = row_columns + tuple(c.name for c in missing)
    # One staging table per column list: a session may write rows of several shapes.
    shape = hashlib.blake2s(",".join(columns).encode(), digest_size=4).hexdigest()
    staging = Table(
        f"{target.name}_staging_{shape}",
        MetaData(),
        *(Column(name, target.c[name].type) for name in columns),
        prefixes=["TEMPORARY"],
        # Emptied after each batch; also at commit, so nothing outlives the transaction.
        postgresql_on_commit="DELETE ROWS",
    )
    processors = tuple(
        (i, proc)
        for i, name in enumerate(columns)
        if (proc := target.c[name].type.dialect_impl(dialect).bind_processor(dialect)) is not None
    )
    defaults = tuple(cast(Any, c.default).arg for c in missing)
    create_sql = str(CreateTable(staging, if_not_exists=True).compile(dialect=dialect))
    return _Staging(target, staging, columns, defaults, processors, create_sql)


@functools.lru_cache(maxsize=64)
def _merge_newer_stmt(staged: _Staging, key: tuple[str, ...], version_column: str) -> Any:
    """Move the staged rows into the target; a stored row is overwritten only by a newer version.

    One statement: the staging table is emptied (DELETE .. RETURNING) as its rows are
    inserted, ready for the next batch of the transaction, in one round trip and without
    TRUNCATE's new file per batch.
    """
    target, staging = staged.target, staged.staging
    taken = delete(staging).returning(*(staging.c[c] for c in staged.columns)).cte("staged")
    # Key order: two writers of overlapping keys lock them in the same order.
    rows = select(*(taken.c[c] for c in staged.columns)).order_by(*(taken.c[k] for k in key))
    stmt = postgresql.insert(target).from_select(list(staged.columns), rows)
    stmt = stmt.on_conflict_do_update(
        index_elements=list(key),
        set_=_incoming_non_key(stmt, target, key),
        where=stmt.excluded[version_column] > target.c[version_column],
    )
    # RETURNING lists only the rows inserted or updated: counted in the database.
    written = stmt.returning(target.c[key[0]]).cte("written")
    return select(func.count()).select_from(written)


def _copy_upsert_newer(
    conn: Connection,
    staged: _Staging,
    rows: Sequence[Mapping[str, Any]],
    key: tuple[str, ...],
    version_column: str,
) -> int:
    """Newer-wins upsert of rows (one per key) through COPY and one merge; rows written."""
    conn.exec_driver_sql(staged.create_sql)
    name = pgsql.Identifier(staged.staging.name)
    copy_sql = pgsql.SQL("COPY {} ({}) FROM STDIN").format(
        name, pgsql.SQL(", ").join(pgsql.Identifier(c) for c in staged.columns)
    )
    given = staged.columns[: len(staged.columns) - len(staged.defaults)]
    getter = operator.itemgetter(*given)
    plain = len(given) > 1 and not staged.defaults and not staged.processors
    # The connection's own DBAPI connection: the COPY runs in the caller's transaction.
    dbapi = cast("psycopg.Connection[Any]", conn.connection.dbapi_connection)
    with dbapi.cursor() as cur:
        try:
            with cur.copy(copy_sql) as copy:
                for row in rows:
                    if plain:
                        copy.write_row(getter(row))
                        continue
                    picked = getter(row)
                    values = [*(picked if len(given) > 1 else (picked,)), *staged.defaults]
                    for i, proc in staged.processors:
                        if values[i] is not None:
                            values[i] = proc(values[i])
                    copy.write_row(values)
        except psycopg.Error as exc:
            # Raised as the statement path raises it: the same SQLAlchemy error classes for
            # callers, and no parameters in the text.
            raise DBAPIError.instance(
                copy_sql.as_string(dbapi),
                None,
                exc,
                psycopg.Error,
                hide_parameters=True,
                dialect=conn.dialect,
            ) from exc
    return int(conn.execute(_merge_newer_stmt(staged, key, version_column)).scalar_one())


@dataclass(frozen=True, slots=True)
class _Prepared:
    sql: str
    getter: Callable[[Mapping[str, Any]], tuple[Any, ...]]
    processors: tuple[tuple[int, Callable[[Any], Any]], ...]


_PREPARED: dict[tuple[int, tuple[str, ...]], _Prepared] = {}


def _sqlite_datetime(value: Any) -> str:
    # The text SQLite's DATETIME stores by default ("2026-12-02 10:00:00.000000", the time
    # zone dropped), from one C call: the type's own processor formats a dict of fields per
    # value and was 5 % of a registry sync's writing thread.
    if isinstance(value, datetime):
        return datetime.isoformat(value.replace(tzinfo=None), " ", "microseconds")
    return f"{_sqlite_date(value)} 00:00:00.000000"


def _sqlite_date(value: Any) -> str:
    if not isinstance(value, date):
        raise TypeError("SQLite Date and DateTime columns take only date and datetime values")
    return date.isoformat(value)


def _sqlite_bind_processor(impl: Any, dialect: Any) -> Callable[[Any], Any] | None:
    """The column type's bind processor; a one-call equivalent for SQLite's default date texts."""
    fmt = getattr(impl, "_storage_format", None)
    if isinstance(impl, sqlite.DATETIME) and fmt == sqlite.DATETIME._storage_format:
        return _sqlite_datetime
    if isinstance(impl, sqlite.DATE) and fmt == sqlite.DATE._storage_format:
        return _sqlite_date
    processor: Callable[[Any], Any] | None = impl.bind_processor(dialect)
    return processor


def _sqlite_executemany(conn: Connection, stmt: Any, rows: list[Mapping[str, Any]]) -> int:
    """Run a cached INSERT .. ON CONFLICT construct as one DB-API executemany; rows written.

    SQLAlchemy cannot cache ON CONFLICT statements (they carry no cache key), and compiling
    one costs more than writing a page, so the construct is compiled once here and its
    parameters are converted with the column types' bind processors (`_sqlite_bind_processor`).
    """
    columns = tuple(rows[0])
    cache_key = (id(stmt), columns)
    prepared = _PREPARED.get(cache_key)
    if prepared is None:
        # Compiled for the columns the rows carry (an autoincrement key is left out).
        compiled = stmt.compile(dialect=conn.dialect, column_keys=list(columns))
        names = tuple(compiled.positiontup or ())
        procs = [
            _sqlite_bind_processor(stmt.table.c[n].type.dialect_impl(conn.dialect), conn.dialect)
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
        # Converted for every row, but a value that is the very object of the row before
        # (a page's `synced_at`, a household's version on each of its members) reuses that
        # row's text: a memo of one entry per column, where one of every value kept up to
        # 200,000 entries alive (tens of MB of the sync's peak) to save microseconds.
        params: list[Any] = []
        last_in: list[Any] = [None] * len(prepared.processors)
        last_out: list[Any] = [None] * len(prepared.processors)
        for row in rows:
            values = list(prepared.getter(row))
            for j, (i, proc) in enumerate(prepared.processors):
                v = values[i]
                if v is None:
                    continue
                if v is last_in[j]:
                    values[i] = last_out[j]
                else:
                    values[i] = last_out[j] = proc(v)
                    last_in[j] = v
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
        # Keys zipped on the plain tuples: a row's mapping view costs more than its values.
        keys = tuple(result.keys())
        out.extend(dict(zip(keys, row, strict=True)) for row in result.tuples())
    return out
