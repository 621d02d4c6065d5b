"""After a whole demo run, no NIK, No. KK, token or key in the Prefect API or the exported files.

`cettar demo` runs as an operator runs it (two daily coordinations on a seeded province
sample) against the session's Prefect server. Then every record the API holds is paged
through Prefect's client: flow runs and their state histories (parameters, state
messages), task runs and their state histories, logs, artifacts, events, variables,
deployments, blocks (with secrets revealed), automations, work pools and concurrency
limits; and every file the demo left under its data directory and in Prefect's result
storage (the scorecard workbooks cell by cell), except the SQLite store itself, which
legitimately holds the ids. The ids searched for are every 16-digit NIK and No. KK the
sandbox served (its own records, paged in-process at both demo days), found however the
digits are grouped: separators between digits are stripped before the search. The tokens
searched for are the agencies' and the admin's bearer tokens and the hub's PII key.

A canary proves the scan can see: one served NIK, spaced in groups of four, is logged by a
flow run on the same server, and the scan must report exactly that one hit.

Knob: CETTAR_FAULT_PII_HOUSEHOLDS (the demo's sample size, default 600).
"""

from __future__ import annotations

import asyncio
import json
import re
import time
from collections import Counter
from collections.abc import Iterable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import openpyxl
import pytest
from prefect import flow, get_run_logger
from prefect.client.orchestration import PrefectClient, get_client
from prefect.events.filters import EventFilter, EventOccurredFilter

from deployments.demo import demo_config
from deployments.run_audit import flush_run_records
from integrations.settings import AGENCIES, Settings
from models.sources import collections_of
from sandbox.app import create_app
from sandbox.transport import SyncASGITransport
from tests.faults import procs

HOUSEHOLDS = procs.env_int("CETTAR_FAULT_PII_HOUSEHOLDS", 600)
SEED = 35
PAGE = 200
EVENT_PAGE = 50  # the events API's largest page

KINDS = (
    "flow runs",
    "flow run states",
    "task runs",
    "task run states",
    "logs",
    "artifacts",
    "events",
    "variables",
    "deployments",
    "blocks",
    "automations",
    "work pools",
    "concurrency limits",
    "files",
    "xlsx workbooks",
    "xlsx cells",
)
_SERVED_ID = re.compile(r"(?<!\d)\d{16}(?!\d)")
# Spaces, dots, dashes, slashes, underscores or commas between two digits: "3507 0520 ...",
# "3507.0520...", "3507-0520-..." all become one run of digits.
_BETWEEN_DIGITS = re.compile(r"(?<=\d)[\s.\-_/,\u2013\u2014\u00a0]+(?=\d)")
_DIGIT_RUN = re.compile(r"\d{16,}")


def served_ids(households: int, seed: int) -> set[str]:
    """Every 16-digit NIK and No. KK the demo's sandbox serves, read from its own pages."""
    config = demo_config(households, seed)
    app = create_app(config)
    found: set[str] = set()
    transport = SyncASGITransport(app)
    with httpx.Client(transport=transport, base_url="http://sandbox", timeout=120) as client:
        # Both demo days: the sandbox clock decides which records are visible.
        for advance in (0, 8):
            if advance:
                client.post(
                    "/_admin/clock",
                    json={"advance_days": advance},
                    headers={"Authorization": f"Bearer {config.admin_token}"},
                ).raise_for_status()
            for agency in AGENCIES:
                headers = {"Authorization": f"Bearer {config.tokens[agency]}"}
                for collection in collections_of(agency):
                    cursor: str | None = None
                    while True:
                        params: dict[str, Any] = {"limit": 1000}
                        if cursor:
                            params["cursor"] = cursor
                        resp = client.get(
                            f"/{agency}/v1/{collection}", params=params, headers=headers
                        )
                        resp.raise_for_status()
                        found.update(_SERVED_ID.findall(resp.text))
                        cursor = resp.json()["next_cursor"]
                        if cursor is None:
                            break
    transport.close()
    return found


class Scanner:
    """Counts records scanned per kind and hits of the ids and secrets in their text."""

    def __init__(self, ids: set[str], secrets: dict[str, str]) -> None:
        self.ids = ids
        self.secrets = secrets
        self.records: Counter[str] = Counter()
        self.hits: list[tuple[str, str, str]] = []

    def scan(self, kind: str, where: str, text: str) -> None:
        """Scan one record's text; a hit names the kind, the record and what matched."""
        self.records[kind] += 1
        for name, secret in self.secrets.items():
            if secret in text:
                self.hits.append((kind, where, f"secret {name}"))
        flat = _BETWEEN_DIGITS.sub("", text)
        for run in _DIGIT_RUN.findall(flat):
            for i in range(len(run) - 15):
                if run[i : i + 16] in self.ids:
                    self.hits.append((kind, where, f"id {run[i : i + 4]}…{run[i + 12 : i + 16]}"))

    def scan_model(self, kind: str, obj: Any) -> None:
        """Scan a Prefect API object as its JSON."""
        self.scan(kind, f"{kind} {getattr(obj, 'id', '')}", obj.model_dump_json())


async def _paged(read: Any, **kwargs: Any) -> list[Any]:
    out: list[Any] = []
    while True:
        page = await read(limit=PAGE, offset=len(out), **kwargs)
        out.extend(page)
        if len(page) < PAGE:
            return out


async def _states(client: PrefectClient, reader: str, ids: Iterable[Any]) -> list[Any]:
    gate = asyncio.Semaphore(8)

    async def one(run_id: Any) -> list[Any]:
        async with gate:
            states: list[Any] = await getattr(client, reader)(run_id)
            return states

    return [s for states in await asyncio.gather(*(one(i) for i in ids)) for s in states]


async def scan_prefect(scanner: Scanner, since: datetime) -> None:
    """Page every record of the Prefect API through the scanner."""
    async with get_client() as client:
        flow_runs = await _paged(client.read_flow_runs)
        for run in flow_runs:
            scanner.scan_model("flow runs", run)
        for state in await _states(client, "read_flow_run_states", [r.id for r in flow_runs]):
            scanner.scan_model("flow run states", state)
        task_runs = await _paged(client.read_task_runs)
        for task_run in task_runs:
            scanner.scan_model("task runs", task_run)
        for state in await _states(client, "read_task_run_states", [t.id for t in task_runs]):
            scanner.scan_model("task run states", state)
        for log in await _paged(client.read_logs):
            scanner.scan("logs", f"logs of flow run {log.flow_run_id}", log.model_dump_json())
        for artifact in await _paged(client.read_artifacts):
            scanner.scan_model("artifacts", artifact)
        page = await client.read_events(
            filter=EventFilter(
                occurred=EventOccurredFilter(since=since, until=datetime.now(UTC) + timedelta(1))
            ),
            limit=EVENT_PAGE,
        )
        while True:
            for event in page.events:
                scanner.scan_model("events", event)
            if not page.next_page:
                break
            page = await client.read_events_page(str(page.next_page))
        for variable in await client.read_variables():
            scanner.scan_model("variables", variable)
        for deployment in await _paged(client.read_deployments):
            scanner.scan_model("deployments", deployment)
        for block in await client.read_block_documents(include_secrets=True):
            scanner.scan_model("blocks", block)
        for automation in await client.read_automations():
            scanner.scan_model("automations", automation)
        for pool in await client.read_work_pools():
            scanner.scan_model("work pools", pool)
        for limit in await client.read_concurrency_limits(limit=PAGE, offset=0):
            scanner.scan_model("concurrency limits", limit)


def scan_files(scanner: Scanner, roots: Iterable[Path], store_prefix: str) -> None:
    """Scan every file under the roots (workbooks cell by cell), except the SQLite store."""
    for root in roots:
        for path in sorted(p for p in root.rglob("*") if p.is_file()):
            if path.name.startswith(store_prefix):
                continue  # the store itself: its ids are its job
            if path.suffix == ".xlsx":
                book = openpyxl.load_workbook(path, read_only=True, data_only=True)
                cells = [
                    "" if v is None else str(v)
                    for sheet in book.worksheets
                    for row in sheet.iter_rows(values_only=True)
                    for v in row
                ]
                book.close()
                # Cells one per line, so two neighbouring cells cannot join into an id.
                scanner.scan("xlsx workbooks", str(path), "\n|\n".join(cells))
                scanner.records["xlsx cells"] += len(cells)
            else:
                text = path.read_bytes().decode("utf-8", errors="replace")
                scanner.scan("files", str(path), text)


@flow(name="pii-scan-canary")
def canary(marker: str) -> None:
    """Log one served NIK, grouped by spaces, through the Prefect logger (the scan must see it)."""
    nik = marker.replace("x", "")
    grouped = " ".join(nik[i : i + 4] for i in range(0, 16, 4))
    get_run_logger().info("canary record for the scan: %s", grouped)


@pytest.mark.slow
def test_no_nik_no_kk_no_secret_in_prefect_or_exported_files(
    tmp_path: Path, prefect_api: str
) -> None:
    """Zero hits over every Prefect record and exported file; the planted canary is found."""
    started = time.monotonic()
    since = datetime.now(UTC) - timedelta(hours=1)
    data_dir, results = tmp_path / "data", tmp_path / "prefect-results"
    env = procs.hub_env(
        "http://127.0.0.1:9",
        tmp_path / "unused.db",
        prefect_api,
        data_dir,
        PREFECT_LOCAL_STORAGE_PATH=str(results),
    )
    for key in [k for k in env if k.startswith("CETTAR_") and k != "CETTAR_DATA_DIR"]:
        del env[key]  # the demo composes its own store and sandbox, as an operator sees it
    demo = procs.run_ok(env, "demo", "--households", str(HOUSEHOLDS), "--json", timeout=600)
    result = demo.json_line()
    demo_s = time.monotonic() - started
    assert result["checks"]["both_days_completed"], result["checks"]
    assert result["scorecard_files"], "the demo exported no scorecard files"

    ids = served_ids(HOUSEHOLDS, SEED)
    assert len(ids) > HOUSEHOLDS * 2, len(ids)
    settings = Settings()
    secrets = {f"{agency} token": settings.agency_endpoint(agency)[1] for agency in AGENCIES} | {
        "pii key": settings.pii_key.get_secret_value(),
        "sandbox admin token": demo_config(HOUSEHOLDS, SEED).admin_token,
    }

    # The canary: one served NIK in a log line of a run on the same server.
    planted = sorted(ids)[len(ids) // 2]
    state = canary(planted[:8] + "x" + planted[8:], return_state=True)
    assert state.is_completed()
    flush_run_records()
    canary_run = str(state.state_details.flow_run_id)

    scanner = Scanner(ids, secrets)
    asyncio.run(scan_prefect(scanner, since))
    scan_files(scanner, [data_dir, results], "cettar-demo.db")
    seconds = time.monotonic() - started

    procs.print_table(
        f"PII scan: {len(ids):,} served NIK/No. KK, {len(secrets)} secrets "
        f"(demo {demo_s:.0f} s, {seconds:.0f} s in all)",
        ["records scanned", "count"],
        [[kind, scanner.records[kind]] for kind in KINDS]
        + [["hits (the canary included)", len(scanner.hits)]],
    )
    for hit in scanner.hits:
        print("  hit:", *hit)
    assert set(scanner.records) <= set(KINDS)
    assert scanner.records["logs"] > 100 and scanner.records["events"] > 100
    assert scanner.records["xlsx workbooks"] > 0 and scanner.records["xlsx cells"] > 100
    canary_hits = [h for h in scanner.hits if h[0] == "logs" and h[2].startswith("id ")]
    leaks = [h for h in scanner.hits if h not in canary_hits]
    assert not leaks, json.dumps(leaks[:20], indent=1)
    # Exactly the planted line: the scan sees grouped digits in a log record.
    assert len(canary_hits) == 1, canary_hits
    assert canary_hits[0][2] == f"id {planted[:4]}…{planted[12:]}"
    assert canary_hits[0][1] == f"logs of flow run {canary_run}"
