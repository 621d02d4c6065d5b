"""Spreadsheet intake: templates, parsing and row checks for desa that send XLSX or CSV.

Most desa keep their BLT-DD list and their answers to the KSK's data requests in
spreadsheets. Each source a desa may send this way has a `Template`: its Indonesian column
headers, the contract field each one fills, and which columns hold ids. A file is read into
`SheetRow`s (the spreadsheet row number and the wire record), and `check_rows` validates
every row with the same contract and rules as an API record (`models.sources.prepare_page`),
plus what only a spreadsheet gets wrong:

- an id column (NIK, No. KK) must be text. A spreadsheet that turned ids into numbers (a
  numeric XLSX cell, or `3.5780801E+15` in a CSV) has lost digits: the row is refused with
  a message that says to format the column as Text, never converted back;
- every row must belong to the file's desa (the folder's or the account's);
- an id appears once per file.

A bad row keeps its row number and every reason. Times without a zone (a date-time cell, or
text such as `2026-10-02 08:00`) are read as Asia/Jakarta (WIB), as every operator's time is.
Pure: no file system, network or database; workbooks go in and out as bytes.
"""

from __future__ import annotations

import csv
import io
import re
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta, timezone
from typing import Any, Literal

from models.identity import mask_id, mask_ids_in_text
from models.plausibility import RECORD_ID
from models.prepared import PreparedPage
from models.sources import prepare_page, source_spec
from models.validation import Reason, Rejection
from models.wilayah import RegionKind, get_region_registry

__all__ = [
    "DATA_SHEET",
    "MAX_ROWS",
    "NOTES_SHEET",
    "TEMPLATES",
    "Column",
    "IntakeCheck",
    "IntakeFileError",
    "RejectedRow",
    "SheetRow",
    "Template",
    "check_rows",
    "detect_source",
    "file_desa",
    "read_sheet",
    "rejected_workbook",
    "template_of",
    "template_workbook",
]

WIB = timezone(timedelta(hours=7), "WIB")
DATA_SHEET = "Data"
NOTES_SHEET = "Petunjuk"
MAX_ROWS = 20_000
"""Rows one file may hold: a desa's list is a few hundred; more is not a desa's file."""

ColumnKind = Literal["id", "text", "time"]


@dataclass(frozen=True, slots=True)
class Column:
    """One template column: its header, the contract field it fills, what it holds."""

    header: str
    field: str
    kind: ColumnKind = "text"
    required: bool = True
    note: str = ""


@dataclass(frozen=True, slots=True)
class Template:
    """The spreadsheet form of one source: its columns, in order, and its notes."""

    source: str
    title: str
    columns: tuple[Column, ...]

    @property
    def id_fields(self) -> frozenset[str]:
        """Fields that hold a NIK or No. KK (text columns in the template)."""
        return frozenset(c.field for c in self.columns if c.kind == "id")

    def column_of(self, field_name: str) -> Column:
        """The column filling `field_name`."""
        return next(c for c in self.columns if c.field == field_name)


_UPDATED = Column(
    "Diperbarui",
    "updated_at",
    "time",
    note="Waktu terakhir baris ini diubah, mis. 2026-10-02 08:00 (WIB bila tanpa zona). "
    "Ubah waktu ini setiap kali baris diperbaiki: data yang lebih baru yang berlaku.",
)

TEMPLATES: dict[str, Template] = {
    t.source: t
    for t in (
        Template(
            "desa.blt-recipients",
            "Daftar KPM BLT Dana Desa",
            (
                Column("ID Baris", "id", note="Kode unik baris di desa, mis. BLT-2026Q4-001."),
                Column("Kode Desa", "desa_code", note="Kode Kemendagri desa, mis. 35.07.01.2001."),
                Column("Periode", "period", note="Tahap pembayaran, mis. 2026-Q4."),
                Column("NIK", "nik", "id", note="16 angka, diketik sebagai teks."),
                Column("No. KK", "no_kk", "id", note="16 angka, diketik sebagai teks."),
                Column("Nama", "name", note="Nama KPM sesuai KTP."),
                Column(
                    "Status",
                    "status",
                    required=False,
                    note="proposed (diusulkan), approved (ditetapkan musdes khusus) atau "
                    "removed (dicoret); kosong berarti approved.",
                ),
                _UPDATED,
            ),
        ),
        Template(
            "statistik.submissions",
            "Jawaban Permintaan Data KSK",
            (
                Column("ID Jawaban", "id", note="Kode unik jawaban desa, mis. SUB-001."),
                Column("ID Permintaan", "request_id", note="Kode permintaan data dari KSK."),
                Column("Kode Desa", "desa_code", note="Kode Kemendagri desa, mis. 35.07.01.2001."),
                Column(
                    "Waktu Kirim",
                    "submitted_at",
                    "time",
                    note="Waktu jawaban dikirim, mis. 2026-11-10 10:00 (WIB bila tanpa zona).",
                ),
                _UPDATED,
            ),
        ),
    )
}
"""Every source a desa may send as a spreadsheet, by source name."""


def template_of(source: str) -> Template:
    """The template of a source; ValueError names the sources that have one."""
    try:
        return TEMPLATES[source]
    except KeyError:
        raise ValueError(
            f"no spreadsheet template for {source!r}; expected one of {', '.join(TEMPLATES)}"
        ) from None


def file_desa(code: str) -> str:
    """The dotted code of the desa a file is for; ValueError for anything but a known desa."""
    registry = get_region_registry()
    region = registry.get(code)
    if region is None or region.kind not in (RegionKind.DESA, RegionKind.KELURAHAN):
        raise ValueError(f"not a known desa/kelurahan code: {code[:20]!r}")
    return region.code


class IntakeFileError(ValueError):
    """The file as a whole cannot be read (not a spreadsheet, wrong or missing headers)."""


@dataclass(frozen=True, slots=True)
class SheetRow:
    """One data row of a file: its spreadsheet row number, its record, what the cells hid."""

    row: int
    record: dict[str, Any]
    # Reasons found in the cells themselves (an id typed as a number), before the contract.
    cell_reasons: tuple[Reason, ...] = ()


@dataclass(frozen=True, slots=True)
class RejectedRow:
    """A refused row as the sender sees it again: row number, masked cells, every reason."""

    row: int
    cells: tuple[str, ...]
    reasons: tuple[Reason, ...]

    @property
    def reason_codes(self) -> list[str]:
        """Distinct reason keys, sorted."""
        return sorted({r.key for r in self.reasons})


@dataclass(slots=True)
class IntakeCheck:
    """The outcome of checking a file's rows: the page to write and the rows sent back."""

    page: PreparedPage = field(default_factory=PreparedPage)
    rejected_rows: list[RejectedRow] = field(default_factory=list)

    @property
    def rows(self) -> int:
        """Data rows in the file."""
        return self.page.fetched


# --- reading a file ---------------------------------------------------------------------------

_NAIVE_TIME = re.compile(r"\d{4}-\d{2}-\d{2}[ T]\d{2}:\d{2}(:\d{2}(\.\d+)?)?")
_SCIENTIFIC = re.compile(r"[0-9]+(?:[.,][0-9]*)?[eE][+-]?[0-9]+")


def _header_key(text: object) -> str:
    return " ".join(str(text).split()).casefold() if text is not None else ""


def _columns_of(template: Template, header: Sequence[object]) -> list[Column | None]:
    by_key: dict[str, Column] = {}
    for c in template.columns:
        by_key[_header_key(c.header)] = c
        by_key[_header_key(c.field)] = c
    out: list[Column | None] = []
    unknown: list[str] = []
    for cell in header:
        key = _header_key(cell)
        if not key:
            out.append(None)
            continue
        col = by_key.get(key)
        if col is None:
            # A misspelt optional header would silently give every row its default.
            unknown.append(mask_ids_in_text(str(cell))[:40])
        out.append(col)
    if unknown:
        raise IntakeFileError(
            f"kolom tidak dikenal: {', '.join(unknown)}; gunakan judul kolom template "
            f"({', '.join(c.header for c in template.columns)})"
        )
    found = [c for c in out if c is not None]
    twice = sorted({c.header for c in found if found.count(c) > 1})
    if twice:
        raise IntakeFileError(f"kolom ganda: {', '.join(twice)}")
    missing = [c.header for c in template.columns if c.required and c not in found]
    if missing:
        raise IntakeFileError(f"kolom wajib tidak ada: {', '.join(missing)}")
    return out


def _id_cell_reason(col: Column, value: object) -> Reason | None:
    fix = f"format kolom '{col.header}' sebagai Teks (Format Cells > Text, '@') lalu ketik ulang"
    if isinstance(value, bool):
        return None
    if isinstance(value, int | float):
        if col.kind == "id":
            message = (
                f"{col.header} tersimpan sebagai angka, bukan teks: spreadsheet hanya menyimpan "
                f"15 angka penting, angka terakhir bisa hilang; {fix}"
            )
        else:
            message = f"{col.header} tersimpan sebagai angka, bukan teks; {fix}"
        return Reason(loc=col.field, code="numeric_cell", message=message)
    if col.kind == "id" and isinstance(value, str) and _SCIENTIFIC.fullmatch(value.strip()):
        return Reason(
            loc=col.field,
            code="scientific_notation",
            message=(
                f"{col.header} tertulis dalam notasi ilmiah (mis. 3.5780801E+15): angka "
                f"terakhirnya sudah hilang; {fix} dari data asli"
            ),
        )
    return None


def _wire_value(col: Column, value: object) -> object:
    """A cell's value as the wire record carries it; ids are never converted."""
    if col.kind == "time":
        if isinstance(value, datetime):
            moment = value if value.tzinfo else value.replace(tzinfo=WIB)
            return moment.isoformat()
        if isinstance(value, date):
            return datetime.combine(value, time(), WIB).isoformat()
        if isinstance(value, str) and _NAIVE_TIME.fullmatch(value.strip()):
            return value.strip().replace(" ", "T") + "+07:00"
    return value


def _is_blank(value: object) -> bool:
    return value is None or (isinstance(value, str) and not value.strip())


def _rows_of(
    template: Template, header: Sequence[object], body: Iterable[tuple[int, Sequence[object]]]
) -> list[SheetRow]:
    columns = _columns_of(template, header)
    out: list[SheetRow] = []
    for number, cells in body:
        if all(_is_blank(v) for v in cells):
            continue
        if len(out) >= MAX_ROWS:
            raise IntakeFileError(f"lebih dari {MAX_ROWS} baris data: pecah berkasnya")
        record: dict[str, Any] = {}
        reasons: list[Reason] = []
        for col, value in zip(columns, cells, strict=False):
            if col is None or _is_blank(value):
                continue
            if col.kind != "time" and (reason := _id_cell_reason(col, value)) is not None:
                reasons.append(reason)
            record[col.field] = _wire_value(col, value)
        out.append(SheetRow(number, record, tuple(reasons)))
    return out


@contextmanager
def _data_sheet(content: bytes) -> Iterator[Any]:
    """The data sheet of an XLSX (the template's, else the first), closed afterwards."""
    from openpyxl import load_workbook

    try:
        wb = load_workbook(io.BytesIO(content), read_only=True, data_only=True)
    except Exception as exc:  # openpyxl raises many kinds for a file that is not XLSX
        raise IntakeFileError(
            f"bukan berkas XLSX yang bisa dibaca ({type(exc).__name__})"
        ) from None
    try:
        yield wb[DATA_SHEET] if DATA_SHEET in wb.sheetnames else wb.worksheets[0]
    finally:
        wb.close()


def _read_xlsx(template: Template, content: bytes) -> list[SheetRow]:
    with _data_sheet(content) as ws:
        rows = ws.iter_rows(values_only=True)
        header = next(rows, None)
        if header is None:
            raise IntakeFileError("lembar data kosong: baris pertama harus judul kolom")
        return _rows_of(template, header, enumerate(rows, start=2))


def _read_csv(template: Template, content: bytes) -> list[SheetRow]:
    try:
        text = content.decode("utf-8-sig")
    except UnicodeDecodeError:
        raise IntakeFileError("CSV harus disimpan sebagai UTF-8 (CSV UTF-8)") from None
    first = text.split("\n", 1)[0]
    # Spreadsheets set to Indonesian separate CSV fields with ';'.
    delimiter = max(",;\t", key=first.count)
    reader = csv.reader(io.StringIO(text, newline=""), delimiter=delimiter)
    header = next(reader, None)
    if header is None:
        raise IntakeFileError("CSV kosong: baris pertama harus judul kolom")

    def body() -> Iterable[tuple[int, Sequence[object]]]:
        for cells in reader:
            yield reader.line_num, cells

    return _rows_of(template, header, body())


def _header_row(filename: str, content: bytes) -> list[object]:
    suffix = filename.rsplit(".", 1)[-1].lower() if "." in filename else ""
    if suffix == "csv":
        try:
            first = content.decode("utf-8-sig").split("\n", 1)[0].rstrip("\r")
        except UnicodeDecodeError:
            raise IntakeFileError("CSV harus disimpan sebagai UTF-8 (CSV UTF-8)") from None
        return list(next(csv.reader([first], delimiter=max(",;\t", key=first.count)), []))
    if suffix != "xlsx":
        raise IntakeFileError("hanya berkas .xlsx atau .csv yang diterima")
    with _data_sheet(content) as ws:
        return list(next(ws.iter_rows(max_row=1, values_only=True), ()))


def detect_source(filename: str, content: bytes) -> str:
    """The source whose template's headers a file carries (a dropped file names no source)."""
    header = {_header_key(h) for h in _header_row(filename, content)} - {""}
    for template in TEMPLATES.values():
        names = {_header_key(c.header) for c in template.columns}
        required = {_header_key(c.header) for c in template.columns if c.required}
        if required <= header and header <= names:
            return template.source
    raise IntakeFileError(
        "judul kolom tidak cocok dengan template mana pun: "
        + "; ".join(
            f"{t.title}: {', '.join(c.header for c in t.columns)}" for t in TEMPLATES.values()
        )
    )


def read_sheet(source: str, filename: str, content: bytes) -> list[SheetRow]:
    """The data rows of an XLSX or CSV file of `source` (by the file name's extension)."""
    template = template_of(source)
    suffix = filename.rsplit(".", 1)[-1].lower() if "." in filename else ""
    if suffix == "xlsx":
        return _read_xlsx(template, content)
    if suffix == "csv":
        return _read_csv(template, content)
    raise IntakeFileError("hanya berkas .xlsx atau .csv yang diterima")


# --- checking rows ----------------------------------------------------------------------------


def _masked_cells(template: Template, record: dict[str, Any]) -> tuple[str, ...]:
    cells = []
    for col in template.columns:
        value = record.get(col.field)
        if value is None:
            cells.append("")
        elif col.kind == "id":
            text = str(value)
            # A float id shows a decimal point: drop it so the mask covers every digit.
            cells.append(mask_id(text.replace(".", "").replace("E+", "").replace("e+", "")))
        else:
            cells.append(mask_ids_in_text(str(value)))
    return tuple(cells)


def check_rows(
    source: str, rows: Sequence[SheetRow], desa_code: str, key: bytes, now: datetime
) -> IntakeCheck:
    """Validate a file's rows for the desa that sent it; bad rows keep every reason.

    Each row goes through `prepare_page` on its own, so a row's reasons stay with its row
    number. A cell the spreadsheet mangled (an id typed as a number) gives its own reason in
    place of the contract's for that field, which could not say how to fix the column; the
    file's desa and ids repeated in the file are checked beside the contract.
    """
    template = template_of(source)
    spec = source_spec(source)
    out = IntakeCheck()
    seen_ids: dict[str, int] = {}
    for sheet_row in rows:
        record = sheet_row.record
        page = prepare_page(spec.name, [record], key, now)
        reasons = list(sheet_row.cell_reasons)
        flagged = {r.loc for r in reasons}
        for rej in page.rejected:
            reasons.extend(r for r in rej.reasons if r.loc not in flagged)
        row_desa = record.get("desa_code")
        if isinstance(row_desa, str) and row_desa != desa_code:
            reasons.append(
                Reason(
                    loc="desa_code",
                    code="desa_mismatch",
                    message=f"baris milik desa {mask_ids_in_text(row_desa)[:20]}, "
                    f"berkas ini untuk desa {desa_code}",
                )
            )
        rid = record.get("id")
        if isinstance(rid, str) and rid in seen_ids:
            reasons.append(
                Reason(
                    loc="id",
                    code="duplicate_in_file",
                    message=f"ID sama dengan baris {seen_ids[rid]}",
                )
            )
        elif isinstance(rid, str):
            seen_ids[rid] = sheet_row.row
        if not reasons:
            out.page.rows.extend(page.rows)
            out.page.children.extend(page.children)
            out.page.warnings.update(page.warnings)
            if page.high is not None:
                out.page.seen(page.high)
            continue
        record_id = (
            page.rejected[0].record_id
            if page.rejected
            else rid
            if isinstance(rid, str) and RECORD_ID.fullmatch(rid)
            else None
        )
        # The row number goes with the payload (contracts ignore unknown keys), so the
        # quarantine tells which row of which file a record came from.
        payload = {**record, "_row": sheet_row.row, "_desa": desa_code}
        out.page.rejected.append(Rejection(record_id, tuple(reasons), payload))
        out.rejected_rows.append(
            RejectedRow(sheet_row.row, _masked_cells(template, record), tuple(reasons))
        )
    return out


# --- workbooks --------------------------------------------------------------------------------


def _xlsx_bytes(wb: Any) -> bytes:
    buffer = io.BytesIO()
    wb.save(buffer)
    return buffer.getvalue()


def template_workbook(source: str) -> bytes:
    """An empty XLSX of `source`'s template: header row, text-formatted columns, notes."""
    from openpyxl import Workbook
    from openpyxl.styles import Font
    from openpyxl.utils import get_column_letter

    template = template_of(source)
    wb = Workbook()
    ws = wb.active
    ws.title = DATA_SHEET
    ws.append([c.header for c in template.columns])
    for i, col in enumerate(template.columns, start=1):
        ws.cell(row=1, column=i).font = Font(bold=True)
        letter = get_column_letter(i)
        ws.column_dimensions[letter].width = 24 if col.kind == "id" else 20
        if col.kind != "time":
            # '@' makes what is typed text, so a NIK keeps its 16 digits; a column's style
            # reaches only cells that exist, so the first rows are given it too.
            ws.column_dimensions[letter].number_format = "@"
            for row in range(2, 1002):
                ws.cell(row=row, column=i).number_format = "@"
    ws.freeze_panes = "A2"
    notes = wb.create_sheet(NOTES_SHEET)
    notes.append([template.title])
    notes["A1"].font = Font(bold=True)
    for line in (
        "Isi lembar 'Data' mulai baris 2, satu baris per data; jangan ubah judul kolom.",
        "Kolom NIK dan No. KK harus berformat Teks: bila muncul 3.5780801E+15 atau angka "
        "tanpa tanda petik, formatnya Angka dan angka terakhir hilang. Format kolom sebagai "
        "Teks (Format Cells > Text) lalu ketik ulang dari data asli.",
        "Semua baris harus milik desa pengirim (desa folder atau akun desk).",
        "Baris yang ditolak dikembalikan dalam berkas XLSX dengan nomor baris, NIK/No. KK "
        "tersamar dan alasannya; perbaiki, ubah kolom Diperbarui, lalu kirim ulang berkas.",
        "Mengirim ulang berkas yang sama tidak mengubah apa pun.",
        "Berkas CSV juga diterima (UTF-8, pemisah koma atau titik koma, judul kolom sama).",
        "",
        "Kolom",
    ):
        notes.append([line])
    for col in template.columns:
        notes.append([col.header, "wajib" if col.required else "boleh kosong", col.note])
    notes.column_dimensions["A"].width = 24
    notes.column_dimensions["C"].width = 80
    return _xlsx_bytes(wb)


def rejected_workbook(source: str, rejected: Sequence[RejectedRow]) -> bytes:
    """The rejected rows as XLSX: row number, the masked cells, reason codes and reasons."""
    from openpyxl import Workbook
    from openpyxl.styles import Font

    template = template_of(source)
    wb = Workbook()
    ws = wb.active
    ws.title = "Ditolak"
    ws.append(["Baris", *(c.header for c in template.columns), "Kode Alasan", "Alasan"])
    for cell in ws[1]:
        cell.font = Font(bold=True)
    for rej in rejected:
        ws.append(
            [
                rej.row,
                *rej.cells,
                ", ".join(rej.reason_codes),
                "; ".join(
                    f"{r.loc or 'baris'}: {mask_ids_in_text(r.message)}" for r in rej.reasons
                ),
            ]
        )
    for row in ws.iter_rows(min_row=2, min_col=2):
        for cell in row:
            cell.number_format = "@"
    return _xlsx_bytes(wb)
