"""The kecamatan-scorecard flow on the Prefect test server and a store of hand-made handoffs."""

from __future__ import annotations

import csv
import json
from collections.abc import Iterator
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any
from uuid import UUID
from zoneinfo import ZoneInfo

import pytest
from openpyxl import load_workbook
from prefect import get_client
from prefect.client.schemas.filters import ArtifactFilter, ArtifactFilterFlowRunId
from sqlalchemy import Engine, insert

from deployments.run_audit import audit_flow_run
from flows.kecamatan_scorecard import kecamatan_scorecard
from flows.signals import HANDOFFS_OVERDUE
from integrations.settings import get_settings
from integrations.store.engine import get_engine
from models.tables import Handoff, Quarantine, SyncCursor
from tests.flows.events import hub_events

WIB = ZoneInfo("Asia/Jakarta")
AS_OF = datetime(2026, 3, 31, 10, tzinfo=WIB)


def _utc(y: int, m: int, d: int, h: int = 9) -> datetime:
    # The store holds UTC.
    return datetime(y, m, d, h, tzinfo=WIB).astimezone(UTC)


def handoff(
    i: int,
    origin: str,
    kec: str,
    created: datetime,
    due: date,
    *,
    kind: str = "blt_pkh_overlap",
    closed: datetime | None = None,
) -> dict[str, Any]:
    return {
        "id": f"{i:032x}",
        "kind": kind,
        "subject_token": f"{i:032x}",
        "period": "2026-Q1",
        "sender": "hub",
        "origin_office": origin,
        "office": origin,
        "kecamatan_code": kec,
        "kabupaten_code": kec[:5],
        "source_ref": "",
        "evidence": "{}",
        "state": "resolved" if closed else "delivered",
        "created_at": created,
        "due_date": due,
        "delivered_at": created,
        "acknowledged_at": closed,
        "closed_at": closed,
        "updated_at": created,
    }


HANDOFFS = [
    # 35.78.01: one resolved late, one open and overdue: nothing in time, the worst.
    handoff(
        1,
        "kecamatan:35.78.01",
        "35.78.01",
        _utc(2026, 3, 2),
        date(2026, 3, 9),
        closed=_utc(2026, 3, 16),
    ),
    handoff(2, "desa:35.78.01.1001", "35.78.01", _utc(2026, 3, 2), date(2026, 3, 9)),
    # 35.78.02: resolved in time.
    handoff(
        3,
        "kecamatan:35.78.02",
        "35.78.02",
        _utc(2026, 3, 2),
        date(2026, 3, 9),
        closed=_utc(2026, 3, 3),
    ),
    # 35.07.01: open, not due yet.
    handoff(
        4,
        "kecamatan:35.07.01",
        "35.07.01",
        _utc(2026, 3, 30),
        date(2026, 4, 6),
        kind="data_request",
    ),
    # The PKH agency's copy: not an office's line.
    handoff(
        5,
        "agency:pkh",
        "35.78.01",
        _utc(2026, 3, 2),
        date(2026, 3, 9),
        kind="deceased_receiving_aid",
    ),
]


@pytest.fixture
def hub_store(
    store_url: str, prefect_api: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> Iterator[Engine]:
    """The hub's settings pointed at a fresh store with the handoffs above and sync counts."""
    monkeypatch.setenv("CETTAR_DATABASE_URL", store_url)
    monkeypatch.setenv("CETTAR_DATA_DIR", str(tmp_path))
    get_settings.cache_clear()
    get_engine.cache_clear()
    t = _utc(2026, 3, 1)
    with get_engine().begin() as conn:
        conn.execute(insert(Handoff.__table__), HANDOFFS)  # type: ignore[attr-defined]
        conn.execute(
            insert(SyncCursor.__table__),  # type: ignore[attr-defined]
            [
                {
                    "source": "registry.households",
                    "partition": "35.78.01",
                    "records": 40,
                    "changed_at": t,
                },
                {
                    "source": "registry.recipients",
                    "partition": "35.78.01",
                    "records": 10,
                    "changed_at": t,
                },
            ],
        )
        conn.execute(
            insert(Quarantine.__table__),  # type: ignore[attr-defined]
            [
                {
                    "source": "registry.households",
                    "partition": "35.78.01",
                    "payload_hash": "h1",
                    "reason_codes": "members.nik:nik_invalid",
                    "reasons": "[]",
                    "payload": "{}",
                    "first_seen": t,
                    "last_seen": t,
                    "seen_count": 2,
                }
            ],
        )
    yield get_engine()
    get_engine().dispose()
    get_settings.cache_clear()
    get_engine.cache_clear()


def _artifacts(flow_run_id: UUID) -> dict[str, Any]:
    with get_client(sync_client=True) as client:
        found = client.read_artifacts(
            artifact_filter=ArtifactFilter(flow_run_id=ArtifactFilterFlowRunId(any_=[flow_run_id]))
        )
    return {str(a.key): a.data for a in found}


def test_scorecard_publishes_tables_report_and_files(hub_store: Engine, tmp_path: Path) -> None:
    state = kecamatan_scorecard(as_of=AS_OF, return_state=True)
    assert state.is_completed(), state.message
    result = state.result()
    assert (result["kecamatan"], result["kabupaten"]) == (666, 38)
    assert (result["handoffs"], result["backlog"], result["overdue"]) == (4, 2, 1)
    assert (result["overlaps_found"], result["other_offices"]) == (3, 1)
    # 35.78.01 has nothing in time; 35.78.02 all; 35.07.01 has a backlog not yet due; the
    # rest had nothing handed to them and are not ranked.
    assert result["worst"] == ["35.78.01", "35.78.02", "35.07.01"]
    assert result["all_handoffs"] == result["handoffs"] + result["other_offices"]
    directory = tmp_path / "scorecards" / "2026-03-31"
    assert result["files"] == {
        "kecamatan_csv": str(directory / "kecamatan-2026-03-31.csv"),
        "kabupaten_csv": str(directory / "kabupaten-2026-03-31.csv"),
        "xlsx": str(directory / "scorecard-2026-03-31.xlsx"),
    }
    with open(result["files"]["kecamatan_csv"], encoding="utf-8-sig", newline="") as handle:
        read = list(csv.DictReader(handle))
    lines = {line["kode"]: line for line in read}
    assert len(lines) == 666
    assert [line["kode"] for line in read[:4]] == ["35.78.01", "35.78.02", "35.07.01", "35.01.01"]
    assert lines["35.78.01"]["% dikarantina"] == "4.0"
    assert lines["35.78.01"]["% selesai tepat waktu"] == "0.0"
    assert lines["35.78.01"]["peringkat (1 = terburuk)"] == "1"
    assert lines["35.01.01"]["peringkat (1 = terburuk)"] == ""
    book = load_workbook(result["files"]["xlsx"], read_only=True)
    assert book["Kabupaten-Kota"].max_row == 1 + 38 + 1  # header, kabupaten/kota, province

    flow_run_id = state.state_details.flow_run_id
    assert flow_run_id is not None
    record = audit_flow_run(flow_run_id, expected_tasks=1)
    assert record.task_states == {"Completed": 1}
    assert record.clear_id_total == 0
    artifacts = _artifacts(flow_run_id)
    assert set(artifacts) == {
        "kecamatan-scorecard-kecamatan",
        "kecamatan-scorecard-kabupaten",
        "kecamatan-scorecard-report",
    }
    report = artifacts["kecamatan-scorecard-report"]
    assert "| 1 | 35.78.01 | Karang Pilang | Kota Surabaya | 0.0 |" in report
    assert "5 kasus dibaca: 4 ke kantor kecamatan dan desa" in report
    kecamatan_table = json.loads(artifacts["kecamatan-scorecard-kecamatan"])
    assert len(kecamatan_table) == 666
    assert kecamatan_table[0]["kode"] == "35.78.01"
    assert result["files"]["xlsx"] in report
    assert '"35.78"' in artifacts["kecamatan-scorecard-kabupaten"]
    # Kota Surabaya has an overdue handoff: its kabupaten line raises the overdue event.
    overdue = [e for e in hub_events(flow_run_id, wanted=1) if e.event == HANDOFFS_OVERDUE]
    assert [(e.resource.id, e.payload["overdue"]) for e in overdue] == [("cettar.region.35.78", 1)]
