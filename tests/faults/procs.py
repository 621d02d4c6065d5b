"""Shared helpers of the process-level fault tests: the sandbox on a port, CLI runs, digests.

The hub runs as the operator runs it: `python -m deployments.cli ...` processes against a
sandbox served over real HTTP from the test process and the session's Prefect server, so a
SIGKILL lands in a real process and the sandbox's receipts outlive every hub process.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import re
import shutil
import signal
import socket
import sqlite3
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import uvicorn
from sqlalchemy import Engine, MetaData, create_engine, select, text
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.pool import NullPool
from starlette.requests import ClientDisconnect
from starlette.types import ASGIApp

from deployments.demo import demo_config
from integrations.store.audit import verify_audit
from sandbox.app import create_app
from sandbox.config import AGENCIES, DEFAULT_ADMIN_TOKEN, FaultConfig, SandboxConfig

ROOT = Path(__file__).resolve().parents[2]

# Columns left out of the per-table digests, and why: each is bookkeeping that differs
# between two correct runs, never data an agency sent or a decision the hub made.
EXCLUDED: dict[str, set[str]] = {
    # Wall-clock time of the write: a resumed run writes later than the reference.
    "*": {"synced_at"},
    # Page and record counters count the resumed run's re-reads; changed_at is the wall
    # clock. The watermark, pass bounds and cursor (where each partition stands) stay.
    "sync_cursor": {"pages", "records", "changed_at"},
    # Surrogate key (insertion order) and sightings: `updated_since` is inclusive, so every
    # later run re-reads the last record of a kecamatan, and seen_count counts the runs that
    # saw a bad one there (first_seen/last_seen are their wall-clock times).
    "quarantine": {"id", "first_seen", "last_seen", "seen_count"},
    # Receipt numbers are the inbox's arrival order (8 requests in flight, batches in
    # parallel); attempts and last_error count retries the faults caused.
    "handoff_delivery": {"receipt_id", "attempts", "last_error"},
    "update_proposal": {"receipt_id", "attempts"},
    # Decision ids embed the receipt's arrival number (DEC-<receipt seq>-<n>).
    "office_decision": {"id"},
    # The hash chain's order follows the batches' completion order; the chain itself is
    # verified separately, its rows compared as a multiset of transitions.
    "handoff_audit": {"seq", "prev_hash", "hash"},
    "audit_head": {"last_hash"},
}
# Receipt numbers also appear inside audit reasons ("delivered to ..., receipt RCP-...").
_RECEIPT = re.compile(r"\b(RCP|PRP|DEC)-\d+(-\d+)?\b")
# Reference data loaded by `db upgrade`, identical in every store.
_SKIP_TABLES = {"region", "alembic_version"}


def env_int(name: str, default: int) -> int:
    """An integer knob of the fault suite from the environment (a larger setting for soaks)."""
    value = os.environ.get(name)
    return int(value) if value else default


# The daily coordination scenario the process tests share: the demo's province sample, two
# of its kabupaten (every check finds something there), two working days eight days apart
# as in the demo (on the second the offices' decisions are back and overdue handoffs
# escalate). CETTAR_FAULT_HOUSEHOLDS sizes the sample.
HOUSEHOLDS = env_int("CETTAR_FAULT_HOUSEHOLDS", 3000)
SCOPE = ("--kabupaten", "35.07", "--kabupaten", "35.78")
DAYS = ("2026-11-03T08:00", "2026-11-11T08:00")
ADVANCE_DAYS = 8


def daily_args(day: int) -> tuple[str, ...]:
    """`cettar run daily` for day 1 or 2 of the scenario, with a JSON summary."""
    return ("run", "daily", "--as-of", DAYS[day - 1], *SCOPE, "--json")


def province_config(**updates: Any) -> SandboxConfig:
    """The scenario's sandbox: a little latency per request spreads a run's work over time."""
    base = demo_config(HOUSEHOLDS, 35)
    latency = {
        "faults": FaultConfig(latency_ms=4),
        # Slow inbox POSTs keep a dispatch busy long enough for kills and overlaps to meet it.
        "agency_faults": {"kecamatan": FaultConfig(latency_ms=120)},
    }
    return base.model_copy(update={**latency, **updates})


@dataclass
class Served:
    """A sandbox app on a real port: its root URL and the app's state."""

    url: str
    app: Any

    def admin(self) -> httpx.Client:
        """A client of the sandbox's admin API."""
        return httpx.Client(
            base_url=self.url,
            headers={"Authorization": f"Bearer {DEFAULT_ADMIN_TOKEN}"},
            timeout=60,
        )

    def get(self, path: str) -> Any:
        """One admin GET, as JSON."""
        with self.admin() as admin:
            resp = admin.get(path)
            resp.raise_for_status()
            return resp.json()

    def set_faults(self, agency: str, config: FaultConfig) -> None:
        """Give one agency its own fault injection (latency included) from now on."""
        with self.admin() as admin:
            admin.put(
                "/_admin/faults", params={"agency": agency}, json=config.model_dump(mode="json")
            ).raise_for_status()

    def advance(self, days: int) -> None:
        """Let the sandbox clock move on by some days."""
        with self.admin() as admin:
            admin.post("/_admin/clock", json={"advance_days": days}).raise_for_status()


class _HideKilledClients(logging.Filter):
    """A hub process killed mid-request leaves its POST unread: not a sandbox crash to log."""

    def filter(self, record: logging.LogRecord) -> bool:
        """False for records of a request whose client went away before its body was read."""
        exc = record.exc_info[1] if record.exc_info else None
        return not isinstance(exc, ClientDisconnect)


_KILLED_CLIENTS = _HideKilledClients()


@contextmanager
def serve_app(app: ASGIApp, state_of: Any = None) -> Iterator[Served]:
    """Serve an ASGI app (the sandbox, perhaps wrapped) from a background thread."""
    error_log = logging.getLogger("uvicorn.error")
    if _KILLED_CLIENTS not in error_log.filters:
        error_log.addFilter(_KILLED_CLIENTS)
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    config = uvicorn.Config(
        app, host="127.0.0.1", port=port, log_level="warning", access_log=False, lifespan="off"
    )
    server = uvicorn.Server(config)
    thread = threading.Thread(
        target=server.run, kwargs={"sockets": [sock]}, name="sandbox-uvicorn", daemon=True
    )
    thread.start()
    try:
        deadline = time.monotonic() + 10.0
        while not server.started:
            if not thread.is_alive() or time.monotonic() > deadline:
                raise RuntimeError("sandbox server did not start")
            time.sleep(0.01)
        yield Served(f"http://127.0.0.1:{port}", state_of if state_of is not None else app)
    finally:
        server.should_exit = True
        thread.join(timeout=10.0)
        sock.close()


Store = Path | str
"""A store: a SQLite file's path, or a database URL (PostgreSQL)."""


def store_url(db: Store) -> str:
    """The SQLAlchemy URL of a store."""
    return db if isinstance(db, str) else f"sqlite:///{db}"


def hub_env(
    sandbox_url: str, db: Store, prefect_api: str, data_dir: Path, **extra: str
) -> dict[str, str]:
    """The environment of a hub process: every agency at the sandbox, the given store."""
    data_dir.mkdir(parents=True, exist_ok=True)
    env = {
        **os.environ,
        "CETTAR_DATA_DIR": str(data_dir),
        "CETTAR_DATABASE_URL": store_url(db),
        "PREFECT_API_URL": prefect_api,
        "PREFECT_SERVER_ANALYTICS_ENABLED": "false",
        # Short waits between retries: the faults are the point, not the backoff.
        "CETTAR_HTTP_BACKOFF_BASE_S": "0.02",
        "CETTAR_HTTP_BACKOFF_MAX_S": "0.2",
        "PYTHONUNBUFFERED": "1",
        **extra,
    }
    for agency in AGENCIES:
        env[f"CETTAR_{agency.upper()}_URL"] = f"{sandbox_url}/{agency}"
    return env


def cli_command(*args: str) -> list[str]:
    """The `cettar` command line run by the test's interpreter."""
    return [sys.executable, "-m", "deployments.cli", *args]


def db_upgrade(env: Mapping[str, str]) -> None:
    """Create and migrate the store, as an operator does once."""
    subprocess.run(
        cli_command("db", "upgrade"), env=dict(env), cwd=ROOT, check=True, capture_output=True
    )


# Prefect's engine logs one line as each (sub)flow run begins: the step the run is in.
_BEGIN = re.compile(r"Beginning (?:sub)?flow run '[^']*' for flow '([^']+)'")


@dataclass
class Proc:
    """A hub process whose output is read as it comes, each line with its time."""

    popen: subprocess.Popen[str]
    started: float
    lines: list[tuple[float, str]] = field(default_factory=list)
    _readers: list[threading.Thread] = field(default_factory=list)

    def phases(self) -> list[str]:
        """The flows the process began so far, in order."""
        return [m.group(1) for _, line in list(self.lines) if (m := _BEGIN.search(line))]

    def wait_until(self, ready: Callable[[], bool], timeout: float = 180) -> bool:
        """Poll until ready() or the process exits; True if ready came first."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline and self.popen.poll() is None:
            if ready():
                return True
            time.sleep(0.01)
        return False

    def phase(self) -> str:
        """The flow the process last began (its step), or "startup" before the first one."""
        for _, line in reversed(list(self.lines)):
            m = _BEGIN.search(line)
            if m:
                return m.group(1)
        return "startup"

    def kill(self) -> bool:
        """SIGKILL the process; True if it was still running (the kill landed)."""
        if self.popen.poll() is not None:
            return False
        self.popen.send_signal(signal.SIGKILL)
        self.popen.wait(timeout=30)
        self.join()
        return self.popen.returncode == -signal.SIGKILL

    def wait(self, timeout: float) -> int:
        """Wait for the process to exit; its return code."""
        code = self.popen.wait(timeout=timeout)
        self.join()
        return code

    def join(self) -> None:
        """Wait for the output readers to reach the end of the output."""
        for t in self._readers:
            t.join(timeout=10)

    def output(self) -> str:
        """Everything the process printed so far."""
        return "\n".join(line for _, line in self.lines)

    def json_line(self) -> dict[str, Any]:
        """The last JSON line the process printed (its --json summary)."""
        for _, line in reversed(self.lines):
            if line.startswith("{"):
                try:
                    parsed: dict[str, Any] = json.loads(line)
                    return parsed
                except ValueError:
                    continue
        raise AssertionError(f"no JSON summary in the output:\n{self.output()[-3000:]}")


def start(env: Mapping[str, str], *args: str) -> Proc:
    """Start one `cettar` command; its stdout and stderr lines are collected with times."""
    popen = subprocess.Popen(
        cli_command(*args),
        env=dict(env),
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        bufsize=1,
    )
    proc = Proc(popen, time.monotonic())

    def read(stream: Any) -> None:
        for line in stream:
            proc.lines.append((time.monotonic() - proc.started, line.rstrip("\n")))

    for stream in (popen.stdout, popen.stderr):
        t = threading.Thread(target=read, args=(stream,), daemon=True)
        t.start()
        proc._readers.append(t)
    return proc


def run_ok(env: Mapping[str, str], *args: str, timeout: float = 300) -> Proc:
    """Run one `cettar` command to completion; fail the test on a non-zero exit."""
    proc = start(env, *args)
    code = proc.wait(timeout)
    assert code == 0, f"{' '.join(args)} exited {code}:\n{proc.output()[-4000:]}"
    return proc


def _canonical(value: Any) -> Any:
    if isinstance(value, str):
        return _RECEIPT.sub(r"\1-*", value)
    return value


@contextmanager
def postgres_databases(base_url: str, *names: str) -> Iterator[list[str]]:
    """Fresh PostgreSQL databases beside the session's `base_url`; dropped afterwards."""
    server = base_url.rsplit("/", 1)[0]
    suffix = base_url.rsplit("/", 1)[1]
    admin = create_engine(f"{server}/postgres", isolation_level="AUTOCOMMIT", poolclass=NullPool)
    made = [f"{suffix}_{name}" for name in names]
    with admin.connect() as conn:
        for db in made:
            conn.execute(text(f'CREATE DATABASE "{db}"'))
    try:
        yield [f"{server}/{db}" for db in made]
    finally:
        for url in [f"{server}/{db}" for db in made]:
            engine = _ENGINES.pop(url, None)
            if engine is not None:
                engine.dispose()
        with admin.connect() as conn:
            for db in made:
                conn.execute(text(f'DROP DATABASE IF EXISTS "{db}" WITH (FORCE)'))
        admin.dispose()


_ENGINES: dict[str, Engine] = {}


def _engine(db: Store) -> Engine:
    """One engine per store for the whole test process (polled while a run writes)."""
    url = store_url(db)
    if url not in _ENGINES:
        _ENGINES[url] = create_engine(url, poolclass=NullPool)
    return _ENGINES[url]


def table_digests(db: Store) -> dict[str, tuple[int, str]]:
    """Per data table: row count and a SHA-256 of its rows (bookkeeping columns excluded)."""
    out: dict[str, tuple[int, str]] = {}
    engine = _engine(db)
    meta = MetaData()
    meta.reflect(engine)
    with engine.connect() as conn:
        for name in sorted(meta.tables):
            if name in _SKIP_TABLES:
                continue
            table = meta.tables[name]
            skip = EXCLUDED["*"] | EXCLUDED.get(name, set())
            cols = [c for c in table.columns if c.name not in skip]
            rows = sorted(
                json.dumps([_canonical(v) for v in row], default=str)
                for row in conn.execute(select(*cols))
            )
            digest = hashlib.sha256("\n".join(rows).encode()).hexdigest()
            out[name] = (len(rows), digest)
    return out


def diff_digests(want: Mapping[str, tuple[int, str]], got: Mapping[str, tuple[int, str]]) -> str:
    """The tables whose count or checksum differ, one per line ("" if none)."""
    lines = []
    for table in sorted(set(want) | set(got)):
        if want.get(table) != got.get(table):
            lines.append(f"{table}: want {want.get(table)}, got {got.get(table)}")
    return "\n".join(lines)


def audit_ok(db: Store) -> None:
    """Assert the store's audit hash chain verifies end to end."""
    with _engine(db).connect() as conn:
        report = verify_audit(conn)
    assert report.ok, report


_COUNTS = {
    "pages": "select coalesce(sum(pages), 0) from sync_cursor",
    "households": "select count(*) from household",
    # Registry records stored: households and programme recipients (enrolments).
    "records": "select (select count(*) from household) + (select count(*) from enrolment)",
    "handoffs": "select count(*) from handoff",
    "sent": "select count(*) from handoff_delivery where status = 'sent'",
    # Of those, the ones the office inbox received (a desk office's are recorded on the
    # desk, `desk:<key>`, never posted): what the inbox's receipts must equal.
    "posted": (
        "select count(*) from handoff_delivery where status = 'sent'"
        " and receipt_id not like 'desk:%'"
    ),
}


def store_counts(db: Store) -> dict[str, int]:
    """Where a store stands: pages, households, handoffs, deliveries sent/posted (0: unreadable)."""
    out = dict.fromkeys(_COUNTS, 0)
    if isinstance(db, Path):
        if not db.exists():
            return out
        # Read-only, and without waiting on the writer's lock: a poll must not slow it.
        try:
            with sqlite3.connect(f"file:{db}?mode=ro", uri=True, timeout=1) as conn:
                for name, sql in _COUNTS.items():
                    out[name] = int(conn.execute(sql).fetchone()[0])
        except sqlite3.Error:
            pass
        return out
    try:
        with _engine(db).connect() as conn:
            for name, sql in _COUNTS.items():
                out[name] = int(conn.execute(text(sql)).scalar_one())
    except SQLAlchemyError:
        pass  # not migrated yet
    return out


def print_table(title: str, header: list[str], rows: list[list[Any]]) -> None:
    """Print a plain text table (shown with `pytest -s`)."""
    widths = [max(len(str(x)) for x in [h, *[r[i] for r in rows]]) for i, h in enumerate(header)]
    print(f"\n{title}")
    print("  ".join(str(h).ljust(w) for h, w in zip(header, widths, strict=True)))
    for r in rows:
        print("  ".join(str(x).ljust(w) for x, w in zip(r, widths, strict=True)))


def serve_sandbox(config: SandboxConfig) -> Any:
    """Serve a sandbox app built from config (a context manager yielding `Served`)."""
    app = create_app(config)
    return serve_app(app, app.state.sandbox)


@dataclass(frozen=True)
class Reference:
    """An uninterrupted, fault-free run of the scenario's two days, what each day left."""

    digests: tuple[dict[str, tuple[int, str]], ...]
    inbox: tuple[dict[str, Any], ...]
    proposals: tuple[dict[str, Any], ...]
    summaries: tuple[dict[str, Any], ...]
    # Day 1's run: when its flow began and when its process ended (s after its start).
    window: tuple[float, float]


_REFERENCES: dict[str, Reference] = {}


def clean_reference(prefect_api: str) -> Reference:
    """The scenario's reference run, made once per test session and Prefect server."""
    if prefect_api in _REFERENCES:
        return _REFERENCES[prefect_api]
    root = Path(tempfile.mkdtemp(prefix="cettar-reference-"))
    digests, inbox, proposals, summaries = [], [], [], []
    window = (0.0, 0.0)
    try:
        with serve_sandbox(province_config()) as box:
            env = hub_env(box.url, root / "reference.db", prefect_api, root)
            db_upgrade(env)
            for day in (1, 2):
                if day == 2:
                    box.advance(ADVANCE_DAYS)
                proc = run_ok(env, *daily_args(day))
                summary = proc.json_line()
                assert summary["state"] == "Completed", summary
                if day == 1:
                    begun = next(t for t, line in proc.lines if "Beginning flow run" in line)
                    window = (begun, proc.lines[-1][0])
                summaries.append(summary)
                digests.append(table_digests(root / "reference.db"))
                inbox.append(box.get("/_admin/inbox"))
                proposals.append(box.get("/_admin/proposals"))
    finally:
        shutil.rmtree(root, ignore_errors=True)
    ref = Reference(tuple(digests), tuple(inbox), tuple(proposals), tuple(summaries), window)
    _REFERENCES[prefect_api] = ref
    return ref


def dispatch_run(summary: dict[str, Any]) -> dict[str, int]:
    """The dispatch run counters in a daily (or a dispatch) run's JSON summary."""
    steps = summary["summary"]
    run: dict[str, int] = steps.get("dispatch-handoffs", steps)["run"]
    return run
