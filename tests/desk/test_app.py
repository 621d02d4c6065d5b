"""The desk over HTTP on a real SQLite store: sign-in, scoping, actions, CSRF, escaping, reveal."""

from __future__ import annotations

import io
import re
import zipfile
from collections.abc import Callable
from dataclasses import replace
from datetime import timedelta

import httpx
from fastapi.testclient import TestClient
from openpyxl import load_workbook
from sqlalchemy import select

from desk.store import DECISION_SUBJECT, REVEAL_SUBJECT
from integrations.store.audit import AUDIT, verify_audit
from integrations.store.decisions import apply_decisions
from integrations.store.desk_accounts import SIGN_IN_SUBJECT
from integrations.store.tables import DECISION, HANDOFF
from models.desk import MISROUTED_PREFIX
from models.handoffs import has_clear_id
from tests.desk.conftest import (
    KABUPATEN,
    NEWCOMER,
    NOW,
    OFFICER,
    OTHER_OFFICER,
    PASSWORD,
    PROVINCE,
    VIEWER,
    Desk,
    csrf_of,
    sign_in,
)

Browser = Callable[[str], TestClient]


def _state(desk: Desk, handoff_id: str) -> tuple[str, str, str]:
    with desk.engine.connect() as conn:
        row = conn.execute(select(HANDOFF).where(HANDOFF.c.id == handoff_id)).one()
    return row.state, row.office, row.decision_reason


def _audit(desk: Desk) -> list[tuple[str, str, str, str]]:
    with desk.engine.connect() as conn:
        rows = conn.execute(select(AUDIT).order_by(AUDIT.c.seq)).all()
    return [(r.handoff_id, r.to_state, r.actor, r.reason) for r in rows]


def _chain_ok(desk: Desk) -> None:
    with desk.engine.connect() as conn:
        report = verify_audit(conn)
    assert report.ok, report.problem


def _decide(
    client: TestClient, handoff_id: str, action: str, reason: str = "", token: str | None = None
) -> httpx.Response:
    page = client.get(f"/handoffs/{handoff_id}")
    csrf = csrf_of(page.text) if token is None else token
    return client.post(
        f"/handoffs/{handoff_id}/decision",
        data={"action": action, "reason": reason, "csrf_token": csrf},
    )


# --- sign-in ---------------------------------------------------------------------------------


def test_sign_in_opens_the_list_and_is_audited_with_user_and_office(desk: Desk) -> None:
    client = desk.client()
    assert client.get("/handoffs").headers["location"] == "/login"
    response = sign_in(client, OFFICER)
    assert response.status_code == 303 and response.headers["location"] == "/handoffs"
    cookie = response.headers["set-cookie"]
    assert "HttpOnly" in cookie and "SameSite=lax" in cookie
    page = client.get("/handoffs")
    assert page.status_code == 200
    assert "Kecamatan Karang Pilang (35.78.01)" in page.text
    assert '<meta name="viewport"' in page.text and 'lang="id"' in page.text
    assert (
        SIGN_IN_SUBJECT,
        "signed-in",
        f"desk:{OFFICER}",
        "office kecamatan:35.78.01, role officer",
    ) in _audit(desk)
    _chain_ok(desk)


def test_a_wrong_password_is_refused_without_saying_which_part(desk: Desk) -> None:
    client = desk.client()
    for email in (OFFICER, "nobody@example.go.id"):
        response = sign_in(client, email, "not-the-password")
        assert response.status_code == 401
        assert "E-mail atau kata sandi salah." in response.text
    assert client.get("/handoffs").status_code == 303


def test_wrong_passwords_are_rate_limited_per_account_and_address(desk: Desk) -> None:
    client = desk.client()
    for _ in range(desk.config.login_max_failures):
        assert sign_in(client, OFFICER, "not-the-password").status_code == 401
    locked = sign_in(client, OFFICER)  # the right password, but the pair is locked
    assert locked.status_code == 429
    assert "Terlalu banyak percobaan" in locked.text
    assert int(locked.headers["retry-after"]) > 0
    # Another account from the same address is not locked out.
    assert sign_in(desk.client(), VIEWER).status_code == 303
    desk.clock[0] = NOW + timedelta(seconds=desk.config.login_window_s + 1)
    assert sign_in(client, OFFICER).status_code == 303


def test_a_new_account_must_change_its_password_first(desk: Desk) -> None:
    client = desk.client()
    response = sign_in(client, NEWCOMER, desk.newcomer_password)
    assert response.headers["location"] == "/password"
    assert client.get("/handoffs").headers["location"] == "/password"
    form = client.get("/password")
    assert "masuk pertama" in form.text
    token = csrf_of(form.text)
    weak = client.post(
        "/password",
        data={
            "current": desk.newcomer_password,
            "new": "pendek",
            "confirm": "pendek",
            "csrf_token": token,
        },
    )
    assert weak.status_code == 400 and "minimal 10" in weak.text
    done = client.post(
        "/password",
        data={
            "current": desk.newcomer_password,
            "new": "melati-putih-99",
            "confirm": "melati-putih-99",
            "csrf_token": token,
        },
    )
    assert done.headers["location"] == "/handoffs"
    assert client.get("/handoffs").status_code == 200
    assert sign_in(desk.client(), NEWCOMER, desk.newcomer_password).status_code == 401
    assert sign_in(desk.client(), NEWCOMER, "melati-putih-99").status_code == 303


def test_sessions_end_after_the_idle_hours_and_on_sign_out(desk: Desk, browser: Browser) -> None:
    client = browser(OFFICER)
    desk.clock[0] = NOW + timedelta(hours=7)
    assert client.get("/handoffs").status_code == 200  # the idle time restarts here
    desk.clock[0] = NOW + timedelta(hours=14)
    assert client.get("/handoffs").status_code == 200
    desk.clock[0] = NOW + timedelta(hours=22, minutes=1)
    assert client.get("/handoffs").headers["location"] == "/login"
    client = browser(OFFICER)
    token = csrf_of(client.get("/handoffs").text)
    assert client.post("/logout", data={"csrf_token": token}).headers["location"] == "/login"
    assert client.get("/handoffs").headers["location"] == "/login"


def test_a_forged_cookie_is_no_session(desk: Desk, browser: Browser) -> None:
    client = browser(OFFICER)
    value = client.cookies.get("cettar_desk")
    assert value
    client.cookies.set("cettar_desk", value[:-3] + ("AAA" if value[-3:] != "AAA" else "BBB"))
    assert client.get("/handoffs").headers["location"] == "/login"


# --- scoping ---------------------------------------------------------------------------------


def _listed(client: TestClient, query: str = "status=all") -> set[str]:
    page = client.get(f"/handoffs?{query}")
    assert page.status_code == 200
    return set(re.findall(r'href="/handoffs/([0-9a-f]{32})"', page.text))


def test_each_office_lists_only_its_area(desk: Desk, browser: Browser) -> None:
    h = desk.handoffs
    own = {h["own"], h["own2"], h["late"]}
    assert _listed(browser(OFFICER)) == own
    assert _listed(browser(VIEWER)) == own
    assert _listed(browser(OTHER_OFFICER)) == {h["other"]}
    assert _listed(browser(KABUPATEN)) == own | {h["other"]}
    assert _listed(browser(PROVINCE)) == set(h.values())
    # Tabs: the escalated one is overdue and escalated; nothing is settled yet.
    officer = browser(OFFICER)
    assert _listed(officer, "status=overdue") == {h["late"]}
    assert _listed(officer, "status=escalated") == {h["late"]}
    assert _listed(officer, "status=settled") == set()
    assert _listed(browser(PROVINCE), "status=all&kecamatan=35.78.02") == {h["other"]}


def test_the_list_pages(desk: Desk, browser: Browser) -> None:
    # Two to a page: the three handoffs of the kecamatan take two pages.
    desk.config = replace(desk.config, page_size=2)
    client = browser(OFFICER)
    first = client.get("/handoffs?status=all")
    assert "halaman 1 dari 2" in first.text and "Berikutnya" in first.text
    second = _listed(client, "status=all&page=2")
    assert len(_listed(client, "status=all&page=1") | second) == 3 and len(second) == 1


def test_another_offices_handoff_is_404_by_url(desk: Desk, browser: Browser) -> None:
    client = browser(OFFICER)
    other = desk.handoffs["other"]
    token = csrf_of(client.get("/handoffs").text)
    assert client.get(f"/handoffs/{other}").status_code == 404
    assert client.get(f"/handoffs/{'0' * 32}").status_code == 404
    for path, data in (
        (f"/handoffs/{other}/decision", {"action": "resolve", "reason": "x"}),
        (f"/handoffs/{other}/reveal", {}),
    ):
        assert client.post(path, data={**data, "csrf_token": token}).status_code == 404
    assert _state(desk, other)[0] == "delivered"


def test_a_viewer_reads_but_cannot_act_or_reveal(desk: Desk, browser: Browser) -> None:
    client = browser(VIEWER)
    hid = desk.handoffs["own"]
    page = client.get(f"/handoffs/{hid}")
    assert page.status_code == 200
    assert "/decision" not in page.text and "/reveal" not in page.text
    token = csrf_of(page.text)
    refused = client.post(
        f"/handoffs/{hid}/decision", data={"action": "resolve", "reason": "", "csrf_token": token}
    )
    assert refused.status_code == 403
    assert client.post(f"/handoffs/{hid}/reveal", data={"csrf_token": token}).status_code == 403
    assert _state(desk, hid)[0] == "delivered"


def test_a_form_without_its_csrf_token_is_refused(desk: Desk, browser: Browser) -> None:
    client = browser(OFFICER)
    hid = desk.handoffs["own"]
    for token in ("", "forged-token"):
        response = _decide(client, hid, "resolve", "ok", token=token)
        assert response.status_code == 403
        assert "Formulir kedaluwarsa" in response.text
    assert _state(desk, hid)[0] == "delivered"
    # The sign-in form is no exception.
    fresh = desk.client()
    fresh.get("/login")
    assert fresh.post("/login", data={"email": OFFICER, "password": PASSWORD}).status_code == 403


# --- decisions -------------------------------------------------------------------------------

HOSTILE = "<script>alert('x')</script> \"'; DROP TABLE handoff; -- & <b>tebal</b>"


def test_a_reason_with_markup_or_sql_is_stored_as_typed_and_shown_escaped(
    desk: Desk, browser: Browser
) -> None:
    client = browser(OFFICER)
    hid = desk.handoffs["own"]
    response = _decide(client, hid, "reject", HOSTILE)
    assert response.status_code == 303
    state, _office, reason = _state(desk, hid)
    assert (state, reason) == ("rejected", HOSTILE)
    with desk.engine.connect() as conn:
        assert (
            conn.execute(select(DECISION.c.reason).where(DECISION.c.handoff_id == hid)).scalar_one()
            == HOSTILE
        )
    page = client.get(f"/handoffs/{hid}")
    assert "<script>alert" not in page.text and "<b>tebal</b>" not in page.text
    assert "&lt;script&gt;alert(&#39;x&#39;)&lt;/script&gt;" in page.text
    assert "DROP TABLE handoff" in page.text
    _chain_ok(desk)


def test_a_rejection_needs_a_reason(desk: Desk, browser: Browser) -> None:
    client = browser(OFFICER)
    hid = desk.handoffs["own"]
    for action in ("reject", "return"):
        response = _decide(client, hid, action, "   ")
        assert response.status_code == 400
        assert "alasan wajib diisi" in response.text
    assert _state(desk, hid)[0] == "delivered"


def test_resolving_goes_through_the_decision_rule_and_the_audit_chain(
    desk: Desk, browser: Browser
) -> None:
    client = browser(OFFICER)
    hid = desk.handoffs["own"]
    assert _decide(client, hid, "acknowledge").headers["location"].endswith("done=applied")
    page = client.get(f"/handoffs/{hid}")
    assert 'value="acknowledge"' not in page.text and 'value="resolve"' in page.text
    assert _decide(client, hid, "resolve", "Sudah dicek di lapangan").status_code == 303
    assert _state(desk, hid)[:1] == ("resolved",)
    trail = [a for a in _audit(desk) if a[0] == hid]
    assert trail[-2:] == [
        (hid, "acknowledged", f"desk:{OFFICER}", "kecamatan:35.78.01"),
        (hid, "resolved", f"desk:{OFFICER}", "kecamatan:35.78.01: Sudah dicek di lapangan"),
    ]
    # The detail shows the trail; a settled handoff offers nothing more.
    page = client.get(f"/handoffs/{hid}")
    assert "Sudah dicek di lapangan" in page.text and "/decision" not in page.text
    _chain_ok(desk)


def test_a_desk_decision_and_an_inbox_decision_on_one_handoff(desk: Desk, browser: Browser) -> None:
    client = browser(OFFICER)
    hid = desk.handoffs["own2"]
    assert _decide(client, hid, "resolve", "selesai").status_code == 303
    later = NOW + timedelta(hours=1)
    with desk.engine.begin() as conn:
        conn.execute(
            DECISION.insert().values(
                id="inbox-1",
                handoff_id=hid,
                office="kecamatan:35.78.01",
                decision="rejected",
                reason="dari sistem kantor",
                officer="operator",
                decided_at=later,
                updated_at=later,
                applied_at=None,
                outcome="",
            )
        )
        counts = apply_decisions(conn, later)
        outcomes = dict(
            conn.execute(
                select(DECISION.c.id, DECISION.c.outcome).where(DECISION.c.handoff_id == hid)
            ).all()
        )
    assert counts.superseded == 1
    assert sorted(outcomes.values()) == ["applied", "superseded"]
    assert _state(desk, hid)[0] == "resolved"
    _chain_ok(desk)


def test_the_kabupaten_acts_on_what_was_escalated_to_it(desk: Desk, browser: Browser) -> None:
    kab = browser(KABUPATEN)
    late, own = desk.handoffs["late"], desk.handoffs["own"]
    assert 'value="resolve"' not in kab.get(f"/handoffs/{own}").text
    refused = _decide(kab, own, "resolve", "bukan urusan kabupaten")
    assert refused.status_code == 403
    assert _decide(kab, late, "resolve", "ditangani dinsos").status_code == 303
    assert _state(desk, late) == ("resolved", "kabupaten:35.78", "ditangani dinsos")
    summary = kab.get("/summary")
    assert summary.status_code == 200
    assert "Karang Pilang" in summary.text and "Wonocolo" in summary.text
    assert "Donomulyo" not in summary.text
    assert browser(OFFICER).get("/summary").status_code == 404


def test_a_misrouted_handoff_returns_to_the_province(desk: Desk, browser: Browser) -> None:
    client = browser(OFFICER)
    hid = desk.handoffs["own"]
    assert _decide(client, hid, "return", "alamat di Wonocolo").status_code == 303
    assert _state(desk, hid) == (
        "rejected",
        "kecamatan:35.78.01",
        MISROUTED_PREFIX + "alamat di Wonocolo",
    )
    assert _listed(browser(PROVINCE), "status=returned") == {hid}


def test_a_late_repeat_is_recorded_without_moving_the_handoff(desk: Desk, browser: Browser) -> None:
    first, second = browser(OFFICER), desk.client()
    sign_in(second, OFFICER)
    hid = desk.handoffs["own"]
    stale = csrf_of(second.get(f"/handoffs/{hid}").text)
    assert _decide(first, hid, "resolve", "satu").status_code == 303
    # The second tab still shows the form; the desk refuses what is no longer open.
    again = second.post(
        f"/handoffs/{hid}/decision",
        data={"action": "resolve", "reason": "dua", "csrf_token": stale},
    )
    assert again.status_code == 403
    assert _state(desk, hid)[2] == "satu"
    assert DECISION_SUBJECT not in {a[0] for a in _audit(desk)}
    _chain_ok(desk)


# --- personal data ---------------------------------------------------------------------------


def test_a_reveal_shows_the_ids_once_and_is_audited(desk: Desk, browser: Browser) -> None:
    client = browser(OFFICER)
    hid = desk.handoffs["own"]
    resident = desk.residents["own"]
    page = client.get(f"/handoffs/{hid}")
    assert (
        resident.nik not in page.text
        and resident.nik[:4] + "••••••••" + resident.nik[-4:] in page.text
    )
    revealed = client.post(f"/handoffs/{hid}/reveal", data={"csrf_token": csrf_of(page.text)})
    assert revealed.status_code == 200
    assert resident.nik in revealed.text and resident.no_kk in revealed.text
    assert revealed.headers["cache-control"] == "no-store"
    rows = [a for a in _audit(desk) if a[0] == REVEAL_SUBJECT]
    assert rows == [
        (
            REVEAL_SUBJECT,
            "revealed",
            f"desk:{OFFICER}",
            f"handoff {hid}, office kecamatan:35.78.01: NIK/No. KK shown",
        )
    ]
    after = client.get(f"/handoffs/{hid}")
    assert resident.nik not in after.text  # once: the next view is masked again
    assert "NIK/No. KK shown" in after.text  # and the reveal is in the handoff's trail
    _chain_ok(desk)


def _xlsx_text(body: bytes) -> str:
    with zipfile.ZipFile(io.BytesIO(body)) as archive:
        return "\n".join(archive.read(name).decode("utf-8") for name in archive.namelist())


def test_no_clear_nik_or_kk_in_any_page_or_download(desk: Desk, browser: Browser) -> None:
    clear = [v for r in desk.residents.values() for v in (r.nik, r.no_kk)]
    seen = 0
    for email in (OFFICER, VIEWER, OTHER_OFFICER, KABUPATEN, PROVINCE):
        client = browser(email)
        bodies: list[str] = []
        for status in ("open", "overdue", "escalated", "settled", "returned", "all"):
            page = client.get(f"/handoffs?status={status}")
            bodies.append(page.text)
            for hid in set(re.findall(r'href="/handoffs/([0-9a-f]{32})"', page.text)):
                bodies.append(client.get(f"/handoffs/{hid}").text)
        bodies += [client.get(p).text for p in ("/summary", "/password", "/accounts")]
        download = client.get("/handoffs.xlsx?status=all")
        assert download.status_code == 200
        bodies.append(_xlsx_text(download.content))
        for body in bodies:
            assert len(body.encode()) < 100_000
            assert not has_clear_id(body), f"a page of {email} holds a 16-digit run"
            assert not any(v in body for v in clear)
            seen += 1
    assert seen > 20


def test_the_xlsx_download_lists_the_office_with_masked_ids(desk: Desk, browser: Browser) -> None:
    response = browser(OFFICER).get("/handoffs.xlsx?status=all")
    assert response.headers["content-type"].startswith(
        "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
    )
    sheet = load_workbook(io.BytesIO(response.content)).active
    rows = list(sheet.iter_rows(values_only=True))
    assert rows[0][0] == "ID serah terima" and len(rows) == 4
    ids = {r[0] for r in rows[1:]}
    assert ids == {desk.handoffs[n] for n in ("own", "own2", "late")}
    resident = desk.residents["own"]
    masked = resident.nik[:4] + "••••••••" + resident.nik[-4:]
    assert masked in {r[7] for r in rows[1:]}


def test_a_full_page_stays_under_100_kb(desk: Desk, browser: Browser) -> None:
    from integrations.store.handoffs import create_handoffs
    from models.checks import Finding
    from models.handoffs import HandoffKind, Office
    from tests.desk.conftest import CAL, CREATED

    findings = [
        Finding(
            kind=HandoffKind.FARMER_OVER_LAND_CAP,
            subject_token=f"farmer-{i:04d}-token",
            period="2026-MT1",
            receivers=(Office.parse("kecamatan:35.78.01"),),
            evidence={"land_area_ha": 2.5, "poktan_ids": "POKTAN-" + "x" * 200},
        )
        for i in range(2 * desk.config.page_size)
    ]
    with desk.engine.begin() as conn:
        create_handoffs(conn, findings, sender="checks", now=CREATED, calendar=CAL)
    client = browser(OFFICER)
    page = client.get("/handoffs?status=all")
    assert len(_listed(client, "status=all")) == desk.config.page_size
    assert len(page.content) < 100_000
    assert len(client.get(f"/handoffs/{findings[0].keys[0]}").content) < 100_000


def test_a_mangled_request_is_a_page_that_echoes_nothing(desk: Desk, browser: Browser) -> None:
    admin = browser(PROVINCE)
    token = csrf_of(admin.get("/accounts").text)
    response = admin.post("/accounts/<b>x<b>/disable", data={"csrf_token": token})
    assert response.status_code == 400
    assert response.headers["content-type"].startswith("text/html")
    assert "<b>x" not in response.text


def test_the_province_sees_the_scorecard_and_no_one_else_does(desk: Desk, browser: Browser) -> None:
    province = browser(PROVINCE)
    assert 'href="/scorecard"' in province.get("/handoffs").text
    page = province.get("/scorecard")
    assert page.status_code == 200, page.text[:300]
    assert "Rapor kecamatan" in page.text and "Kota Surabaya" in page.text
    assert len(page.content) < 100_000
    assert not has_clear_id(page.text)
    for email in (OFFICER, KABUPATEN):
        other = browser(email)
        assert 'href="/scorecard"' not in other.get("/handoffs").text
        assert other.get("/scorecard").status_code == 404
