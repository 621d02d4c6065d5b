"""Backup and restore of the hub's store: one file per backup, taken while the hub runs.

SQLite: the sqlite3 online-backup API copies the whole database in one step inside one
read transaction, so the file is a consistent snapshot even while syncs commit (WAL lets
them go on meanwhile). PostgreSQL: `pg_dump -Fc` (a consistent snapshot by itself) and
`pg_restore`, run as subprocesses with the store's URL; the password goes through the
environment, never the command line, where any user of the machine could read it.

A restore replaces the whole store, so it refuses a store that holds data (anything but
the migrations' version and the shipped region codes) unless forced.
"""

from __future__ import annotations

import os
import shutil
import sqlite3
import subprocess
from dataclasses import dataclass
from pathlib import Path

from sqlalchemy import Engine, inspect, select, table, text
from sqlalchemy.engine import URL
from sqlalchemy.exc import DBAPIError

from integrations.store.engine import StoreUnavailable, sqlite_file, store_name
from integrations.store.tables import REGION

__all__ = [
    "BackupError",
    "BackupPathError",
    "BackupResult",
    "StoreNotEmpty",
    "backup_store",
    "restore_store",
    "tables_with_rows",
]

# Rows every migrated store holds before any sync: an empty store still has them.
REFERENCE_TABLES = frozenset({"alembic_version", REGION.name})

_SQLITE_MAGIC = b"SQLite format 3\x00"
_PG_DUMP_MAGIC = b"PGDMP"


class BackupError(RuntimeError):
    """A backup or restore failed; the message is one line without secrets."""


class BackupPathError(BackupError):
    """The backup file given cannot be used (missing, already there, the wrong kind)."""


class StoreNotEmpty(BackupError):
    """The store to restore into holds data, and the restore was not forced."""


@dataclass(frozen=True)
class BackupResult:
    """What a backup wrote or a restore read: the file, its size, the store's revision."""

    path: Path
    size_bytes: int
    dialect: str
    revision: str | None


def backup_store(engine: Engine, path: Path) -> BackupResult:
    """Write a consistent backup of the store of `engine` to the new file `path`."""
    path = Path(path)
    if path.exists():
        raise BackupPathError(f"{path} already exists: back up to a new file")
    if not path.parent.is_dir():
        raise BackupPathError(f"no directory {path.parent} to write the backup into")
    partial = path.with_name(path.name + ".partial")
    try:
        if engine.dialect.name == "sqlite":
            revision = _sqlite_backup(engine, partial)
        elif engine.dialect.name == "postgresql":
            _pg_tool("pg_dump")
            revision = _store_revision(engine)
            _run_pg("pg_dump", engine.url, ["--format=custom", "--compress=6", f"--file={partial}"])
        else:
            raise BackupError(f"cannot back up a {engine.dialect.name} store")
        # Only a complete backup ever carries the name asked for.
        partial.replace(path)
    finally:
        partial.unlink(missing_ok=True)
    return BackupResult(path, path.stat().st_size, engine.dialect.name, revision)


def restore_store(engine: Engine, path: Path, *, force: bool = False) -> BackupResult:
    """Replace the store of `engine` with the backup at `path`.

    StoreNotEmpty when the store holds data and `force` is False; BackupPathError when
    `path` is no backup of this kind of store.
    """
    path = Path(path)
    if not path.is_file():
        raise BackupPathError(f"no backup at {path}")
    kind = _backup_kind(path)
    dialect = engine.dialect.name
    if kind != dialect:
        what = {"sqlite": "a SQLite backup", "postgresql": "a pg_dump archive"}.get(
            kind, "neither a SQLite backup nor a pg_dump archive"
        )
        raise BackupPathError(f"{path} is {what}; the store at {store_name(engine)} is {dialect}")
    if dialect == "postgresql":
        _pg_tool("pg_restore")
    if not force:
        filled = tables_with_rows(engine)
        if filled:
            shown = ", ".join(filled[:5]) + (", ..." if len(filled) > 5 else "")
            raise StoreNotEmpty(
                f"the store at {store_name(engine)} is not empty ({shown} hold rows): "
                "restore with --force to replace it"
            )
    # Pooled connections would keep reading the old pages (SQLite) or hold locks.
    engine.dispose()
    if dialect == "sqlite":
        revision = _sqlite_restore(engine, path)
    else:
        _run_pg(
            "pg_restore",
            engine.url,
            # --clean --if-exists: a migrated, empty store already has the tables;
            # --no-owner/--no-privileges: the store's role need not be the one dumped.
            [
                "--clean",
                "--if-exists",
                "--no-owner",
                "--no-privileges",
                "--single-transaction",
                "--exit-on-error",
                str(path),
            ],
        )
        revision = _store_revision(engine)
    return BackupResult(path, path.stat().st_size, dialect, revision)


def tables_with_rows(engine: Engine) -> list[str]:
    """The store's tables that hold rows, reference data aside (empty for a new store).

    A missing store (no SQLite file, no tables) is empty.
    """
    path = sqlite_file(engine.url)
    if path is not None and not path.exists():
        return []
    try:
        with engine.connect() as conn:
            names = sorted(set(inspect(conn).get_table_names()) - REFERENCE_TABLES)
            return [
                name
                for name in names
                if conn.execute(select(text("1")).select_from(table(name)).limit(1)).first()
            ]
    except DBAPIError as exc:
        raise _unavailable(engine, exc) from exc


def _backup_kind(path: Path) -> str:
    with path.open("rb") as f:
        head = f.read(len(_SQLITE_MAGIC))
    if head.startswith(_SQLITE_MAGIC):
        return "sqlite"
    if head.startswith(_PG_DUMP_MAGIC):
        return "postgresql"
    return "unknown"


def _sqlite_backup(engine: Engine, target: Path) -> str | None:
    source = sqlite_file(engine.url)
    if source is None:
        raise BackupError("only a SQLite store in a file can be backed up")
    if not source.is_file():
        raise StoreUnavailable(f"no store at {source}")
    # mode=rw: a missing store is an error above, never a new empty file here.
    src = sqlite3.connect(f"{source.as_uri()}?mode=rw", uri=True, timeout=60)
    dst = sqlite3.connect(target)
    try:
        src.backup(dst)  # pages=-1: all pages in one step, one consistent snapshot
        # The copy keeps the store's WAL mode; a backup should be one self-contained file.
        dst.execute("PRAGMA journal_mode=DELETE")
        return _sqlite_revision(dst)
    except sqlite3.Error as exc:
        raise BackupError(f"backup of {source} failed: {exc}") from None
    finally:
        dst.close()
        src.close()


def _sqlite_restore(engine: Engine, backup: Path) -> str | None:
    target = sqlite_file(engine.url)
    if target is None:
        raise BackupError("only a SQLite store in a file can be restored")
    src = sqlite3.connect(f"{backup.absolute().as_uri()}?mode=ro", uri=True)
    try:
        try:
            revision = _sqlite_revision(src)
        except sqlite3.Error:
            raise BackupPathError(f"{backup} is not a backup of a CETTAR store") from None
        target.parent.mkdir(parents=True, exist_ok=True)
        # The backup API writes through the target's own connection (and its WAL), so a
        # reader of the old store never sees a half-copied file.
        dst = sqlite3.connect(target, timeout=60)
        try:
            src.backup(dst)
        except sqlite3.Error as exc:
            raise BackupError(f"restore into {target} failed: {exc}") from None
        finally:
            dst.close()
    finally:
        src.close()
    return revision


def _sqlite_revision(conn: sqlite3.Connection) -> str | None:
    row = conn.execute("SELECT version_num FROM alembic_version").fetchone()
    return str(row[0]) if row else None


def _store_revision(engine: Engine) -> str | None:
    try:
        with engine.connect() as conn:
            if not inspect(conn).has_table("alembic_version"):
                return None
            row = conn.execute(text("SELECT version_num FROM alembic_version")).first()
    except DBAPIError as exc:
        raise _unavailable(engine, exc) from exc
    return str(row[0]) if row else None


def _pg_tool(tool: str) -> str:
    exe = shutil.which(tool)
    if exe is None:
        raise BackupError(
            f"{tool} is not on PATH: install the PostgreSQL client tools "
            "(Debian: apt-get install postgresql-client) of the server's major version or newer"
        )
    return exe


def _run_pg(tool: str, url: URL, args: list[str]) -> None:
    exe = _pg_tool(tool)
    env = dict(os.environ)
    if url.password is not None:
        env["PGPASSWORD"] = str(url.password)
    # libpq takes the SQLAlchemy URL's parts as a URI once the driver suffix is gone.
    conninfo = url.set(drivername="postgresql", password=None).render_as_string(hide_password=False)
    done = subprocess.run(  # noqa: S603 - a PostgreSQL client tool, arguments as a list
        [exe, f"--dbname={conninfo}", *args],
        env=env,
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        check=False,
    )
    if done.returncode != 0:
        lines = [line for line in done.stderr.strip().splitlines() if line.strip()]
        reason = lines[0].strip() if lines else f"exit status {done.returncode}"
        raise BackupError(f"{tool} failed: {reason.removeprefix(f'{tool}: ')}")


def _unavailable(engine: Engine, exc: DBAPIError) -> StoreUnavailable:
    lines = str(exc.orig).strip().splitlines() or [type(exc.orig).__name__]
    return StoreUnavailable(f"the store at {store_name(engine)} cannot be opened: {lines[0]}")
