"""The store's engine (built lazily), its write lock, schema migrations and readiness.

Only `upgrade` creates a store: an engine opens an existing SQLite file and never makes one,
so a mistyped path is reported (`require_store`) instead of becoming a new, empty store.
"""

from __future__ import annotations

import functools
import sqlite3
import threading
from contextlib import AbstractContextManager, nullcontext
from pathlib import Path
from typing import Any

from alembic import command
from alembic.config import Config
from alembic.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import Connection, Engine, create_engine, event
from sqlalchemy.engine import URL, make_url
from sqlalchemy.exc import ArgumentError, DBAPIError, NoSuchModuleError

from integrations.settings import get_settings

MIGRATIONS = Path(__file__).with_name("migrations")
_URL_FORMS = "expected e.g. sqlite:////path/to/cettar.db or postgresql+psycopg://user@host/db"


class StoreUrlError(ValueError):
    """The store's URL is not a database URL (a configuration mistake)."""


class StoreUnavailable(RuntimeError):
    """The store is missing, cannot be opened, or is not at the migrations' head.

    The message is one line without secrets; `needs_upgrade` says whether migrating the store
    (`upgrade`, the `cettar db upgrade` command) is the fix.
    """

    def __init__(self, problem: str, needs_upgrade: bool = False) -> None:
        super().__init__(problem, needs_upgrade)
        self.needs_upgrade = needs_upgrade

    def __str__(self) -> str:
        return str(self.args[0])


def sqlite_file(url: URL) -> Path | None:
    """The file of a SQLite store URL; None for other databases, memory and `uri=true` URLs."""
    if url.get_backend_name() != "sqlite" or "uri" in url.query:
        return None
    if url.database in (None, "", ":memory:"):
        return None
    return Path(url.database).absolute()


def store_name(engine: Engine) -> str:
    """How messages name the store: its SQLite file, or its URL without the password."""
    path = sqlite_file(engine.url)
    return str(path) if path else engine.url.render_as_string(hide_password=True)


def make_engine(url: str) -> Engine:
    """An engine for `url`, which never creates the store (`upgrade` does).

    SQLite files are opened read-write but not created, with WAL and a busy timeout for
    concurrent partitions. StoreUrlError when `url` is not a database URL.
    """
    try:
        parsed = make_url(url)
        if parsed.get_backend_name() == "sqlite":
            engine = create_engine(parsed, connect_args={"timeout": 60}, hide_parameters=True)
            if sqlite_file(parsed) is not None:
                event.listen(engine, "do_connect", _sqlite_open_existing)
            event.listen(engine, "connect", _sqlite_pragmas)
            return engine
        # hide_parameters: a failed statement must not print NIKs in its exception text.
        return create_engine(parsed, pool_pre_ping=True, hide_parameters=True)
    except NoSuchModuleError:
        kind = parsed.drivername
        raise StoreUrlError(f"not a database URL: unknown kind {kind!r} ({_URL_FORMS})") from None
    except ArgumentError:
        # The text may hold a password: name neither the URL nor the parser's message.
        raise StoreUrlError(f"not a database URL ({_URL_FORMS})") from None


def _sqlite_open_existing(_dialect: Any, _record: Any, cargs: list[Any], cparams: Any) -> None:
    # SQLite creates a missing file on connect; mode=rw opens an existing one only.
    cargs[0] = Path(cargs[0]).absolute().as_uri() + "?mode=rw"
    cparams["uri"] = True


def _sqlite_pragmas(dbapi_conn: Any, _record: Any) -> None:
    cur = dbapi_conn.cursor()
    # WAL lets readers run beside the one writer; NORMAL sync is crash-safe under WAL.
    cur.execute("PRAGMA journal_mode=WAL")
    cur.execute("PRAGMA synchronous=NORMAL")
    cur.execute("PRAGMA busy_timeout=60000")
    # A larger page cache keeps the token and foreign-key indexes hot during bulk upserts.
    cur.execute("PRAGMA cache_size=-32768")
    # Temporary B-trees (a GROUP BY or ORDER BY over millions of rows) stay in SQLite's
    # default file store: spilled to a temporary file past the cache, where in memory they
    # grew without bound (the health step's people per desa: 434 MB of peak RSS against 81 MB,
    # and 4.1 s against 2.4 s, over 6.5 M households).
    cur.close()


@functools.cache
def get_engine() -> Engine:
    """The process-wide engine for the configured store (StoreUrlError names the setting)."""
    settings = get_settings()
    try:
        return make_engine(settings.sqlalchemy_url)
    except StoreUrlError as exc:
        if settings.database_url:
            raise StoreUrlError(f"CETTAR_DATABASE_URL: {exc}") from None
        raise


_WRITE_LOCKS: dict[int, threading.Lock] = {}
_WRITE_LOCKS_GUARD = threading.Lock()


def write_lock(engine: Engine) -> AbstractContextManager[Any]:
    """Serialise this process's writers on a SQLite store; no-op on PostgreSQL.

    SQLite allows one writer: threads that collide wait in its busy handler, which sleeps
    in steps of up to 100 ms. A lock hands the store over at once instead.
    """
    if engine.dialect.name != "sqlite":
        return nullcontext()
    with _WRITE_LOCKS_GUARD:
        return _WRITE_LOCKS.setdefault(id(engine), threading.Lock())


def alembic_config(url: str) -> Config:
    """Alembic configuration pointing at the project's migrations and `url`."""
    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS))
    cfg.set_main_option("sqlalchemy.url", url.replace("%", "%%"))
    return cfg


def migrations_head() -> str:
    """The revision the hub's migrations end at: a store must be at it."""
    return ", ".join(sorted(ScriptDirectory(str(MIGRATIONS)).get_heads()))


def upgrade(engine: Engine | None = None, revision: str = "head") -> None:
    """Bring the store's schema up to `revision` (idempotent), creating a missing SQLite store.

    This is the one place a store is made: its file and directories. StoreUnavailable when
    the database cannot be opened.
    """
    engine = engine or get_engine()
    path = sqlite_file(engine.url)
    if path is not None and not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        sqlite3.connect(path).close()  # an empty database, which the engine may then open
    cfg = alembic_config(engine.url.render_as_string(hide_password=False))
    with _connect(engine) as conn, conn.begin():
        cfg.attributes["connection"] = conn
        command.upgrade(cfg, revision)


def require_store(engine: Engine) -> None:
    """Return when the store exists, opens and is at the migrations' head; else StoreUnavailable.

    Everything but `upgrade` calls this first, so that a mistyped path, a database that does
    not answer or a store never migrated is one clear message, and nothing is created.
    """
    path = sqlite_file(engine.url)
    if path is not None and not path.is_file():
        raise StoreUnavailable(f"no store at {path}", needs_upgrade=True)
    with _connect(engine) as conn:
        try:
            current = set(MigrationContext.configure(conn).get_current_heads())
        except DBAPIError as exc:
            raise _unavailable(engine, exc) from exc
    script = ScriptDirectory(str(MIGRATIONS))
    heads = set(script.get_heads())
    where = store_name(engine)
    if not current:
        raise StoreUnavailable(f"the store at {where} is not migrated", needs_upgrade=True)
    if current == heads:
        return
    at, head = ", ".join(sorted(current)), ", ".join(sorted(heads))
    if current - {s.revision for s in script.walk_revisions()}:
        raise StoreUnavailable(
            f"the store at {where} is at revision {at}, which this hub's migrations "
            f"(up to {head}) do not know"
        )
    raise StoreUnavailable(
        f"the store at {where} is at revision {at}, not {head}", needs_upgrade=True
    )


def _connect(engine: Engine) -> Connection:
    """A connection to the store; StoreUnavailable when it cannot be opened."""
    try:
        return engine.connect()
    except DBAPIError as exc:
        raise _unavailable(engine, exc) from exc


def _unavailable(engine: Engine, exc: DBAPIError) -> StoreUnavailable:
    # The driver's first line says why (refused, no such database, bad password); a
    # connection error holds no statement parameters.
    lines = str(exc.orig).strip().splitlines() or [type(exc.orig).__name__]
    return StoreUnavailable(f"the store at {store_name(engine)} cannot be opened: {lines[0]}")
