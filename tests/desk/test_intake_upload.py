"""A desa's spreadsheet uploaded on the desk: taken as the folder flow takes it, audited, scoped.

The desk app in-process over a real SQLite store, with the session's Prefect test server
holding the store guard the `intake-folder` flow takes.
"""

from __future__ import annotations

import io
import re
import zipfile
from collections.abc import Callable
from datetime import date

import httpx
import pytest
from fastapi.testclient import TestClient
from openpyxl import load_workbook
from prefect.client.orchestration import get_client
from sqlalchemy import func, select

from flows.guards import guard_name
from integrations.settings import get_settings
from integrations.store.audit import AUDIT, verify_audit
from integrations.store.intake import INTAKE_SUBJECT, intake_partition
from integrations.store.tables import QUARANTINE, table_of
from models import tables
from models.identity import make_nik, mask_id
from models.intake import template_workbook
from tests.desk.conftest import DESA, DESA_OFFICER, DESA_VIEWER, NEIGHBOUR, OFFICER, Desk, csrf_of
from tests.integrations.test_intake import _fill, _list, _planted, _sent_back

XLSX = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
BLT_RECIPIENT = table_of(tables.BltRecipient)
SIXTEEN_DIGITS = re.compile(r"(?<![0-9])[0-9]{16}(?![0-9])")
_COUNT = re.compile(r"<dt>([^<]+)</dt><dd[^>]*>(\d+)</dd>")
_DOWNLOAD = re.compile(r'href="(/intake/rejected/[^"]+)"')

Browser = Callable[[str], TestClient]


def _post(
    client: TestClient, name: str, content: bytes, token: str | None = None
) -> httpx.Response:
    csrf = csrf_of(client.get("/intake").text) if token is None else token
    return client.post("/intake", data={"csrf_token": csrf}, files={"file": (name, content, XLSX)})


def _counts(html: str) -> dict[str, int]:
    return {label: int(value) for label, value in _COUNT.findall(html)}


def _stored(desk: Desk) -> dict[str, tuple[str, object]]:
    with desk.engine.connect() as conn:
        rows = conn.execute(
            select(BLT_RECIPIENT.c.id, BLT_RECIPIENT.c.period, BLT_RECIPIENT.c.updated_at)
        )
        return {r.id: (r.period, r.updated_at) for r in rows}


def _held(desk: Desk) -> int:
    with desk.engine.connect() as conn:
        return int(
            conn.execute(
                select(func.count())
                .select_from(QUARANTINE)
                .where(QUARANTINE.c.partition == intake_partition(DESA))
            ).scalar_one()
        )


def _intake_audit(desk: Desk) -> list[tuple[str, str, str]]:
    with desk.engine.connect() as conn:
        rows = conn.execute(
            select(AUDIT).where(AUDIT.c.handoff_id == INTAKE_SUBJECT).order_by(AUDIT.c.seq)
        ).all()
        assert verify_audit(conn).ok
    return [(r.to_state, r.actor, r.reason) for r in rows]


def _workbook_text(xlsx: bytes) -> str:
    wb = load_workbook(io.BytesIO(xlsx))
    return " ".join(
        str(v) for ws in wb.worksheets for row in ws.iter_rows(values_only=True) for v in row
    )


def _no_clear_ids(*texts: str) -> None:
    for i, text in enumerate(texts):
        found = len(SIXTEEN_DIGITS.findall(text))
        assert found == 0, f"text {i} shows {found} clear 16-digit ids"  # counted, never printed


def test_a_desa_officer_uploads_the_round_trip_file_and_gets_the_planted_rows_back(
    uploads: Desk, browser: Browser
) -> None:
    client = browser(DESA_OFFICER)
    home = client.get("/handoffs").text
    assert '<a href="/intake">Unggah berkas</a>' in home
    form = client.get("/intake")
    assert form.status_code == 200
    assert 'enctype="multipart/form-data"' in form.text
    assert '<a href="/intake/template/desa.blt-recipients">' in form.text
    assert '<a href="/intake/template/statistik.submissions">' in form.text
    template = client.get("/intake/template/desa.blt-recipients")
    # The generated template (compared by its cells: an XLSX's bytes carry the time it was
    # made, so two made a second apart differ).
    assert template.status_code == 200
    assert _cells(template.content) == _cells(template_workbook("desa.blt-recipients"))

    records = _list(20)
    planted = _planted(records)
    content = _fill(records)
    first = _post(client, "blt-2026q4.xlsx", content)
    assert first.status_code == 200, first.text[:500]
    counts = _counts(first.text)
    assert counts["Baris data"] == 20 and counts["Ditolak"] == 4
    assert counts["Diterima (baru atau diperbarui)"] == 16 and counts["Tidak berubah"] == 0
    # The numeric NIK of row 5 is told how to fix, on the page as in the workbook.
    assert "format sebagai Teks" in first.text
    (link,) = _DOWNLOAD.findall(first.text)
    download = client.get(link)
    assert download.status_code == 200
    assert download.headers["content-type"] == XLSX
    assert _sent_back(download.content) == planted
    assert len(_stored(uploads)) == 16 and _held(uploads) == 4
    # Written under the guard the `intake-folder` flow takes for the source's agency.
    with get_client(sync_client=True) as prefect:
        holder = prefect.read_variable_by_name(guard_name("desa"))
    assert holder is not None and holder.value["run"] == f"desk upload desa:{DESA}"

    # The same file again changes nothing; its rejected rows come back again.
    before = _stored(uploads)
    again = _post(client, "salinan.xlsx", content)
    assert again.status_code == 200
    recount = _counts(again.text)
    assert (recount["Diterima (baru atau diperbarui)"], recount["Tidak berubah"]) == (0, 16)
    assert recount["Ditolak"] == 4
    assert _stored(uploads) == before and _held(uploads) == 4
    (second_link,) = _DOWNLOAD.findall(again.text)
    assert second_link != link
    assert _sent_back(client.get(second_link).content) == planted

    # Each upload is in the audit chain with the user and the office; counts, never ids.
    audit = _intake_audit(uploads)
    assert [(action, actor) for action, actor, _ in audit] == [
        ("taken", f"desk:{DESA_OFFICER}"),
        ("taken", f"desk:{DESA_OFFICER}"),
    ]
    assert f"office desa:{DESA}" in audit[0][2]
    assert "20 rows, 16 written, 0 unchanged, 4 rejected" in audit[0][2]
    assert "20 rows, 0 written, 16 unchanged, 4 rejected" in audit[1][2]

    _no_clear_ids(
        home,
        form.text,
        first.text,
        again.text,
        _workbook_text(download.content),
        *(reason for _, _, reason in audit),
    )


def test_a_numeric_nik_column_gets_the_how_to_fix_message(uploads: Desk, browser: Browser) -> None:
    records = _list(3)
    for rec in records:
        rec["nik"] = int(rec["nik"])  # the column was formatted as a number
    page = _post(browser(DESA_OFFICER), "angka.xlsx", _fill(records))
    assert page.status_code == 200
    assert _counts(page.text)["Ditolak"] == 3
    assert "tersimpan sebagai angka" in page.text
    assert "format sebagai Teks (Format Cells &gt; Text" in page.text
    assert "format kolom &#39;NIK&#39; sebagai Teks" in page.text
    assert _stored(uploads) == {}
    _no_clear_ids(page.text)


def test_only_a_desa_officer_may_upload(uploads: Desk, browser: Browser) -> None:
    content = _fill(_list(2))
    viewer = browser(DESA_VIEWER)
    assert "Unggah berkas" not in viewer.get("/handoffs").text
    assert viewer.get("/intake").status_code == 403
    token = csrf_of(viewer.get("/handoffs").text)
    refused = _post(viewer, "blt.xlsx", content, token=token)
    assert refused.status_code == 403
    assert "Hanya petugas desa" in refused.text
    # A kecamatan's officer has no such page at all.
    kecamatan = browser(OFFICER)
    assert "Unggah berkas" not in kecamatan.get("/handoffs").text
    assert kecamatan.get("/intake").status_code == 404
    assert kecamatan.get("/intake/template/desa.blt-recipients").status_code == 404
    token = csrf_of(kecamatan.get("/handoffs").text)
    assert _post(kecamatan, "blt.xlsx", content, token=token).status_code == 404
    assert _stored(uploads) == {} and _intake_audit(uploads) == []


def test_another_office_gets_404_for_the_rejected_rows(uploads: Desk, browser: Browser) -> None:
    records = _list(20)
    _planted(records)
    page = _post(browser(DESA_OFFICER), "blt.xlsx", _fill(records))
    (link,) = _DOWNLOAD.findall(page.text)
    neighbour = browser(NEIGHBOUR)
    assert neighbour.get(link).status_code == 404
    assert neighbour.get("/intake/rejected/not-an-id").status_code == 404
    assert browser(OFFICER).get(link).status_code == 404
    assert browser(DESA_VIEWER).get(link).status_code == 403


def test_a_post_without_the_csrf_token_is_refused(uploads: Desk, browser: Browser) -> None:
    client = browser(DESA_OFFICER)
    response = client.post("/intake", files={"file": ("blt.xlsx", _fill(_list(2)), XLSX)})
    assert response.status_code == 403
    assert "token keamanan" in response.text
    forged = _post(client, "blt.xlsx", _fill(_list(2)), token="forged")
    assert forged.status_code == 403
    assert _stored(uploads) == {} and _intake_audit(uploads) == []


def test_a_file_over_the_limit_gets_the_message(
    uploads: Desk, browser: Browser, monkeypatch: pytest.MonkeyPatch
) -> None:
    client = browser(DESA_OFFICER)
    # The default limit, 10 MB: refused on the request's length, before it is read.
    assert "paling besar 10 MB" in client.get("/intake").text
    big = _post(client, "besar.xlsx", b"0" * (10 * 1024 * 1024 + 1))
    assert big.status_code == 413
    assert "Berkas terlalu besar: paling besar 10 MB" in big.text

    monkeypatch.setenv("CETTAR_INTAKE_MAX_BYTES", "4096")
    get_settings.cache_clear()
    # A file just over a small limit (the form itself is within it): refused when read.
    content = _fill(_list(20))
    assert len(content) > 4096
    over = _post(client, "blt.xlsx", content)
    assert over.status_code == 413
    assert "Berkas terlalu besar: paling besar 4 KB" in over.text
    # A body sent without a length is cut off as it comes in.
    token = csrf_of(client.get("/intake").text)
    body = (
        (
            f'--b0undary\r\nContent-Disposition: form-data; name="csrf_token"\r\n\r\n{token}\r\n'
            '--b0undary\r\nContent-Disposition: form-data; name="file"; filename="x.xlsx"\r\n'
            "Content-Type: application/octet-stream\r\n\r\n"
        ).encode()
        + b"0" * (200 * 1024)
        + b"\r\n--b0undary--\r\n"
    )
    chunked = client.post(
        "/intake",
        content=iter([body[i : i + 8192] for i in range(0, len(body), 8192)]),
        headers={"content-type": "multipart/form-data; boundary=b0undary"},
    )
    assert chunked.status_code == 413
    assert _stored(uploads) == {}
    assert [action for action, _, reason in _intake_audit(uploads)] == ["refused"] * 3
    assert all("too_large" in reason for _, _, reason in _intake_audit(uploads))


def test_an_unreadable_file_gets_a_clear_message(uploads: Desk, browser: Browser) -> None:
    client = browser(DESA_OFFICER)
    garbage = _post(client, "daftar.xlsx", b"PK\x03\x04 not really a workbook")
    assert garbage.status_code == 400
    assert "tidak dapat dibaca" in garbage.text and "Traceback" not in garbage.text
    # A name or header holding a NIK is shown masked.
    nik = make_nik("35.07.01", date(1980, 1, 1), "L", 7)
    wrong = _post(client, f"{nik}.csv", f"Nama;{nik}\nSiti;40\n".encode())
    assert wrong.status_code == 400
    assert "judul kolom tidak cocok dengan template" in wrong.text
    assert f"Berkas {mask_id(nik)}.csv tidak dapat dibaca" in wrong.text
    other = _post(client, "catatan.txt", b"hello")
    assert other.status_code == 400 and ".xlsx atau .csv" in other.text
    # A workbook whose sheet is cut off: its XML parser's error becomes the message.
    damaged = _post(client, "rusak.xlsx", _damaged(_fill(_list(3))))
    assert damaged.status_code == 400
    assert "berkas rusak, tidak dapat dibaca (ParseError)" in damaged.text
    audit = _intake_audit(uploads)
    assert [action for action, _, _ in audit] == ["refused"] * 4
    assert all("(unreadable); file sha256 " in reason for _, _, reason in audit)
    assert _stored(uploads) == {}
    _no_clear_ids(garbage.text, wrong.text, other.text, damaged.text)


def _damaged(xlsx: bytes) -> bytes:
    source, out = zipfile.ZipFile(io.BytesIO(xlsx)), io.BytesIO()
    with zipfile.ZipFile(out, "w") as copy:
        for item in source.infolist():
            data = source.read(item.filename)
            copy.writestr(item, data[:300] if item.filename.endswith("sheet1.xml") else data)
    return out.getvalue()


def test_a_ksk_answer_csv_is_taken_too(uploads: Desk, browser: Browser) -> None:
    from tests.models.test_intake import _csv
    from tests.models.test_sources import submission

    sent = "2026-11-02T10:00:00+07:00"  # the desk's clock is Thursday 5 November 2026

    page = _post(
        browser(DESA_OFFICER),
        "ksk.csv",
        _csv("statistik.submissions", [submission(submitted_at=sent, updated_at=sent)]),
    )
    assert page.status_code == 200, page.text[:500]
    assert "Jawaban Permintaan Data KSK" in page.text
    counts = _counts(page.text)
    assert (counts["Baris data"], counts["Diterima (baru atau diperbarui)"]) == (1, 1), counts
    assert not _DOWNLOAD.findall(page.text)


def test_without_the_prefect_api_nothing_is_taken(
    uploads: Desk, browser: Browser, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The guards live on the Prefect API: a desk never writes without them, nor starts one.
    monkeypatch.setattr(
        "deployments.prefect_server.configured_prefect_url", lambda: "http://127.0.0.1:9/api"
    )
    page = _post(browser(DESA_OFFICER), "blt.xlsx", _fill(_list(2)))
    assert page.status_code == 503
    assert "Berkas belum diterima" in page.text
    assert _stored(uploads) == {} and _intake_audit(uploads) == []


def _cells(xlsx: bytes) -> dict[str, list[tuple[object, ...]]]:
    """Every sheet's cell values, by sheet name."""
    wb = load_workbook(io.BytesIO(xlsx))
    return {ws.title: list(ws.iter_rows(values_only=True)) for ws in wb.worksheets}
