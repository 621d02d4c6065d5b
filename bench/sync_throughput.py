"""Registry sync throughput on pre-rendered pages: the hub vs two raw pipelines, one invocation.

Starts the sandbox registry in its own process with its page cache (every page rendered
once, before the clock starts, then served as the stored bytes: the sandbox's own CPU is
measured and reported) and a Prefect server, then runs three clients on the same pages,
each in a fresh child process and a fresh store:
  hub   the `sync-registry` flow (whole province, the chosen collections), as in production;
  raw   same validation, no Prefect: httpx, orjson, the hub's own `prepare_page` (contract,
        NIK/No. KK and region rules, tokens, rows), DB-API `executemany` into a store made
        by the hub's migrations (same tables and indexes), one thread;
  fast  the fastest correct single-thread client: orjson, hand-written typed checks of the
        same rules, the same tokens, rows and `executemany` writes.
The hub and raw must store the same rows (table checksums without `synced_at`); the bench
fails otherwise. Wall and CPU seconds per client, the sandbox's CPU during each, and the
peak RSS of each client's whole process tree (sampled with psutil, worker processes
included) are printed; the last line is one JSON object.

    .venv/bin/python bench/sync_throughput.py --households 200000
    .venv/bin/python bench/sync_throughput.py --database-url postgresql+psycopg://postgres@127.0.0.1:5432/test
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import shutil
import socket
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

import psutil

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

CLIENTS = ("hub", "raw", "fast")
TOKEN = "sandbox-registry-token"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def wait_http(url: str, proc: subprocess.Popen[Any], timeout: float) -> None:
    import httpx

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"{proc.args!r} exited with {proc.returncode}")
        try:
            if httpx.get(url, timeout=2).status_code < 500:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.3)
    raise RuntimeError(f"{url} did not come up in {timeout:.0f} s")


def cpu_of(proc: psutil.Process) -> float:
    """User plus system CPU seconds of one process so far."""
    t = proc.cpu_times()
    return float(t.user + t.system)


class TreeSampler(threading.Thread):
    """Samples the RSS of a process and all its descendants; keeps the peak of the sum."""

    def __init__(self, pid: int, every_s: float = 0.05) -> None:
        super().__init__(daemon=True)
        self.root = psutil.Process(pid)
        self.every_s = every_s
        self.peak = 0
        self.most_processes = 0
        # (epoch seconds, bytes) each time the sum moves by 8 MB or more: the peak of a window
        # of the run (a step of the daily run) within that much, in a few thousand entries.
        self.timeline: list[tuple[float, int]] = []
        self._done = threading.Event()

    def run(self) -> None:
        while not self._done.is_set():
            try:
                procs = [self.root, *self.root.children(recursive=True)]
            except psutil.NoSuchProcess:
                return
            total = 0
            for p in procs:
                try:
                    total += p.memory_info().rss
                except psutil.NoSuchProcess:
                    continue
            self.peak = max(self.peak, total)
            self.most_processes = max(self.most_processes, len(procs))
            if not self.timeline or abs(total - self.timeline[-1][1]) >= 8 * 2**20:
                self.timeline.append((time.time(), total))
            self._done.wait(self.every_s)

    def stop(self) -> None:
        self._done.set()
        self.join(timeout=5)

    def peak_between(self, start: float, end: float) -> int:
        """The largest sample from `start` to `end` (epoch seconds), or the last one before."""
        before = [rss for t, rss in self.timeline if t <= start]
        inside = [rss for t, rss in self.timeline if start < t <= end]
        return max([*before[-1:], *inside], default=0)


class UserCpuSampler(threading.Thread):
    """CPU seconds used by one OS user's processes (a database server's) while it runs.

    A server's backends come and go with their connections: each process is sampled every
    `every_s` and counted from its first sample (or from zero when it started after the
    sampler), so a backend that exits between samples loses at most its last `every_s`.
    """

    def __init__(self, user: str, every_s: float = 0.1) -> None:
        super().__init__(daemon=True)
        self.user = user
        self.every_s = every_s
        self._first: dict[int, float] = {}
        self._last: dict[int, float] = {}
        self._done = threading.Event()
        self._since = time.time()
        self._scan()

    def _scan(self) -> None:
        for p in psutil.process_iter(["username", "create_time"]):
            if p.info["username"] != self.user:
                continue
            try:
                cpu = cpu_of(p)
            except psutil.NoSuchProcess:
                continue
            if p.pid not in self._first:
                born_after = (p.info["create_time"] or 0) >= self._since
                self._first[p.pid] = 0.0 if born_after else cpu
            self._last[p.pid] = cpu

    def run(self) -> None:
        while not self._done.wait(self.every_s):
            self._scan()

    def stop(self) -> float:
        """Stop sampling; the CPU seconds used since the sampler was made."""
        self._done.set()
        self.join(timeout=5)
        self._scan()
        return sum(self._last[pid] - first for pid, first in self._first.items())


def start_services(
    households: int,
    seed: int,
    page_cache: str,
    page_limit: int,
    work: Path,
    env: dict[str, str],
    procs: list[subprocess.Popen[Any]],
) -> tuple[subprocess.Popen[Any], subprocess.Popen[Any], str, str, float]:
    """The sandbox (its pages pre-rendered into the cache first) and a Prefect server.

    Both are added to `procs` as soon as they start (the caller stops them), their output
    goes to log files in `work`. Returns both processes, the sandbox's root URL, the Prefect
    API URL and the seconds until the sandbox's pages were ready.
    """
    from deployments.prefect_server import server_command

    sandbox_port, prefect_port = free_port(), free_port()
    started = time.perf_counter()
    command = [
        sys.executable, "-m", "deployments.cli", "sandbox", "--port", str(sandbox_port),
        "--households", str(households), "--seed", str(seed),
        "--page-cache", page_cache, "--prerender", str(page_limit),
    ]  # fmt: skip
    with (work / "sandbox.log").open("w") as log:
        sandbox = subprocess.Popen(command, env=env, stdout=log, stderr=subprocess.STDOUT, cwd=ROOT)
    procs.append(sandbox)
    prefect_api = f"http://127.0.0.1:{prefect_port}/api"
    prefect_env = {**env, "PREFECT_HOME": str(work / "prefect"), "PREFECT_UI_API_URL": prefect_api}
    with (work / "prefect.log").open("w") as log:
        prefect = subprocess.Popen(
            server_command(prefect_port), env=prefect_env, stdout=log, stderr=subprocess.STDOUT
        )
    procs.append(prefect)
    sandbox_url = f"http://127.0.0.1:{sandbox_port}"
    wait_http(f"{sandbox_url}/openapi.json", sandbox, timeout=6 * 3600)
    seconds = time.perf_counter() - started
    wait_http(f"{prefect_api}/health", prefect, timeout=120)
    return sandbox, prefect, sandbox_url, prefect_api, seconds


def run_client(
    mode: str, env: dict[str, str], args: argparse.Namespace, watched: dict[str, psutil.Process]
) -> dict[str, Any]:
    """Run one client in a child process; its own figures plus what was seen from outside."""
    before = {name: cpu_of(p) for name, p in watched.items()}
    children = resource.getrusage(resource.RUSAGE_CHILDREN)
    cmd = [sys.executable, __file__, "--child", mode, *child_args(args)]
    if args.py_spy and mode == "hub":
        # Profiled runs measure where the time goes, not how long it takes: the sampler
        # costs the profiled processes a little of their time.
        spy = [args.py_spy_bin, "record", "--subprocesses", "--rate", "200", "--format", "raw"]
        cmd = [*spy, "--output", args.py_spy, "--", *cmd]
    proc = subprocess.Popen(
        cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=ROOT
    )
    sampler = TreeSampler(proc.pid)
    sampler.start()
    # The database server's work for the client (PostgreSQL: its own processes, same cores).
    server = UserCpuSampler("postgres") if args.database_url else None
    if server is not None:
        server.start()
    out, err = proc.communicate()
    sampler.stop()
    server_cpu = server.stop() if server is not None else None
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    if proc.returncode != 0:
        sys.stderr.write(err[-6000:])
        raise RuntimeError(f"{mode} run failed with {proc.returncode}")
    last = [ln for ln in out.splitlines() if ln.startswith("{")][-1]
    result: dict[str, Any] = json.loads(last)
    for name, p in watched.items():
        result[f"{name}_cpu_s"] = cpu_of(p) - before[name]
    # The whole child process tree, start-up and imports included (waited-for processes).
    result["process_cpu_s"] = (after.ru_utime + after.ru_stime) - (
        children.ru_utime + children.ru_stime
    )
    if server_cpu is not None:
        result["db_server_cpu_s"] = server_cpu
    result["peak_rss_mb"] = sampler.peak / 2**20
    result["processes"] = sampler.most_processes
    return result


def child_args(args: argparse.Namespace) -> list[str]:
    return ["--page-limit", str(args.page_limit), "--collections", args.collections]


# ------------------------------------------------------------------------------ children


def child_cpu() -> float:
    """CPU seconds of this process, its finished children and its live descendants."""
    own = resource.getrusage(resource.RUSAGE_SELF)
    done = resource.getrusage(resource.RUSAGE_CHILDREN)
    live = 0.0
    for p in psutil.Process().children(recursive=True):
        try:
            live += cpu_of(p)
        except psutil.NoSuchProcess:
            continue
    return own.ru_utime + own.ru_stime + done.ru_utime + done.ru_stime + live


def run_hub(collections: list[str]) -> dict[str, Any]:
    from flows.sync_registry import Collection, sync_registry
    from integrations.store.engine import get_engine, upgrade

    # The store exists before the clock starts, as in production (every head of the
    # migrations: while two branches are being merged there may be more than one).
    upgrade(get_engine(), "heads")
    started, cpu = time.perf_counter(), child_cpu()
    summary = sync_registry(collections=[Collection(c) for c in collections])
    seconds, cpu = time.perf_counter() - started, child_cpu() - cpu
    totals = summary["totals"]
    out: dict[str, Any] = {"records": 0, "stored": 0, "quarantined": 0, "members": 0}
    for c in collections:
        t = totals[f"registry.{c}"]
        out["records"] += t["fetched"]
        out["stored"] += t["upserted"]
        out["quarantined"] += t["quarantined"]
        out["members"] += t.get("members_upserted", 0)
    return {**out, "seconds": seconds, "cpu_s": cpu}


def child_main(args: argparse.Namespace) -> None:
    collections = args.collections.split(",")
    if args.child == "hub":
        result = run_hub(collections)
    else:
        from bench.raw_pipelines import run
        from integrations.settings import get_settings

        result = run(
            args.child,
            os.environ["CETTAR_REGISTRY_URL"],
            TOKEN,
            os.environ["BENCH_DATABASE_URL"],
            args.page_limit,
            collections,
            get_settings().pii_key.get_secret_value().encode(),
        )
    print(json.dumps(result))


# ------------------------------------------------------------------------------- parent


def database_urls(base: str | None, work: Path) -> tuple[dict[str, str], list[str]]:
    """A fresh store per client: SQLite files in `work`, or new databases on the server."""
    if base is None:
        return {c: f"sqlite:///{work / f'{c}.db'}" for c in CLIENTS}, []
    from sqlalchemy import create_engine, make_url, text

    url = make_url(base)
    names = {c: f"cettar_bench_{c}_{os.getpid()}" for c in CLIENTS}
    admin = create_engine(url, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        for name in names.values():
            conn.execute(text(f'CREATE DATABASE "{name}"'))
    admin.dispose()
    urls = {
        c: url.set(database=name).render_as_string(hide_password=False) for c, name in names.items()
    }
    return urls, list(names.values())


def drop_databases(base: str, names: list[str]) -> None:
    from sqlalchemy import create_engine, text

    admin = create_engine(base, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        for name in names:
            conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
    admin.dispose()


def line(name: str, r: dict[str, Any]) -> str:
    return (
        f"{name:>4}: {r['records']:,} records ({r['stored']:,} stored, {r['quarantined']:,}"
        f" quarantined, {r['members']:,} members) in {r['seconds']:.2f} s wall,"
        f" {r['cpu_s']:.2f} s CPU ({r['records'] / r['seconds']:,.0f}/s);"
        f" sandbox CPU {r['sandbox_cpu_s']:.2f} s; peak RSS {r['peak_rss_mb']:.0f} MB"
        f" over {r['processes']} process(es)"
        + (f"; database server CPU {r['db_server_cpu_s']:.2f} s" if "db_server_cpu_s" in r else "")
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--households", type=int, default=200_000)
    parser.add_argument("--page-limit", type=int, default=1000)
    parser.add_argument("--seed", type=int, default=35)
    parser.add_argument("--collections", default="households,recipients")
    parser.add_argument("--database-url", help="a PostgreSQL server URL (default: SQLite)")
    parser.add_argument(
        "--page-cache",
        default=str(Path(tempfile.gettempdir()) / "cettar-bench-pages"),
        help="where the sandbox keeps its rendered pages (kept between runs)",
    )
    parser.add_argument("--clients", default=",".join(CLIENTS))
    parser.add_argument("--keep", action="store_true", help="keep the stores and Prefect home")
    parser.add_argument("--child", choices=CLIENTS)
    parser.add_argument(
        "--hub-env",
        action="append",
        default=[],
        metavar="NAME=VALUE",
        help="a setting for the hub's run only, e.g. CETTAR_PREPARE_PROCESSES=1 (repeatable)",
    )
    parser.add_argument("--py-spy", help="profile the hub with py-spy into this file")
    parser.add_argument("--py-spy-bin", default=str(Path(sys.executable).parent / "py-spy"))
    args = parser.parse_args()
    if args.child:
        child_main(args)
        return

    clients = [c for c in CLIENTS if c in args.clients.split(",")]
    work = Path(tempfile.mkdtemp(prefix="cettar-bench-"))
    base_env = {**os.environ, "PREFECT_SERVER_ANALYTICS_ENABLED": "false", "PYTHONPATH": str(ROOT)}
    procs: list[subprocess.Popen[Any]] = []
    created: list[str] = []
    results: dict[str, dict[str, Any]] = {}
    try:
        urls, created = database_urls(args.database_url, work)
        sandbox, prefect, sandbox_url, prefect_api, seconds = start_services(
            args.households, args.seed, args.page_cache, args.page_limit, work, base_env, procs
        )
        print(f"sandbox pages ready in {seconds:.1f} s ({args.page_cache})")
        env = {
            **base_env,
            "CETTAR_REGISTRY_URL": f"{sandbox_url}/registry",
            "CETTAR_DATA_DIR": str(work),
            "CETTAR_PAGE_LIMIT": str(args.page_limit),
            "PREFECT_API_URL": prefect_api,
        }
        watched = {
            "sandbox": psutil.Process(sandbox.pid),
            "prefect_server": psutil.Process(prefect.pid),
        }
        for mode in clients:
            child_env = {**env, "BENCH_DATABASE_URL": urls[mode]}
            if mode == "hub":
                child_env["CETTAR_DATABASE_URL"] = urls[mode]
                child_env.update(item.split("=", 1) for item in args.hub_env)
            results[mode] = run_client(mode, child_env, args, watched)
            print(line(mode, results[mode]), flush=True)

        from bench.raw_pipelines import table_checksums

        sums = {mode: table_checksums(urls[mode]) for mode in clients}
    finally:
        for p in procs:
            p.terminate()
        for p in procs:
            try:
                p.wait(timeout=30)
            except subprocess.TimeoutExpired:
                p.kill()
        if created and args.database_url:
            drop_databases(args.database_url, created)
        if not args.keep:
            shutil.rmtree(work, ignore_errors=True)

    for mode in clients:
        tables = ", ".join(f"{t} {n:,} rows {h[:12]}" for t, (n, h) in sums[mode].items())
        print(f"{mode:>4} tables: {tables}")
    figures: dict[str, Any] = {
        "households": args.households,
        "collections": args.collections,
        "page_limit": args.page_limit,
        "store": "postgresql" if args.database_url else "sqlite",
        "load_1m": round(os.getloadavg()[0], 2),
        "hub_env": args.hub_env,
    }
    if "hub" in results and "raw" in results:
        same = sums["hub"] == sums["raw"]
        figures["hub_raw_same_rows"] = same
        if not same:
            print(json.dumps(figures))
            raise SystemExit("the hub and the same-validation raw pipeline stored different rows")
    if "hub" in results and "fast" in results:
        figures["fast_raw_same_rows"] = {t: sums["hub"][t] == sums["fast"][t] for t in sums["hub"]}
    hub = results.get("hub")
    raw = results.get("raw")
    fast = results.get("fast")
    if hub is not None:
        figures.update(
            records=hub["records"],
            members=hub["members"],
            quarantined=hub["quarantined"],
            seconds=round(hub["seconds"], 2),
            cpu_s=round(hub["cpu_s"], 2),
            records_per_s=round(hub["records"] / hub["seconds"], 1),
            sandbox_cpu_s=round(hub["sandbox_cpu_s"], 2),
            prefect_server_cpu_s=round(hub["prefect_server_cpu_s"], 2),
            process_cpu_s=round(hub["process_cpu_s"], 2),
            peak_rss_mb=round(hub["peak_rss_mb"], 1),
            hub_processes=hub["processes"],
        )
        if "db_server_cpu_s" in hub:
            figures["db_server_cpu_s"] = round(hub["db_server_cpu_s"], 2)
    for name, r in (("raw", raw), ("fast_raw", fast)):
        if r is None:
            continue
        figures.update(
            {
                f"{name}_seconds": round(r["seconds"], 2),
                f"{name}_cpu_s": round(r["cpu_s"], 2),
                f"{name}_records_per_s": round(r["records"] / r["seconds"], 1),
                f"{name}_sandbox_cpu_s": round(r["sandbox_cpu_s"], 2),
                f"{name}_peak_rss_mb": round(r["peak_rss_mb"], 1),
                f"{name}_stored": r["stored"],
                f"{name}_quarantined": r["quarantined"],
                f"{name}_http_wait_s": round(r["http_wait_s"], 2),
                f"{name}_write_s": round(r["write_s"], 2),
            }
        )
        if "db_server_cpu_s" in r:
            figures[f"{name}_db_server_cpu_s"] = round(r["db_server_cpu_s"], 2)
        if hub is not None:
            # Same records on both sides: the ratio of rates is the inverse ratio of times.
            figures[f"ratio_vs_{name}"] = round(r["seconds"] / hub["seconds"], 3)
            figures[f"cpu_ratio_vs_{name}"] = round(hub["cpu_s"] / r["cpu_s"], 3)
    if hub is not None:
        figures["sandbox_cpu_share_of_hub_cpu"] = round(hub["sandbox_cpu_s"] / hub["cpu_s"], 4)
    print(json.dumps(figures))


if __name__ == "__main__":
    main()
