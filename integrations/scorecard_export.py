"""Scorecard files an office can open: CSV (UTF-8 with BOM, for Excel) and XLSX."""

from __future__ import annotations

import csv
import os
import tempfile
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import date
from pathlib import Path
from typing import IO, Any
from zoneinfo import ZoneInfo

from openpyxl import Workbook
from openpyxl.styles import Alignment, Font
from openpyxl.utils import get_column_letter

from integrations.settings import Settings
from models.plain import as_plain
from models.scope import WHOLE_PROVINCE, RegionScope
from models.scorecard import CALENDAR_RULE, RANKING_RULE, SCORE_COLUMNS, Scorecard, ScoreRow
from models.workdays import JAKARTA, local_date

__all__ = [
    "HEADERS",
    "SHEETS",
    "ScorecardFiles",
    "cell_values",
    "definitions",
    "record",
    "scorecard_dir",
    "write_csv",
    "write_scorecard_files",
    "write_xlsx",
]

HEADERS: tuple[str, ...] = tuple(c.header for c in SCORE_COLUMNS)
"""The tables' column headers, in order."""
SHEETS = ("Kecamatan", "Kabupaten-Kota", "Definisi", "Glossary")
"""The workbook's sheets: the two tables, the definitions, an English glossary."""
_MAX_WIDTH = 48


@dataclass(frozen=True, slots=True)
class ScorecardFiles:
    """Where one scorecard's files were written."""

    directory: Path
    kecamatan_csv: Path
    kabupaten_csv: Path
    xlsx: Path

    def as_dict(self) -> dict[str, str]:
        """The files' paths as text, for task results and artifacts."""
        return {k: v for k, v in as_plain(self).items() if k != "directory"}


def scorecard_dir(settings: Settings, day: date, scope: RegionScope = WHOLE_PROVINCE) -> Path:
    """`<data_dir>/scorecards/<YYYY-MM-DD>/` for the province's scorecard of a (Jakarta) day.

    A scoped scorecard goes to a folder of its own below it (`scope-35.78+35.07.01/`), so it
    never replaces the province's files of the same day.
    """
    base = settings.data_dir / "scorecards" / day.isoformat()
    if scope.is_province:
        return base
    return base / ("scope-" + "+".join(sorted({*scope.kabupaten, *scope.kecamatan})))


def cell_values(row: ScoreRow) -> list[Any]:
    """A line's values in SCORE_COLUMNS order, rounded; None and "" become None (empty)."""
    values: list[Any] = []
    for col in SCORE_COLUMNS:
        value = getattr(row, col.attr)
        if isinstance(value, float):
            value = round(value * 100, 1) if col.percent else round(value, col.decimals or 0)
        values.append(None if value == "" else value)
    return values


def definitions(scorecard: Scorecard) -> list[tuple[str, str]]:
    """What the workbook states about itself: the as-of time, the rules and the totals."""
    prov = scorecard.province
    as_of = scorecard.as_of.astimezone(ZoneInfo(JAKARTA))
    return [
        ("Data per", as_of.strftime("%Y-%m-%d %H:%M WIB")),
        ("Hari kerja", CALENDAR_RULE),
        ("Aturan peringkat", RANKING_RULE),
        (
            "Jumlah kasus",
            f"{scorecard.all_handoffs} kasus dibaca sampai tanggal data: {prov.handoffs} "
            f"diserahkan ke kantor kecamatan dan desa (baris provinsi = jumlah semua baris "
            f"kecamatan) dan {scorecard.other_offices} ke instansi program (PKH, registri), "
            f"ke Forkopimcam atau tanpa kecamatan, yang tidak dinilai di sini.",
        ),
        (
            "Peringatan kesehatan",
            f"{prov.health_alerts} peringatan zona merah (ke kecamatan, desa dan Forkopimcam). "
            "Waktu tanggap dihitung dari tanggal peringatan dibuat, bukan tanggal dikirim, "
            "dan berupa median; pemberitahuan ke Forkopimcam hanya dihitung di kolom "
            "peringatan kesehatan.",
        ),
        (
            "Wilayah",
            f"{len(scorecard.kecamatan)} kecamatan, {len(scorecard.kabupaten)} kabupaten/kota.",
        ),
    ]


@contextmanager
def _replacing(path: Path, mode: str, **kwargs: Any) -> Iterator[IO[Any]]:
    """Write to a temporary file beside path, then swap it in: readers never see half a file."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    try:
        with os.fdopen(fd, mode, **kwargs) as handle:
            yield handle
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def write_csv(path: Path, rows: Sequence[ScoreRow]) -> Path:
    """One header line and one line per scorecard line; UTF-8 with a BOM so Excel reads it."""
    with _replacing(path, "w", encoding="utf-8-sig", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(HEADERS)
        for row in rows:
            writer.writerow(["" if v is None else v for v in cell_values(row)])
    return path


def _fit(sheet: Any, columns: Sequence[Sequence[Any]]) -> None:
    """Column widths fitted to the longest value, capped so long text wraps off-screen."""
    for i, column in enumerate(columns, start=1):
        longest = max((len(str(v)) for v in column if v is not None), default=4)
        sheet.column_dimensions[get_column_letter(i)].width = min(longest + 2, _MAX_WIDTH)


def _table(sheet: Any, rows: Sequence[ScoreRow]) -> None:
    """A scorecard table: bold frozen header, filters, percent and one-decimal formats."""
    values = [cell_values(r) for r in rows]
    sheet.append(list(HEADERS))
    for line in values:
        sheet.append(line)
    bold = Font(bold=True)
    for cell in sheet[1]:
        cell.font = bold
    # The header stays in view while scrolling through 666 kecamatan.
    sheet.freeze_panes = "A2"
    sheet.auto_filter.ref = sheet.dimensions
    for i, col in enumerate(SCORE_COLUMNS, start=1):
        if col.percent or col.decimals:
            for (cell,) in sheet.iter_rows(min_row=2, min_col=i, max_col=i):
                cell.number_format = "0.0"
    _fit(sheet, [[h, *(line[i] for line in values)] for i, h in enumerate(HEADERS)])


def _text_sheet(sheet: Any, header: Sequence[str], lines: Sequence[Sequence[str]]) -> None:
    """A sheet of text: a bold header line, then the lines, long text wrapped."""
    sheet.append(list(header))
    for cell in sheet[1]:
        cell.font = Font(bold=True)
    for line in lines:
        sheet.append(list(line))
    for row in sheet.iter_rows(min_row=2):
        for cell in row:
            cell.alignment = Alignment(wrap_text=True, vertical="top")
    _fit(sheet, [[header[i], *(line[i] for line in lines)] for i in range(len(header))])


def write_xlsx(path: Path, scorecard: Scorecard) -> Path:
    """The workbook: kecamatan and kabupaten/kota tables, definitions and an English glossary."""
    book = Workbook()
    kecamatan, kabupaten, about, glossary = (
        book.active,
        book.create_sheet(),
        book.create_sheet(),
        book.create_sheet(),
    )
    for sheet, title in zip((kecamatan, kabupaten, about, glossary), SHEETS, strict=True):
        sheet.title = title
    _table(kecamatan, scorecard.kecamatan)
    _table(kabupaten, [*scorecard.kabupaten, scorecard.province])
    _text_sheet(
        about,
        ("hal", "keterangan"),
        [*definitions(scorecard), *((c.header, c.definition) for c in SCORE_COLUMNS)],
    )
    _text_sheet(
        glossary,
        ("kolom", "column", "meaning"),
        [(c.header, c.english, c.definition) for c in SCORE_COLUMNS],
    )
    with _replacing(path, "wb") as handle:
        book.save(handle)
    return path


def write_scorecard_files(scorecard: Scorecard, directory: Path) -> ScorecardFiles:
    """Write the kecamatan and kabupaten tables (plus the province line) as CSV and one XLSX."""
    day = local_date(scorecard.as_of).isoformat()
    kabupaten = [*scorecard.kabupaten, scorecard.province]
    files = ScorecardFiles(
        directory=directory,
        kecamatan_csv=write_csv(directory / f"kecamatan-{day}.csv", scorecard.kecamatan),
        kabupaten_csv=write_csv(directory / f"kabupaten-{day}.csv", kabupaten),
        xlsx=write_xlsx(directory / f"scorecard-{day}.xlsx", scorecard),
    )
    return files


def record(row: ScoreRow) -> dict[str, Any]:
    """A line as {column header: value}, for table artifacts."""
    return dict(zip(HEADERS, cell_values(row), strict=True))
