"""Every agency flaky at once: two full daily coordinations lose nothing and send nothing twice.

Every agency of the sandbox answers 10 % of requests with a 5xx and 5 % with a 429
(Retry-After), drops 3 % of connections mid-body and truncates 3 % of bodies (half of the
5xx and every drop and truncation of a POST strike after the write was recorded); on the
wire, 1 % of requests stall past the hub's read timeout and 5 % of POSTs reach the agency
but lose their answer (a duplicated POST: the hub must send it again under the same key).
The hub runs `cettar run daily` as an operator does, on the two working days of the shared
scenario (`tests.faults.procs`: the offices' decisions are read back on the second,
overdue handoffs escalate and verified household updates go to the registry). After each
day its store must equal the fault-free reference run's, and the sandbox must hold exactly
one receipt per (handoff, office) and per proposal.

Knobs: CETTAR_FAULT_HOUSEHOLDS (province sample size, default 3000),
CETTAR_FAULT_FLAKY_SEED (the fault streams' seed, default 35).
"""

from __future__ import annotations

import time
from collections import Counter
from pathlib import Path
from typing import Any

import httpx
import pytest

from sandbox.app import create_app
from sandbox.config import DEFAULT_ADMIN_TOKEN, FaultConfig, default_token
from sandbox.faults import NetworkFaultMiddleware, NetworkFaults
from sandbox.transport import SyncASGITransport
from tests.faults import procs

SEED = procs.env_int("CETTAR_FAULT_FLAKY_SEED", 35)

FLAKY = FaultConfig(
    error_rate=0.10,
    rate_limit_rate=0.05,
    drop_rate=0.03,
    truncate_rate=0.03,
    retry_after_s=0.2,
    seed=SEED,
)
WIRE = NetworkFaults(timeout_rate=0.01, lost_answer_rate=0.05, stall_s=1.2, seed=SEED + 1)
HUB = {
    # Shorter than the wire's stall, so a stalled request is a timeout to the hub.
    "CETTAR_HTTP_TIMEOUT_S": "0.6",
    # About a third of requests fail once: twelve attempts make a request that fails them
    # all a one-in-ten-million event, so the run's outcome does not hang on luck (the
    # production default, 6, would lose about one request in this run's 2,000).
    "CETTAR_HTTP_MAX_ATTEMPTS": "12",
    # Deliveries in batch requests of 2 items: a day's few dozen deliveries are then
    # enough requests for every fault kind to strike batches (with the default 100, a day
    # would be one or two requests), each fault striking all of its batch's items.
    "CETTAR_INBOX_BATCH_SIZE": "2",
}
POST_ROUTES = (
    "POST /kecamatan/v1/handoff-batches",
    "POST /kecamatan/v1/handoffs",
    "POST /registry/v1/update-proposals",
)


def _post_outcomes(stats: dict[str, Any]) -> dict[str, Counter[str]]:
    requests: dict[str, dict[str, int]] = stats["requests"]
    return {route: Counter(requests.get(route, {})) for route in POST_ROUTES}


def _get_faults(stats: dict[str, Any]) -> Counter[str]:
    out: Counter[str] = Counter()
    for route, outcomes in stats["requests"].items():
        if route.startswith("GET ") and "/v1/" in route:
            for outcome, n in outcomes.items():
                out[outcome] += n
    return out


@pytest.mark.slow
def test_daily_coordination_on_flaky_agencies_loses_and_duplicates_nothing(
    tmp_path: Path, prefect_api: str
) -> None:
    """Two daily runs at every fault kind equal the fault-free runs; deliveries exactly once."""
    ref = procs.clean_reference(prefect_api)
    flaky_app = create_app(procs.province_config(faults=FLAKY, agency_faults={}))
    wire = NetworkFaultMiddleware(flaky_app, WIRE)
    flaky = tmp_path / "flaky.db"
    started = time.monotonic()
    runs: list[dict[str, Any]] = []
    with procs.serve_app(wire, flaky_app.state.sandbox) as box:
        env = procs.hub_env(box.url, flaky, prefect_api, tmp_path / "flaky", **HUB)
        procs.db_upgrade(env)
        for day in (1, 2):
            if day == 2:
                box.advance(procs.ADVANCE_DAYS)
            t = time.monotonic()
            summary = procs.run_ok(env, *procs.daily_args(day), timeout=600).json_line()
            assert summary["state"] == "Completed", summary
            runs.append(
                {
                    "day": day,
                    "seconds": round(time.monotonic() - t, 1),
                    "dispatch": procs.dispatch_run(summary),
                    "digests": procs.table_digests(flaky),
                }
            )
        inbox, proposals = box.get("/_admin/inbox"), box.get("/_admin/proposals")
        stats = box.get("/_admin/stats")
        wire_counts = wire.counts()
    seconds = time.monotonic() - started

    posts = _post_outcomes(stats)
    get_faults = _get_faults(stats)
    procs.print_table(
        f"flaky agencies: two daily runs ({seconds:.0f} s)",
        ["figure", "value"],
        [
            ["GET outcomes at the agencies", dict(sorted(get_faults.items()))],
            ["wire faults injected", wire_counts],
            *[[f"{route} outcomes", dict(sorted(c.items()))] for route, c in posts.items()],
            [
                "handoff items received / receipts / pairs",
                f"{inbox['posts']} / {inbox['receipts']} / {inbox['pairs']}",
            ],
            ["  answers lost after the write", inbox["faulted_after_commit"]],
            [
                "proposal POSTs received / receipts",
                f"{proposals['posts']} / {proposals['received']}",
            ],
            ["  answers lost after the write", proposals["faulted_after_commit"]],
            *[[f"day {r['day']} ({r['seconds']} s) dispatch", r["dispatch"]] for r in runs],
        ],
    )

    # Every fault kind struck, reads and writes alike.
    for outcome in ("500", "503", "429", "dropped", "truncated"):
        assert get_faults[outcome] > 0, (outcome, get_faults)
    assert wire_counts.get("GET timeout", 0) > 0 and wire_counts.get("POST lost_answer", 0) > 0
    assert inbox["faulted_after_commit"] > 0 and inbox["replays"] > 0
    # The deliveries went in batches, which the faults struck too (counted per request).
    batches = posts["POST /kecamatan/v1/handoff-batches"]
    assert batches["200"] > 0 and sum(n for o, n in batches.items() if o != "200") > 0
    assert not posts["POST /kecamatan/v1/handoffs"]

    # Nothing lost: after each day the store equals the fault-free run's, table by table.
    for day, run in enumerate(runs):
        diff = procs.diff_digests(ref.digests[day], run["digests"])
        assert not diff, f"day {day + 1}:\n{diff}"
    # Every handoff delivered exactly once, the same ones as without faults.
    assert inbox["pairs_seen_more_than_once"] == 0, inbox["repeated_pairs"]
    assert inbox["receipts"] == inbox["pairs"] == ref.inbox[1]["pairs"] > 0
    assert inbox["posts"] > inbox["receipts"]
    # Every delivery the store recorded with an inbox receipt (not a desk office's).
    assert procs.store_counts(flaky)["posted"] == inbox["pairs"]
    # Every verified update proposal received once, under its own key, as without faults.
    keys = [p["key"] for p in proposals["proposals"]]
    assert proposals["received"] == len(set(keys)) == ref.proposals[1]["received"] > 0
    assert inbox["conflicts"] == proposals["conflicts"] == 0
    # The offices' decisions were read back and applied on day 2, as without faults.
    applied = {k: v for k, v in runs[1]["dispatch"].items() if k.startswith("decisions_")}
    want = procs.dispatch_run(ref.summaries[1])
    assert applied == {k: v for k, v in want.items() if k.startswith("decisions_")}
    assert applied["decisions_applied"] > 0
    procs.audit_ok(flaky)


_PROPOSAL = {
    "id": "PRP-TEST-1",
    "household_id": "HH-3578011001-1",
    "changes": {"desil": 3},
    "report_id": "REP-TEST-1",
    "handoff_id": "HO-TEST-1",
    "verified_by": "kecamatan:35.78.01",
    "verified_at": "2026-11-03T08:00:00.000+07:00",
}


def _registry_client(faults: NetworkFaults, timeout: float = 5.0) -> tuple[Any, Any, Any]:
    app = create_app(procs.province_config(faults=FaultConfig(), agency_faults={}))
    wire = NetworkFaultMiddleware(app, faults)
    client = httpx.Client(
        transport=SyncASGITransport(wire),
        base_url="http://sandbox/registry",
        headers={"Authorization": f"Bearer {default_token('registry')}"},
        timeout=timeout,
    )
    return client, wire, app.state.sandbox


def test_a_lost_answer_is_a_post_the_agency_recorded_and_its_retry_a_replay() -> None:
    """The duplicated POST: recorded, no answer; the same key again gets the first receipt."""
    client, wire, state = _registry_client(NetworkFaults(lost_answer_rate=1.0))
    headers = {"Idempotency-Key": _PROPOSAL["id"]}
    with client:
        with pytest.raises(httpx.RemoteProtocolError):
            client.post("/v1/update-proposals", json=_PROPOSAL, headers=headers)
        assert state.proposals.stats()["received"] == 1
        assert wire.counts() == {"POST lost_answer": 1, "POST requests": 1}
        # The wire heals; the retry under the same key is a replay of the recorded write.
        wire.faults = NetworkFaults()
        resp = client.post("/v1/update-proposals", json=_PROPOSAL, headers=headers)
    assert resp.status_code == 200
    stats = state.proposals.stats()
    assert (stats["received"], stats["posts"], stats["replays"]) == (1, 2, 1)


def test_a_stall_outlasts_the_read_timeout_and_spares_the_admin_routes() -> None:
    """A stalled GET is a client timeout; admin routes never see wire faults."""
    client, wire, _ = _registry_client(NetworkFaults(timeout_rate=1.0, stall_s=0.6), 0.2)
    with client:
        with pytest.raises(httpx.ReadTimeout):
            client.get("/v1/households", params={"limit": 1})
        admin = client.get(
            "http://sandbox/_admin/clock",
            headers={"Authorization": f"Bearer {DEFAULT_ADMIN_TOKEN}"},
        )
        # Let the stalled request end before the transport's loop stops.
        time.sleep(0.7)
    assert admin.status_code == 200
    assert wire.counts() == {"GET requests": 1, "GET timeout": 1}
