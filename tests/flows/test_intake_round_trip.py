"""The template round trip on the sandbox's own BLT-DD lists: drop, take, send back, then the API.

The desa agency's lists of one kecamatan, read over HTTP as the hub reads them, are written
into the generated template (one file per desa folder) with four rows spoiled the way
spreadsheets and typists do. The `intake-folder` flow takes them; each desa gets back exactly
its spoiled rows with their reasons. Then the same lists arrive by the API: the rows the files
brought are unchanged, the spoiled ones arrive valid, and a row the desa edited later in its
spreadsheet keeps the newer version.
"""

from __future__ import annotations

import io
import re
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from openpyxl import load_workbook
from pydantic import ValidationError
from sqlalchemy import select

from flows.intake_folder import intake_folder_flow
from flows.sync_sources import sync_sources_flow
from integrations.settings import get_settings
from integrations.store.engine import get_engine
from integrations.store.tables import table_of
from models import tables
from models.contracts.desa import BltRecipient
from models.scope import RegionScope
from sandbox.config import (
    CoordinationConfig,
    RegistryDataConfig,
    SandboxConfig,
    default_token,
)
from sandbox.server import serve_in_thread
from tests.integrations.test_intake import _fill, _sent_back

CONFIG = SandboxConfig(
    registry=RegistryDataConfig(seed=11, households=60_000),
    coordination=CoordinationConfig(blt_share=0.6),
)
SIXTEEN_DIGITS = re.compile(r"(?<![0-9])[0-9]{16}(?![0-9])")
BLT_RECIPIENT = table_of(tables.BltRecipient)


def _blt_list(url: str, kecamatan: str) -> list[dict[str, Any]]:
    """The desa agency's BLT-DD records of one kecamatan, every page."""
    auth = {"Authorization": f"Bearer {default_token('desa')}"}
    records: list[dict[str, Any]] = []
    params: dict[str, Any] = {"kecamatan": kecamatan, "limit": 1000}
    with httpx.Client(base_url=url, headers=auth) as client:
        while True:
            page = client.get("/desa/v1/blt-recipients", params=params).raise_for_status().json()
            records += page["data"]
            if page["next_cursor"] is None:
                return records
            params["cursor"] = page["next_cursor"]


def _valid(record: dict[str, Any]) -> bool:
    try:
        BltRecipient.model_validate(record)
    except ValidationError:
        return False
    return True


@pytest.fixture
def desa_agency(
    store_url: str, prefect_api: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> Iterator[tuple[str, Path]]:
    """The sandbox on a real port, the hub pointed at its desa agency, a watched folder."""
    root = tmp_path / "intake"
    root.mkdir()
    with serve_in_thread(CONFIG) as url:
        monkeypatch.setenv("CETTAR_DATABASE_URL", store_url)
        monkeypatch.setenv("CETTAR_DESA_URL", f"{url}/desa")
        monkeypatch.setenv("CETTAR_INTAKE_DIR", str(root))
        monkeypatch.setenv("CETTAR_HTTP_BACKOFF_BASE_S", "0.01")
        get_settings.cache_clear()
        get_engine.cache_clear()
        yield url, root
        get_engine().dispose()
        get_settings.cache_clear()
        get_engine.cache_clear()


def _stored() -> dict[str, dict[str, Any]]:
    with get_engine().connect() as conn:
        rows = conn.execute(select(BLT_RECIPIENT)).mappings()
        return {r["id"]: dict(r) for r in rows}


def test_the_sandbox_lists_round_trip_through_the_folder_and_then_the_api(
    desa_agency: tuple[str, Path],
) -> None:
    url, root = desa_agency
    kecamatan = "35.07.01"
    served = [r for r in _blt_list(url, kecamatan) if _valid(r)]
    by_desa: dict[str, list[dict[str, Any]]] = {}
    for record in served:
        by_desa.setdefault(record["desa_code"], []).append(dict(record))
    largest = sorted(by_desa, key=lambda d: (-len(by_desa[d]), d))
    assert len(largest) >= 4 and len(by_desa[largest[3]]) >= 2, Counter(map(len, by_desa.values()))

    # Four desa each spoil their first row (sheet row 2), each in its own way.
    spoil = {
        largest[0]: ("nik", lambda r: int(r["nik"]), "nik:numeric_cell"),
        largest[1]: ("no_kk", lambda r: "3.5780801E+15", "no_kk:scientific_notation"),
        largest[2]: ("desa_code", lambda r: largest[0], "desa_code:desa_mismatch"),
        largest[3]: ("period", lambda r: "2026-Q5", "period:string_pattern_mismatch"),
    }
    planted: dict[str, dict[int, list[str]]] = {}
    spoiled_ids: set[str] = set()
    for desa, rows in by_desa.items():
        rows = [dict(r) for r in rows]
        if desa in spoil:
            field, value, reason = spoil[desa]
            rows[0][field] = value(rows[0])
            planted[desa] = {2: [reason]}
            spoiled_ids.add(rows[0]["id"])
        (root / desa).mkdir()
        (root / desa / "blt-dd.xlsx").write_bytes(_fill(rows))

    taken = intake_folder_flow()
    assert (taken["files"], taken["taken"]) == (len(by_desa), len(by_desa))
    assert (taken["rows"], taken["rejected"]) == (len(served), 4)
    for desa in by_desa:
        back = root / desa / "blt-dd.ditolak.xlsx"
        if desa in planted:
            content = back.read_bytes()
            assert _sent_back(content) == planted[desa], desa
            wb = load_workbook(io.BytesIO(content))
            text = " ".join(
                str(v) for ws in wb for row in ws.iter_rows(values_only=True) for v in row
            )
            assert not SIXTEEN_DIGITS.search(text)
        else:
            assert not back.exists(), desa
    stored = _stored()
    assert set(stored) == {r["id"] for r in served} - spoiled_ids

    # The desa edits one row later in its spreadsheet and sends the file again.
    edited_desa = largest[4] if len(largest) > 4 else largest[0]
    edited = dict(by_desa[edited_desa][-1])
    edited.update(status="removed", updated_at="2026-11-30T09:00:00+07:00")
    (root / edited_desa / "blt-dd-revisi.xlsx").write_bytes(_fill([edited]))
    assert intake_folder_flow()["written"] == 1

    # The API brings the same lists: the files' rows are unchanged, the spoiled rows arrive
    # valid, and the sheet's newer edit is kept over the API's older version of its row.
    totals = sync_sources_flow(scope=RegionScope(kecamatan=[kecamatan]), agencies=["desa"])[
        "totals"
    ]["desa.blt-recipients"]
    assert totals["upserted"] == len(spoiled_ids)
    after = _stored()
    assert set(after) == {r["id"] for r in served}
    assert after[edited["id"]]["status"] == "removed"
    for record in served:
        if record["id"] != edited["id"]:
            assert after[record["id"]]["status"] == record["status"]
