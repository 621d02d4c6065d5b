"""Working-day runs on a day off end at once naming the day; every run is named with its day."""

from __future__ import annotations

from datetime import datetime
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
from prefect import flow
from prefect.client.orchestration import get_client

from deployments.run_audit import audit_flow_tree
from flows.common import run_name
from flows.daily_coordination import daily_coordination
from flows.dispatch_handoffs import dispatch_handoffs
from integrations.settings import get_settings
from integrations.store.engine import get_engine
from models.scope import RegionScope

WIB = ZoneInfo("Asia/Jakarta")


@pytest.fixture
def no_store(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A store path where no store exists: a skipped run must not even open one."""
    path = tmp_path / "absent.db"
    monkeypatch.setenv("CETTAR_DATABASE_URL", f"sqlite:///{path}")
    get_settings.cache_clear()
    get_engine.cache_clear()
    return path


@pytest.mark.parametrize(
    ("day", "named"),
    [
        ("2027-03-10", "Eid al-Fitr (estimated)"),  # a Wednesday: Idul Fitri
        ("2027-03-12", "Eid al-Fitr Joint Holiday"),  # cuti bersama after Idul Fitri
        ("2026-12-24", "Christmas Joint Holiday"),  # cuti bersama at the year end
        ("2027-01-01", "New Year's Day"),
        ("2027-03-13", "Saturday"),
    ],
)
def test_a_working_day_run_on_a_day_off_does_no_work_and_names_it(
    prefect_api: str, no_store: Path, day: str, named: str
) -> None:
    at = datetime.fromisoformat(f"{day}T05:30").replace(tzinfo=WIB)
    for run in (daily_coordination, dispatch_handoffs):
        state = run(as_of=at, skip_days_off=True, return_state=True)  # type: ignore[operator]
        assert state.is_completed(), state.message
        assert state.message == f"no work on {day}: {named} (offices are closed)"
        assert state.result() == {"skipped": day, "day_off": named}
        flow_run_id = state.state_details.flow_run_id
        assert flow_run_id is not None
        # No step ran: the run is alone in its tree, and no store was opened or created.
        assert audit_flow_tree(flow_run_id).flow_runs == 1
        assert not no_store.exists()
        with get_client(sync_client=True) as client:
            name = client.read_flow_run(flow_run_id).name
        assert day in name and "province" in name


def test_a_working_day_runs_even_when_days_off_are_skipped(
    prefect_api: str, no_store: Path
) -> None:
    # Tuesday 16 March 2027 is a working day: the run goes on, prepares its store and then
    # fails on the inbox nobody serves here, which proves it did its work.
    at = datetime(2027, 3, 16, 5, 30, tzinfo=WIB)
    state = dispatch_handoffs(as_of=at, skip_days_off=True, return_state=True)
    assert no_store.exists()
    assert state.is_failed()
    assert "decisions read" in (state.message or "")


def test_run_names_carry_flow_detail_scope_and_day(prefect_api: str) -> None:
    @flow(flow_run_name=run_name("probe", lambda p: p.get("what")))
    def probe(
        as_of: datetime | None = None, scope: RegionScope | None = None, what: str = "x"
    ) -> None:
        """A flow named like the hub's."""

    @flow(flow_run_name=run_name("probe-timed", with_time=True))
    def timed(as_of: datetime | None = None) -> None:
        """A flow named with its hour."""

    def name_of(state: object) -> str:
        with get_client(sync_client=True) as client:
            return client.read_flow_run(state.state_details.flow_run_id).name  # type: ignore[attr-defined]

    # A zone-less as-of is read as WIB; an aware one is shown in WIB (23:30 UTC is the next day).
    zoneless = probe(as_of=datetime(2026, 11, 11, 6, 0), return_state=True)
    assert name_of(zoneless) == "probe · x · province · 2026-11-11"
    late_utc = probe(
        as_of=datetime(2026, 11, 11, 23, 30, tzinfo=ZoneInfo("UTC")),
        scope=RegionScope(kabupaten=["35.07"]),
        what="y",
        return_state=True,
    )
    assert name_of(late_utc) == "probe · y · 35.07 · 2026-11-12"
    # Without an as-of (a scheduled run) the name carries the day it runs.
    today = datetime.now(WIB).date().isoformat()
    assert name_of(probe(return_state=True)).endswith(f"province · {today}")
    assert name_of(timed(as_of=datetime(2026, 11, 11, 8, 0), return_state=True)) == (
        "probe-timed · province · 2026-11-11 08:00"
    )
