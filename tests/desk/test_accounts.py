"""The province admin's accounts page: add, disable, reset; nobody else reaches it."""

from __future__ import annotations

import re
from collections.abc import Callable

from fastapi.testclient import TestClient
from sqlalchemy import select

from integrations.store.audit import AUDIT, verify_audit
from integrations.store.desk_accounts import ACCOUNTS_SUBJECT, find_account
from tests.desk.conftest import KABUPATEN, OFFICER, PROVINCE, Desk, csrf_of, sign_in

Browser = Callable[[str], TestClient]
NEW = "kec.wiyung@surabaya.go.id"


def _secret(html: str) -> str:
    found = re.search(r"ditampilkan sekali\): <strong>([^<]+)</strong>", html)
    assert found, "no temporary password on the page"
    return found.group(1)


def test_only_the_province_admin_manages_accounts(desk: Desk, browser: Browser) -> None:
    for email in (OFFICER, KABUPATEN):
        client = browser(email)
        assert client.get("/accounts").status_code == 404
        token = csrf_of(client.get("/handoffs").text)
        added = client.post(
            "/accounts", data={"email": NEW, "office": "35.78.03", "csrf_token": token}
        )
        assert added.status_code == 404
    assert "Akun" in browser(PROVINCE).get("/accounts").text


def test_add_disable_and_reset_from_the_page_are_audited(desk: Desk, browser: Browser) -> None:
    admin = browser(PROVINCE)
    page = admin.get("/accounts")
    assert OFFICER in page.text
    added = admin.post(
        "/accounts",
        data={
            "email": NEW,
            "office": "kecamatan:35.78.03",
            "role": "officer",
            "csrf_token": csrf_of(page.text),
        },
    )
    assert added.status_code == 200
    secret = _secret(added.text)
    newcomer = desk.client()
    assert sign_in(newcomer, NEW, secret).headers["location"] == "/password"

    victim = browser(OFFICER)
    with desk.engine.connect() as conn:
        officer_id = find_account(conn, OFFICER).id
    token = csrf_of(admin.get("/accounts").text)
    assert (
        admin.post(f"/accounts/{officer_id}/disable", data={"csrf_token": token}).status_code == 200
    )
    assert victim.get("/handoffs").headers["location"] == "/login"
    reset = admin.post(f"/accounts/{officer_id}/reset", data={"csrf_token": token})
    assert sign_in(desk.client(), OFFICER, _secret(reset.text)).headers["location"] == "/password"

    with desk.engine.connect() as conn:
        rows = conn.execute(select(AUDIT).where(AUDIT.c.handoff_id == ACCOUNTS_SUBJECT)).all()
        assert verify_audit(conn).ok
    assert [(r.to_state, r.actor) for r in rows] == [
        ("added", f"desk:{PROVINCE}"),
        ("disabled", f"desk:{PROVINCE}"),
        ("reset", f"desk:{PROVINCE}"),
    ]
    assert all(NEW not in r.reason and OFFICER not in r.reason for r in rows)


def test_bad_input_is_refused_and_shown_escaped(desk: Desk, browser: Browser) -> None:
    admin = browser(PROVINCE)
    token = csrf_of(admin.get("/accounts").text)
    bad = admin.post(
        "/accounts",
        data={"email": NEW, "office": "<script>x</script>:1", "csrf_token": token},
    )
    assert bad.status_code == 400
    assert "<script>x" not in bad.text and "&lt;script&gt;x" in bad.text
    assert admin.post("/accounts", data={"email": NEW, "office": "35.78.03"}).status_code == 403
    with desk.engine.connect() as conn:
        assert find_account(conn, NEW) is None
        me = find_account(conn, PROVINCE).id
    own = admin.post(f"/accounts/{me}/disable", data={"csrf_token": token})
    assert own.status_code == 400
