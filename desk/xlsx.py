"""The office's handoff list as an XLSX workbook: one row per handoff, ids masked."""

from __future__ import annotations

import io
from collections.abc import Iterable, Mapping
from datetime import date
from typing import Any

from openpyxl import Workbook

from desk.labels import KIND_LABELS, STATE_LABELS
from desk.store import Person
from models.handoffs import safe_text

__all__ = ["HEADER", "list_workbook"]

HEADER = (
    "ID serah terima",
    "Jenis",
    "Status",
    "Kantor pemegang",
    "Kantor tujuan awal",
    "Kecamatan",
    "Nama",
    "NIK (disamarkan)",
    "No. KK (disamarkan)",
    "Desa/Kelurahan",
    "Alamat",
    "Periode",
    "Jatuh tempo",
    "Terlambat",
    "Alasan keputusan",
)


def _cell(value: str) -> str:
    # A cell starting with = + - @ would be run as a formula by the spreadsheet that opens
    # it; stored text is data, so it is prefixed to stay text.
    text = safe_text(value, 500)
    return "'" + text if text[:1] in ("=", "+", "-", "@") else text


def list_workbook(
    rows: Iterable[Any], people: Mapping[str, Person], today: date, title: str
) -> bytes:
    """The XLSX bytes of the list `rows` with their people (NIK and No. KK masked)."""
    book = Workbook(write_only=True)
    sheet = book.create_sheet(title=title[:31] or "Serah terima")
    sheet.append(list(HEADER))
    for r in rows:
        person = people.get(r.subject_token)
        overdue = r.state not in ("resolved", "rejected") and r.due_date < today
        sheet.append(
            [
                r.id,
                KIND_LABELS.get(r.kind, r.kind),
                STATE_LABELS.get(r.state, r.state),
                r.office,
                r.origin_office,
                r.kecamatan_code,
                _cell(person.name) if person else "",
                person.masked_nik if person else "",
                person.masked_kk if person else "",
                _cell(person.desa_name) if person else "",
                _cell(person.address) if person else "",
                r.period,
                r.due_date,
                "ya" if overdue else "tidak",
                _cell(r.decision_reason or ""),
            ]
        )
    out = io.BytesIO()
    book.save(out)
    return out.getvalue()
