"""Spreadsheet intake into the store: template round trip, re-sent and corrected files."""

from __future__ import annotations

import io
import json
import re
from datetime import date
from typing import Any

import pytest
from openpyxl import load_workbook
from sqlalchemy import Engine, func, select

from integrations.store.intake import ingest_file, intake_partition
from integrations.store.replay import replay_quarantined
from integrations.store.tables import CURSOR, QUARANTINE, table_of
from models import tables
from models.identity import make_nik, make_no_kk
from models.intake import DATA_SHEET, IntakeFileError, template_of, template_workbook
from tests.models.test_sources import KEY, NOW, blt

BLT = "desa.blt-recipients"
DESA = "35.07.01.2001"
BLT_RECIPIENT = table_of(tables.BltRecipient)
SIXTEEN_DIGITS = re.compile(r"(?<![0-9])[0-9]{16}(?![0-9])")


def _list(n: int) -> list[dict[str, Any]]:
    return [
        blt(
            id=f"BLT-{i:03d}",
            nik=make_nik("35.07.01", date(1970 + i % 30, 1 + i % 12, 1 + i % 28), "P", 100 + i),
            no_kk=make_no_kk("35.07.01", date(2012, 2, 3), 200 + i),
            name=f"Warga {i}",
        )
        for i in range(n)
    ]


def _fill(records: list[dict[str, Any]]) -> bytes:
    template = template_of(BLT)
    wb = load_workbook(io.BytesIO(template_workbook(BLT)))
    ws = wb[DATA_SHEET]
    for r, rec in enumerate(records, start=2):
        for c, col in enumerate(template.columns, start=1):
            ws.cell(row=r, column=c).value = rec.get(col.field)
    out = io.BytesIO()
    wb.save(out)
    return out.getvalue()


def _planted(records: list[dict[str, Any]]) -> dict[int, list[str]]:
    """Spoil four rows the way spreadsheets and typists do; their row numbers and reasons."""
    records[3]["nik"] = int(records[3]["nik"])  # the column was formatted as a number
    records[7]["no_kk"] = "3.5780801E+15"  # pasted from a CSV that went through a spreadsheet
    records[11]["desa_code"] = "35.07.01.2002"  # a row of the neighbouring desa
    records[15]["period"] = "2026-Q5"
    return {
        5: ["nik:numeric_cell"],
        9: ["no_kk:scientific_notation"],
        13: ["desa_code:desa_mismatch"],
        17: ["period:string_pattern_mismatch"],
    }


def _sent_back(xlsx: bytes) -> dict[int, list[str]]:
    ws = load_workbook(io.BytesIO(xlsx)).active
    header = [c.value for c in ws[1]]
    codes = header.index("Kode Alasan")
    return {
        row[0]: str(row[codes]).split(", ") for row in ws.iter_rows(min_row=2, values_only=True)
    }


def _workbook_text(xlsx: bytes) -> str:
    wb = load_workbook(io.BytesIO(xlsx))
    return " ".join(
        str(v) for ws in wb.worksheets for row in ws.iter_rows(values_only=True) for v in row
    )


def _stored(store: Engine) -> dict[str, tuple[str, Any]]:
    with store.connect() as conn:
        rows = conn.execute(
            select(BLT_RECIPIENT.c.id, BLT_RECIPIENT.c.period, BLT_RECIPIENT.c.updated_at)
        )
        return {r.id: (r.period, r.updated_at) for r in rows}


def _quarantined(store: Engine) -> list[dict[str, Any]]:
    with store.connect() as conn:
        rows = conn.execute(select(QUARANTINE).where(QUARANTINE.c.source == BLT)).mappings()
        return [dict(r) for r in rows]


def test_a_template_round_trip_sends_back_exactly_the_planted_rows(store: Engine) -> None:
    records = _list(20)
    planted = _planted(records)
    result = ingest_file(store, BLT, DESA, "blt.xlsx", _fill(records), key=KEY, now=NOW)
    counts = result.counts
    assert (counts.rows, counts.written, counts.unchanged, counts.rejected) == (20, 16, 0, 4)
    assert result.rejected_xlsx is not None
    assert _sent_back(result.rejected_xlsx) == planted
    text = _workbook_text(result.rejected_xlsx)
    assert not SIXTEEN_DIGITS.search(text), text
    assert not SIXTEEN_DIGITS.search(json.dumps(counts.as_dict()))
    assert len(_stored(store)) == 16
    held = _quarantined(store)
    assert sorted(json.loads(q["payload"])["_row"] for q in held) == sorted(planted)
    assert {q["partition"] for q in held} == {intake_partition(DESA)}


def test_a_resent_file_changes_nothing(store: Engine) -> None:
    records = _list(20)
    _planted(records)
    content = _fill(records)
    ingest_file(store, BLT, DESA, "blt.xlsx", content, key=KEY, now=NOW)
    before, held = _stored(store), len(_quarantined(store))
    again = ingest_file(store, BLT, DESA, "blt.xlsx", content, key=KEY, now=NOW).counts
    assert (again.written, again.unchanged, again.rejected) == (0, 16, 4)
    assert _stored(store) == before
    assert len(_quarantined(store)) == held


def test_a_corrected_file_applies_only_its_fixes(store: Engine) -> None:
    records = _list(20)
    _planted(records)
    ingest_file(store, BLT, DESA, "blt.xlsx", _fill(records), key=KEY, now=NOW)
    before = _stored(store)
    fixed = _list(20)
    # The typist fixes the period of row 17 and marks the change; the rest is as it was
    # (rows 5, 9 and 13 still wrong), and an older copy of row 2 must not win.
    fixed[15]["updated_at"] = "2026-10-05T08:00:00+07:00"
    fixed[0]["period"] = "2026-Q3"
    fixed[0]["updated_at"] = "2026-09-01T08:00:00+07:00"
    for i in (3, 7, 11):
        fixed[i] = records[i]
    result = ingest_file(store, BLT, DESA, "blt-2.xlsx", _fill(fixed), key=KEY, now=NOW)
    assert (result.counts.written, result.counts.rejected) == (1, 3)
    after = _stored(store)
    assert set(after) - set(before) == {"BLT-015"}
    assert {k: v for k, v in after.items() if k != "BLT-015"} == before
    assert result.rejected_xlsx is not None
    assert sorted(_sent_back(result.rejected_xlsx)) == [5, 9, 13]


def test_intake_keeps_its_own_cursor(store: Engine) -> None:
    ingest_file(store, BLT, DESA, "blt.xlsx", _fill(_list(3)), key=KEY, now=NOW)
    with store.connect() as conn:
        parts = conn.execute(select(CURSOR.c.partition).where(CURSOR.c.source == BLT)).scalars()
        assert list(parts) == [intake_partition(DESA)]
        assert conn.execute(select(func.count()).select_from(QUARANTINE)).scalar() == 0


def test_an_unreadable_file_writes_nothing(store: Engine) -> None:
    with pytest.raises(IntakeFileError):
        ingest_file(store, BLT, DESA, "blt.csv", b"Nama\nSiti\n", key=KEY, now=NOW)
    with pytest.raises(ValueError, match="desa"):
        ingest_file(store, BLT, "35.07.01", "blt.xlsx", _fill(_list(1)), key=KEY, now=NOW)
    assert _stored(store) == {}


def test_a_replay_leaves_the_rows_a_desa_sent_to_its_corrected_file(store: Engine) -> None:
    records = _list(20)
    _planted(records)
    ingest_file(store, BLT, DESA, "blt.xlsx", _fill(records), key=KEY, now=NOW)
    before, held = _stored(store), _quarantined(store)
    # A replay re-checks a row alone: the neighbouring desa's row (valid on its own) would
    # be written into the store from this desa's file. It is not the replay's to take.
    counts = replay_quarantined(store, BLT, key=KEY, now=NOW)
    assert counts.examined == 0
    assert _stored(store) == before
    assert [q["status"] for q in _quarantined(store)] == [q["status"] for q in held]
    assert "35.07.01.2002" not in {r["desa_code"] for r in _stored_rows(store)}


def _stored_rows(store: Engine) -> list[dict[str, Any]]:
    with store.connect() as conn:
        return [dict(r) for r in conn.execute(select(BLT_RECIPIENT)).mappings()]
