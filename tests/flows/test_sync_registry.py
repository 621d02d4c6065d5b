"""The sync-registry flow on a real Prefect test server, a real-port sandbox and a real store."""

from __future__ import annotations

import json
from typing import Any

import pytest
from sqlalchemy import func, select

from deployments.run_audit import audit_flow_run, count_clear_ids, run_summary
from flows.common import SyncIncomplete
from flows.sync_registry import sync_registry
from integrations.store.engine import get_engine
from models.scope import RegionScope
from models.tables import Enrolment, Household, Member, Quarantine, SyncCursor
from models.wilayah import get_region_registry
from tests.flows.conftest import Sandbox

KABUPATEN = ["35.78", "35.07"]  # Kota Surabaya, Kabupaten Malang


def _kecamatan() -> list[str]:
    reg = get_region_registry()
    return [k.code for kab in KABUPATEN for k in reg.kecamatan(kab)]


def _count(table: Any) -> int:
    with get_engine().connect() as conn:
        return int(conn.execute(select(func.count()).select_from(table)).scalar_one())


def _truth(sandbox: Sandbox, epoch: int) -> dict[str, int]:
    data = sandbox.data(epoch)
    keys = (
        "valid_households",
        "valid_members",
        "valid_recipients",
        "bad_households",
        "bad_recipients",
        "households",
        "recipients",
    )
    total = dict.fromkeys(keys, 0)
    for kec in _kecamatan():
        t = data.truth(kec)
        for k in keys:
            total[k] += t[k]
    return total


def test_sync_matches_ground_truth_and_records_everything(sandbox: Sandbox, hub: str) -> None:
    state = sync_registry(scope=RegionScope(kabupaten=KABUPATEN), return_state=True)
    assert state.is_completed(), state.message
    summary = state.result()
    truth = _truth(sandbox, 0)
    assert truth["households"] > 50 and truth["bad_households"] > 0
    hh, rc = summary["totals"]["registry.households"], summary["totals"]["registry.recipients"]
    assert hh["fetched"] == truth["households"]
    assert hh["upserted"] == truth["valid_households"]
    assert hh["quarantined"] == truth["bad_households"]
    assert rc["fetched"] == truth["recipients"]
    assert rc["quarantined"] == truth["bad_recipients"]
    # The store holds exactly the valid records, and every bad one in quarantine.
    assert _count(Household) == truth["valid_households"]
    assert _count(Member) == truth["valid_members"]
    assert _count(Enrolment) == truth["valid_recipients"]
    assert _count(Quarantine) == truth["bad_households"] + truth["bad_recipients"]
    # One closed cursor per kecamatan and collection.
    with get_engine().connect() as conn:
        cursors = conn.execute(select(SyncCursor.__table__)).mappings().all()  # type: ignore[attr-defined]
    assert len(cursors) == 2 * len(_kecamatan())
    assert all(c["cursor"] is None for c in cursors)
    # The Prefect API holds the whole run: both partitions + prepare-store, both artifacts,
    # and no clear NIK/KK in its logs, runs, artifacts or events.
    flow_run_id = state.state_details.flow_run_id
    assert flow_run_id is not None
    record = audit_flow_run(flow_run_id, expected_tasks=len(KABUPATEN) + 1)
    assert record.task_states == {"Completed": len(KABUPATEN) + 1}
    assert record.artifacts == 2
    assert record.log_lines > 0
    assert record.clear_ids == dict.fromkeys(record.clear_ids, 0)


def test_incremental_sync_reads_only_what_changed(sandbox: Sandbox, hub: str) -> None:
    scope = RegionScope(kabupaten=KABUPATEN)
    sync_registry(scope=scope)
    again = sync_registry(scope=scope)["totals"]["registry.households"]
    # Nothing changed: only the boundary records at each watermark come back, unchanged.
    assert again["upserted"] == 0
    assert again["fetched"] <= 2 * len(_kecamatan())

    sandbox.set_epoch(1)
    data = sandbox.data(1)
    changed = [
        i for kec in _kecamatan() for i in data.indices(kec) if data.household_version(i) == 1
    ]
    valid_changed = [i for i in changed if data.bad_kind(i) is None]
    assert valid_changed, "the epoch must update some households"
    after = sync_registry(scope=scope)["totals"]["registry.households"]
    assert after["upserted"] == len(valid_changed)
    truth = _truth(sandbox, 1)
    assert _count(Household) == truth["valid_households"]
    assert _count(Member) == truth["valid_members"]


def test_a_failing_agency_fails_the_run_but_keeps_the_report(
    sandbox: Sandbox, hub: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    from integrations.settings import get_settings

    monkeypatch.setenv("CETTAR_REGISTRY_TOKEN", "wrong-token-value")
    get_settings.cache_clear()
    state = sync_registry(scope=RegionScope(kabupaten=["35.79"]), return_state=True)
    assert state.is_failed()
    with pytest.raises(SyncIncomplete, match=r"1 of 1 partitions failed: registry 35\.79"):
        state.result()
    assert "wrong-token-value" not in (state.message or "")
    assert _count(Household) == 0


def test_a_failed_run_summary_names_the_failed_partitions_and_why(
    sandbox: Sandbox, hub: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    from integrations.settings import get_settings

    monkeypatch.setenv("CETTAR_REGISTRY_TOKEN", "wrong-token-value")
    get_settings.cache_clear()
    state = sync_registry(scope=RegionScope(kabupaten=["35.79", "35.73"]), return_state=True)
    assert state.is_failed()
    # What `cettar sync registry --json` prints as the run's summary.
    summary = run_summary(state)
    assert sorted(summary["failed"]) == ["registry 35.73", "registry 35.79"]
    (tried, first), (_, second) = sorted(
        summary["failed"].items(), key=lambda kv: kv[1].startswith("CircuitOpen")
    )
    assert first.startswith("AuthError: registry GET /registry/v1/households?")
    assert "401 (unauthorized): check the agency's token" in first
    # The other partition was not tried again: the agency's circuit was open.
    assert second.startswith("CircuitOpen: ") and first.split(": ", 1)[1] in second
    assert f"circuit open since {tried}: not tried" in second
    assert summary["partitions"] == 2 and summary["totals"] == {}
    assert "check the agency's token" in summary["error"]
    text = json.dumps(summary)
    assert "wrong-token-value" not in text and count_clear_ids(text) == 0
