"""Desk accounts in the store: add, disable, reset, change password, sign in, bulk import."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from sqlalchemy import Engine, select

from integrations.store.audit import AUDIT, verify_audit
from integrations.store.desk_accounts import (
    ACCOUNT,
    SIGN_IN_SUBJECT,
    AccountExists,
    AccountNotFound,
    account_of,
    add_account,
    change_password,
    disable_account,
    find_account,
    import_accounts,
    parse_accounts_csv,
    record_sign_in,
    reset_password,
    verify_password,
)
from models.desk import OfficeLevel, Role

NOW = datetime(2026, 11, 3, 2, 0, tzinfo=UTC)
EMAIL = "kec.karangpilang@surabaya.go.id"


def test_an_added_account_signs_in_with_its_temporary_password_and_must_change_it(
    store: Engine,
) -> None:
    with store.begin() as conn:
        secret = add_account(conn, EMAIL.upper(), "kecamatan:35.78.01", "officer", NOW)
    with store.begin() as conn:
        row = find_account(conn, EMAIL)
        assert row is not None
        # Random temporary passwords get a cheap hash; chosen ones the full cost.
        assert row.password_hash.startswith("$argon2id$v=19$m=8192,t=1,p=1$")
        assert secret not in row.password_hash
        assert row.must_change_password and row.active and row.session_version == 1
        account = account_of(row)
        assert (account.office.level, account.role) == (OfficeLevel.KECAMATAN, Role.OFFICER)
        assert verify_password(conn, EMAIL, "wrong password") is None
        assert verify_password(conn, "nobody@example.go.id", secret) is None
        assert verify_password(conn, EMAIL, secret) is not None
        version = change_password(conn, row.id, "kenanga-merah-12", NOW)
    with store.begin() as conn:
        row = find_account(conn, EMAIL)
        assert not row.must_change_password and row.session_version == version == 2
        assert row.password_hash.startswith("$argon2id$v=19$m=65536,t=3,p=4$")
        assert verify_password(conn, EMAIL, secret) is None
        assert verify_password(conn, EMAIL, "kenanga-merah-12") is not None
        with pytest.raises(ValueError, match="berbeda"):
            change_password(conn, row.id, "kenanga-merah-12", NOW)
        with pytest.raises(ValueError, match="minimal"):
            change_password(conn, row.id, "pendek", NOW)
        with pytest.raises(AccountExists):
            add_account(conn, EMAIL, "kecamatan:35.78.02", "viewer", NOW)


def test_disable_and_reset_end_the_sessions(store: Engine) -> None:
    with store.begin() as conn:
        add_account(conn, EMAIL, "35.78.01", "viewer", NOW, password="kenanga-merah-12")
        assert disable_account(conn, EMAIL, NOW)
        assert not disable_account(conn, EMAIL, NOW)
        assert verify_password(conn, EMAIL, "kenanga-merah-12") is None
        row = find_account(conn, EMAIL)
        assert (row.active, row.session_version) == (False, 2)
        secret = reset_password(conn, EMAIL, NOW)
        row = find_account(conn, EMAIL)
        assert (row.active, row.must_change_password, row.session_version) == (True, True, 3)
        assert verify_password(conn, EMAIL, secret) is not None
        with pytest.raises(AccountNotFound):
            reset_password(conn, "nobody@example.go.id", NOW)


@pytest.mark.parametrize(
    ("office", "role", "email"),
    [
        ("kecamatan:35.78.99", "officer", EMAIL),
        ("kecamatan:35.78.01", "camat", EMAIL),
        ("kecamatan:35.78.01", "officer", "not-an-email"),
    ],
)
def test_bad_accounts_are_refused(store: Engine, office: str, role: str, email: str) -> None:
    with store.begin() as conn, pytest.raises(ValueError):
        add_account(conn, email, office, role, NOW)


def test_a_sign_in_is_an_audit_chain_row_with_user_and_office(store: Engine) -> None:
    with store.begin() as conn:
        add_account(conn, EMAIL, "kecamatan:35.78.01", "officer", NOW)
        record_sign_in(conn, find_account(conn, EMAIL), NOW)
    with store.connect() as conn:
        rows = conn.execute(select(AUDIT)).all()
        assert [(r.handoff_id, r.to_state, r.actor, r.reason) for r in rows] == [
            (
                SIGN_IN_SUBJECT,
                "signed-in",
                f"desk:{EMAIL}",
                "office kecamatan:35.78.01, role officer",
            )
        ]
        assert verify_audit(conn).ok
        assert find_account(conn, EMAIL).last_sign_in_at is not None


CSV = """office,role,email
35.78.01,officer,kec.karangpilang@surabaya.go.id
kecamatan:35.78.02,viewer,kec.wonocolo@surabaya.go.id
35.78,officer,dinsos@surabaya.go.id
35.78.01.1001,officer,desa.karangpilang@surabaya.go.id
pkh,admin,pkh@kemensos.go.id
35,admin,ops@jatimprov.go.id
35.78.99,officer,typo@surabaya.go.id
35.78.01,chief,role@surabaya.go.id
35.78.01,officer,kec.karangpilang@surabaya.go.id

"""


def test_bulk_import_is_checked_line_by_line_and_idempotent(store: Engine) -> None:
    lines, errors = parse_accounts_csv(CSV)
    assert [e[0] for e in errors] == [8, 9, 10]
    assert "appears twice" in errors[2][1]
    with store.begin() as conn:
        first = import_accounts(conn, lines, NOW, workers=2)
    assert len(first.created) == 6 and first.existing == []
    assert len({secret for _, secret in first.created}) == 6
    with store.begin() as conn:
        again = import_accounts(conn, lines, NOW)
        offices = dict(conn.execute(select(ACCOUNT.c.email, ACCOUNT.c.office)).all())
        assert all(r.must_change_password for r in conn.execute(select(ACCOUNT)))
        email, secret = first.created[0]
        assert verify_password(conn, email, secret) is not None
    assert again.created == [] and len(again.existing) == 6
    assert offices["dinsos@surabaya.go.id"] == "kabupaten:35.78"
    assert offices["pkh@kemensos.go.id"] == "programme:pkh"
    assert offices["ops@jatimprov.go.id"] == "province:35"


def test_a_file_without_a_header_takes_office_role_email() -> None:
    lines, errors = parse_accounts_csv("35.78.01,officer,a@example.go.id\n")
    assert errors == []
    assert [(x.office, x.role, x.email) for x in lines] == [
        ("kecamatan:35.78.01", "officer", "a@example.go.id")
    ]
