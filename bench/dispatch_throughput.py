"""Handoff delivery throughput: one POST per handoff vs batch requests, one invocation.

Starts the sandbox (its office inbox) in its own process on a real port, then for each
request size (1: one `POST /v1/handoffs` per handoff, the old path; then the default
`CETTAR_INBOX_BATCH_SIZE`, `POST /v1/handoff-batches`) makes a fresh SQLite store by the
hub's migrations, queues N handoff deliveries through the store's own functions
(`create_handoffs`, `queue_deliveries`: handoffs, audit rows and outbox rows as the checks
write them) and drains the outbox as `dispatch-handoffs` does: outbox batches of
`tasks.handoffs.BATCH_SIZE` rows, `_PARALLEL_BATCHES` of them at once, each through
`send_batch` with its own `AgencyClient` (the production transport: retries, the
concurrency limit) and `POST_WORKERS` requests in flight, every receipt validated and
recorded with its audit row. What is timed is that drain; Prefect's per-task overhead (one
task per outbox batch) is not included. The sandbox's own CPU during each drain is
reported too: it is one process, so at large request sizes it is much of the time.
Afterwards the inbox must hold exactly one receipt per (handoff, office) and the store must
have recorded every one, or the bench fails.

    .venv/bin/python bench/dispatch_throughput.py --handoffs 20000
    .venv/bin/python bench/dispatch_throughput.py --handoffs 20000 --latency-ms 20

The last line printed is one JSON object with the figures.
"""

from __future__ import annotations

import argparse
import json
import socket
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import httpx  # noqa: E402
import psutil  # noqa: E402
from sqlalchemy import func, select  # noqa: E402

from flows.dispatch_handoffs import _PARALLEL_BATCHES  # noqa: E402
from integrations.agencies.client import AgencyClient  # noqa: E402
from integrations.settings import Settings  # noqa: E402
from integrations.store.engine import make_engine, upgrade  # noqa: E402
from integrations.store.handoffs import create_handoffs  # noqa: E402
from integrations.store.outbox import queue_deliveries  # noqa: E402
from integrations.store.tables import DELIVERY  # noqa: E402
from models.checks import Finding  # noqa: E402
from models.handoffs import HandoffKind, Office  # noqa: E402
from models.wilayah import get_region_registry  # noqa: E402
from sandbox.config import DEFAULT_ADMIN_TOKEN, default_token  # noqa: E402
from tasks.handoffs import BATCH_SIZE, POST_WORKERS, outbox_batches, send_batch  # noqa: E402

NOW = datetime(2026, 11, 3, 1, 0, tzinfo=UTC)


def free_port() -> int:
    """A free TCP port on the loopback interface."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def start_sandbox(port: int, latency_ms: int) -> subprocess.Popen[bytes]:
    """The sandbox in its own process, serving on port once this returns."""
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "sandbox.server",
            "--host",
            "127.0.0.1",
            "--port",
            str(port),
            "--households",
            "200",
            "--latency-ms",
            str(latency_ms),
        ],
        cwd=ROOT,
        stdout=subprocess.DEVNULL,
    )
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"the sandbox exited with {proc.returncode}")
        try:
            httpx.get(f"http://127.0.0.1:{port}/_admin/clock", headers=ADMIN, timeout=1)
            return proc
        except httpx.HTTPError:
            time.sleep(0.1)
    proc.kill()
    raise RuntimeError("the sandbox did not start")


ADMIN = {"Authorization": f"Bearer {DEFAULT_ADMIN_TOKEN}"}


def findings(n: int, period: str) -> list[Finding]:
    """n findings, each to one kecamatan office of the province (round robin)."""
    offices = [Office.parse(f"kecamatan:{k.code}") for k in get_region_registry().kecamatan()]
    return [
        Finding(
            HandoffKind.BLT_PKH_OVERLAP,
            f"{i:08x}" + "b" * 24,
            period,
            (offices[i % len(offices)],),
            {"programmes": "PKH,BLT-DD"},
        )
        for i in range(n)
    ]


def seed_store(path: Path, n: int, period: str) -> Any:
    """A fresh store with n queued deliveries; the engine."""
    engine = make_engine(f"sqlite:///{path}")
    upgrade(engine)
    with engine.begin() as conn:
        create_handoffs(conn, findings(n, period), sender="bench", now=NOW)
        queued = queue_deliveries(conn, NOW)
    if queued != n:
        raise RuntimeError(f"{queued} deliveries queued, expected {n}")
    return engine


def drain(engine: Any, base_url: str, settings: Settings, request_size: int) -> dict[str, int]:
    """Deliver every queued row as dispatch-handoffs does (batches in parallel); the counts."""
    url = f"{base_url}/kecamatan"
    token = default_token("kecamatan")

    def one(keys: list[str]) -> dict[str, int]:
        with AgencyClient("kecamatan", url, token, settings=settings) as client:
            return send_batch(
                engine, client, "deliveries", keys, as_of=NOW, request_size=request_size
            )

    totals: dict[str, int] = {}
    with ThreadPoolExecutor(max_workers=_PARALLEL_BATCHES) as pool:
        for counts in pool.map(one, outbox_batches(engine, "deliveries", BATCH_SIZE)):
            for k, v in counts.items():
                totals[k] = totals.get(k, 0) + v
    return totals


def run_once(
    admin: httpx.Client,
    base_url: str,
    n: int,
    request_size: int,
    workdir: Path,
    sandbox: psutil.Process,
) -> dict[str, Any]:
    """Seed, drain and check one request size; its figures."""
    admin.delete("/_admin/inbox").raise_for_status()
    admin.delete("/_admin/stats").raise_for_status()
    engine = seed_store(workdir / f"store-{request_size}.db", n, f"B{request_size}")
    settings = Settings(inbox_batch_size=request_size)
    cpu = sandbox.cpu_times()
    started = time.perf_counter()
    counts = drain(engine, base_url, settings, request_size)
    seconds = time.perf_counter() - started
    after = sandbox.cpu_times()
    sandbox_cpu = (after.user + after.system) - (cpu.user + cpu.system)
    inbox = admin.get("/_admin/inbox").json()
    requests = admin.get("/_admin/stats").json()["requests"]
    with engine.connect() as conn:
        sent = conn.execute(
            select(func.count()).select_from(DELIVERY).where(DELIVERY.c.status == "sent")
        ).scalar_one()
    engine.dispose()
    ok = (
        inbox["receipts"] == inbox["pairs"] == sent == n
        and inbox["pairs_seen_more_than_once"] == 0
        and counts.get("sent") == counts.get("delivered") == n
    )
    if not ok:
        raise RuntimeError(f"not exactly once: inbox {inbox['receipts']}, store {sent}, {counts}")
    posts = {
        route: sum(outcomes.values())
        for route, outcomes in requests.items()
        if route.startswith("POST /kecamatan/")
    }
    return {
        "request_size": request_size,
        "deliveries": n,
        "seconds": round(seconds, 2),
        "deliveries_per_s": round(n / seconds, 1),
        # The simulated inbox's own CPU (one process): a real inbox's cost is its own.
        "sandbox_cpu_s": round(sandbox_cpu, 2),
        "requests": sum(posts.values()),
        "requests_by_route": posts,
        "receipts": inbox["receipts"],
    }


def main() -> None:
    """Run both request sizes against one sandbox and print the figures."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--handoffs", type=int, default=20_000)
    parser.add_argument("--batch-size", type=int, default=Settings().inbox_batch_size)
    parser.add_argument("--latency-ms", type=int, default=0, help="inbox latency per request")
    args = parser.parse_args()
    port = free_port()
    base_url = f"http://127.0.0.1:{port}"
    sandbox = start_sandbox(port, args.latency_ms)
    try:
        with (
            httpx.Client(base_url=base_url, headers=ADMIN, timeout=120) as admin,
            tempfile.TemporaryDirectory(prefix="cettar-dispatch-bench-") as tmp,
        ):
            runs = [
                run_once(
                    admin, base_url, args.handoffs, size, Path(tmp), psutil.Process(sandbox.pid)
                )
                for size in (1, args.batch_size)
            ]
    finally:
        sandbox.terminate()
        sandbox.wait(10)
    single, batched = runs
    ratio = batched["deliveries_per_s"] / single["deliveries_per_s"]
    print(
        f"{args.handoffs:,} deliveries, outbox batches of {BATCH_SIZE} rows, "
        f"{_PARALLEL_BATCHES} at once, {POST_WORKERS} requests in flight each, "
        f"inbox latency {args.latency_ms} ms"
    )
    for r in runs:
        print(
            f"  request size {r['request_size']:>4}: {r['seconds']:8.2f} s  "
            f"{r['deliveries_per_s']:9.1f} deliveries/s  {r['requests']:,} requests  "
            f"(sandbox CPU {r['sandbox_cpu_s']:.1f} s)"
        )
    print(f"  ratio: {ratio:.1f}x")
    for target in (1_000_000,):
        print(
            f"  {target:,} deliveries at that rate: "
            + ", ".join(
                f"size {r['request_size']}: {target / r['deliveries_per_s'] / 60:.1f} min"
                for r in runs
            )
        )
    print(
        json.dumps(
            {
                "bench": "dispatch_throughput",
                "handoffs": args.handoffs,
                "latency_ms": args.latency_ms,
                "outbox_batch_rows": BATCH_SIZE,
                "parallel_batches": _PARALLEL_BATCHES,
                "post_workers": POST_WORKERS,
                "runs": runs,
                "ratio": round(ratio, 2),
            }
        )
    )


if __name__ == "__main__":
    main()
