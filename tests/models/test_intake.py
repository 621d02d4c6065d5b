"""Spreadsheet intake rules: templates, reading XLSX/CSV, mangled ids, the file's desa."""

from __future__ import annotations

import io
import re
from datetime import datetime
from typing import Any

import pytest
from openpyxl import Workbook, load_workbook

from models.intake import (
    DATA_SHEET,
    NOTES_SHEET,
    IntakeFileError,
    check_rows,
    file_desa,
    read_sheet,
    rejected_workbook,
    template_of,
    template_workbook,
)
from tests.models.test_sources import KEY, NIK, NO_KK, NOW, blt, submission

DESA = "35.07.01.2001"
BLT = "desa.blt-recipients"
SIXTEEN_DIGITS = re.compile(r"(?<![0-9])[0-9]{16}(?![0-9])")


def _xlsx(source: str, records: list[dict[str, Any]]) -> bytes:
    template = template_of(source)
    wb = load_workbook(io.BytesIO(template_workbook(source)))
    ws = wb[DATA_SHEET]
    for r, rec in enumerate(records, start=2):
        for c, col in enumerate(template.columns, start=1):
            if col.field in rec:
                ws.cell(row=r, column=c).value = rec[col.field]
    out = io.BytesIO()
    wb.save(out)
    return out.getvalue()


def _csv(source: str, records: list[dict[str, Any]], sep: str = ",") -> bytes:
    template = template_of(source)
    lines = [sep.join(c.header for c in template.columns)]
    lines += [sep.join(str(rec.get(c.field, "")) for c in template.columns) for rec in records]
    return ("\n".join(lines) + "\n").encode()


def _check(source: str, name: str, content: bytes, desa: str = DESA) -> Any:
    return check_rows(source, read_sheet(source, name, content), desa, KEY, NOW)


def test_the_template_has_indonesian_headers_text_id_columns_and_notes() -> None:
    wb = load_workbook(io.BytesIO(template_workbook(BLT)))
    ws = wb[DATA_SHEET]
    headers = [c.value for c in ws[1]]
    assert headers == [
        "ID Baris",
        "Kode Desa",
        "Periode",
        "NIK",
        "No. KK",
        "Nama",
        "Status",
        "Diperbarui",
    ]
    assert ws["D2"].number_format == "@" and ws["E2"].number_format == "@"
    notes = " ".join(str(c.value) for row in wb[NOTES_SHEET].iter_rows() for c in row if c.value)
    assert "Teks" in notes and "3.5780801E+15" in notes
    assert [c.field for c in template_of("statistik.submissions").columns] == [
        "id",
        "request_id",
        "desa_code",
        "submitted_at",
        "updated_at",
    ]


def test_good_rows_from_xlsx_and_csv_become_the_same_store_rows() -> None:
    records = [blt(), blt(id="BLT-2", nik=NIK[:-4] + "0019", name="Budi")]
    from_xlsx = _check(BLT, "daftar.xlsx", _xlsx(BLT, records))
    from_csv = _check(BLT, "daftar.csv", _csv(BLT, records, sep=";"))
    assert not from_xlsx.rejected_rows and not from_csv.rejected_rows
    assert [r["id"] for r in from_xlsx.page.rows] == ["BLT-1", "BLT-2"]
    assert from_xlsx.page.rows == from_csv.page.rows
    assert from_xlsx.page.high == datetime.fromisoformat("2026-10-02T01:00:00+00:00")


def test_a_time_without_a_zone_is_wib() -> None:
    rec = blt(updated_at="2026-10-02 08:00")
    (row,) = _check(BLT, "a.csv", _csv(BLT, [rec])).page.rows
    assert row["updated_at"] == datetime.fromisoformat("2026-10-02T01:00:00+00:00")
    wb_rec = blt(updated_at=datetime(2026, 10, 2, 8, 0))
    (row,) = _check(BLT, "a.xlsx", _xlsx(BLT, [wb_rec])).page.rows
    assert row["updated_at"] == datetime.fromisoformat("2026-10-02T01:00:00+00:00")


def test_numeric_nik_cells_are_refused_with_how_to_fix_the_column() -> None:
    content = _xlsx(
        BLT, [blt(), blt(id="BLT-2", nik=int(NIK)), blt(id="BLT-3", no_kk=float(NO_KK))]
    )
    checked = _check(BLT, "a.xlsx", content)
    assert [r["id"] for r in checked.page.rows] == ["BLT-1"]
    by_row = {r.row: r for r in checked.rejected_rows}
    assert sorted(by_row) == [3, 4]
    assert "nik:numeric_cell" in by_row[3].reason_codes
    assert "no_kk:numeric_cell" in by_row[4].reason_codes
    message = next(r.message for r in by_row[3].reasons if r.code == "numeric_cell")
    assert "Teks" in message and "NIK" in message
    # never converted: the store gets nothing of those rows
    assert len(checked.page.rejected) == 2


def test_scientific_notation_in_a_csv_is_refused() -> None:
    checked = _check(BLT, "a.csv", _csv(BLT, [blt(nik="3.5780801E+15")]))
    (bad,) = checked.rejected_rows
    assert bad.row == 2
    assert "nik:scientific_notation" in bad.reason_codes
    assert "notasi ilmiah" in next(r.message for r in bad.reasons if r.loc == "nik")


def test_every_reason_of_a_bad_row_is_kept_with_its_row_number() -> None:
    content = _csv(BLT, [blt(), blt(id="BLT-2", period="2026-Q5", nik="35070112345", name=" ")])
    (bad,) = _check(BLT, "a.csv", content).rejected_rows
    assert bad.row == 3
    assert bad.reason_codes == [
        "name:missing",
        "nik:nik_invalid",
        "period:string_pattern_mismatch",
    ]


def test_rows_of_another_desa_are_refused() -> None:
    content = _csv(BLT, [blt(), blt(id="BLT-2", desa_code="35.07.01.2002")])
    checked = _check(BLT, "a.csv", content)
    (bad,) = checked.rejected_rows
    assert bad.row == 3 and bad.reason_codes == ["desa_code:desa_mismatch"]
    assert checked.page.rejected[0].payload["_row"] == 3


def test_an_id_twice_in_a_file_is_refused_the_second_time() -> None:
    checked = _check(BLT, "a.csv", _csv(BLT, [blt(), blt(name="Siti A.")]))
    assert len(checked.page.rows) == 1
    (bad,) = checked.rejected_rows
    assert bad.reason_codes == ["id:duplicate_in_file"]


def test_submissions_are_read_and_checked() -> None:
    source = "statistik.submissions"
    content = _xlsx(source, [submission(), submission(id="SUB-2", request_id="REQ 2")])
    checked = _check(source, "a.xlsx", content)
    assert [r["id"] for r in checked.page.rows] == ["SUB-1"]
    assert checked.rejected_rows[0].reason_codes == ["request_id:string_pattern_mismatch"]


@pytest.mark.parametrize(
    ("name", "content", "fragment"),
    [
        ("a.txt", b"x", ".xlsx atau .csv"),
        ("a.xlsx", b"not a zip", "bukan berkas XLSX"),
        ("a.csv", b"ID Baris,Kode Desa\n", "kolom wajib tidak ada"),
        ("a.csv", b"ID Baris,Kode Desa,Periode,NIK,No. KK,Nama,Stats,Diperbarui\n", "Stats"),
        ("a.csv", b"\xff\xfe\x00", "UTF-8"),
    ],
)
def test_unreadable_files_are_refused_whole(name: str, content: bytes, fragment: str) -> None:
    with pytest.raises(IntakeFileError, match=re.escape(fragment)):
        read_sheet(BLT, name, content)


def test_the_files_desa_must_be_a_known_desa() -> None:
    assert file_desa(DESA) == DESA
    for bad in ("35.07.01", "99.99.99.9999"):
        with pytest.raises(ValueError):
            file_desa(bad)


def test_the_rejected_workbook_masks_ids_and_gives_reasons() -> None:
    content = _xlsx(BLT, [blt(nik=int(NIK)), blt(id="BLT-2", period="2026-Q5")])
    checked = _check(BLT, "a.xlsx", content)
    data = rejected_workbook(BLT, checked.rejected_rows)
    ws = load_workbook(io.BytesIO(data)).active
    header = [c.value for c in ws[1]]
    assert header[0] == "Baris" and header[-2:] == ["Kode Alasan", "Alasan"]
    rows = [[c.value for c in row] for row in ws.iter_rows(min_row=2)]
    assert [r[0] for r in rows] == [2, 3]
    assert rows[1][header.index("NIK")] == NIK[:4] + "\u2022" * 8 + NIK[-4:]
    assert "period:string_pattern_mismatch" in rows[1][-2]
    text = " ".join(str(v) for r in rows for v in r)
    assert not SIXTEEN_DIGITS.search(text)
    assert NIK not in text and NO_KK not in text


def test_an_empty_workbook_sheet_is_refused() -> None:
    wb = Workbook()
    out = io.BytesIO()
    wb.save(out)
    with pytest.raises(IntakeFileError):
        read_sheet(BLT, "a.xlsx", out.getvalue())
