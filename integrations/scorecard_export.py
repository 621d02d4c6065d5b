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

from openpyxl import Workbook
from openpyxl.styles import Font
from openpyxl.utils import get_column_letter

from integrations.settings import Settings
from models.plain import as_plain
from models.scope import WHOLE_PROVINCE, RegionScope
from models.scorecard import SCORE_COLUMNS, Scorecard, ScoreRow
from models.workdays import local_date

__all__ = [
    "ScorecardFiles",
    "cell_values",
    "record",
    "scorecard_dir",
    "write_csv",
    "write_scorecard_files",
    "write_xlsx",
]

# Decimals kept in the files: shares and rates as fractions, medians in working days.
_DECIMALS = {"resolved_in_time_share": 4, "quarantine_rate": 4, "median_ack_workdays": 1}
_PERCENT = frozenset({"resolved_in_time_share", "quarantine_rate"})
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
    """A line's values in SCORE_COLUMNS order; None and "" become None (an empty cell)."""
    values: list[Any] = []
    for attr, _header in SCORE_COLUMNS:
        value = getattr(row, attr)
        if isinstance(value, float) and attr in _DECIMALS:
            value = round(value, _DECIMALS[attr])
        values.append(None if value == "" else value)
    return values


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
        writer.writerow([header for _attr, header in SCORE_COLUMNS])
        for row in rows:
            writer.writerow(["" if v is None else v for v in cell_values(row)])
    return path


def _sheet(book: Workbook, title: str, rows: Sequence[ScoreRow], first: bool) -> None:
    sheet = book.active if first else book.create_sheet()
    sheet.title = title
    headers = [header for _attr, header in SCORE_COLUMNS]
    values = [cell_values(r) for r in rows]
    sheet.append(headers)
    for line in values:
        sheet.append(line)
    bold = Font(bold=True)
    for cell in sheet[1]:
        cell.font = bold
    # The header stays in view while scrolling through 666 kecamatan.
    sheet.freeze_panes = "A2"
    sheet.auto_filter.ref = sheet.dimensions
    for i, (attr, header) in enumerate(SCORE_COLUMNS):
        if attr in _PERCENT:
            for (cell,) in sheet.iter_rows(min_row=2, min_col=i + 1, max_col=i + 1):
                cell.number_format = "0.0%"
        longest = max([len(header)] + [len(str(line[i])) for line in values if line[i] is not None])
        sheet.column_dimensions[get_column_letter(i + 1)].width = min(longest + 2, _MAX_WIDTH)


def write_xlsx(path: Path, sheets: Sequence[tuple[str, Sequence[ScoreRow]]]) -> Path:
    """A workbook with one sheet per table: bold frozen header, filters and fitted widths."""
    book = Workbook()
    for i, (title, rows) in enumerate(sheets):
        _sheet(book, title, rows, first=i == 0)
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
        xlsx=write_xlsx(
            directory / f"scorecard-{day}.xlsx",
            [("kecamatan", scorecard.kecamatan), ("kabupaten", kabupaten)],
        ),
    )
    return files


def record(row: ScoreRow) -> dict[str, Any]:
    """A line as {column header: value}, for table artifacts."""
    return dict(zip((h for _a, h in SCORE_COLUMNS), cell_values(row), strict=True))
