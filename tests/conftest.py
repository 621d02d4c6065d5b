"""Shared fixtures: store engines (SQLite file, PostgreSQL), one Prefect test server."""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import Engine, create_engine, text

os.environ.setdefault("PREFECT_SERVER_ANALYTICS_ENABLED", "false")

PG_ADMIN_URL = "postgresql+psycopg://postgres@127.0.0.1:5432/postgres"


def _postgres_available() -> str | None:
    try:
        engine = create_engine(PG_ADMIN_URL, connect_args={"connect_timeout": 3})
        with engine.connect() as conn:
            conn.execute(text("select 1"))
        engine.dispose()
    except Exception as exc:
        return f"{type(exc).__name__}: {str(exc).splitlines()[0][:200]}"
    return None


@pytest.fixture(scope="session")
def postgres_url() -> Iterator[str]:
    """A fresh PostgreSQL database for the session; skipped without a server, except in CI."""
    problem = _postgres_available()
    if problem:
        if os.environ.get("CI") == "true":
            pytest.fail(f"CI requires PostgreSQL at 127.0.0.1:5432: {problem}")
        pytest.skip(f"no PostgreSQL at 127.0.0.1:5432 ({problem})")
    name = f"cettar_test_{uuid.uuid4().hex[:10]}"
    admin = create_engine(PG_ADMIN_URL, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f'CREATE DATABASE "{name}"'))
    try:
        yield f"postgresql+psycopg://postgres@127.0.0.1:5432/{name}"
    finally:
        with admin.connect() as conn:
            conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
def store_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """A migrated, empty store on SQLite (a real file) and on PostgreSQL."""
    from integrations.store.engine import make_engine, upgrade

    if request.param == "sqlite":
        url = f"sqlite:///{tmp_path / 'store.db'}"
    else:
        base = request.getfixturevalue("postgres_url")
        # One database per session; each test gets a clean schema by dropping the tables.
        url = base
        engine = make_engine(url)
        from sqlmodel import SQLModel

        import models.desk_tables
        import models.tables  # noqa: F401

        with engine.begin() as conn:
            SQLModel.metadata.drop_all(conn)
            conn.execute(text("DROP TABLE IF EXISTS alembic_version"))
        engine.dispose()
    engine = make_engine(url)
    upgrade(engine)
    engine.dispose()
    yield url


@pytest.fixture
def store(store_url: str) -> Iterator[Engine]:
    """An engine on the migrated store."""
    from integrations.store.engine import make_engine

    engine = make_engine(store_url)
    yield engine
    engine.dispose()


@pytest.fixture(scope="session")
def prefect_api() -> Iterator[str]:
    """One Prefect test server for the whole session; yields its API URL.

    Its database is a fresh PostgreSQL database when the server at 127.0.0.1:5432 answers
    (always under CI): a whole suite keeps one server busy for a quarter of an hour, and
    Prefect on SQLite then stalls on `database is locked` (a 60 s wait seen in a sync that
    took 1.6 s alone). Without PostgreSQL it is Prefect's own SQLite test harness.
    """
    from prefect.settings import PREFECT_API_URL
    from prefect.testing.utilities import prefect_test_harness

    if _postgres_available() is not None:
        with prefect_test_harness(server_startup_timeout=120):
            yield str(PREFECT_API_URL.value())
        return
    yield from _prefect_on_postgres()


def _prefect_on_postgres() -> Iterator[str]:
    """Prefect's test harness, with its server's database on a fresh PostgreSQL database."""
    import socket
    from contextlib import ExitStack

    import prefect.context
    from prefect.server.api.server import SubprocessASGIServer
    from prefect.server.database.dependencies import temporary_database_interface
    from prefect.settings import (
        PREFECT_API_URL,
        PREFECT_SERVER_DATABASE_CONNECTION_URL,
        temporary_settings,
    )

    name = f"cettar_prefect_{uuid.uuid4().hex[:10]}"
    admin = create_engine(PG_ADMIN_URL, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f'CREATE DATABASE "{name}"'))
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = int(sock.getsockname()[1])
    try:
        with ExitStack() as stack:
            stack.enter_context(temporary_database_interface())
            stack.enter_context(
                temporary_settings(
                    updates={
                        PREFECT_SERVER_DATABASE_CONNECTION_URL: (
                            f"postgresql+asyncpg://postgres@127.0.0.1:5432/{name}"
                        )
                    }
                )
            )
            server = SubprocessASGIServer(port=port)
            server.start(timeout=120)
            stack.callback(server.stop)
            stack.enter_context(temporary_settings(updates={PREFECT_API_URL: server.api_url}))
            # As the harness does: contexts copied before the server started see it too.
            stack.enter_context(
                prefect.context._temporary_global_settings_context(
                    prefect.context.get_settings_context()
                )
            )
            yield str(PREFECT_API_URL.value())
    finally:
        with admin.connect() as conn:
            conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()
