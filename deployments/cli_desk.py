"""`cettar desk`: serve the office desk, and manage its accounts (add, disable, reset, import).

Every change is written to the audit chain with the operator's name. A temporary password
is printed once (or, for an import, written to a file only its owner may read) and must be
changed at the account's first sign-in. Passwords are never taken from the command line,
where shell history and process lists would keep them.
"""

from __future__ import annotations

import csv
import getpass
import ipaddress
import os
from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated

import typer

from deployments.cli_errors import CliFailure, CliUsageError, cli_app, plain_console, store_engine
from integrations.settings import get_settings
from integrations.store.desk_accounts import (
    AccountExists,
    AccountNotFound,
    add_account,
    disable_account,
    import_accounts,
    parse_accounts_csv,
    reset_password,
)
from integrations.store.engine import write_lock
from models.desk import DeskOffice

__all__ = ["desk_app"]

desk_app = cli_app(help="The office desk: serve it (`serve`) and manage its accounts (`users`).")
users_app = cli_app(help="Desk accounts: add, disable, reset the password, import from a file.")
desk_app.add_typer(users_app, name="users")
console = plain_console()

# The development default of `CETTAR_DESK_SECRET_KEY`: public, so only for this machine.
_DEVELOPMENT_SECRET = "cettar-desk-development-key-change-me"  # noqa: S105
# Errors listed by an import that refuses its file; the rest are counted.
_ERRORS_SHOWN = 20


def _loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


@desk_app.command("serve")
def serve(
    host: Annotated[str, typer.Option(help="Address to listen on.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(min=1, max=65535, help="Port to listen on.")] = 8080,
) -> None:
    """Serve the desk (FastAPI) on the configured store until interrupted."""
    import uvicorn

    from desk.app import create_app
    from desk.config import DeskConfig

    settings = get_settings()
    if settings.desk_secret_key.get_secret_value() == _DEVELOPMENT_SECRET and not _loopback(host):
        raise CliUsageError(
            "CETTAR_DESK_SECRET_KEY is the public development key: set a secret of your own "
            f"before serving the desk on {host}"
        )
    app = create_app(store_engine(), DeskConfig.from_settings(settings))
    console.print(f"desk: http://{host}:{port}/ (Ctrl+C stops it)")
    uvicorn.run(app, host=host, port=port, log_level="warning", proxy_headers=False)


def _now() -> datetime:
    return datetime.now(UTC)


def _actor() -> str:
    # Who changed the accounts, as the audit chain records it (the person check does the same).
    return f"cli:{getpass.getuser()}"


@users_app.command("add")
def users_add(
    email: Annotated[str, typer.Argument(help="The person's e-mail (their sign-in name).")],
    office: Annotated[
        str,
        typer.Option(
            help="The office: kecamatan:35.78.01, desa:35.78.01.1001, kabupaten:35.78, "
            "province:35 or programme:pkh (a bare code works too)."
        ),
    ],
    role: Annotated[str, typer.Option(help="viewer, officer or admin.")] = "officer",
) -> None:
    """Add an account; its temporary password is printed once."""
    engine = store_engine()
    try:
        with write_lock(engine), engine.begin() as conn:
            secret = add_account(conn, email, office, role, _now(), actor=_actor())
    except AccountExists as exc:
        raise CliUsageError(str(exc)) from None
    except ValueError as exc:
        raise CliUsageError(f"cannot add the account: {str(exc).splitlines()[0]}") from None
    console.print(f"added {email.strip().lower()} ({DeskOffice.parse(office).key}, {role})")
    console.print(f"temporary password (changed at first sign-in): {secret}")


@users_app.command("disable")
def users_disable(email: Annotated[str, typer.Argument(help="The account's e-mail.")]) -> None:
    """Disable an account and end its sessions."""
    engine = store_engine()
    try:
        with write_lock(engine), engine.begin() as conn:
            changed = disable_account(conn, email, _now(), actor=_actor())
    except AccountNotFound as exc:
        raise CliFailure(str(exc)) from None
    console.print(f"{'disabled' if changed else 'already disabled'}: {email.strip().lower()}")


@users_app.command("reset")
def users_reset(email: Annotated[str, typer.Argument(help="The account's e-mail.")]) -> None:
    """Give an account a new temporary password (and re-enable it); printed once."""
    engine = store_engine()
    try:
        with write_lock(engine), engine.begin() as conn:
            secret = reset_password(conn, email, _now(), actor=_actor())
    except AccountNotFound as exc:
        raise CliFailure(str(exc)) from None
    console.print(f"reset {email.strip().lower()}: its sessions ended")
    console.print(f"temporary password (changed at first sign-in): {secret}")


@users_app.command("import")
def users_import(
    path: Annotated[
        Path, typer.Argument(help="CSV of office code, role, e-mail (a header line is optional).")
    ],
    out: Annotated[
        Path,
        typer.Option(help="New file for the temporary passwords (e-mail, password); mode 0600."),
    ],
) -> None:
    """Add the accounts of a file that are not there yet; a file with any bad line is refused."""
    try:
        text = path.read_text(encoding="utf-8-sig")
    except (OSError, UnicodeDecodeError) as exc:
        raise CliUsageError(f"cannot read {path}: {type(exc).__name__}") from None
    if out.exists():
        raise CliUsageError(f"{out} exists: the passwords go to a new file")
    lines, errors = parse_accounts_csv(text)
    if errors:
        for number, problem in errors[:_ERRORS_SHOWN]:
            typer.echo(f"{path}:{number}: {problem}", err=True)
        raise CliUsageError(f"{len(errors)} bad lines in {path}; nothing imported")
    engine = store_engine()
    # Opened before anything is stored, so a passwords file that cannot be written stops
    # the import instead of leaving accounts nobody knows the password of.
    try:
        fd = os.open(out, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except OSError as exc:
        raise CliUsageError(f"cannot create {out}: {exc.strerror}") from None
    try:
        with (
            os.fdopen(fd, "w", newline="", encoding="utf-8") as handle,
            write_lock(engine),
            engine.begin() as conn,
        ):
            result = import_accounts(conn, lines, _now(), actor=_actor())
            writer = csv.writer(handle)
            writer.writerow(["email", "temporary_password"])
            writer.writerows(result.created)
            # Written out before the accounts commit: no account without its password.
            handle.flush()
            os.fsync(handle.fileno())
    except BaseException:
        out.unlink(missing_ok=True)
        raise
    console.print(
        f"{len(result.created):,} accounts added, {len(result.existing):,} already there; "
        f"temporary passwords in {out}"
    )
