"""Bad arguments, bad settings and missing stores: one line on stderr, never a traceback.

Every command is run through the root `cettar` app as a user types it; usage errors (an
argument or a setting) exit 2, runtime failures (no store, a store that does not answer or
is not migrated) exit 1, and `--debug` gives the traceback back.
"""

from __future__ import annotations

import os
import sqlite3
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import text
from sqlmodel import SQLModel
from typer.testing import CliRunner, Result

from deployments import prefect_server
from deployments.cli import app
from integrations.settings import get_settings
from integrations.store.engine import get_engine, make_engine, migrations_head

CLOSED_PORT_URL = "postgresql+psycopg://u@127.0.0.1:1/x"

# Every command that reads or adds to the store (`db upgrade` creates it; demo builds its own).
STORE_COMMANDS = [
    ["handoffs", "list"],
    ["handoffs", "show", "0" * 32],
    ["handoffs", "verify-audit"],
    ["quarantine", "list"],
    ["quarantine", "replay", "pkh.reports"],
    ["sync", "registry"],
    ["sync", "reports"],
    ["sync", "sources"],
    ["run", "daily"],
    ["run", "checks"],
    ["run", "dispatch"],
    ["run", "scorecard"],
    ["serve"],
]
SOME_STORE_COMMANDS = [
    ["handoffs", "list"],
    ["quarantine", "list"],
    ["quarantine", "replay", "pkh.reports"],
    ["sync", "registry"],
    ["run", "scorecard"],
]


@pytest.fixture
def hub_env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[pytest.MonkeyPatch]:
    """Settings read afresh from a clean environment; no Prefect server may be started."""
    monkeypatch.setenv("CETTAR_DATA_DIR", str(tmp_path / "data"))
    for name in list(os.environ):
        if name.startswith("CETTAR_") and name != "CETTAR_DATA_DIR":
            monkeypatch.delenv(name)

    def no_server(*_args: Any, **_kwargs: Any) -> Any:
        raise AssertionError("the command started a Prefect server before checking its inputs")

    monkeypatch.setattr(prefect_server, "ensure_server", no_server)
    get_settings.cache_clear()
    get_engine.cache_clear()
    yield monkeypatch
    get_settings.cache_clear()
    get_engine.cache_clear()


def cettar(*args: str) -> Result:
    """Run `cettar ARGS` in-process, the way the entry point runs it."""
    get_settings.cache_clear()
    get_engine.cache_clear()
    return CliRunner().invoke(app, list(args))


def assert_one_line_failure(result: Result, code: int, reason: str) -> str:
    """Exit `code`, nothing on stdout, one line on stderr holding `reason`, no traceback."""
    assert result.exception is None or isinstance(result.exception, SystemExit), repr(
        result.exception
    )
    assert result.exit_code == code, result.output
    assert "Traceback" not in result.output
    assert result.stdout == ""
    lines = result.stderr.splitlines()
    assert len(lines) == 1, result.stderr
    assert reason in lines[0], lines[0]
    return lines[0]


# 1. Data echoed from the command line is never read as markup.


@pytest.mark.parametrize(
    ("args", "code", "reason"),
    [
        (["quarantine", "list", "--source", "[/bold]"], 2, "unknown source '[/bold]'"),
        (["quarantine", "replay", "[/bold]"], 2, "unknown source '[/bold]'"),
        (["quarantine", "list", "--source", "[x](javascript:1)"], 2, "'[x](javascript:1)'"),
    ],
)
def test_arguments_are_echoed_verbatim(
    hub_env: pytest.MonkeyPatch, args: list[str], code: int, reason: str
) -> None:
    assert_one_line_failure(cettar(*args), code, reason)


def test_the_sandbox_banner_shows_its_host_verbatim(hub_env: pytest.MonkeyPatch) -> None:
    import sandbox.server

    hub_env.setattr(sandbox.server, "run", lambda **_kwargs: None)
    result = cettar("sandbox", "--host", "[/bold]")
    assert result.exit_code == 0, result.output
    assert "http://[/bold]:8765" in result.stdout


# 2. Bad arguments and settings: a one-line reason, exit 2.


@pytest.mark.parametrize(
    ("args", "reason"),
    [
        (["run", "scorecard", "--kecamatan", "99.99.99"], "--kecamatan: unknown region code"),
        (["sync", "registry", "--kabupaten", "35.7"], "--kabupaten: malformed region code '35.7'"),
        (["run", "daily", "--kecamatan", "35.78.01", "--kabupaten", "35.78.01"], "--kabupaten"),
    ],
)
def test_an_unknown_region_code_is_a_usage_error(
    hub_env: pytest.MonkeyPatch, args: list[str], reason: str
) -> None:
    assert_one_line_failure(cettar(*args), 2, reason)


@pytest.mark.parametrize(
    ("variable", "value", "reason"),
    [
        ("CETTAR_PAGE_LIMIT", "0", "CETTAR_PAGE_LIMIT: must be at least 1"),
        ("CETTAR_PAGE_LIMIT", "9999", "CETTAR_PAGE_LIMIT: must be at most 5000"),
        ("CETTAR_HTTP_MAX_ATTEMPTS", "many", "CETTAR_HTTP_MAX_ATTEMPTS: must be a whole number"),
    ],
)
@pytest.mark.parametrize(
    "args", [["db", "upgrade"], ["handoffs", "list"], ["quarantine", "replay", "pkh.reports"]]
)
def test_a_bad_setting_names_its_variable(
    hub_env: pytest.MonkeyPatch, args: list[str], variable: str, value: str, reason: str
) -> None:
    hub_env.setenv(variable, value)
    assert_one_line_failure(cettar(*args), 2, reason)


@pytest.mark.parametrize("args", [["db", "upgrade"], *SOME_STORE_COMMANDS])
def test_a_database_url_that_is_not_a_url(hub_env: pytest.MonkeyPatch, args: list[str]) -> None:
    hub_env.setenv("CETTAR_DATABASE_URL", "nonsense")
    assert_one_line_failure(cettar(*args), 2, "CETTAR_DATABASE_URL: not a database URL")


# 3. A missing, unreachable or unmigrated store: a one-line reason, exit 1; nothing created.


@pytest.mark.parametrize("args", STORE_COMMANDS)
def test_a_mistyped_sqlite_path_is_reported_not_created(
    hub_env: pytest.MonkeyPatch, tmp_path: Path, args: list[str]
) -> None:
    typo = tmp_path / "typo" / "store.db"
    hub_env.setenv("CETTAR_DATABASE_URL", f"sqlite:///{typo}")
    line = assert_one_line_failure(cettar(*args), 1, f"no store at {typo}")
    assert line.endswith("run `cettar db upgrade`")
    assert not typo.parent.exists()


def test_the_default_store_is_not_created_by_a_read(hub_env: pytest.MonkeyPatch) -> None:
    data_dir = Path(os.environ["CETTAR_DATA_DIR"])
    assert_one_line_failure(cettar("handoffs", "list"), 1, f"no store at {data_dir}/cettar.db")
    assert not data_dir.exists()


@pytest.mark.parametrize("args", [["db", "upgrade"], *SOME_STORE_COMMANDS])
def test_an_unreachable_postgresql_store(hub_env: pytest.MonkeyPatch, args: list[str]) -> None:
    hub_env.setenv("CETTAR_DATABASE_URL", CLOSED_PORT_URL)
    line = assert_one_line_failure(cettar(*args), 1, "the store at")
    assert f"{CLOSED_PORT_URL} cannot be opened: " in line


@pytest.mark.parametrize("args", SOME_STORE_COMMANDS)
def test_an_unmigrated_sqlite_store(
    hub_env: pytest.MonkeyPatch, tmp_path: Path, args: list[str]
) -> None:
    empty = tmp_path / "empty.db"
    sqlite3.connect(empty).close()
    hub_env.setenv("CETTAR_DATABASE_URL", f"sqlite:///{empty}")
    assert_one_line_failure(
        cettar(*args), 1, f"the store at {empty} is not migrated: run `cettar db upgrade`"
    )


@pytest.mark.postgres
def test_an_unmigrated_postgresql_store(hub_env: pytest.MonkeyPatch, postgres_url: str) -> None:
    import models.tables  # noqa: F401

    engine = make_engine(postgres_url)
    with engine.begin() as conn:
        SQLModel.metadata.drop_all(conn)
        conn.execute(text("DROP TABLE IF EXISTS alembic_version"))
    engine.dispose()
    hub_env.setenv("CETTAR_DATABASE_URL", postgres_url)
    for args in (["run", "scorecard"], ["handoffs", "verify-audit"]):
        assert_one_line_failure(cettar(*args), 1, "is not migrated: run `cettar db upgrade`")
    get_engine().dispose()


def test_a_store_behind_the_migrations_is_reported(
    hub_env: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    from integrations.store.engine import upgrade

    old = tmp_path / "old.db"
    engine = make_engine(f"sqlite:///{old}")
    upgrade(engine, "0001")
    engine.dispose()
    hub_env.setenv("CETTAR_DATABASE_URL", f"sqlite:///{old}")
    assert_one_line_failure(
        cettar("handoffs", "list"),
        1,
        f"is at revision 0001, not {migrations_head()}: run `cettar db upgrade`",
    )


def test_db_upgrade_still_creates_the_store_and_its_directories(
    hub_env: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    store = tmp_path / "new" / "dirs" / "store.db"
    hub_env.setenv("CETTAR_DATABASE_URL", f"sqlite:///{store}")
    result = cettar("db", "upgrade")
    assert result.exit_code == 0, result.output
    assert store.is_file()
    listed = cettar("handoffs", "list", "--json")
    assert listed.exit_code == 0, listed.output
    get_engine().dispose()


# --debug, and the real entry point.


def test_debug_lets_the_error_through(hub_env: pytest.MonkeyPatch) -> None:
    from integrations.store.engine import StoreUrlError

    hub_env.setenv("CETTAR_DATABASE_URL", "nonsense")
    result = cettar("--debug", "handoffs", "list")
    assert isinstance(result.exception, StoreUrlError)


def test_the_installed_command_prints_one_line_or_the_traceback_with_debug(
    tmp_path: Path,
) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("CETTAR_")}
    env |= {"CETTAR_DATA_DIR": str(tmp_path), "CETTAR_DATABASE_URL": "nonsense"}

    def run(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "-m", "deployments.cli", *args],
            env=env,
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
        )

    plain = run("handoffs", "list")
    assert plain.returncode == 2, plain.stderr
    assert plain.stdout == ""
    assert plain.stderr.splitlines() == [
        "error: CETTAR_DATABASE_URL: not a database URL "
        "(expected e.g. sqlite:////path/to/cettar.db or postgresql+psycopg://user@host/db)"
    ]
    debug = run("--debug", "handoffs", "list")
    assert debug.returncode == 1
    assert "Traceback" in debug.stderr and "StoreUrlError" in debug.stderr
