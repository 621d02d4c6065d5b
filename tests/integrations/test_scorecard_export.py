"""Scorecard files: written, read back with csv and openpyxl, and compared value by value."""

from __future__ import annotations

import csv
from datetime import date, datetime
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
from openpyxl import load_workbook

from integrations.scorecard_export import (
    HEADERS,
    SHEETS,
    cell_values,
    scorecard_dir,
    write_csv,
    write_scorecard_files,
)
from integrations.settings import Settings
from models.scorecard import (
    CALENDAR_RULE,
    HEADER,
    RANKING_RULE,
    SCORE_COLUMNS,
    HandoffRow,
    Scorecard,
    SourceCounts,
    compute_scorecard,
)

WIB = ZoneInfo("Asia/Jakarta")
AS_OF = datetime(2026, 3, 31, 10, tzinfo=WIB)


def _row(kec: str, created: datetime, due: date, **kw: datetime) -> HandoffRow:
    return HandoffRow(
        kecamatan_code=kec,
        kabupaten_code=kec[:5],
        origin_office=f"kecamatan:{kec}",
        office=f"kecamatan:{kec}",
        state="resolved" if "closed_at" in kw else "delivered",
        created_at=created,
        due_date=due,
        delivered_at=created,
        **kw,
    )


@pytest.fixture
def card() -> Scorecard:
    rows = [
        _row(
            "35.78.01",
            datetime(2026, 3, 16, 9, tzinfo=WIB),
            date(2026, 3, 27),
            acknowledged_at=datetime(2026, 3, 25, 9, tzinfo=WIB),
            closed_at=datetime(2026, 3, 26, 9, tzinfo=WIB),
        ),
        _row("35.78.01", datetime(2026, 3, 2, 9, tzinfo=WIB), date(2026, 3, 6)),
        _row(
            "35.07.01",
            datetime(2026, 3, 30, 9, tzinfo=WIB),
            date(2026, 4, 6),
            acknowledged_at=datetime(2026, 3, 31, 8, tzinfo=WIB),
        ),
    ]
    return compute_scorecard(
        rows,
        as_of=AS_OF,
        sources={"35.78.01": SourceCounts(fetched=3, quarantined=1)},
        findings={"35.07.01": 2},
        kecamatan_codes=["35.78.02"],
    )


def _csv(path: Path) -> list[list[str]]:
    with path.open(encoding="utf-8-sig", newline="") as handle:
        return list(csv.reader(handle))


def _text(value: object) -> str:
    return "" if value is None else str(value)


def test_files_land_in_the_dated_directory_and_read_back(card: Scorecard, tmp_path: Path) -> None:
    directory = scorecard_dir(Settings(data_dir=tmp_path), date(2026, 3, 31))
    assert directory == tmp_path / "scorecards" / "2026-03-31"
    files = write_scorecard_files(card, directory)
    assert sorted(p.name for p in directory.iterdir()) == [
        "kabupaten-2026-03-31.csv",
        "kecamatan-2026-03-31.csv",
        "scorecard-2026-03-31.xlsx",
    ]
    # The BOM makes Excel read the file as UTF-8.
    assert files.kecamatan_csv.read_bytes().startswith(b"\xef\xbb\xbf")
    kec = _csv(files.kecamatan_csv)
    assert kec[0] == list(HEADERS)
    assert kec[0][:5] == [
        "kode",
        "nama",
        "kode kabupaten/kota",
        "kabupaten/kota",
        "peringkat (1 = terburuk)",
    ]
    assert kec[1:] == [[_text(v) for v in cell_values(r)] for r in card.kecamatan]
    # Worst first; 35.78.02 had no handoffs: listed last, not ranked.
    assert [(line[0], line[4]) for line in kec[1:]] == [
        ("35.78.01", "1"),
        ("35.07.01", "2"),
        ("35.78.02", ""),
    ]
    karang_pilang = dict(zip(HEADERS, kec[1], strict=True))
    assert karang_pilang["nama"] == "Karang Pilang"
    assert karang_pilang["kabupaten/kota"] == "Kota Surabaya"
    assert karang_pilang[HEADER["resolved_in_time_share"]] == "50.0"
    assert karang_pilang[HEADER["quarantine_rate"]] == "33.3"
    assert karang_pilang[HEADER["oldest_backlog_workdays"]] == "16"
    kab = _csv(files.kabupaten_csv)
    assert [line[0] for line in kab[1:]] == ["35.78", "35.07", "35"]
    assert kab[-1][HEADERS.index(HEADER["rank"])] == ""  # the province is not ranked

    book = load_workbook(files.xlsx)
    assert book.sheetnames == list(SHEETS)
    for title, lines in (
        ("Kecamatan", card.kecamatan),
        ("Kabupaten-Kota", [*card.kabupaten, card.province]),
    ):
        sheet = book[title]
        values = [list(r) for r in sheet.iter_rows(values_only=True)]
        assert values[0] == list(HEADERS)
        assert values[1:] == [cell_values(r) for r in lines]
        assert all(cell.font.bold for cell in sheet[1])
        assert sheet.freeze_panes == "A2"
        assert sheet.column_dimensions["B"].width >= len("Karang Pilang")
        share = HEADERS.index(HEADER["resolved_in_time_share"]) + 1
        assert sheet.cell(row=2, column=share).number_format == "0.0"
    about = dict(book["Definisi"].iter_rows(min_row=2, values_only=True))
    assert about["Data per"] == "2026-03-31 10:00 WIB"
    assert about["Hari kerja"] == CALENDAR_RULE
    assert about["Aturan peringkat"] == RANKING_RULE
    # The totals say what they include: 3 handoffs read, all to kecamatan offices.
    assert about["Jumlah kasus"].startswith("3 kasus dibaca sampai tanggal data: 3 diserahkan")
    assert all(about[c.header] == c.definition for c in SCORE_COLUMNS)
    glossary = list(book["Glossary"].iter_rows(min_row=2, values_only=True))
    assert glossary == [(c.header, c.english, c.definition) for c in SCORE_COLUMNS]


def test_values_are_rounded_for_reading(tmp_path: Path) -> None:
    # 8 of 13 in time is 61.538...%: the files show 61.5, never 0.6153999999999999.
    rows = [
        _row(
            "35.78.01",
            datetime(2026, 3, 2, 9, tzinfo=WIB),
            date(2026, 3, 6) if i < 8 else date(2026, 3, 3),
            closed_at=datetime(2026, 3, 5, 9, tzinfo=WIB),
        )
        for i in range(13)
    ]
    card = compute_scorecard(rows, as_of=AS_OF)
    (line,) = card.kecamatan
    assert line.resolved_in_time_share == 8 / 13
    assert cell_values(line)[HEADERS.index(HEADER["resolved_in_time_share"])] == 61.5


def test_rewriting_replaces_the_file_whole(card: Scorecard, tmp_path: Path) -> None:
    path = tmp_path / "k.csv"
    write_csv(path, card.kecamatan)
    write_csv(path, card.kecamatan[:1])
    assert len(_csv(path)) == 2
    assert [p.name for p in tmp_path.iterdir()] == ["k.csv"]  # no temporary file left behind


def test_the_health_response_column_is_exported_with_its_definition(tmp_path: Path) -> None:
    created = datetime(2026, 3, 2, 9, tzinfo=WIB)  # Monday
    alerts = [
        HandoffRow(
            kecamatan_code="35.78.01",
            kabupaten_code="35.78",
            origin_office=origin,
            office=origin,
            state="acknowledged",
            created_at=created,
            due_date=date(2026, 3, 3),
            delivered_at=created,
            acknowledged_at=datetime(2026, 3, day, 9, tzinfo=WIB),
            kind=kind,
        )
        for origin, kind, day in (
            ("kecamatan:35.78.01", "health_red_zone", 3),  # 1 working day
            ("forkopimcam:35.78.01", "health_red_zone_notice", 4),  # 2
        )
    ]
    card = compute_scorecard(alerts, as_of=AS_OF)
    files = write_scorecard_files(card, tmp_path)
    line = dict(zip(HEADERS, _csv(files.kecamatan_csv)[1], strict=True))
    assert line["peringatan kesehatan"] == "2"
    assert line["median hari kerja tanggap peringatan kesehatan"] == "1.5"
    book = load_workbook(files.xlsx)
    about = dict(book["Definisi"].iter_rows(min_row=2, values_only=True))
    assert about["median hari kerja tanggap peringatan kesehatan"].startswith(
        "Hari kerja dari tanggal peringatan kesehatan dibuat"
    )
    assert about["Peringatan kesehatan"].startswith("2 peringatan zona merah")
    assert "median" in about["Peringatan kesehatan"]
    assert "ke Forkopimcam" in about["Jumlah kasus"]
    column = HEADERS.index("median hari kerja tanggap peringatan kesehatan") + 1
    assert book["Kecamatan"].cell(row=2, column=column).number_format == "0.0"
