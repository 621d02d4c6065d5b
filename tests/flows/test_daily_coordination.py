"""daily-coordination end to end on the sandbox, with a faulty office inbox, over two days."""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any
from uuid import UUID
from zoneinfo import ZoneInfo

import httpx
import pytest
from sqlalchemy import func, select

from deployments.coordination_truth import check_scores, store_figures
from deployments.demo import DEMO_START
from deployments.demo_desk import desk_deliveries
from deployments.run_audit import audit_flow_tree
from flows.daily_coordination import daily_coordination, reconcile_region
from integrations.settings import AGENCIES, get_settings
from integrations.store.engine import get_engine
from integrations.store.outbox import DELIVERY
from integrations.store.tables import ENROLMENT, HANDOFF, HOUSEHOLD
from models.handoffs import HandoffKind
from models.scope import RegionScope
from models.wilayah import get_region_registry
from sandbox.config import (
    DEFAULT_ADMIN_TOKEN,
    CoordinationConfig,
    FaultConfig,
    InboxConfig,
    RegistryDataConfig,
    SandboxConfig,
)
from sandbox.inbox import office_profile
from sandbox.server import serve_in_thread
from sandbox.truth import coordination_truth, health_truth
from tasks.checks import SENDER
from tests.integrations.test_intake import _fill, _list

KABUPATEN = ["35.07", "35.09"]  # Kab. Malang and Kab. Jember: desa and kelurahan both
CONFIG = SandboxConfig(
    registry=RegistryDataConfig(seed=11, households=9000),
    # The inbox fails one POST in five: 10 % 5xx, 5 % 429, 5 % dropped connections.
    agency_faults={
        "kecamatan": FaultConfig(
            error_rate=0.10, rate_limit_rate=0.05, drop_rate=0.05, retry_after_s=0.0, seed=5
        )
    },
    coordination=CoordinationConfig(
        request_share=0.2, second_request_share=0.0, clock_origin=DEMO_START
    ),
)


@pytest.fixture
def sandbox(
    store_url: str, prefect_api: str, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> Iterator[httpx.Client]:
    """A fresh sandbox of every agency; the hub's settings point at it and at a fresh store."""
    with (
        serve_in_thread(CONFIG) as root,
        httpx.Client(
            base_url=root, headers={"Authorization": f"Bearer {DEFAULT_ADMIN_TOKEN}"}
        ) as admin,
    ):
        monkeypatch.setenv("CETTAR_DATA_DIR", str(tmp_path))
        monkeypatch.setenv("CETTAR_HTTP_BACKOFF_BASE_S", "0.01")
        monkeypatch.setenv("CETTAR_DATABASE_URL", store_url)
        # Small batch requests: enough of them for the inbox's faults (one in five requests)
        # to strike deliveries the inbox had already stored, and the replays to show it.
        monkeypatch.setenv("CETTAR_INBOX_BATCH_SIZE", "2")
        for agency in AGENCIES:
            monkeypatch.setenv(f"CETTAR_{agency.upper()}_URL", f"{root}/{agency}")
        get_settings.cache_clear()
        get_engine.cache_clear()
        try:
            yield admin
        finally:
            get_engine().dispose()
            get_settings.cache_clear()
            get_engine.cache_clear()


@pytest.mark.slow
def test_two_days_find_every_planted_conflict_and_deliver_each_handoff_once(
    sandbox: httpx.Client,
) -> None:
    scope = RegionScope(kabupaten=KABUPATEN)
    day1 = daily_coordination(scope=scope, as_of=DEMO_START, return_state=True)
    assert day1.is_completed(), day1.message
    # The health step ran after the syncs: each red entry of the sandbox's planted figures
    # got its urgent handoff (and a red kecamatan's Forkopimcam its notice), once.
    health = health_truth(
        CONFIG, [k.code for kab in KABUPATEN for k in get_region_registry().kecamatan(kab)]
    )
    zones = day1.result()["health-zones"]
    assert health.planted and health.accidental == []
    assert zones["handoffs_created"] == {
        HandoffKind.HEALTH_RED_ZONE.value: len(health.entries),
        HandoffKind.HEALTH_RED_ZONE_NOTICE.value: sum(
            e.level == "kecamatan" for e in health.entries
        ),
    }
    sandbox.post("/_admin/clock", json={"advance_days": 8}).raise_for_status()
    day2_at = DEMO_START + timedelta(days=8)
    day2 = daily_coordination(scope=scope, as_of=day2_at, return_state=True)
    assert day2.is_completed(), day2.message

    engine = get_engine()
    key = get_settings().pii_key.get_secret_value().encode()
    kecamatan = [k.code for kab in KABUPATEN for k in get_region_registry().kecamatan(kab)]
    truth = coordination_truth(CONFIG, kecamatan)

    # Every planted conflict of each kind is found, no clean case is flagged, and the
    # handoffs are exactly the (finding, receiver) pairs the truth implies.
    scores = check_scores(engine, truth, key)
    assert set(scores) == {
        k.value
        for k in HandoffKind
        if k
        not in (
            HandoffKind.DATA_REQUEST,
            HandoffKind.HOUSEHOLD_UPDATE_REJECTED,
            # Red zones come from the health step, checked against their own truth.
            HandoffKind.HEALTH_RED_ZONE,
            HandoffKind.HEALTH_RED_ZONE_NOTICE,
        )
    }
    for kind, score in scores.items():
        assert score["expected"] > 0, f"the sample plants no {kind}: the test would prove less"
        assert (score["precision"], score["recall"]) == (1.0, 1.0), (kind, score)
        assert score["handoffs_exact"], (kind, score)

    # Under the faults every delivery got through, and no office saw a handoff twice.
    inbox = sandbox.get("/_admin/inbox").raise_for_status().json()
    figures = store_figures(engine, day2_at)
    with engine.connect() as conn:
        unsent = conn.execute(select(func.count()).where(DELIVERY.c.status != "sent")).scalar_one()
        handoffs = conn.execute(select(func.count()).select_from(HANDOFF)).scalar_one()
        origin_of_escalated = set(
            conn.scalars(
                select(HANDOFF.c.origin_office).where(
                    HANDOFF.c.escalated_at.is_not(None), HANDOFF.c.sender == SENDER
                )
            )
        )
    assert unsent == 0
    assert inbox["pairs_seen_more_than_once"] == 0
    # The Forkopimcam work on the desk: their notices are recorded there, never posted.
    on_desk = desk_deliveries(engine)
    assert on_desk > 0
    assert inbox["receipts"] == inbox["pairs"] == figures["deliveries_sent"] - on_desk
    # Every handoff was delivered at least once, escalations a second time (to the kabupaten).
    assert figures["delivered"] == handoffs
    assert inbox["pairs"] + on_desk == handoffs + figures["escalated"]
    # The faults really happened, some after the inbox had stored the delivery.
    assert inbox["replays"] > 0 and inbox["faulted_after_commit"] > 0

    # The statistics requests fanned out to every addressed desa; answered ones are settled.
    assert figures["by_kind"][HandoffKind.DATA_REQUEST] == truth.data_requests.desa_handoffs

    # Overdue handoffs escalated on day 2; offices that never answer are among them, prompt
    # offices never are.
    assert figures["escalated"] > 0 and figures["overdue_not_escalated"] == 0
    profiles = {
        o: office_profile(CONFIG.registry.seed, InboxConfig(), o) for o in origin_of_escalated
    }
    assert "never" in profiles.values()
    assert not {o for o, p in profiles.items() if p in ("prompt", "twice")}

    assert figures["audit"]["ok"] and figures["audit"]["rows"] > handoffs

    # What Prefect holds of both days: every flow and task run Completed, no clear NIK/KK.
    for state in (day1, day2):
        flow_run_id = state.state_details.flow_run_id
        assert flow_run_id is not None
        record = audit_flow_tree(UUID(str(flow_run_id)))
        assert record.flow_runs == 8  # the run and its seven subflows
        assert record.not_completed == []
        assert sum(record.clear_ids.values()) == 0


def _rows(table: Any, *where: Any) -> dict[str, dict[str, Any]]:
    key = table.c.id if "id" in table.c else table.c.key
    with get_engine().connect() as conn:
        return {
            row[key.name]: dict(row) for row in conn.execute(select(table).where(*where)).mappings()
        }


@pytest.mark.slow
def test_a_run_for_one_kabupaten_leaves_the_others_untouched_and_keeps_one_clock(
    sandbox: httpx.Client,
) -> None:
    other, mine = RegionScope(kabupaten=["35.09"]), RegionScope(kabupaten=["35.07"])
    # A spreadsheet waits in a desa folder of each kabupaten (the default watched folder).
    intake = get_settings().data_dir / "intake"
    for desa, n in (("35.09.01.2001", 3), ("35.07.01.2001", 2)):
        (intake / desa).mkdir(parents=True)
        records = [dict(r, id=f"SHEET-{desa}-{i}", desa_code=desa) for i, r in enumerate(_list(n))]
        (intake / desa / "blt.xlsx").write_bytes(_fill(records))
    first = daily_coordination(scope=other, as_of=DEMO_START, return_state=True)
    assert first.is_completed(), first.message
    # The day's run took its own desa's file, before the checks, and left the other's.
    taken = first.result()["intake-folder"]
    assert (taken["files"], taken["rows"], taken["written"]) == (1, 3, 3)
    assert (intake / "35.09.01.2001" / "blt.hasil.txt").exists()
    assert not (intake / "35.07.01.2001" / "blt.hasil.txt").exists()
    data_dir = get_settings().data_dir
    before = _rows(HANDOFF, HANDOFF.c.kabupaten_code == "35.09")
    deliveries = _rows(DELIVERY, DELIVERY.c.handoff_id.in_(list(before)))
    files = {p: p.read_bytes() for p in (data_dir / "scorecards").rglob("*") if p.is_file()}
    assert before and deliveries and files

    # Eight days later 35.09's handoffs are overdue; a run for 35.07 must not escalate them,
    # apply their offices' answers, deliver them again or rewrite their scorecard. The time
    # is typed without a zone: every step reads it as the same instant in WIB.
    sandbox.post("/_admin/clock", json={"advance_days": 8}).raise_for_status()
    typed = (DEMO_START + timedelta(days=8)).replace(tzinfo=None)
    second = daily_coordination(scope=mine, as_of=typed, return_state=True)
    assert second.is_completed(), second.message
    steps = second.result()
    instant = typed.replace(tzinfo=ZoneInfo("Asia/Jakarta")).isoformat()
    assert {
        name: steps[name]["as_of"]
        for name in ("check-programme-overlaps", "dispatch-handoffs", "kecamatan-scorecard")
    } == dict.fromkeys(
        ("check-programme-overlaps", "dispatch-handoffs", "kecamatan-scorecard"), instant
    )
    assert steps["dispatch-handoffs"]["run"]["escalated"] > 0  # 35.07's own overdue ones
    assert (steps["intake-folder"]["files"], steps["intake-folder"]["written"]) == (1, 2)

    after = _rows(HANDOFF, HANDOFF.c.kabupaten_code == "35.09")
    assert {hid: after[hid] for hid in before} == before
    # Only a finding that also involves 35.07 may add a handoff for a 35.09 office.
    mine_subjects = {
        r["subject_token"] for r in _rows(HANDOFF, HANDOFF.c.kabupaten_code == "35.07").values()
    }
    assert {r["subject_token"] for hid, r in after.items() if hid not in before} <= mine_subjects
    assert _rows(DELIVERY, DELIVERY.c.handoff_id.in_(list(after))) == deliveries
    assert {p: p.read_bytes() for p in files} == files
    scorecard = steps["kecamatan-scorecard"]
    assert scorecard["scope"] == "35.07"
    assert scorecard["kecamatan"] == len(get_region_registry().kecamatan("35.07"))
    # A scoped scorecard has a folder of its own: the province's files of the day stay whole.
    scoped = Path(scorecard["files"]["kecamatan_csv"])
    assert scoped.parent == data_dir / "scorecards" / "2026-11-11" / "scope-35.07"
    codes = {line.split(",")[0] for line in scoped.read_text(encoding="utf-8-sig").splitlines()[1:]}
    assert codes and all(code.startswith("35.07.") for code in codes), codes


@pytest.mark.slow
def test_a_reconcile_of_one_kecamatan_changes_nothing_outside_it(sandbox: httpx.Client) -> None:
    kabupaten = RegionScope(kabupaten=["35.07"])
    first = daily_coordination(scope=kabupaten, as_of=DEMO_START, return_state=True)
    assert first.is_completed(), first.message
    handoffs = _rows(HANDOFF)
    target = Counter(r["kecamatan_code"] for r in handoffs.values()).most_common(1)[0][0]
    outside = HANDOFF.c.kecamatan_code != target
    before = {
        "handoff": _rows(HANDOFF, outside),
        "household": _rows(HOUSEHOLD, HOUSEHOLD.c.kecamatan_code != target),
        "enrolment": _rows(ENROLMENT, ENROLMENT.c.kecamatan_code != target),
    }
    before["delivery"] = _rows(DELIVERY, DELIVERY.c.handoff_id.in_(list(before["handoff"])))

    # Eight days on the registry has changed and the offices have answered: a reconcile of
    # the one kecamatan syncs, checks, dispatches and scores there and nowhere else.
    sandbox.post("/_admin/clock", json={"advance_days": 8}).raise_for_status()
    state = reconcile_region(
        scope=RegionScope(kecamatan=[target]),
        as_of=DEMO_START + timedelta(days=8),
        return_state=True,
    )
    assert state.is_completed(), state.message
    steps = state.result()
    assert steps["sync-registry"]["totals"]["registry.households"]["fetched"] > 0
    assert steps["sync-registry"]["partitions"] == 1
    assert steps["kecamatan-scorecard"]["kecamatan"] == 1

    after_handoffs = _rows(HANDOFF, outside)
    assert {hid: after_handoffs[hid] for hid in before["handoff"]} == before["handoff"]
    # New handoffs outside may only come from a finding that also involves the kecamatan.
    mine = {r["subject_token"] for r in _rows(HANDOFF, ~outside).values()}
    new = {hid: r for hid, r in after_handoffs.items() if hid not in before["handoff"]}
    assert {r["subject_token"] for r in new.values()} <= mine
    assert _rows(HOUSEHOLD, HOUSEHOLD.c.kecamatan_code != target) == before["household"]
    assert _rows(ENROLMENT, ENROLMENT.c.kecamatan_code != target) == before["enrolment"]
    assert _rows(DELIVERY, DELIVERY.c.handoff_id.in_(list(before["handoff"]))) == before["delivery"]
