"""The desk in a real browser: a kecamatan officer resolves a handoff, a desa uploads its list.

Debian's chromium driven by Playwright, as the Prefect UI tests do, against the desk served
by uvicorn on a free port over a real SQLite store. Without chromium or the `playwright`
package the test skips with the reason; under `CI=true` both are mandatory and their
absence fails it. Screenshots of the list and of the detail page (a phone-sized screen)
are saved in the test's `tmp_path`.
"""

from __future__ import annotations

import os
import re
import socket
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING

import pytest
import uvicorn
from sqlalchemy import select

from integrations.store.audit import AUDIT, verify_audit
from integrations.store.tables import HANDOFF
from tests.browser import chromium_or_skip
from tests.desk.conftest import DESA_OFFICER, OFFICER, PASSWORD, Desk

if TYPE_CHECKING:
    from playwright.sync_api import Page, ViewportSize

pytestmark = [pytest.mark.slow, pytest.mark.timeout(300)]

NAVIGATION_TIMEOUT_MS = 30_000
UI_TIMEOUT_MS = 15_000
# A phone's screen: many office staff open the desk on one.
PHONE: ViewportSize = {"width": 412, "height": 915}
CLEAR_ID = re.compile(r"\d{16}")


@pytest.fixture(scope="module")
def chromium_executable() -> str:
    """The chromium binary Playwright drives; skipped without it, except in CI."""
    return chromium_or_skip("the desk's browser test")


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


@pytest.fixture
def desk_url(desk: Desk) -> Iterator[str]:
    """The desk served by uvicorn in a thread; stopped at the end of the test."""
    port = _free_port()
    server = uvicorn.Server(
        uvicorn.Config(desk.app, host="127.0.0.1", port=port, log_level="warning")
    )
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 30
    while not server.started:
        assert time.monotonic() < deadline, "the desk did not start"
        time.sleep(0.05)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(timeout=10)


@pytest.fixture
def page(chromium_executable: str, desk_url: str) -> Iterator[Page]:
    """A headless chromium page with a phone-sized screen."""
    from playwright.sync_api import expect, sync_playwright

    expect.set_options(timeout=UI_TIMEOUT_MS)
    args = ["--no-sandbox"] if os.geteuid() == 0 else []
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(
            executable_path=chromium_executable, headless=True, args=args
        )
        try:
            view = browser.new_page(viewport=PHONE, locale="id-ID")
            view.set_default_navigation_timeout(NAVIGATION_TIMEOUT_MS)
            view.set_default_timeout(UI_TIMEOUT_MS)
            yield view
        finally:
            browser.close()


def _assert_no_clear_ids(page: Page, view: str) -> None:
    found = len(CLEAR_ID.findall(page.locator("body").inner_text()))
    assert found == 0, f"{view} shows {found} clear 16-digit IDs"  # counted, never printed


def test_a_kecamatan_officer_signs_in_sees_its_list_and_resolves_one(
    page: Page, desk: Desk, desk_url: str, tmp_path: Path
) -> None:
    from playwright.sync_api import expect

    page.goto(f"{desk_url}/handoffs")
    expect(page).to_have_url(f"{desk_url}/login")
    expect(page.get_by_role("heading", name="Masuk ke Meja Kantor")).to_be_visible()
    page.get_by_label("E-mail").fill(OFFICER)
    page.get_by_label("Kata sandi").fill(PASSWORD)
    page.get_by_role("button", name="Masuk").click()

    expect(page).to_have_url(f"{desk_url}/handoffs")
    expect(
        page.get_by_role("heading", name="Serah terima untuk Kecamatan Karang Pilang (35.78.01)")
    ).to_be_visible()
    items = page.locator("a.item")
    expect(items).to_have_count(3)
    own = {desk.handoffs[n] for n in ("own", "own2", "late")}
    hrefs = {items.nth(i).get_attribute("href") for i in range(3)}
    assert hrefs == {f"/handoffs/{h}" for h in own}
    expect(page.get_by_text("terlambat", exact=False).first).to_be_visible()
    _assert_no_clear_ids(page, "the list")
    page.screenshot(path=tmp_path / "desk-list.png", full_page=True)

    # Another kecamatan's handoff, opened by its URL, does not exist for this officer.
    response = page.goto(f"{desk_url}/handoffs/{desk.handoffs['other']}")
    assert response is not None and response.status == 404
    expect(page.get_by_role("heading", name="Tidak ditemukan")).to_be_visible()

    page.goto(f"{desk_url}/handoffs")
    resident = desk.residents["own"]
    page.locator("a.item", has_text=resident.name).click()
    hid = desk.handoffs["own"]
    expect(page).to_have_url(f"{desk_url}/handoffs/{hid}")
    expect(page.get_by_text(resident.nik[:4] + "••••••••" + resident.nik[-4:])).to_be_visible()
    _assert_no_clear_ids(page, "the detail page")
    page.screenshot(path=tmp_path / "desk-detail.png", full_page=True)

    page.get_by_label(re.compile("^Alasan")).fill("Sudah diverifikasi: tidak menerima PKH lagi")
    page.get_by_role("button", name="Selesaikan").click()
    expect(page.get_by_role("status")).to_have_text("Keputusan dicatat.")
    expect(page.locator("dd .badge")).to_have_text("Selesai")
    expect(page.get_by_role("button", name="Selesaikan")).to_have_count(0)
    page.screenshot(path=tmp_path / "desk-resolved.png", full_page=True)

    with desk.engine.connect() as conn:
        state = conn.execute(select(HANDOFF.c.state).where(HANDOFF.c.id == hid)).scalar_one()
        last = conn.execute(select(AUDIT).order_by(AUDIT.c.seq.desc()).limit(1)).one()
        report = verify_audit(conn)
    assert state == "resolved"
    assert (last.handoff_id, last.to_state, last.actor) == (hid, "resolved", f"desk:{OFFICER}")
    assert report.ok and report.last_seq == last.seq


def test_a_desa_officer_uploads_its_list_and_downloads_the_rejected_rows(
    page: Page, uploads: Desk, desk_url: str, tmp_path: Path
) -> None:
    from playwright.sync_api import expect

    from tests.integrations.test_intake import _fill, _list, _planted, _sent_back

    records = _list(20)
    planted = _planted(records)
    upload = tmp_path / "blt-2026q4.xlsx"
    upload.write_bytes(_fill(records))

    page.goto(f"{desk_url}/login")
    page.get_by_label("E-mail").fill(DESA_OFFICER)
    page.get_by_label("Kata sandi").fill(PASSWORD)
    page.get_by_role("button", name="Masuk").click()
    expect(page).to_have_url(f"{desk_url}/handoffs")
    page.get_by_role("link", name="Unggah berkas").click()
    expect(page).to_have_url(f"{desk_url}/intake")
    page.get_by_label(re.compile("^Berkas XLSX atau CSV")).set_input_files(upload)
    page.get_by_role("button", name="Unggah").click()

    expect(page.get_by_role("heading", name="Hasil: Daftar KPM BLT Dana Desa")).to_be_visible()
    expect(page.locator("dt:has-text('Ditolak') + dd")).to_have_text("4")
    _assert_no_clear_ids(page, "the upload's result")
    page.screenshot(path=tmp_path / "desk-upload.png", full_page=True)
    with page.expect_download() as download:
        page.get_by_role("link", name=re.compile("^Unduh baris yang ditolak")).click()
    assert _sent_back(Path(download.value.path()).read_bytes()) == planted
