"""`cettar desk users`: add, disable, reset, import; bad arguments are one line and exit 2."""

from __future__ import annotations

import os
import stat
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import Engine, select
from typer.testing import CliRunner

from deployments.cli import app
from integrations.settings import get_settings
from integrations.store.audit import AUDIT, verify_audit
from integrations.store.desk_accounts import (
    ACCOUNT,
    ACCOUNTS_SUBJECT,
    find_account,
    verify_password,
)
from integrations.store.engine import get_engine, make_engine, upgrade

runner = CliRunner()
EMAIL = "kec.karangpilang@surabaya.go.id"


@pytest.fixture
def store(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Engine]:
    """A migrated SQLite store the CLI is configured for."""
    url = f"sqlite:///{tmp_path / 'store.db'}"
    monkeypatch.setenv("CETTAR_DATABASE_URL", url)
    get_settings.cache_clear()
    get_engine.cache_clear()
    engine = make_engine(url)
    upgrade(engine)
    yield engine
    engine.dispose()
    get_engine.cache_clear()
    get_settings.cache_clear()


def _run(*args: str) -> tuple[int, str, str]:
    result = runner.invoke(app, list(args))
    return result.exit_code, result.stdout, result.stderr


def _secret(stdout: str) -> str:
    return stdout.strip().splitlines()[-1].rsplit(": ", 1)[1]


def test_add_disable_reset(store: Engine) -> None:
    code, out, _ = _run("desk", "users", "add", EMAIL, "--office", "35.78.01", "--role", "officer")
    assert code == 0, out
    secret = _secret(out)
    with store.connect() as conn:
        row = find_account(conn, EMAIL)
        assert (row.office, row.role, row.must_change_password) == (
            "kecamatan:35.78.01",
            "officer",
            True,
        )
        assert verify_password(conn, EMAIL, secret) is not None
    assert _run("desk", "users", "disable", EMAIL)[0] == 0
    with store.connect() as conn:
        assert verify_password(conn, EMAIL, secret) is None
    code, out, _ = _run("desk", "users", "reset", EMAIL)
    assert code == 0
    with store.connect() as conn:
        assert verify_password(conn, EMAIL, _secret(out)) is not None
        changes = conn.execute(
            select(AUDIT.c.to_state, AUDIT.c.actor).where(AUDIT.c.handoff_id == ACCOUNTS_SUBJECT)
        ).all()
        assert verify_audit(conn).ok
    assert [c.to_state for c in changes] == ["added", "disabled", "reset"]
    assert all(c.actor.startswith("cli:") for c in changes)


@pytest.mark.parametrize(
    ("args", "code", "message"),
    [
        (["add", EMAIL, "--office", "35.78.99"], 2, "35.78.99 is not a region of Jawa Timur"),
        (["add", EMAIL, "--office", "35.78.01", "--role", "camat"], 2, "unknown role 'camat'"),
        (["add", "not-an-email", "--office", "35.78.01"], 2, "not an e-mail address"),
        (["disable", "nobody@example.go.id"], 1, "no desk account nobody@example.go.id"),
        (["reset", "nobody@example.go.id"], 1, "no desk account nobody@example.go.id"),
    ],
)
def test_bad_arguments_are_one_line(
    store: Engine, args: list[str], code: int, message: str
) -> None:
    got, _out, err = _run("desk", "users", *args)
    assert got == code
    assert len(err.strip().splitlines()) == 1 and message in err, err


def test_an_existing_account_is_not_added_twice(store: Engine) -> None:
    assert _run("desk", "users", "add", EMAIL, "--office", "35.78.01")[0] == 0
    code, _out, err = _run("desk", "users", "add", EMAIL.upper(), "--office", "35.78.02")
    assert code == 2 and "exists already" in err


def test_import_writes_the_passwords_to_a_private_file_and_is_idempotent(
    store: Engine, tmp_path: Path
) -> None:
    source = tmp_path / "akun.csv"
    source.write_text(
        "office,role,email\n35.78.01,officer,a@surabaya.go.id\n35.78,viewer,b@surabaya.go.id\n",
        encoding="utf-8",
    )
    out = tmp_path / "sandi.csv"
    code, stdout, err = _run("desk", "users", "import", str(source), "--out", str(out))
    assert code == 0, err
    assert "2 accounts added, 0 already there" in stdout
    assert stat.S_IMODE(os.stat(out).st_mode) == 0o600
    lines = out.read_text(encoding="utf-8").splitlines()
    assert lines[0] == "email,temporary_password" and len(lines) == 3
    email, secret = lines[1].split(",")
    with store.connect() as conn:
        assert verify_password(conn, email, secret) is not None
    # The passwords file is never overwritten; a new one for the rerun adds nothing.
    assert _run("desk", "users", "import", str(source), "--out", str(out))[0] == 2
    again = tmp_path / "sandi-2.csv"
    code, stdout, _ = _run("desk", "users", "import", str(source), "--out", str(again))
    assert code == 0 and "0 accounts added, 2 already there" in stdout


def test_a_file_with_a_bad_line_imports_nothing(store: Engine, tmp_path: Path) -> None:
    source = tmp_path / "akun.csv"
    source.write_text("35.78.01,officer,a@surabaya.go.id\n35.78.99,officer,b@x.go.id\n")
    out = tmp_path / "sandi.csv"
    code, _out, err = _run("desk", "users", "import", str(source), "--out", str(out))
    assert code == 2
    assert f"{source}:2: 35.78.99 is not a region of Jawa Timur" in err
    assert err.strip().splitlines()[-1] == f"error: 1 bad lines in {source}; nothing imported"
    assert not out.exists()
    with store.connect() as conn:
        assert conn.execute(select(ACCOUNT)).first() is None


def test_serve_refuses_the_development_key_off_this_machine(store: Engine) -> None:
    code, _out, err = _run("desk", "serve", "--host", "0.0.0.0")
    assert code == 2 and "CETTAR_DESK_SECRET_KEY" in err
