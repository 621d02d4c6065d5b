"""`cettar db backup PATH` and `cettar db restore PATH [--force]` as an operator types them."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest
from typer.testing import CliRunner, Result

from deployments.cli import app
from integrations.settings import get_settings
from integrations.store.engine import get_engine, make_engine
from tests.integrations.store.test_backup import contents, fill


@pytest.fixture
def hub_env(monkeypatch: pytest.MonkeyPatch) -> Iterator[pytest.MonkeyPatch]:
    """A clean CETTAR_* environment; each command reads its settings afresh."""
    for name in list(os.environ):
        if name.startswith("CETTAR_"):
            monkeypatch.delenv(name)
    yield monkeypatch
    get_settings.cache_clear()
    get_engine.cache_clear()


def cettar(env: pytest.MonkeyPatch, url: str, *args: str) -> Result:
    """Run `cettar ARGS` in-process against the store at `url`."""
    env.setenv("CETTAR_DATABASE_URL", url)
    get_settings.cache_clear()
    get_engine.cache_clear()
    return CliRunner().invoke(app, list(args))


def one_line(result: Result, code: int, reason: str) -> None:
    assert result.exit_code == code, result.output
    assert "Traceback" not in result.output and result.stdout == ""
    assert len(result.stderr.splitlines()) == 1, result.stderr
    assert reason in result.stderr, result.stderr


def test_backup_then_restore_into_an_empty_store(
    hub_env: pytest.MonkeyPatch, store_url: str, tmp_path: Path
) -> None:
    source = make_engine(store_url)
    fill(source)
    before = contents(source)
    source.dispose()
    backup = tmp_path / "cettar.backup"

    done = cettar(hub_env, store_url, "db", "backup", str(backup))
    assert done.exit_code == 0, done.output
    assert f"to {backup} (" in done.stdout and backup.is_file()

    # The store is emptied the way a new machine's is: nothing but the migrated schema.
    hub_env.setenv("CETTAR_DATA_DIR", str(tmp_path / "new"))
    if store_url.startswith("sqlite"):
        target_url = f"sqlite:///{tmp_path / 'new' / 'cettar.db'}"
    else:
        target_url = store_url
        _drop_tables(target_url)
    upgraded = cettar(hub_env, target_url, "db", "upgrade")
    assert upgraded.exit_code == 0, upgraded.output

    restored = cettar(hub_env, target_url, "db", "restore", str(backup))
    assert restored.exit_code == 0, restored.output
    assert restored.stdout.startswith(f"restored {backup} into the store at ")
    target = make_engine(target_url)
    try:
        assert contents(target) == before
    finally:
        target.dispose()


def test_restore_over_data_needs_force_and_bad_paths_are_one_line(
    hub_env: pytest.MonkeyPatch, store_url: str, tmp_path: Path
) -> None:
    engine = make_engine(store_url)
    fill(engine, n=2)
    engine.dispose()
    backup = tmp_path / "two.backup"
    assert cettar(hub_env, store_url, "db", "backup", str(backup)).exit_code == 0

    one_line(
        cettar(hub_env, store_url, "db", "restore", str(backup)),
        1,
        "is not empty (household, member, quarantine, sync_cursor hold rows): "
        "restore with --force to replace it",
    )
    forced = cettar(hub_env, store_url, "db", "restore", "--force", str(backup))
    assert forced.exit_code == 0, forced.output

    one_line(cettar(hub_env, store_url, "db", "backup", str(backup)), 2, "already exists")
    one_line(cettar(hub_env, store_url, "db", "restore", str(tmp_path / "none")), 2, "no backup at")
    one_line(
        cettar(hub_env, store_url, "db", "backup", str(tmp_path / "no" / "dir.backup")),
        2,
        "no directory",
    )
    junk = tmp_path / "junk"
    junk.write_text("not a backup")
    one_line(
        cettar(hub_env, store_url, "db", "restore", str(junk)),
        2,
        "is neither a SQLite backup nor a pg_dump archive",
    )


def test_a_backup_of_no_store_says_so(hub_env: pytest.MonkeyPatch, tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'nowhere' / 'cettar.db'}"
    one_line(cettar(hub_env, url, "db", "backup", str(tmp_path / "x.backup")), 1, "no store at")
    assert not (tmp_path / "nowhere").exists()


def _drop_tables(url: str) -> None:
    from sqlalchemy import text
    from sqlmodel import SQLModel

    import models.tables  # noqa: F401

    engine = make_engine(url)
    with engine.begin() as conn:
        SQLModel.metadata.drop_all(conn)
        conn.execute(text("DROP TABLE IF EXISTS alembic_version"))
    engine.dispose()
