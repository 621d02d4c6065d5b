"""SIGKILL the hub at seeded random points, resume every time: nothing lost, nothing twice.

Each test runs the real `cettar` command in a child process against a sandbox served over
HTTP from the test process (so its inbox's receipts outlive every hub process) and the
session's Prefect server, kills it with SIGKILL at a seeded random point, records where the
kill landed (the step from the run's own "Beginning ... for flow '<step>'" log lines, and
the store's state), and starts it again. Kill points are drawn relative to the run's own
progress, not to the clock, so they stay where the seed puts them on a slow or a fast
machine: the registry sync is killed a random time after a random number of committed pages;
the daily coordination once right after its first handoff POST reaches the inbox (resumed by
two dispatch runs started at the same time), then a random time after a random step began,
every step in turn. The killed run delivers in batch requests of 2 items (several request
rounds per outbox batch, so the kill lands between the POSTs and their record); the two
overlapping runs resume it with one POST per handoff, so the keys the killed run sent in
batches are replayed through the single route; the random kills alternate the two. After the
last resume the store's data tables equal an uninterrupted run's, table by table (row counts
and content checksums; the bookkeeping columns left out are listed with their reasons in
`tests.faults.procs.EXCLUDED`), and the office inbox holds exactly one receipt per (handoff,
office).

Knobs: CETTAR_FAULT_KILLS (kills per target, default 10), CETTAR_FAULT_SEED (the seed of
the kill points, default 35), CETTAR_FAULT_HOUSEHOLDS (the daily runs' province sample,
default 3000), CETTAR_FAULT_SYNC_HOUSEHOLDS (the registry sync's, default 3000: Kota
Surabaya then holds 89 records, room for up to 58 kills; raise it with the kills).
`pytest -s` prints one table per target with each kill's point and phase.
"""

from __future__ import annotations

import random
import time
from collections.abc import Iterator
from functools import partial
from pathlib import Path
from typing import Any

import pytest

from sandbox.config import FaultConfig, RegistryDataConfig, SandboxConfig
from sandbox.registry_data import RegistryData
from tests.faults import procs

KILLS = procs.env_int("CETTAR_FAULT_KILLS", 10)
SEED = procs.env_int("CETTAR_FAULT_SEED", 35)

SYNC_DATA = RegistryDataConfig(
    seed=11, households=procs.env_int("CETTAR_FAULT_SYNC_HOUSEHOLDS", 3000)
)
SYNC_KABUPATEN = "35.78"
SYNC_ARGS = ("sync", "registry", "--kabupaten", SYNC_KABUPATEN, "--page-limit", "4", "--json")

# Day 1 of the shared scenario (tests.faults.procs): syncs, checks, 45 deliveries.
DAILY_ARGS = procs.daily_args(1)
DISPATCH_ARGS = ("run", "dispatch", "--as-of", procs.DAYS[0], *procs.SCOPE, "--json")
# Inbox request sizes (CETTAR_INBOX_BATCH_SIZE): the first kill's (the day's deliveries in
# dozens of requests, 8 in flight: the record waits for several rounds of POSTs), the
# overlapping pair's (one POST each: replays of keys first sent in batches), then the
# random kills' in turn (one POST per handoff, the default batches).
FIRST_REQUEST_SIZE = "2"
PAIR_REQUEST_SIZE = "1"
RANDOM_REQUEST_SIZES = ("1", "100")
# Where a daily run can be: starting up, or in one of its steps (its subflows, in order).
STEPS = [
    "startup",
    "sync-registry",
    "collect-facilitator-reports",
    "sync-sources",
    "check-programme-overlaps",
    "dispatch-handoffs",
    "kecamatan-scorecard",
]


def _committed(db: procs.Store, records: int) -> bool:
    return procs.store_counts(db)["records"] >= records


def _began(proc: procs.Proc, step: str) -> bool:
    return step in proc.phases()


def _landed(kills: list[dict[str, Any]]) -> int:
    return sum(1 for k in kills if k["landed"])


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
def sync_stores(
    request: pytest.FixtureRequest, tmp_path: Path
) -> Iterator[tuple[procs.Store, procs.Store]]:
    """Two empty stores, the reference and the one killed: SQLite files or PostgreSQL."""
    if request.param == "sqlite":
        yield tmp_path / "reference.db", tmp_path / "crashed.db"
        return
    with procs.postgres_databases(
        request.getfixturevalue("postgres_url"), "reference", "crashed"
    ) as (reference, crashed):
        yield reference, crashed


@pytest.mark.slow
def test_sigkill_registry_sync_at_random_points_then_resume(
    tmp_path: Path, prefect_api: str, sync_stores: tuple[procs.Store, procs.Store]
) -> None:
    """KILLS kills of one registry sync: the resumed store equals an uninterrupted run's."""
    rng = random.Random(SEED)
    # Pages of 4 records at 30 ms each: a sync of a few seconds, so the kills spread over it.
    config = SandboxConfig(registry=SYNC_DATA, faults=FaultConfig(latency_ms=30))
    started = time.monotonic()
    with procs.serve_sandbox(config) as box:
        reference, crashed = sync_stores
        ref_env = procs.hub_env(box.url, reference, prefect_api, tmp_path)
        procs.db_upgrade(ref_env)
        procs.run_ok(ref_env, *SYNC_ARGS)
        total = procs.store_counts(reference)["records"]
        # Seeded kill points: once a random number of records is committed (each past
        # the last, so every kill strikes a sync in progress; a resumed run first re-reads
        # the last page of each kecamatan done), plus a random part of a page's time, so
        # kills land while reading, validating or committing alike.
        # Targets stay in the first two thirds: each kill lets the sync run on a little.
        targets = sorted(rng.sample(range(1, 2 * total // 3), KILLS))
        kills: list[dict[str, Any]] = []
        for n, target in enumerate(targets, 1):
            # Alternate a transaction per page with groups of pages between resumes.
            commit_records = 1 if n % 2 else 10
            env = procs.hub_env(
                box.url, crashed, prefect_api, tmp_path, CETTAR_COMMIT_RECORDS=str(commit_records)
            )
            if n == 1:
                procs.db_upgrade(env)
            extra = rng.uniform(0.0, 0.15)
            # Each run commits at least one record of its own before its kill.
            goal = max(target, procs.store_counts(crashed)["records"] + 1)
            victim = procs.start(env, *SYNC_ARGS)
            victim.wait_until(partial(_committed, crashed, goal))
            time.sleep(extra)
            phase = victim.phase()
            landed = victim.kill()
            records = procs.store_counts(crashed)["records"]
            kills.append(
                {
                    "landed": landed,
                    "at": f">= {goal} records + {extra:.2f} s",
                    "commit_records": commit_records,
                    "phase": phase if landed else "finished before the kill",
                    "pages": procs.store_counts(crashed)["pages"],
                    "records": f"{records}/{total}",
                    "mid_sync": 0 < records < total,
                }
            )
        resumed = procs.run_ok(procs.hub_env(box.url, crashed, prefect_api, tmp_path), *SYNC_ARGS)
        assert resumed.json_line()["state"] == "Completed"
    seconds = time.monotonic() - started

    procs.print_table(
        f"registry sync: {_landed(kills)} kills survived ({seconds:.0f} s)",
        ["#", "kill point", "commit records", "phase", "pages read", "records stored", "landed"],
        [
            [i, k["at"], k["commit_records"], k["phase"], k["pages"], k["records"], k["landed"]]
            for i, k in enumerate(kills, 1)
        ],
    )
    assert _landed(kills) == KILLS, kills
    # Every kill strikes a sync that has committed some pages but not all of them.
    mid = [k for k in kills if k["landed"] and k["mid_sync"] and k["phase"] == "sync-registry"]
    assert len(mid) == KILLS, kills
    assert len({k["records"] for k in mid}) >= KILLS // 2, "the kill points hardly vary"

    want, got = procs.table_digests(reference), procs.table_digests(crashed)
    assert not procs.diff_digests(want, got), procs.diff_digests(want, got)
    # And the reference itself holds exactly what the sandbox serves for the kabupaten.
    data = RegistryData(SYNC_DATA)
    kecs = {
        data.kecamatan_of(i)
        for i in data.indices()
        if data.kecamatan_of(i).startswith(SYNC_KABUPATEN)
    }
    valid = sum(data.truth(k)["valid_households"] for k in kecs)
    assert got["household"][0] == valid
    assert got["member"][0] > valid and got["quarantine"][0] > 0


def _inbox(box: procs.Served) -> dict[str, Any]:
    stats: dict[str, Any] = box.get("/_admin/inbox")
    return stats


def _exactly_once(box: procs.Served, db: Path) -> dict[str, int]:
    """Assert one receipt per (handoff, office), each recorded in the store; the counts."""
    inbox = _inbox(box)
    # The store's deliveries with an inbox receipt (a desk office's are not posted).
    sent = procs.store_counts(db)["posted"]
    assert inbox["pairs_seen_more_than_once"] == 0, inbox["repeated_pairs"]
    assert inbox["receipts"] == inbox["pairs"] == sent, (inbox["receipts"], inbox["pairs"], sent)
    assert inbox["conflicts"] == 0
    return {k: inbox[k] for k in ("receipts", "pairs", "posts", "replays")}


def _kill_after_first_post(box: procs.Served, env: dict[str, str], db: Path) -> dict[str, Any]:
    """Start a daily run and SIGKILL it as soon as its first handoff POST reaches the inbox."""
    before = _inbox(box)["receipts"]
    victim = procs.start(env, *DAILY_ARGS)
    deadline = time.monotonic() + 180
    while time.monotonic() < deadline and victim.popen.poll() is None:
        if _inbox(box)["receipts"] > before:
            break
        time.sleep(0.01)
    phase = victim.phase()
    at = round(time.monotonic() - victim.started, 2)
    assert victim.kill(), f"the run ended before its first POST:\n{victim.output()[-3000:]}"
    return {
        "landed": True,
        "delay_s": f"first POST ({at} s)",
        "phase": f"{phase} (first POST)",
        **procs.store_counts(db),
        "receipts": _inbox(box)["receipts"],
    }


# What a dispatch step did, from its run counters: two overlapping runs must add up to one.
_WORK = ("data_request_handoffs", "queued", "delivery_sent", "handoffs_delivered", "escalated")


@pytest.mark.slow
def test_daily_coordination_survives_sigkills_a_dispatch_crash_and_overlapping_runs(
    tmp_path: Path, prefect_api: str
) -> None:
    """A kill mid-dispatch, two dispatch runs at once, then KILLS random kills of `run daily`."""
    rng = random.Random(SEED + 1)
    ref = procs.clean_reference(prefect_api)
    started = time.monotonic()
    crashed = tmp_path / "crashed.db"
    with procs.serve_sandbox(procs.province_config()) as box:

        def hub(size: str) -> dict[str, str]:
            return procs.hub_env(
                box.url, crashed, prefect_api, tmp_path / "crashed", CETTAR_INBOX_BATCH_SIZE=size
            )

        env = hub(FIRST_REQUEST_SIZE)
        procs.db_upgrade(env)
        # First a kill that surely lands between the POSTs and their record: the inbox has
        # receipts the store has not recorded, so the resumed run must replay their keys.
        kills = [_kill_after_first_post(box, env, crashed)]
        # The crashed dispatch is resumed by two dispatch runs started at the same time,
        # the inbox slowed so that each would still be sending when the other starts: the
        # store's coordination guard makes the second wait for the first.
        box.set_faults("kecamatan", FaultConfig(latency_ms=400))
        before = dict(_inbox(box)["per_key"])
        pair = [procs.start(hub(PAIR_REQUEST_SIZE), *DISPATCH_ARGS) for _ in range(2)]
        codes = [p.wait(300) for p in pair]
        assert codes == [0, 0], "\n".join(p.output()[-3000:] for p in pair)
        after = _inbox(box)["per_key"]
        routes = box.get("/_admin/stats")["requests"]
        both_sent = sum(1 for k, n in after.items() if n - before.get(k, 0) >= 2)
        box.set_faults("kecamatan", procs.province_config().agency_faults["kecamatan"])
        after_pair = {**procs.store_counts(crashed), "receipts": _inbox(box)["receipts"]}

        # Then seeded random kill points across every step of the daily run: a seeded plan
        # that visits each step (and the start-up) once, then random steps, each kill a
        # seeded random time after its step began.
        plan = rng.sample(STEPS, len(STEPS))
        plan = (plan + [rng.choice(STEPS) for _ in range(KILLS - len(plan))])[:KILLS]
        for n, target in enumerate(plan):
            extra = rng.uniform(0.0, 0.8) if target != "startup" else rng.uniform(0.2, 2.0)
            size = RANDOM_REQUEST_SIZES[n % len(RANDOM_REQUEST_SIZES)]
            victim = procs.start(hub(size), *DAILY_ARGS)
            if target != "startup":
                victim.wait_until(partial(_began, victim, target))
            time.sleep(extra)
            phase = victim.phase()
            landed = victim.kill()
            kills.append(
                {
                    "landed": landed,
                    "delay_s": f"{target} + {extra:.2f} s (size {size})",
                    "phase": phase if landed else "completed before the kill",
                    **procs.store_counts(crashed),
                    "receipts": _inbox(box)["receipts"],
                }
            )
        final = procs.run_ok(hub(RANDOM_REQUEST_SIZES[-1]), *DAILY_ARGS)
        assert final.json_line()["state"] == "Completed"
        resumed_once = _exactly_once(box, crashed)
    seconds = time.monotonic() - started

    procs.print_table(
        f"daily coordination: {_landed(kills)} kills survived ({seconds:.0f} s)",
        ["#", "kill point", "phase (step running)", "pages read", "handoffs", "sent", "receipts"],
        [
            [i, k["delay_s"], k["phase"], k["pages"], k["handoffs"], k["sent"], k["receipts"]]
            for i, k in enumerate(kills, 1)
        ],
    )
    one = procs.dispatch_run(ref.summaries[0])
    runs = [procs.dispatch_run(p.json_line()) for p in pair]
    procs.print_table(
        "after kill 1: two dispatch runs at once vs one uninterrupted daily run's dispatch",
        ["dispatch counter", "one run", "run A", "run B"],
        [[k, one.get(k, 0), *(r.get(k, 0) for r in runs)] for k in _WORK],
    )
    print(f"keys both runs sent: {both_sent}; store and inbox after: {after_pair}")
    print(f"inbox at the end: {resumed_once}; reference: {ref.inbox[0]['receipts']} receipts")

    assert _landed(kills) == KILLS + 1, kills
    phases = {k["phase"] for k in kills if k["landed"]}
    assert len(phases) >= min(KILLS, len(STEPS)) - 1, f"the kills hit too few steps: {phases}"
    assert kills[0]["phase"] == "dispatch-handoffs (first POST)"
    assert kills[0]["receipts"] > kills[0]["sent"] == 0, "no POST was left unrecorded"

    # The two runs started together took turns (one waited for the guard the killed run
    # left, then the other for the first), and together did the rest of the killed
    # dispatch once: every delivery recorded once, one receipt each, no key sent by both.
    waited = [p for p in pair if any("waits for the store" in line for _, line in p.lines)]
    assert len(waited) == 1, [p.output()[-2000:] for p in pair]
    assert both_sent == 0, f"{both_sent} keys were sent by both dispatch runs"
    # The killed run sent batches; the pair's single POSTs replayed some of those keys.
    assert routes["POST /kecamatan/v1/handoff-batches"].get("200", 0) > 0, routes
    assert routes["POST /kecamatan/v1/handoffs"].get("200", 0) > 0, routes
    # (The killed run had opened the data-request handoffs and queued the deliveries; it
    # was killed before escalating.)
    for counter in ("delivery_sent", "handoffs_delivered", "escalated"):
        assert sum(r.get(counter, 0) for r in runs) == one[counter], (counter, runs, one)
    posted = one["delivery_sent"] - one.get("delivery_on_desk", 0)
    assert after_pair["posted"] == after_pair["receipts"] == posted > 0

    want, got = ref.digests[0], procs.table_digests(crashed)
    assert not procs.diff_digests(want, got), procs.diff_digests(want, got)
    assert resumed_once["receipts"] == ref.inbox[0]["receipts"] > 0
    assert resumed_once["replays"] > 0, "the resumed runs replayed no key"
    procs.audit_ok(crashed)
