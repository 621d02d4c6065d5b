"""The sync-sources flow on a real Prefect test server, a real-port sandbox and a real store."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from sqlalchemy import func, select

from deployments.run_audit import audit_flow_run
from flows.common import SyncIncomplete
from flows.sync_sources import SourceAgency, sync_sources_flow
from integrations.settings import AGENCIES as SETTINGS_AGENCIES
from integrations.settings import get_settings
from integrations.store.engine import get_engine
from integrations.store.tables import CURSOR, QUARANTINE, source_table
from models.scope import RegionScope
from models.wilayah import get_region_registry
from sandbox.config import SandboxConfig
from sandbox.truth import coordination_truth, health_truth
from tests.flows.conftest import DATA, Sandbox

KABUPATEN = "35.15"  # Sidoarjo: records of every source in the seeded sample
AGENCIES = [a for a in SETTINGS_AGENCIES if a != "registry"]


@pytest.fixture
def hub_sources(sandbox: Sandbox, hub: str, monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    """The hub pointed at every agency of the sandbox (the registry is set by `hub`)."""
    for agency in AGENCIES:
        monkeypatch.setenv(f"CETTAR_{agency.upper()}_URL", f"{sandbox.url}/{agency}")
    get_settings.cache_clear()
    yield hub
    get_settings.cache_clear()


def _kecamatan() -> list[str]:
    return [k.code for k in get_region_registry().kecamatan(KABUPATEN)]


def _count(table: Any) -> int:
    with get_engine().connect() as conn:
        return int(conn.execute(select(func.count()).select_from(table)).scalar_one())


def test_sources_match_the_sandbox_truth_then_sync_incrementally(
    sandbox: Sandbox, hub_sources: str
) -> None:
    truth = coordination_truth(SandboxConfig(registry=DATA), _kecamatan()).sources
    health = health_truth(SandboxConfig(registry=DATA), _kecamatan())
    decisions_visible = sandbox.admin.get("/_admin/inbox").json()["decisions_visible"]
    state = sync_sources_flow(scope=RegionScope(kabupaten=[KABUPATEN]), return_state=True)
    assert state.is_completed(), state.message
    summary = state.result()
    # desa, pertanian, statistik, puskesmas for 35.15; the inbox whole
    assert summary["partitions"] == 5
    totals = summary["totals"]
    for source in (
        "desa.blt-recipients",
        "pertanian.farmer-needs",
        "statistik.data-requests",
        "statistik.submissions",
    ):
        expected = truth[source.replace(".", "/")]
        assert expected.records > 0, source
        assert totals[source]["fetched"] == expected.records, source
        assert totals[source]["upserted"] == expected.valid, source
        assert totals[source]["quarantined"] == expected.invalid, source
        assert _count(source_table(source)) == expected.valid, source
    assert totals["kecamatan.decisions"]["fetched"] == decisions_visible
    assert (
        _count(QUARANTINE)
        == sum(truth[s].invalid for s in ("desa/blt-recipients", "pertanian/farmer-needs"))
        + truth["statistik/data-requests"].invalid
        + truth["statistik/submissions"].invalid
        + health.records
        - health.valid
    )
    surveillance = totals["puskesmas.surveillance"]
    assert (surveillance["fetched"], surveillance["upserted"]) == (health.records, health.valid)
    assert truth["statistik/submissions"].invalid > 0
    assert sum(summary["quarantine_reasons"].values()) >= truth["statistik/submissions"].invalid
    with get_engine().connect() as conn:
        cursors = conn.execute(select(CURSOR.c.source, CURSOR.c.partition, CURSOR.c.cursor)).all()
    # One closed cursor per kecamatan and partitioned source, one for the whole inbox.
    assert len(cursors) == 5 * len(_kecamatan()) + 1
    assert ("kecamatan.decisions", "all", None) in cursors
    assert all(c.cursor is None for c in cursors)

    # The Prefect API holds the whole run, both artifacts, and no clear NIK/KK anywhere.
    flow_run_id = state.state_details.flow_run_id
    assert flow_run_id is not None
    record = audit_flow_run(flow_run_id, expected_tasks=6)
    assert record.task_states == {"Completed": 6}
    assert record.artifacts == 2
    assert record.clear_ids == dict.fromkeys(record.clear_ids, 0)

    # Nothing changed: a second run writes nothing new.
    again = sync_sources_flow(
        scope=RegionScope(kabupaten=[KABUPATEN]), agencies=[SourceAgency.pertanian]
    )
    assert list(again["totals"]) == ["pertanian.farmer-needs"]
    assert again["totals"]["pertanian.farmer-needs"]["upserted"] == 0
    assert _count(source_table("pertanian.farmer-needs")) == truth["pertanian/farmer-needs"].valid


def test_a_failing_agency_fails_the_run_but_keeps_the_others(
    hub_sources: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("CETTAR_DESA_TOKEN", "wrong-desa-token")
    get_settings.cache_clear()
    state = sync_sources_flow(
        scope=RegionScope(kabupaten=["35.79"]),
        agencies=[SourceAgency.desa, SourceAgency.statistik],
        return_state=True,
    )
    assert state.is_failed()
    with pytest.raises(SyncIncomplete, match=r"1 of 2 partitions failed: desa 35\.79"):
        state.result()
    assert "wrong-desa-token" not in (state.message or "")
    assert _count(source_table("desa.blt-recipients")) == 0
    assert _count(source_table("statistik.data-requests")) > 0
