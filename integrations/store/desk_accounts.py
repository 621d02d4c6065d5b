"""The office desk's accounts in the store: add, disable, reset, import, sign in, change password.

Passwords are hashed with argon2 (argon2-cffi's defaults, rehashed when they change). A new
or reset account gets a random temporary password and must choose its own at its first
sign-in. Every change that ends an account's sessions (a reset, a disable, a new password)
raises its `session_version`, which the desk's session cookie carries. Each successful
sign-in is written to the audit chain with the account's e-mail and office.
"""

from __future__ import annotations

import csv
import functools
import io
import os
import secrets
from collections.abc import Iterable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError, VerifyMismatchError
from sqlalchemy import Connection, func, select

from integrations.store.audit import STORE_SUBJECT_PREFIX, ChainWriter
from integrations.store.common import to_utc
from integrations.store.tables import table_of
from models.desk import Account, DeskOffice, Role, check_email, check_password, parse_role
from models.desk_tables import DeskAccount

__all__ = [
    "ACCOUNT",
    "ACCOUNTS_SUBJECT",
    "SIGN_IN_SUBJECT",
    "AccountExists",
    "AccountNotFound",
    "ImportResult",
    "account_of",
    "add_account",
    "change_password",
    "disable_account",
    "find_account",
    "get_account",
    "import_accounts",
    "list_accounts",
    "parse_accounts_csv",
    "record_sign_in",
    "reset_password",
    "verify_password",
]

ACCOUNT = table_of(DeskAccount)
SIGN_IN_SUBJECT = f"{STORE_SUBJECT_PREFIX}desk-sign-in"
"""Audit-chain subject of a desk sign-in."""
ACCOUNTS_SUBJECT = f"{STORE_SUBJECT_PREFIX}desk-accounts"
"""Audit-chain subject of a change to the accounts made by an admin (page or CLI)."""

_HASHER = PasswordHasher()
# Temporary passwords are random (96 bits), so a slow hash adds nothing against guessing
# them, while the full cost (about 0.4 s a hash here) would make importing the province's
# 9,900 offices take an hour. They are replaced at first sign-in, hashed at full cost.
_TEMPORARY_HASHER = PasswordHasher(time_cost=1, memory_cost=8192, parallelism=1)


@functools.cache
def _dummy_hash() -> str:
    # A hash no password matches: unknown e-mails cost the same verification as known ones.
    # Made on first use, so that importing this module (every `cettar` command) costs nothing.
    return _HASHER.hash(secrets.token_urlsafe(16))


class AccountNotFound(LookupError):
    """No desk account with this e-mail."""


class AccountExists(ValueError):
    """A desk account with this e-mail exists already."""


def temporary_password() -> str:
    """A random password to hand over once; its holder must change it at first sign-in."""
    return secrets.token_urlsafe(12)


def hash_password(password: str) -> str:
    """The argon2 hash of a password its holder chose."""
    return _HASHER.hash(password)


def _hash_temporary(password: str) -> str:
    return _TEMPORARY_HASHER.hash(password)


def account_of(row: Any) -> Account:
    """The access rules' view of a stored account row."""
    return Account(row.email, DeskOffice.parse(row.office), Role(row.role), bool(row.active))


def get_account(conn: Connection, account_id: int) -> Any | None:
    """The stored row of one account by id; None when there is none."""
    return conn.execute(select(ACCOUNT).where(ACCOUNT.c.id == account_id)).first()


def find_account(conn: Connection, email: str) -> Any | None:
    """The stored row of one account by e-mail (any case); None when there is none."""
    key = str(email).strip().lower()
    return conn.execute(select(ACCOUNT).where(ACCOUNT.c.email == key)).first()


def _audit_change(
    conn: Connection, action: str, actor: str | None, reason: str, at: datetime
) -> None:
    """One chain row for an admin's change; none when no actor is named (tests, tools)."""
    if actor is None:
        return
    chain = ChainWriter(conn)
    # Accounts are named by number: an e-mail is the person's, and kept out of the chain.
    chain.record(ACCOUNTS_SUBJECT, action, actor=actor[:60], reason=reason[:500], at=at)
    chain.flush()


def _require(conn: Connection, email: str) -> Any:
    row = find_account(conn, email)
    if row is None:
        raise AccountNotFound(f"no desk account {str(email).strip().lower()[:60]}")
    return row


def add_account(
    conn: Connection,
    email: str,
    office: str,
    role: str,
    now: datetime,
    *,
    password: str | None = None,
    actor: str | None = None,
) -> str:
    """Add an account; returns its temporary password (or `password`, then no change forced).

    With `actor` (the admin), the change is written to the audit chain.
    """
    address = check_email(email)
    desk_office = DeskOffice.parse(office)
    desk_role = parse_role(role)
    if find_account(conn, address) is not None:
        raise AccountExists(f"a desk account {address} exists already")
    given = password is not None
    secret = check_password(password, address) if password is not None else temporary_password()
    at = to_utc(now)
    made = conn.execute(
        ACCOUNT.insert().values(
            email=address,
            office=desk_office.key,
            role=desk_role.value,
            password_hash=hash_password(secret) if given else _hash_temporary(secret),
            must_change_password=not given,
            active=True,
            session_version=1,
            created_at=at,
            updated_at=at,
            last_sign_in_at=None,
        )
    )
    number = made.inserted_primary_key[0] if made.inserted_primary_key else "?"
    _audit_change(
        conn, "added", actor, f"account #{number}: {desk_office.key}, {desk_role.value}", at
    )
    return secret


def disable_account(
    conn: Connection, email: str, now: datetime, *, actor: str | None = None
) -> bool:
    """Disable an account and end its sessions; False when it was disabled already."""
    row = _require(conn, email)
    if not row.active:
        return False
    at = to_utc(now)
    conn.execute(
        ACCOUNT.update()
        .where(ACCOUNT.c.id == row.id)
        .values(active=False, session_version=row.session_version + 1, updated_at=at)
    )
    _audit_change(conn, "disabled", actor, f"account #{row.id}: {row.office}", at)
    return True


def reset_password(conn: Connection, email: str, now: datetime, *, actor: str | None = None) -> str:
    """Give an account a new temporary password (re-enabling it); returns the password."""
    row = _require(conn, email)
    secret = temporary_password()
    conn.execute(
        ACCOUNT.update()
        .where(ACCOUNT.c.id == row.id)
        .values(
            password_hash=_hash_temporary(secret),
            must_change_password=True,
            active=True,
            session_version=row.session_version + 1,
            updated_at=to_utc(now),
        )
    )
    _audit_change(conn, "reset", actor, f"account #{row.id}: {row.office}", to_utc(now))
    return secret


def change_password(conn: Connection, account_id: int, new_password: str, now: datetime) -> int:
    """Set the account's own password; returns its new session version (older sessions end)."""
    row = get_account(conn, account_id)
    if row is None:
        raise AccountNotFound(f"no desk account #{account_id}")
    check_password(new_password, row.email)
    if _matches(row.password_hash, new_password):
        raise ValueError("kata sandi baru harus berbeda dari yang lama")
    version = int(row.session_version) + 1
    conn.execute(
        ACCOUNT.update()
        .where(ACCOUNT.c.id == row.id)
        .values(
            password_hash=hash_password(new_password),
            must_change_password=False,
            session_version=version,
            updated_at=to_utc(now),
        )
    )
    return version


def _matches(stored_hash: str, password: str) -> bool:
    try:
        return _HASHER.verify(stored_hash, password)
    except (VerifyMismatchError, VerificationError, InvalidHashError):
        return False


def verify_password(conn: Connection, email: str, password: str) -> Any | None:
    """The active account whose password this is; None otherwise (same cost either way)."""
    row = find_account(conn, email)
    if row is None:
        _matches(_dummy_hash(), password)
        return None
    if not _matches(row.password_hash, password) or not row.active:
        return None
    # A temporary password is replaced at this sign-in anyway; a chosen one follows the
    # hasher's current parameters.
    if not row.must_change_password and _HASHER.check_needs_rehash(row.password_hash):
        conn.execute(
            ACCOUNT.update()
            .where(ACCOUNT.c.id == row.id)
            .values(password_hash=hash_password(password))
        )
    return row


def record_sign_in(conn: Connection, row: Any, now: datetime) -> None:
    """Note the sign-in on the account and write it to the audit chain (user and office)."""
    at = to_utc(now)
    chain = ChainWriter(conn)
    conn.execute(ACCOUNT.update().where(ACCOUNT.c.id == row.id).values(last_sign_in_at=at))
    chain.record(
        SIGN_IN_SUBJECT,
        "signed-in",
        actor=f"desk:{row.email}"[:60],
        reason=f"office {row.office}, role {row.role}",
        at=at,
    )
    chain.flush()


# --- bulk import -----------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class AccountLine:
    """One valid line of an accounts file."""

    line: int
    email: str
    office: str
    role: str


@dataclass(slots=True)
class ImportResult:
    """What an import did: accounts made (with their temporary passwords), skipped, refused."""

    created: list[tuple[str, str]] = field(default_factory=list)
    existing: list[str] = field(default_factory=list)
    errors: list[tuple[int, str]] = field(default_factory=list)


_COLUMNS = ("office", "role", "email")


def parse_accounts_csv(text: str) -> tuple[list[AccountLine], list[tuple[int, str]]]:
    """The valid lines of a CSV of office code, role, e-mail, and the problems of the others.

    A first line naming the columns (office, role, email, in any order) is read as a header;
    without one the columns are taken in that order.
    """
    rows = list(csv.reader(io.StringIO(text.lstrip("\ufeff"))))
    order = list(_COLUMNS)
    start = 0
    if rows and {c.strip().lower() for c in rows[0]} >= set(_COLUMNS):
        order = [c.strip().lower() for c in rows[0]]
        start = 1
    lines: list[AccountLine] = []
    errors: list[tuple[int, str]] = []
    seen: set[str] = set()
    for number, cells in enumerate(rows[start:], start=start + 1):
        if not any(c.strip() for c in cells):
            continue
        values = dict(zip(order, (c.strip() for c in cells), strict=False))
        try:
            email = check_email(values.get("email", ""))
            office = DeskOffice.parse(values.get("office", "")).key
            role = parse_role(values.get("role", "")).value
        except ValueError as exc:
            # The message names the rule, never the line's other cells.
            errors.append((number, str(exc).splitlines()[0][:200]))
            continue
        if email in seen:
            errors.append((number, f"{email} appears twice in the file"))
            continue
        seen.add(email)
        lines.append(AccountLine(number, email, office, role))
    return lines, errors


def import_accounts(
    conn: Connection,
    lines: Sequence[AccountLine],
    now: datetime,
    *,
    workers: int | None = None,
    actor: str | None = None,
) -> ImportResult:
    """Add the accounts of `lines` not stored yet, each with a temporary password (idempotent).

    Hashing dominates: it runs on a thread per core (argon2-cffi releases the GIL).
    """
    result = ImportResult()
    stored = _stored_emails(conn, [line.email for line in lines])
    new = [line for line in lines if line.email not in stored]
    result.existing = [line.email for line in lines if line.email in stored]
    secrets_ = [temporary_password() for _ in new]
    with ThreadPoolExecutor(max_workers=workers or os.cpu_count() or 1) as pool:
        hashes = list(pool.map(_hash_temporary, secrets_))
    at = to_utc(now)
    rows = [
        {
            "email": line.email,
            "office": line.office,
            "role": line.role,
            "password_hash": digest,
            "must_change_password": True,
            "active": True,
            "session_version": 1,
            "created_at": at,
            "updated_at": at,
            "last_sign_in_at": None,
        }
        for line, digest in zip(new, hashes, strict=True)
    ]
    for start in range(0, len(rows), 1000):
        conn.execute(ACCOUNT.insert(), rows[start : start + 1000])
    result.created = [(line.email, secret) for line, secret in zip(new, secrets_, strict=True)]
    _audit_change(
        conn,
        "imported",
        actor,
        f"{len(result.created)} accounts added, {len(result.existing)} already there",
        at,
    )
    return result


def list_accounts(
    conn: Connection, *, search: str = "", limit: int = 100, offset: int = 0
) -> tuple[list[Any], int]:
    """Accounts whose e-mail or office contains `search`, by office then e-mail, and the count."""
    where = []
    if search:
        needle = search.strip().lower()
        where.append(
            ACCOUNT.c.email.contains(needle, autoescape=True)
            | ACCOUNT.c.office.contains(needle, autoescape=True)
        )
    total = int(conn.execute(select(func.count()).select_from(ACCOUNT).where(*where)).scalar_one())
    rows = conn.execute(
        select(ACCOUNT)
        .where(*where)
        .order_by(ACCOUNT.c.office, ACCOUNT.c.email)
        .limit(limit)
        .offset(offset)
    ).all()
    return list(rows), total


def _stored_emails(conn: Connection, emails: Iterable[str]) -> set[str]:
    wanted = sorted(set(emails))
    found: set[str] = set()
    for start in range(0, len(wanted), 1000):
        part = wanted[start : start + 1000]
        found.update(
            conn.execute(select(ACCOUNT.c.email).where(ACCOUNT.c.email.in_(part))).scalars()
        )
    return found
