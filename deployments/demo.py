"""`cettar demo`: the daily coordination end to end on embedded defaults, with a summary.

A seeded province sample is served by the sandbox agencies on a real port; the hub runs
`daily-coordination` against a real Prefect server on two simulated working days, so the
second day sees the offices' answers, the overdue handoffs and their escalation. Every
figure is then checked against the sandbox's ground truth and read back from the API.
"""

from __future__ import annotations

import json
import os
import shutil
import time
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any
from uuid import UUID

import httpx
from prefect import tags
from rich.console import Console
from rich.table import Table
from rich.text import Text

from deployments.coordination_truth import check_scores, store_figures
from deployments.demo_desk import DEMO_DESK_OFFICES, answer_on_the_desk, desk_deliveries, serve_desk
from deployments.prefect_server import (
    PrefectServer,
    configured_prefect_url,
    ensure_server,
    prefect_api,
)
from deployments.run_audit import audit_flow_tree, run_summary
from integrations.settings import AGENCIES, get_settings
from models.workdays import JAKARTA

# Tuesday morning after the sample's data window closes (2026-11-02): a plain working day.
DEMO_START = datetime.fromisoformat("2026-11-03T08:00:00+07:00")
# Eight calendar days on: past the five-working-day deadline of the first day's handoffs.
SECOND_DAY_AFTER = timedelta(days=8)
# Fewer KSK requests than the province default keeps the sample's fan-out readable.
DEMO_REQUEST_SHARE = 0.05


DEMO_TAG = "demo"
"""Tag of every flow run the demo makes, so its runs never mix into the real history."""


def point_settings_at(database_url: str, sandbox_url: str, data_dir: Path) -> None:
    """Point the lazily-built settings and engine at the given store, data dir and sandbox."""
    # The CLI is the composition root: it may set the hub's environment for this process.
    os.environ["CETTAR_DATABASE_URL"] = database_url
    # Scorecards and other files go below the demo's own directory, never over real ones.
    os.environ["CETTAR_DATA_DIR"] = str(data_dir)
    for agency in AGENCIES:
        os.environ[f"CETTAR_{agency.upper()}_URL"] = f"{sandbox_url}/{agency}"
    # Some offices answer on the desk (deployments/demo_desk.py), the rest on the inbox.
    os.environ["CETTAR_DESK_OFFICES"] = json.dumps(DEMO_DESK_OFFICES)
    from integrations.store.engine import get_engine

    get_settings.cache_clear()
    get_engine.cache_clear()


def demo_config(households: int, seed: int, inbox_faults: bool = False) -> Any:
    """The sandbox configuration of the demo's province sample."""
    from sandbox.config import CoordinationConfig, FaultConfig, RegistryDataConfig, SandboxConfig

    faults = {}
    if inbox_faults:
        # One POST in five fails: 10 % 5xx, 5 % 429 (Retry-After), 5 % dropped connections.
        faults["kecamatan"] = FaultConfig(
            error_rate=0.10, rate_limit_rate=0.05, drop_rate=0.05, retry_after_s=0.2, seed=seed
        )
    return SandboxConfig(
        registry=RegistryDataConfig(seed=seed, households=households),
        agency_faults=faults,
        coordination=CoordinationConfig(
            request_share=DEMO_REQUEST_SHARE, second_request_share=0.0, clock_origin=DEMO_START
        ),
    )


class _Admin:
    """The sandbox's admin API: its clock and its inbox counters."""

    def __init__(self, base_url: str, token: str) -> None:
        self._client = httpx.Client(
            base_url=base_url, headers={"Authorization": f"Bearer {token}"}, timeout=60
        )

    def advance(self, delta: timedelta) -> datetime:
        resp = self._client.post("/_admin/clock", json={"advance_days": delta.days})
        resp.raise_for_status()
        return datetime.fromisoformat(resp.json()["now"])

    def inbox(self) -> dict[str, Any]:
        resp = self._client.get("/_admin/inbox")
        resp.raise_for_status()
        stats: dict[str, Any] = resp.json()
        return stats

    def close(self) -> None:
        self._client.close()


def _mark(ok: bool) -> Text:
    return Text("✓", "green") if ok else Text("✗", "red")


def _done(ok: bool, text: str) -> Text:
    """A line with a check mark; `text` (URLs, names) is printed as is, never as markup."""
    return Text.assemble(_mark(ok), " ", text)


@contextmanager
def _status(console: Console, quiet: bool, text: str) -> Iterator[None]:
    if quiet:
        yield
        return
    with console.status(text):
        yield


def run_demo(
    *, households: int, seed: int, as_json: bool, console: Console, inbox_faults: bool = False
) -> int:
    """Start the sandbox and a Prefect server, run two coordination days, report; exit code."""
    from sandbox.server import serve_in_thread

    settings = get_settings()
    demo_dir = settings.data_dir / "demo"
    demo_dir.mkdir(parents=True, exist_ok=True)
    store = demo_dir / "cettar-demo.db"
    for path in demo_dir.glob("cettar-demo.db*"):
        path.unlink()  # a fresh store each time, so the figures below are this run's alone
    shutil.rmtree(demo_dir / "scorecards", ignore_errors=True)

    with _status(console, as_json, "Starting the Prefect server…"):
        server: PrefectServer = ensure_server(settings, configured_url=configured_prefect_url())
    if not as_json:
        how = "started" if server.started_here else "already running"
        console.print(_done(True, f"Prefect API at {server.api_url} ({how})"))

    config = demo_config(households, seed, inbox_faults)
    days: list[dict[str, Any]] = []
    with serve_in_thread(config) as base_url, prefect_api(server.api_url):
        point_settings_at(f"sqlite:///{store}", base_url, demo_dir)
        admin = _Admin(base_url, config.admin_token)
        if not as_json:
            console.print(
                _done(True, f"sandbox agencies on {base_url} ({households:,} households)")
            )
        from flows.daily_coordination import daily_coordination

        as_of = DEMO_START
        try:
            for day in (1, 2):
                if day == 2:
                    as_of = admin.advance(SECOND_DAY_AFTER)
                label = f"day {day}: daily coordination as of {as_of:%a %d %b %Y %H:%M} WIB"
                with _status(console, as_json, f"Running {label}…"):
                    started = time.monotonic()
                    with tags(DEMO_TAG):
                        state = daily_coordination(as_of=as_of, return_state=True)
                    seconds = time.monotonic() - started
                flow_run_id = state.state_details.flow_run_id
                assert flow_run_id is not None
                days.append(
                    {
                        "day": day,
                        "as_of": as_of.isoformat(),
                        "seconds": round(seconds, 2),
                        "state": state.name,
                        "completed": state.is_completed(),
                        "flow_run_id": str(flow_run_id),
                        "flow_run_url": server.flow_run_url(flow_run_id),
                        "steps": run_summary(state),
                    }
                )
                if not as_json:
                    line = f"{label}: {state.name} in {seconds:.0f} s"
                    console.print(_done(state.is_completed(), line))
                if day == 1:
                    desk = _desk_day(as_of, console, as_json)
            inbox = admin.inbox()
        finally:
            admin.close()
        records = [audit_flow_tree(UUID(d["flow_run_id"])) for d in days]
        result = _result(config, days, records, inbox, server, store, as_of, desk)
    if as_json:
        print(json.dumps(result, default=str))
    else:
        _print_summary(console, result, server)
    return 0 if result["ok"] else 1


def _desk_day(as_of: datetime, console: Console, quiet: bool) -> dict[str, Any]:
    """After the first day's dispatch: desk officers answer a share of their handoffs."""
    from integrations.store.engine import get_engine

    engine = get_engine()
    # The desk's clock is the demo's: two hours into the first day.
    answered_at = as_of + timedelta(hours=2)
    with _status(console, quiet, "Answering on the office desk…"):
        started = time.monotonic()
        with serve_desk(engine, lambda: answered_at) as url:
            desk = answer_on_the_desk(engine, url, answered_at)
        desk["seconds"] = round(time.monotonic() - started, 2)
    if not quiet:
        outcomes = ", ".join(f"{n} {k}" for k, n in desk["outcomes"].items()) or "none"
        line = (
            f"office desk on {desk['url']}: {len(desk['accounts'])} kecamatan officers "
            f"answered {desk['answered']} handoffs through its forms ({outcomes}) "
            f"in {desk['seconds']:.0f} s"
        )
        console.print(_done(True, line))
    return desk


def _result(
    config: Any,
    days: list[dict[str, Any]],
    records: list[Any],
    inbox: dict[str, Any],
    server: PrefectServer,
    store: Any,
    as_of: datetime,
    desk: dict[str, Any],
) -> dict[str, Any]:
    from integrations.store.engine import get_engine
    from integrations.store.health import red_entries, zone_tally
    from sandbox.truth import coordination_truth, health_truth, registry_truth

    key = get_settings().pii_key.get_secret_value().encode()
    engine = get_engine()
    truth = registry_truth(config)
    coordination = coordination_truth(config)
    scores = check_scores(engine, coordination, key)
    figures = store_figures(engine, as_of)
    on_desk = desk_deliveries(engine)
    # Health zones: the red entries the hub stored against those the sandbox's own figures
    # imply (planted outbreaks; near-misses must stay under red).
    health = health_truth(config)
    with engine.connect() as conn:
        found = red_entries(conn)
        zones = zone_tally(conn, health.weeks[-1]) if health.weeks else {}
    expected = {(e.level, e.area_code, e.condition, e.week) for e in health.entries}
    hit = len(found & expected)
    near = {(n.kecamatan, n.condition) for n in health.near_misses}
    hz = {
        "week": health.weeks[-1] if health.weeks else None,
        "zones": zones,
        "expected_red": len(expected),
        "found_red": len(found),
        "precision": hit / len(found) if found else 1.0,
        "recall": hit / len(expected) if expected else 1.0,
        "near_misses_red": len({(a[:8], c) for _, a, c, _ in found} & near),
        "urgent_handoffs": figures["by_kind"].get("health_red_zone", 0),
        "forkopimcam_notices": figures["by_kind"].get("health_red_zone_notice", 0),
    }
    first = days[0]["steps"].get("sync-registry", {})
    hh = first.get("totals", {}).get("registry.households", {})
    rc = first.get("totals", {}).get("registry.recipients", {})
    scorecard = days[-1]["steps"].get("kecamatan-scorecard", {})
    prefect = {
        "flow_runs": sum(r.flow_runs for r in records),
        "task_runs": sum(r.task_runs for r in records),
        "task_states": _merge(r.task_states for r in records),
        "log_lines": sum(r.log_lines for r in records),
        "artifacts": sum(r.artifacts for r in records),
        "events": sum(r.events for r in records),
        "clear_ids_found": _merge(r.clear_ids for r in records),
        "not_completed": [name for r in records for name in r.not_completed],
    }
    checks = {
        "both_days_completed": all(d["completed"] for d in days),
        "all_households_accounted": hh.get("fetched") == truth["households"],
        "bad_households_quarantined": hh.get("quarantined") == truth["bad_households"],
        "all_recipients_accounted": rc.get("fetched") == truth["recipients"],
        "bad_recipients_quarantined": rc.get("quarantined") == truth["bad_recipients"],
        "every_planted_conflict_found": all(s["recall"] == 1.0 for s in scores.values()),
        "no_clean_case_flagged": all(s["precision"] == 1.0 for s in scores.values()),
        # Deliveries to desk-only offices are recorded on the desk, never posted.
        "every_office_saw_each_handoff_once": inbox["pairs_seen_more_than_once"] == 0
        and inbox["pairs"] == figures["deliveries_sent"] - on_desk,
        "desk_answers_went_through_the_decision_rule": desk["answered"] > 0
        and set(desk["outcomes"]) <= {"applied", "repeat", "superseded"},
        "overdue_handoffs_escalated": figures["overdue_not_escalated"] == 0
        and figures["escalated"] > 0,
        "every_planted_red_zone_found": hz["recall"] == 1.0,
        "no_near_miss_turned_red": hz["precision"] == 1.0 and hz["near_misses_red"] == 0,
        "audit_chain_intact": figures["audit"]["ok"],
        # Two days of the daily run and its seven subflows (the health zones are a task).
        "prefect_history_complete": not prefect["not_completed"] and prefect["flow_runs"] == 2 * 8,
        "no_clear_ids_in_prefect_records": sum(prefect["clear_ids_found"].values()) == 0,
    }
    return {
        "ok": all(checks.values()),
        "days": [{k: v for k, v in d.items() if k != "steps"} for d in days],
        "households": hh,
        "recipients": rc,
        "sandbox_truth": truth,
        "checks_precision_recall": scores,
        "handoffs": figures,
        "inbox": {
            k: inbox[k] for k in ("receipts", "posts", "replays", "faulted_after_commit", "pairs")
        }
        | {"pairs_seen_more_than_once": inbox["pairs_seen_more_than_once"]},
        "desk": {**desk, "deliveries_on_desk": on_desk, "offices_config": DEMO_DESK_OFFICES},
        "health": hz,
        "worst_kecamatan": figures["worst"],
        "scorecard_files": scorecard.get("files", {}),
        "prefect": {"api_url": server.api_url, **prefect},
        "checks": checks,
        "store": str(store),
        "time_zone": JAKARTA,
    }


def _merge(dicts: Any) -> dict[str, int]:
    return dict(sum((Counter(d) for d in dicts), Counter[str]()))


def _print_summary(console: Console, result: dict[str, Any], server: PrefectServer) -> None:
    table = Table(title="Registry sync · Jawa Timur sample (day 1)")
    for col in ("collection", "fetched", "upserted", "unchanged", "quarantined"):
        table.add_column(col, justify="left" if col == "collection" else "right")
    for name in ("households", "recipients"):
        t = result[name]
        table.add_row(
            name, *(f"{t.get(k, 0):,}" for k in ("fetched", "upserted", "unchanged", "quarantined"))
        )
    console.print(table)

    checks = Table(title="Cross-programme checks against the planted conflicts")
    for col in ("check", "in the truth", "found", "precision", "recall"):
        checks.add_column(col, justify="left" if col == "check" else "right")
    for kind, s in result["checks_precision_recall"].items():
        checks.add_row(
            Text(kind),
            f"{s['expected']:,}",
            f"{s['found']:,}",
            f"{s['precision']:.2f}",
            f"{s['recall']:.2f}",
        )
    console.print(checks)

    h = result["handoffs"]
    flow = Table(title="Handoffs after two coordination days")
    flow.add_column("created")
    flow.add_column("delivered")
    flow.add_column("escalated")
    flow.add_column("resolved")
    flow.add_column("rejected")
    flow.add_column("open backlog")
    flow.add_row(
        *(
            f"{h[k]:,}"
            for k in ("created", "delivered", "escalated", "resolved", "rejected", "backlog")
        )
    )
    console.print(flow)
    hz, z = result["health"], result["health"]["zones"]
    console.print(
        f"Health zones {hz['week']}: {z.get('green', 0)} green, {z.get('yellow', 0)} yellow, "
        f"{z.get('orange', 0)} orange, {z.get('red', 0)} red · {hz['urgent_handoffs']} urgent "
        f"handoffs, {hz['forkopimcam_notices']} Forkopimcam notices · against the planted "
        f"outbreaks: precision {hz['precision']:.2f}, recall {hz['recall']:.2f} "
        f"({hz['found_red']} red entries found, {hz['expected_red']} planted or implied)"
    )
    inbox = result["inbox"]
    console.print(
        f"Inbox: {inbox['receipts']:,} deliveries received from {inbox['posts']:,} posts "
        f"({inbox['replays']:,} replays, {inbox['faulted_after_commit']:,} failed after the "
        f"inbox had stored them); handoffs an office saw twice: "
        f"{inbox['pairs_seen_more_than_once']}. Update proposals sent to the registry: "
        f"{h['proposals_sent']:,}."
    )

    desk = result.get("desk")
    if desk:
        console.print(
            Text(
                f"Office desk: {desk['deliveries_on_desk']:,} deliveries made on the desk "
                f"(offices {', '.join(f'{k} {v}' for k, v in desk['offices_config'].items())}); "
                f"{desk['answered']:,} handoffs answered through its forms."
            )
        )
        console.print(
            Text.assemble(
                "Desk (served during the demo at ",
                (desk["url"], "bold"),
                "): serve it again with ",
                (
                    f"CETTAR_DATABASE_URL=sqlite:///{result['store']} ./dev cettar desk serve",
                    "bold",
                ),
                f" and sign in as {desk['account']} / {desk['password']}.",
            )
        )

    worst = Table(title="Five worst kecamatan (scorecard)")
    for col in ("kecamatan", "name", "backlog", "overdue", "escalated", "rank"):
        worst.add_column(col, justify="left" if col in ("kecamatan", "name") else "right")
    for w in result["worst_kecamatan"]:
        worst.add_row(
            Text(w["code"]),
            Text(w["name"]),
            f"{w['backlog']:,}",
            f"{w['overdue']:,}",
            f"{w['escalations']:,}",
            f"{w['rank']}",
        )
    console.print(worst)
    files = result["scorecard_files"]
    if files:
        console.print(Text("Scorecard files: " + ", ".join(str(v) for v in files.values())))

    for name, ok in result["checks"].items():
        console.print(_done(ok, name.replace("_", " ")))
    p = result["prefect"]
    console.print(
        f"\nPrefect recorded {p['flow_runs']} flow runs and {p['task_runs']} task runs "
        f"({p['task_states']}), {p['log_lines']} log lines, {p['artifacts']} artifacts, "
        f"{p['events']} events; clear NIK/KK found in them: "
        f"{sum(p['clear_ids_found'].values())}."
    )
    for d in result["days"]:
        console.print(
            Text.assemble(f"See day {d['day']} in the Prefect UI: ", (d["flow_run_url"], "bold"))
        )
    if server.started_here:
        console.print(
            Text.assemble(
                "The Prefect server keeps running; stop it with ",
                ("cettar server stop", "bold"),
                ".",
            )
        )
