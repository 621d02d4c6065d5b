"""The `cettar` CLI commands that need no servers."""

from __future__ import annotations

from pathlib import Path

import pytest
from sqlalchemy import create_engine, func, select
from typer.testing import CliRunner

from deployments.cli import app
from integrations.settings import get_settings
from integrations.store.engine import get_engine
from models.tables import Region


@pytest.fixture
def fresh_settings(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("CETTAR_DATA_DIR", str(tmp_path))
    monkeypatch.delenv("CETTAR_DATABASE_URL", raising=False)
    get_settings.cache_clear()
    get_engine.cache_clear()
    yield tmp_path
    get_settings.cache_clear()
    get_engine.cache_clear()


def test_db_upgrade_creates_the_store_under_the_data_dir(fresh_settings: Path) -> None:
    result = CliRunner().invoke(app, ["db", "upgrade"])
    assert result.exit_code == 0, result.output
    assert "9,199 regions loaded" in result.output
    db = fresh_settings / "cettar.db"
    assert db.exists()
    with create_engine(f"sqlite:///{db}").connect() as conn:
        n = conn.execute(select(func.count()).select_from(Region)).scalar_one()
    assert n == 9199


def test_help_lists_the_commands() -> None:
    result = CliRunner().invoke(app, ["--help"])
    assert result.exit_code == 0
    for name in ("demo", "sandbox", "db", "sync", "server", "serve"):
        assert name in result.output
