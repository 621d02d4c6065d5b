"""The store's engine (built lazily), schema migrations and dialect-aware bulk upserts."""

from __future__ import annotations

import functools
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

from alembic import command
from alembic.config import Config
from sqlalchemy import Connection, Engine, Table, create_engine, event
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import make_url

from integrations.settings import get_settings

MIGRATIONS = Path(__file__).with_name("migrations")


def make_engine(url: str) -> Engine:
    """An engine for `url`; SQLite files get WAL and a busy timeout for concurrent partitions."""
    parsed = make_url(url)
    if parsed.get_backend_name() == "sqlite":
        if parsed.database and parsed.database != ":memory:":
            Path(parsed.database).parent.mkdir(parents=True, exist_ok=True)
        engine = create_engine(url, connect_args={"timeout": 60}, hide_parameters=True)
        event.listen(engine, "connect", _sqlite_pragmas)
        return engine
    # hide_parameters: a failed statement must not print NIKs in its exception text.
    return create_engine(url, pool_pre_ping=True, hide_parameters=True)


def _sqlite_pragmas(dbapi_conn: Any, _record: Any) -> None:
    cur = dbapi_conn.cursor()
    # WAL lets readers run beside the one writer; NORMAL sync is crash-safe under WAL.
    cur.execute("PRAGMA journal_mode=WAL")
    cur.execute("PRAGMA synchronous=NORMAL")
    cur.execute("PRAGMA busy_timeout=60000")
    cur.close()


@functools.cache
def get_engine() -> Engine:
    """The process-wide engine for the configured store."""
    return make_engine(get_settings().sqlalchemy_url)


def alembic_config(url: str) -> Config:
    """Alembic configuration pointing at the project's migrations and `url`."""
    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS))
    cfg.set_main_option("sqlalchemy.url", url.replace("%", "%%"))
    return cfg


def upgrade(engine: Engine | None = None, revision: str = "head") -> None:
    """Bring the store's schema up to `revision` (idempotent)."""
    engine = engine or get_engine()
    cfg = alembic_config(engine.url.render_as_string(hide_password=False))
    with engine.begin() as conn:
        cfg.attributes["connection"] = conn
        command.upgrade(cfg, revision)


def dialect_insert(conn: Connection, table: Table) -> Any:
    """An INSERT construct of the connection's dialect, with ON CONFLICT support."""
    name = conn.dialect.name
    if name == "postgresql":
        return postgresql.insert(table)
    if name == "sqlite":
        return sqlite.insert(table)
    raise NotImplementedError(f"bulk upsert is not implemented for the {name} dialect")


def upsert_newer(
    conn: Connection,
    table: Table,
    rows: Sequence[Mapping[str, Any]],
    *,
    key: Iterable[str] = ("id",),
    version_column: str = "updated_at",
) -> list[Any]:
    """Insert rows or update existing ones only when the incoming version is newer.

    Returns the keys of the rows actually written, so callers can count the unchanged ones.
    """
    if not rows:
        return []
    key = tuple(key)
    # One statement may not touch a row twice (PostgreSQL refuses): keep the newest per key.
    newest: dict[Any, Mapping[str, Any]] = {}
    for row in rows:
        k = tuple(row[c] for c in key)
        seen = newest.get(k)
        if seen is None or row[version_column] > seen[version_column]:
            newest[k] = row
    stmt = dialect_insert(conn, table)
    update = {c.name: stmt.excluded[c.name] for c in table.columns if c.name not in key}
    stmt = stmt.on_conflict_do_update(
        index_elements=list(key),
        set_=update,
        where=stmt.excluded[version_column] > table.c[version_column],
    ).returning(*(table.c[k] for k in key))
    result = conn.execute(stmt, list(newest.values()))
    return [r[0] if len(key) == 1 else tuple(r) for r in result.all()]


def insert_ignore(
    conn: Connection, table: Table, rows: Sequence[Mapping[str, Any]], *, key: Iterable[str]
) -> int:
    """Insert rows whose key is not there yet; returns how many were new."""
    if not rows:
        return 0
    key = tuple(key)
    stmt = dialect_insert(conn, table).on_conflict_do_nothing(index_elements=list(key))
    result = conn.execute(stmt.returning(*(table.c[k] for k in key)), list(rows))
    return len(result.all())


def upsert_all(
    conn: Connection, table: Table, rows: Sequence[Mapping[str, Any]], *, key: Iterable[str]
) -> None:
    """Insert rows or overwrite every non-key column of existing ones."""
    if not rows:
        return
    key = tuple(key)
    stmt = dialect_insert(conn, table)
    update = {c.name: stmt.excluded[c.name] for c in table.columns if c.name not in key}
    conn.execute(stmt.on_conflict_do_update(index_elements=list(key), set_=update), list(rows))
