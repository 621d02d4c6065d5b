"""The `intake-folder` flow on a real Prefect server: desa folders, results beside the files."""

from __future__ import annotations

import io
import json
import re
from collections.abc import Iterator
from pathlib import Path

import pytest
from openpyxl import load_workbook

from flows.intake_folder import LEDGER_DIR, intake_folder_flow
from integrations.settings import get_settings
from integrations.store.engine import get_engine
from tests.integrations.test_intake import _fill, _list, _planted, _sent_back
from tests.models.test_intake import _csv
from tests.models.test_sources import submission

DESA = "35.07.01.2001"
SIXTEEN_DIGITS = re.compile(r"(?<![0-9])[0-9]{16}(?![0-9])")


@pytest.fixture
def root(
    store_url: str, prefect_api: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> Iterator[Path]:
    """A watched root with one desa folder; the hub pointed at it and at a fresh store."""
    base = tmp_path / "intake"
    (base / DESA).mkdir(parents=True)
    monkeypatch.setenv("CETTAR_DATABASE_URL", store_url)
    monkeypatch.setenv("CETTAR_INTAKE_DIR", str(base))
    get_settings.cache_clear()
    get_engine.cache_clear()
    yield base
    get_engine().dispose()
    get_settings.cache_clear()
    get_engine.cache_clear()


def test_a_dropped_file_is_taken_once_and_answered_in_its_folder(root: Path) -> None:
    records = _list(20)
    planted = _planted(records)
    content = _fill(records)
    (root / DESA / "blt-2026q4.xlsx").write_bytes(content)
    (root / DESA / "ksk.csv").write_bytes(_csv("statistik.submissions", [submission()]))
    (root / "bukan-desa").mkdir()
    (root / "bukan-desa" / "x.csv").write_bytes(b"x")

    first = intake_folder_flow()
    assert (first["files"], first["taken"], first["rows"], first["written"]) == (2, 2, 21, 17)
    assert first["rejected"] == 4
    rejected = (root / DESA / "blt-2026q4.ditolak.xlsx").read_bytes()
    assert _sent_back(rejected) == planted
    wb = load_workbook(io.BytesIO(rejected))
    text = " ".join(str(v) for row in wb.active.iter_rows(values_only=True) for v in row)
    assert not SIXTEEN_DIGITS.search(text)
    assert "Ditolak: 4" in (root / DESA / "blt-2026q4.hasil.txt").read_text()
    assert not (root / DESA / "ksk.ditolak.xlsx").exists()
    assert not SIXTEEN_DIGITS.search(json.dumps(first))

    # The same content again, under another name too: nothing to take.
    (root / DESA / "salinan.xlsx").write_bytes(content)
    again = intake_folder_flow()
    assert again["files"] == 0
    assert len(json.loads((root / LEDGER_DIR / f"{DESA}.json").read_text())) == 2


def test_an_unreadable_file_gets_a_note_and_is_not_retried(root: Path) -> None:
    (root / DESA / "catatan.csv").write_bytes(b"Nama;Umur\nSiti;40\n")
    first = intake_folder_flow(root=str(root))
    assert (first["files"], first["unreadable"]) == (1, 1)
    assert "tidak cocok" in (root / DESA / "catatan.galat.txt").read_text()
    assert intake_folder_flow(root=str(root))["files"] == 0
