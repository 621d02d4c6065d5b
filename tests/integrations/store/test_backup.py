"""Backup and restore of the store: a restored store holds exactly the rows backed up."""

from __future__ import annotations

import sqlite3
import threading
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import Engine, create_engine, inspect, text

from integrations.store.backup import (
    BackupError,
    BackupPathError,
    StoreNotEmpty,
    backup_store,
    restore_store,
    tables_with_rows,
)
from integrations.store.cursors import CursorState
from integrations.store.engine import make_engine, upgrade
from integrations.store.pages import write_source_page
from integrations.store.regions import load_regions
from models.sources import prepare_page
from tests.conftest import PG_ADMIN_URL
from tests.factories import household, member

NOW = datetime(2026, 11, 27, tzinfo=UTC)


def fill(engine: Engine, first: int = 1, n: int = 20) -> None:
    """Regions, households with members, a cursor and a quarantined record."""
    load_regions(engine)
    records: list[Any] = [
        household(i, members=[member(i * 10 + 1), member(i * 10 + 2)])
        for i in range(first, first + n)
    ]
    records.append(household(first + n, members=[member(first, nik="123")]))
    state = CursorState("registry.households", "35.78.01")
    state.start_pass(full=False)
    page = prepare_page("registry.households", records, b"k", NOW)
    with engine.begin() as conn:
        write_source_page(conn, "registry.households", page, state, None, now=NOW)


def contents(engine: Engine) -> dict[str, list[tuple[Any, ...]]]:
    """Every table's rows, in a stable order."""
    with engine.connect() as conn:
        names = sorted(inspect(conn).get_table_names())
        return {
            name: sorted(
                (tuple(row) for row in conn.execute(text(f'SELECT * FROM "{name}"'))), key=repr
            )
            for name in names
        }


@pytest.fixture
def empty_url(store_url: str, tmp_path: Path) -> Iterator[str]:
    """A second store of the same kind, migrated and holding only the region codes."""
    if store_url.startswith("sqlite"):
        url = f"sqlite:///{tmp_path / 'restored' / 'cettar.db'}"
        yield from _migrated(url)
        return
    name = f"cettar_restore_{uuid.uuid4().hex[:10]}"
    admin = create_engine(PG_ADMIN_URL, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f'CREATE DATABASE "{name}"'))
    try:
        yield from _migrated(f"postgresql+psycopg://postgres@127.0.0.1:5432/{name}")
    finally:
        with admin.connect() as conn:
            conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()


def _migrated(url: str) -> Iterator[str]:
    engine = make_engine(url)
    upgrade(engine)
    load_regions(engine)
    engine.dispose()
    yield url


def test_a_restored_store_holds_exactly_the_rows_backed_up(
    store: Engine, empty_url: str, tmp_path: Path
) -> None:
    fill(store)
    before = contents(store)
    assert len(before["household"]) == 20 and len(before["member"]) == 40
    assert len(before["quarantine"]) == 1 and len(before["sync_cursor"]) == 1

    backup = tmp_path / "store.backup"
    made = backup_store(store, backup)
    assert made.path == backup and made.size_bytes == backup.stat().st_size > 0
    assert made.revision is not None
    assert not backup.with_name("store.backup.partial").exists()

    target = make_engine(empty_url)
    try:
        assert tables_with_rows(target) == []  # region codes alone are no data
        restored = restore_store(target, backup)
        assert restored.revision == made.revision
        assert contents(target) == before
    finally:
        target.dispose()


def test_restore_refuses_a_store_with_data_unless_forced(store: Engine, tmp_path: Path) -> None:
    fill(store, n=3)
    backup = tmp_path / "three.backup"
    backup_store(store, backup)
    three = contents(store)
    fill(store, first=100, n=2)
    assert tables_with_rows(store) == ["household", "member", "quarantine", "sync_cursor"]

    with pytest.raises(StoreNotEmpty, match=r"is not empty \(household, member, .*--force"):
        restore_store(store, backup)
    assert len(contents(store)["household"]) == 5  # untouched

    restore_store(store, backup, force=True)
    assert contents(store) == three


def test_a_backup_never_overwrites_a_file_and_a_restore_checks_its_kind(
    store: Engine, tmp_path: Path
) -> None:
    taken = tmp_path / "taken"
    taken.write_text("keep me")
    with pytest.raises(BackupPathError, match="already exists"):
        backup_store(store, taken)
    assert taken.read_text() == "keep me"
    with pytest.raises(BackupPathError, match="no directory"):
        backup_store(store, tmp_path / "missing" / "x.backup")
    with pytest.raises(BackupPathError, match="no backup at"):
        restore_store(store, tmp_path / "nothing-here")
    with pytest.raises(BackupPathError, match="neither a SQLite backup nor a pg_dump archive"):
        restore_store(store, taken)

    # A backup of the other kind of store is refused by name.
    other = tmp_path / "other.backup"
    other.write_bytes(b"PGDMP" if store.dialect.name == "sqlite" else b"SQLite format 3\x00")
    expected = "a pg_dump archive" if store.dialect.name == "sqlite" else "a SQLite backup"
    with pytest.raises(BackupPathError, match=expected):
        restore_store(store, other)


def test_a_sqlite_backup_is_consistent_while_the_hub_writes(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'live.db'}"
    engine = make_engine(url)
    upgrade(engine)
    fill(engine, n=5)
    stop, started = threading.Event(), threading.Event()
    written: list[int] = []

    def writer() -> None:
        # One household with two members per transaction: a snapshot holds both or none.
        state = CursorState("registry.households", "35.78.01")
        state.start_pass(full=False)
        i = 200
        while not stop.is_set() and i < 990:  # NIK serials stop at 9999
            rec = household(i, members=[member(i * 10 + 1), member(i * 10 + 2)])
            page = prepare_page("registry.households", [rec], b"k", NOW)
            with engine.begin() as conn:
                write_source_page(conn, "registry.households", page, state, None, now=NOW)
            written.append(i)
            started.set()
            i += 1

    thread = threading.Thread(target=writer)
    thread.start()
    try:
        assert started.wait(30)
        for n in range(5):
            backup = tmp_path / f"live-{n}.backup"
            backup_store(engine, backup)
            with sqlite3.connect(backup) as conn:
                assert conn.execute("PRAGMA integrity_check").fetchone() == ("ok",)
                assert conn.execute("PRAGMA journal_mode").fetchone() == ("delete",)
                households = conn.execute("SELECT count(*) FROM household").fetchone()[0]
                members = conn.execute("SELECT count(*) FROM member").fetchone()[0]
            assert members == 2 * households
            assert not backup.with_name(backup.name + "-wal").exists()
    finally:
        stop.set()
        thread.join()
        engine.dispose()
    assert written, "the writer committed nothing while the backups ran"


def test_without_the_postgresql_client_tools_the_reason_is_one_line(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv("PATH", str(tmp_path))
    engine = make_engine("postgresql+psycopg://u@127.0.0.1:1/x")
    with pytest.raises(BackupError, match=r"^pg_dump is not on PATH: install"):
        backup_store(engine, tmp_path / "x.dump")
    dump = tmp_path / "x.dump"
    dump.write_bytes(b"PGDMP")
    with pytest.raises(BackupError, match=r"^pg_restore is not on PATH"):
        restore_store(engine, dump, force=True)
