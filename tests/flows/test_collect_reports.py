"""The collect-facilitator-reports flow on a real Prefect test server and sandbox."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from sqlalchemy import select

from deployments.run_audit import audit_flow_run
from flows.collect_reports import collect_facilitator_reports
from integrations.agencies.client import AgencyClient
from integrations.settings import get_settings
from integrations.store.engine import get_engine
from integrations.store.tables import CURSOR, source_table
from models.identity import id_token
from models.scope import RegionScope
from models.wilayah import get_region_registry
from sandbox.config import SandboxConfig
from sandbox.truth import coordination_truth
from tests.flows.conftest import DATA, Sandbox

# Sidoarjo and Pamekasan: eleven facilitator reports in the seeded sample.
KABUPATEN = ["35.15", "35.28"]
REPORTS = source_table("pkh.reports")


@pytest.fixture
def hub_pkh(sandbox: Sandbox, hub: str, monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    """The hub pointed at the sandbox's PKH facilitator system."""
    monkeypatch.setenv("CETTAR_PKH_URL", f"{sandbox.url}/pkh")
    get_settings.cache_clear()
    yield hub
    get_settings.cache_clear()


def test_reports_match_the_sandbox_truth(hub_pkh: str) -> None:
    reg = get_region_registry()
    kecamatan = [k.code for kab in KABUPATEN for k in reg.kecamatan(kab)]
    truth = coordination_truth(SandboxConfig(registry=DATA), kecamatan)
    expected = truth.sources["pkh/reports"]
    assert expected.valid > 3
    state = collect_facilitator_reports(scope=RegionScope(kabupaten=KABUPATEN), return_state=True)
    assert state.is_completed(), state.message
    totals = state.result()["totals"]
    columns = ("fetched", "upserted", "unchanged", "quarantined")
    assert {source: {k: t[k] for k in columns} for source, t in totals.items()} == {
        "pkh.reports": {
            "fetched": expected.records,
            "upserted": expected.valid,
            "unchanged": 0,
            "quarantined": expected.invalid,
        }
    }
    with get_engine().connect() as conn:
        rows = conn.execute(select(REPORTS.c.id, REPORTS.c.kind, REPORTS.c.nik_token)).all()
        cursors = conn.execute(select(CURSOR.c.source, CURSOR.c.cursor)).all()
    assert len(rows) == expected.valid
    # Every household update the checks must verify arrived, people by the configured key.
    updates = {r.id for r in rows if r.kind == "household_update"}
    assert updates == set(truth.checks["household_update_verification"].record_ids)
    # People are stored by the configured key's token of the NIK the facilitator reported.
    key = get_settings().pii_key.get_secret_value().encode()
    with AgencyClient.for_agency("pkh") as client:
        served = [
            r
            for kec in kecamatan
            for p, _ in client.iter_pages("reports", kecamatan=kec)
            for r in p.records
        ]
    assert sorted(r.nik_token for r in rows) == sorted(id_token(r["nik"], key) for r in served)
    assert len(cursors) == len(kecamatan)
    assert all(c.source == "pkh.reports" and c.cursor is None for c in cursors)

    flow_run_id = state.state_details.flow_run_id
    assert flow_run_id is not None
    record = audit_flow_run(flow_run_id, expected_tasks=len(KABUPATEN) + 1)
    assert record.task_states == {"Completed": len(KABUPATEN) + 1}
    assert record.artifacts == 2
    assert record.clear_ids == dict.fromkeys(record.clear_ids, 0)
