"""The dispatch-handoffs flow against the sandbox inbox: delivery, decisions, escalation."""

from __future__ import annotations

import asyncio
import json
import re
from collections.abc import Iterator
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
from prefect.client.orchestration import get_client
from prefect.client.schemas.filters import ArtifactFilter, ArtifactFilterKey
from prefect.client.schemas.sorting import ArtifactSort
from sqlalchemy import Engine, select

from flows.dispatch_handoffs import dispatch_handoffs
from integrations.settings import get_settings
from integrations.store.audit import verify_audit
from integrations.store.engine import get_engine, make_engine, upgrade
from integrations.store.handoffs import create_handoffs
from integrations.store.tables import HANDOFF
from models.checks import Finding
from models.handoffs import HandoffKind, Office
from sandbox.config import (
    DEFAULT_ADMIN_TOKEN,
    WIB,
    CoordinationConfig,
    FaultConfig,
    InboxConfig,
    RegistryDataConfig,
    SandboxConfig,
)
from sandbox.inbox import office_profile
from sandbox.server import serve_in_thread

ORIGIN = datetime(2026, 3, 2, 8, 0, tzinfo=WIB)  # a Monday; the sandbox clock starts here
CONFIG = SandboxConfig(
    registry=RegistryDataConfig(households=50),
    agency_faults={
        "kecamatan": FaultConfig(
            error_rate=0.10, rate_limit_rate=0.05, drop_rate=0.03, retry_after_s=0.0, seed=3
        )
    },
    coordination=CoordinationConfig(clock_origin=ORIGIN),
)
KECAMATAN = [f"35.78.{i:02d}" for i in range(1, 13)]
LONG_DIGITS = re.compile(r"(?<![0-9A-Fa-f])[0-9]{16,}(?![0-9A-Fa-f])")


# Inbox request sizes: the default batches, and one POST per handoff (the old path).
REQUEST_ROUTES = {"100": "POST /kecamatan/v1/handoff-batches", "1": "POST /kecamatan/v1/handoffs"}


@pytest.fixture(params=sorted(REQUEST_ROUTES))
def inbox(
    request: pytest.FixtureRequest,
    prefect_api: str,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> Iterator[tuple[httpx.Client, Engine]]:
    """A fresh sandbox (faulty inbox, frozen clock) and a SQLite store the hub points at.

    Deliveries go in batch requests (`CETTAR_INBOX_BATCH_SIZE` 100) or one POST each (1).
    """
    url = f"sqlite:///{tmp_path / 'store.db'}"
    with (
        serve_in_thread(CONFIG) as root,
        httpx.Client(
            base_url=root, headers={"Authorization": f"Bearer {DEFAULT_ADMIN_TOKEN}"}
        ) as admin,
    ):
        monkeypatch.setenv("CETTAR_DATABASE_URL", url)
        monkeypatch.setenv("CETTAR_KECAMATAN_URL", f"{root}/kecamatan")
        monkeypatch.setenv("CETTAR_REGISTRY_URL", f"{root}/registry")
        monkeypatch.setenv("CETTAR_HTTP_BACKOFF_BASE_S", "0.01")
        monkeypatch.setenv("CETTAR_INBOX_BATCH_SIZE", request.param)
        get_settings.cache_clear()
        get_engine.cache_clear()
        engine = make_engine(url)
        upgrade(engine)
        try:
            yield admin, engine
        finally:
            engine.dispose()
            get_engine().dispose()
            get_settings.cache_clear()
            get_engine.cache_clear()


def _seed(engine: Engine) -> list[tuple[str, str]]:
    """One overlap per kecamatan, to the kecamatan and one desa: (handoff id, office) pairs."""
    findings = [
        Finding(
            HandoffKind.BLT_PKH_OVERLAP,
            f"{i:02d}" + "c" * 30,
            "2026-Q1",
            (Office.parse(f"kecamatan:{kec}"), Office.parse(f"desa:{kec}.2001")),
            {"programmes": "PKH", "desa_codes": f"{kec}.2001"},
        )
        for i, kec in enumerate(KECAMATAN)
    ]
    with engine.begin() as conn:
        create_handoffs(conn, findings, sender="checks", now=ORIGIN + timedelta(hours=1))
    return [(k, r.key) for f in findings for k, r in zip(f.keys, f.receivers, strict=True)]


def _run(as_of: datetime) -> dict[str, Any]:
    state = dispatch_handoffs(as_of=as_of, return_state=True)
    assert state.is_completed(), state.message
    result: dict[str, Any] = state.result()
    return result


def _states(engine: Engine) -> dict[str, tuple[str, str]]:
    with engine.connect() as conn:
        rows = conn.execute(select(HANDOFF.c.id, HANDOFF.c.state, HANDOFF.c.office))
        return {r.id: (r.state, r.office) for r in rows}


async def _artifact(key: str) -> Any:
    """The data of the latest artifact under key."""
    async with get_client() as client:
        found = await client.read_artifacts(
            artifact_filter=ArtifactFilter(key=ArtifactFilterKey(any_=[key])),
            sort=ArtifactSort.CREATED_DESC,
            limit=1,
        )
    return found[0].data


def test_dispatch_delivers_applies_decisions_and_escalates(
    inbox: tuple[httpx.Client, Engine],
) -> None:
    admin, engine = inbox
    pairs = _seed(engine)
    profile = {
        office: office_profile(CONFIG.registry.seed, InboxConfig(), office) for _, office in pairs
    }
    never = {h for h, office in pairs if profile[office] == "never"}
    twice = {h for h, office in pairs if profile[office] == "twice"}
    # The seeded profiles give every case at least once, or the test would prove less.
    assert never and twice and len(never) < len(pairs)

    first = _run(ORIGIN + timedelta(hours=2))["run"]
    assert (first["delivery_sent"], first["handoffs_delivered"], first["escalated"]) == (24, 24, 0)
    assert first["decisions_applied"] == 0  # no office has answered on the sandbox clock yet
    assert {s for s, _ in _states(engine).values()} == {"delivered"}

    # Three weeks pass: prompt, late and twice offices have all answered; due was 9 March.
    admin.post("/_admin/clock", json={"advance_days": 20}).raise_for_status()
    second = _run(datetime(2026, 3, 23, 10, 0, tzinfo=WIB))["run"]
    answered = len(pairs) - len(never)
    assert second["decisions_applied"] == 2 * answered  # acknowledged, then resolved/rejected
    assert second["decisions_repeat"] == 2 * len(twice)
    assert second["decisions_illegal"] == second["decisions_unknown"] == 0
    assert second["escalated"] == len(never)
    assert second["delivery_sent"] == second["handoffs_delivered"] == len(never)
    states = _states(engine)
    for hid, _office in pairs:
        state, holder = states[hid]
        if hid in never:
            assert (state, holder) == ("delivered", "kabupaten:35.78")
        else:
            assert state in ("resolved", "rejected") and holder != "kabupaten:35.78"

    # The kabupaten answers promptly: everything is settled, nothing was escalated twice.
    admin.post("/_admin/clock", json={"advance_days": 4}).raise_for_status()
    third = _run(datetime(2026, 3, 27, 10, 0, tzinfo=WIB))["run"]
    assert third["decisions_applied"] == 2 * len(never) and third["escalated"] == 0
    assert {s for s, _ in _states(engine).values()} <= {"resolved", "rejected"}

    stats = admin.get("/_admin/inbox").json()
    assert stats["receipts"] == len(pairs) + len(never)
    # Every delivery went the one way the setting chose.
    requests = admin.get("/_admin/stats").json()["requests"]
    size = get_settings().inbox_batch_size
    assert [r for r in requests if r.startswith("POST /kecamatan")] == [REQUEST_ROUTES[str(size)]]
    assert stats["pairs_seen_more_than_once"] == 0 and stats["conflicts"] == 0
    with engine.connect() as conn:
        assert verify_audit(conn).ok

    report = asyncio.run(_artifact("handoff-dispatch-report"))
    offices = json.loads(asyncio.run(_artifact("handoff-dispatch-offices")))
    counters = {
        r["counter"]: r["count"] for r in json.loads(asyncio.run(_artifact("handoff-dispatch-run")))
    }
    assert counters == third
    assert "# Handoff dispatch" in report and "decisions_applied" in report
    assert {row["office"] for row in offices} >= {"kabupaten:35.78", "kecamatan:35.78.01"}
    assert {r["office"]: r["pending"] for r in offices}["kabupaten:35.78"] == 0
    assert not LONG_DIGITS.search(report) and not LONG_DIGITS.search(str(offices))


def test_many_batches_are_sent_a_few_ahead_and_all_counted(
    inbox: tuple[httpx.Client, Engine], monkeypatch: pytest.MonkeyPatch
) -> None:
    import flows.dispatch_handoffs as dispatch
    from tasks.handoffs import outbox_batches

    _admin, engine = inbox
    pairs = _seed(engine)
    # One delivery per batch: three times as many batches as are ever submitted ahead.
    monkeypatch.setattr(
        dispatch,
        "plan_outbox_batches",
        lambda which, scope: outbox_batches(get_engine(), which, 1, scope),
    )
    assert len(pairs) >= 3 * dispatch._BATCHES_AHEAD
    run = _run(ORIGIN + timedelta(hours=2))["run"]
    assert run["delivery_sent"] == run["handoffs_delivered"] == len(pairs)
    assert {s for s, _ in _states(engine).values()} == {"delivered"}
