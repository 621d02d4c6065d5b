"""The whole province: a fresh registry sync, the incremental sync after one epoch, one daily run.

Runs, once each, in one invocation against one store, as an operator would with the `cettar`
command on a started Prefect server:
  full         `cettar sync registry` (households with members, and recipients) on a fresh
               store, from the sandbox's pre-rendered pages (rendered before the clock starts;
               the sandbox's own CPU is reported);
  incremental  the sandbox moves one epoch on (5 % of households updated, 1 % new), then
               `cettar sync registry` again: it reads only the changed records;
  daily        `cettar run daily`: every source synced (PKH reports, BLT-DD lists, e-RDKK,
               KSK requests, decisions, puskesmas figures), health zones, the overlap checks,
               dispatch of every handoff found, the scorecard. Kab. Malang's and Kota
               Surabaya's offices work on the office desk (`--desk-offices`), and one
               BLT-DD spreadsheet per desa of a few kecamatan waits in the watched folder
               (`--intake-kecamatan`), made from the desa agency's own lists.
Every read-only page comes from the sandbox's page cache, so the agencies cost this machine
almost nothing, as real agencies on their own servers would: the registry's first pages are
pre-rendered; the epoch's changed pages by a first, untimed pass of the same sync from the
store's cursors into an empty store (not over a copy of the store: 11 GB written and read
just before the timed sync, competing with it for the OS's file cache); the other agencies'
pages (PKH reports, BLT-DD, e-RDKK, KSK, puskesmas) by an untimed pass of `cettar sync
sources` and `cettar sync reports` into an empty store. What the sandbox still does live in
the daily step is the office inbox: receiving every handoff and publishing the offices'
decisions (its `sandbox_cpu_s` says how much of the machine that took).

Per step: wall and CPU seconds (the command's whole process tree, workers included), records
fetched and per second, peak RSS of the process tree (psutil, sampled every 50 ms), the store's
size on disk after it; for the daily run, each step's own time from the Prefect API. The last
line is one JSON object.

    .venv/bin/python bench/province.py --households 6500000
    .venv/bin/python bench/province.py --households 200000 --steps full,incremental
    .venv/bin/python bench/province.py --database-url postgresql+psycopg://postgres@127.0.0.1:5432/test
    .venv/bin/python bench/province.py --households 1000000 --steps full,incremental \
        --py-spy incremental=/tmp/incremental.pyspy
"""

from __future__ import annotations

import argparse
import json
import os
import re
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import psutil

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench.sync_throughput import TreeSampler, cpu_of, start_services  # noqa: E402

STEPS = ("full", "incremental", "daily")
ADMIN_TOKEN = "sandbox-admin-token"  # the sandbox's public default


def cettar(
    args: list[str],
    env: dict[str, str],
    watched: dict[str, psutil.Process],
    py_spy: list[str] | None = None,
) -> dict[str, Any]:
    """Run one `cettar … --json` command; its JSON summary plus wall, CPU and peak RSS.

    `py_spy` is a py-spy command line to run it under (`record … --`), for a profile.
    """
    before = {name: cpu_of(p) for name, p in watched.items()}
    children = resource.getrusage(resource.RUSAGE_CHILDREN)
    started = time.perf_counter()
    proc = subprocess.Popen(
        [*(py_spy or []), sys.executable, "-m", "deployments.cli", *args, "--json"],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        cwd=ROOT,
    )
    sampler = TreeSampler(proc.pid)
    sampler.start()
    out, err = proc.communicate()
    sampler.stop()
    seconds = time.perf_counter() - started
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    lines = [ln for ln in out.splitlines() if ln.startswith("{")]
    if not lines:
        sys.stderr.write(err[-6000:])
        raise RuntimeError(f"cettar {' '.join(args)} printed no summary (exit {proc.returncode})")
    result: dict[str, Any] = json.loads(lines[-1])
    result.update(
        exit_code=proc.returncode,
        seconds=seconds,
        cpu_s=(after.ru_utime + after.ru_stime) - (children.ru_utime + children.ru_stime),
        peak_rss_mb=sampler.peak / 2**20,
        processes=sampler.most_processes,
        sampler=sampler,
    )
    for name, p in watched.items():
        result[f"{name}_cpu_s"] = cpu_of(p) - before[name]
    return result


def fetched(summary: dict[str, Any]) -> int:
    """Records read from the agencies, summed over a sync summary's sources."""
    totals = summary.get("totals") or {}
    return sum(int(t.get("fetched", 0)) for t in totals.values() if isinstance(t, dict))


def store_size_mb(url: str) -> float:
    """The store's size on disk: the SQLite file and its WAL, or the PostgreSQL database."""
    from sqlalchemy import create_engine, func, make_url, select

    parsed = make_url(url)
    if parsed.get_backend_name() == "sqlite":
        path = Path(parsed.database or "")
        files = [path, path.with_name(path.name + "-wal")]
        return sum(f.stat().st_size for f in files if f.exists()) / 2**20
    engine = create_engine(url)
    with engine.connect() as conn:
        size = conn.execute(select(func.pg_database_size(parsed.database))).scalar_one()
    engine.dispose()
    return float(size) / 2**20


def empty_store(url: str, work: Path, env: dict[str, str], name: str = "sources") -> str:
    """A new, migrated, empty store beside the bench's (for an untimed warm-up pass)."""
    from sqlalchemy import create_engine, make_url, text

    parsed = make_url(url)
    if parsed.get_backend_name() == "sqlite":
        target = f"sqlite:///{work / f'warm-{name}.db'}"
        Path(target.removeprefix("sqlite:///")).unlink(missing_ok=True)
    else:
        database = f"{parsed.database}_{name}"
        admin = create_engine(parsed.set(database="postgres"), isolation_level="AUTOCOMMIT")
        with admin.connect() as conn:
            conn.execute(text(f'DROP DATABASE IF EXISTS "{database}" WITH (FORCE)'))
            conn.execute(text(f'CREATE DATABASE "{database}"'))
        admin.dispose()
        target = parsed.set(database=database).render_as_string(hide_password=False)
    upgrade_store({**env, "CETTAR_DATABASE_URL": target})
    return target


def cursor_store(url: str, work: Path, env: dict[str, str]) -> str:
    """An empty store holding the bench store's sync cursors: a sync there asks for the pages
    the same sync of the bench's store will ask for.

    Copying the whole store instead wrote 11 GB at 6.5 M households just before the timed
    sync, which then competed with the copy's pages for the OS's file cache.
    """
    from sqlalchemy import create_engine, insert, select

    from integrations.store.tables import CURSOR

    target = empty_store(url, work, env, name="cursors")
    source, copy = create_engine(url), create_engine(target)
    with source.connect() as read, copy.begin() as write:
        rows = [dict(r) for r in read.execute(select(CURSOR)).mappings()]
        if rows:
            write.execute(insert(CURSOR), rows)
    source.dispose()
    copy.dispose()
    return target


def upgrade_store(env: dict[str, str]) -> None:
    """`cettar db upgrade` on the environment's store."""
    subprocess.run(
        [sys.executable, "-m", "deployments.cli", "db", "upgrade"],
        env=env,
        check=True,
        cwd=ROOT,
        stdout=subprocess.DEVNULL,
    )


def _step_name(run_name: str) -> str:
    """A task run's name without the suffix Prefect adds to it (`health-zones-90a`)."""
    return re.sub(r"-(?:[0-9]+|[0-9a-f]{3})$", "", run_name)


def drop_spreadsheets(sandbox_url: str, kecamatan: list[str], root: Path) -> int:
    """One BLT-DD template per desa of these kecamatan, filled with the agency's list."""
    import io

    import httpx
    from openpyxl import load_workbook

    from models.intake import DATA_SHEET, template_of, template_workbook
    from sandbox.config import default_token

    source = "desa.blt-recipients"
    template = template_of(source)
    by_desa: dict[str, list[dict[str, Any]]] = {}
    headers = {"Authorization": f"Bearer {default_token('desa')}"}
    with httpx.Client(base_url=sandbox_url, headers=headers, timeout=60) as client:
        for kec in kecamatan:
            params: dict[str, Any] = {"kecamatan": kec, "limit": 1000}
            while True:
                page = client.get("/desa/v1/blt-recipients", params=params).json()
                for record in page["data"]:
                    if isinstance(record.get("desa_code"), str):
                        by_desa.setdefault(record["desa_code"], []).append(record)
                if page["next_cursor"] is None:
                    break
                params["cursor"] = page["next_cursor"]
    for desa, records in by_desa.items():
        wb = load_workbook(io.BytesIO(template_workbook(source)))
        ws = wb[DATA_SHEET]
        for r, record in enumerate(records, start=2):
            for c, col in enumerate(template.columns, start=1):
                ws.cell(row=r, column=c).value = record.get(col.field)
        (root / desa).mkdir(parents=True, exist_ok=True)
        wb.save(root / desa / "blt-dd.xlsx")
    return sum(len(r) for r in by_desa.values())


def daily_step_times(
    prefect_api: str, flow_run_url: str
) -> tuple[dict[str, float], dict[str, list[tuple[float, float]]]]:
    """Each step of a daily run: its seconds, and its (start, end) times in epoch seconds.

    Read from the run's task runs in the Prefect API.
    """
    import httpx

    run_id = flow_run_url.rstrip("/").rsplit("/", 1)[-1]
    body = {"flow_runs": {"id": {"any_": [run_id]}}, "sort": "EXPECTED_START_TIME_ASC"}
    rows = httpx.post(f"{prefect_api}/task_runs/filter", json=body, timeout=30).json()
    times: dict[str, float] = {}
    windows: dict[str, list[tuple[float, float]]] = {}
    for row in rows:
        if row.get("total_run_time") is None:
            continue
        name = _step_name(row["name"])
        times[name] = round(times.get(name, 0.0) + float(row["total_run_time"]), 2)
        if row.get("start_time") and row.get("end_time"):
            windows.setdefault(name, []).append(
                (_epoch(row["start_time"]), _epoch(row["end_time"]))
            )
    # Subflow steps are task runs of the parent whose time is the subflow's: read those too.
    flows = httpx.post(
        f"{prefect_api}/flow_runs/filter",
        json={"flow_runs": {"parent_task_run_id": {"is_null_": False}}},
        timeout=30,
    ).json()
    parents = {row["id"]: row for row in rows}
    for child in flows:
        parent = parents.get(child.get("parent_task_run_id"))
        if parent is None:
            continue
        step = _step_name(parent["name"])
        times[step] = round(float(child.get("total_run_time") or 0.0), 2)
        if child.get("start_time") and child.get("end_time"):
            windows[step] = [(_epoch(child["start_time"]), _epoch(child["end_time"]))]
    return times, windows


def _epoch(stamp: str) -> float:
    from datetime import datetime

    return datetime.fromisoformat(stamp.replace("Z", "+00:00")).timestamp()


def report(step: str, r: dict[str, Any]) -> str:
    records = r.get("records", 0)
    rate = records / r["seconds"] if r["seconds"] else 0.0
    return (
        f"{step:>11}: {r.get('state', '?')} in {r['seconds']:.1f} s wall,"
        f" {r['cpu_s']:.1f} s CPU; {records:,} records ({rate:,.0f}/s); peak RSS"
        f" {r['peak_rss_mb']:.0f} MB over {r['processes']} process(es); sandbox CPU"
        f" {r['sandbox_cpu_s']:.1f} s; store {r['store_mb']:,.0f} MB"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--households", type=int, default=6_500_000)
    parser.add_argument("--page-limit", type=int, default=1000)
    parser.add_argument("--seed", type=int, default=35)
    parser.add_argument("--steps", default=",".join(STEPS))
    parser.add_argument("--database-url", help="a PostgreSQL database URL (default: SQLite)")
    parser.add_argument(
        "--desk-offices",
        default='{"35.07": "desk", "35.78": "both"}',
        help="CETTAR_DESK_OFFICES of the run (default: Kab. Malang on the desk, Surabaya both)",
    )
    parser.add_argument(
        "--intake-kecamatan",
        default="35.07.01,35.07.02,35.09.01,35.09.02",
        help="kecamatan whose desa each drop a BLT-DD spreadsheet before the daily run",
    )
    parser.add_argument(
        "--page-cache",
        default=str(Path(tempfile.gettempdir()) / "cettar-bench-pages"),
        help="where the sandbox keeps its rendered pages (kept between runs)",
    )
    parser.add_argument("--work", help="the store's and Prefect's directory (default: a temp dir)")
    parser.add_argument("--keep", action="store_true", help="keep the store and Prefect home")
    parser.add_argument(
        "--hub-env",
        action="append",
        default=[],
        metavar="NAME=VALUE",
        help="a setting for the hub's commands, e.g. CETTAR_SYNC_WORKERS=2 (repeatable)",
    )
    parser.add_argument(
        "--py-spy",
        metavar="STEP=FILE",
        action="append",
        default=[],
        help="profile a step's command with py-spy into FILE (raw; bench/pyspy_top.py reads it)",
    )
    parser.add_argument("--py-spy-bin", default=str(Path(sys.executable).parent / "py-spy"))
    args = parser.parse_args()
    steps = [s for s in STEPS if s in args.steps.split(",")]
    profiles = dict(item.split("=", 1) for item in args.py_spy)
    if set(profiles) - set(STEPS):
        parser.error(f"--py-spy takes STEP=FILE with a step of {', '.join(STEPS)}")

    import httpx

    work = Path(args.work or tempfile.mkdtemp(prefix="cettar-province-"))
    work.mkdir(parents=True, exist_ok=True)
    base_env = {**os.environ, "PREFECT_SERVER_ANALYTICS_ENABLED": "false", "PYTHONPATH": str(ROOT)}
    url = args.database_url or f"sqlite:///{work / 'store.db'}"
    procs: list[subprocess.Popen[Any]] = []
    results: dict[str, dict[str, Any]] = {}
    figures: dict[str, Any] = {
        "households": args.households,
        "store": "postgresql" if args.database_url else "sqlite",
        "page_limit": args.page_limit,
        "hub_env": args.hub_env,
    }
    try:
        sandbox, prefect, sandbox_url, prefect_api, seconds = start_services(
            args.households, args.seed, args.page_cache, args.page_limit, work, base_env, procs
        )
        figures["prerender_s"] = round(seconds, 1)
        print(f"sandbox pages ready in {seconds:.1f} s ({args.page_cache})")
        env = {
            **base_env,
            **{
                f"CETTAR_{agency.upper()}_URL": f"{sandbox_url}/{agency}"
                for agency in ("registry", "pkh", "desa", "pertanian", "statistik", "kecamatan",
                               "puskesmas")
            },
            "CETTAR_DATA_DIR": str(work),
            "CETTAR_DATABASE_URL": url,
            "CETTAR_PAGE_LIMIT": str(args.page_limit),
            "CETTAR_DESK_OFFICES": args.desk_offices,
            "CETTAR_INTAKE_DIR": str(work / "intake"),
            "PREFECT_API_URL": prefect_api,
        }  # fmt: skip
        env.update(item.split("=", 1) for item in args.hub_env)
        watched = {
            "sandbox": psutil.Process(sandbox.pid),
            "prefect_server": psutil.Process(prefect.pid),
        }
        upgrade_store(env)
        for step in steps:
            if step == "incremental":
                answer = httpx.post(
                    f"{sandbox_url}/_admin/epoch",
                    json={"epoch": 1},
                    headers={"Authorization": f"Bearer {ADMIN_TOKEN}"},
                    timeout=600,
                )
                answer.raise_for_status()
                # Untimed: the same sync from the same cursors renders the epoch's pages into
                # the cache, so the timed sync below reads stored bytes, as the full did.
                warm_env = {**env, "CETTAR_DATABASE_URL": cursor_store(url, work, env)}
                t0 = time.perf_counter()
                cettar(["sync", "registry"], warm_env, watched)
                figures["incremental_render_s"] = round(time.perf_counter() - t0, 1)
                if args.database_url is None:
                    Path(warm_env["CETTAR_DATABASE_URL"].removeprefix("sqlite:///")).unlink()
            if step == "daily":
                # Untimed: the other agencies' pages, rendered once into the cache.
                warm_env = {**env, "CETTAR_DATABASE_URL": empty_store(url, work, env)}
                t0 = time.perf_counter()
                cettar(["sync", "sources"], warm_env, watched)
                cettar(["sync", "reports"], warm_env, watched)
                figures["sources_render_s"] = round(time.perf_counter() - t0, 1)
                kecamatan = [k for k in args.intake_kecamatan.split(",") if k]
                figures["intake_rows_dropped"] = drop_spreadsheets(
                    sandbox_url, kecamatan, work / "intake"
                )
            command = ["run", "daily"] if step == "daily" else ["sync", "registry"]
            spy = None
            if step in profiles:
                # A profiled step measures where the time goes: the sampler slows it a little.
                spy = [args.py_spy_bin, "record", "--subprocesses", "--rate", "200"]
                spy += ["--format", "raw", "--output", profiles[step], "--"]
            r = cettar(command, env, watched, spy)
            r["profiled"] = spy is not None
            summary = r.get("summary") or {}
            if step == "daily":
                r["records"] = sum(fetched(v) for v in summary.values() if isinstance(v, dict))
                r["steps"], windows = daily_step_times(prefect_api, r["flow_run_url"])
                sampler = r["sampler"]
                r["step_peak_rss_mb"] = {
                    name: round(max(sampler.peak_between(a, b) for a, b in spans) / 2**20)
                    for name, spans in windows.items()
                }
                dispatch = (summary.get("dispatch-handoffs") or {}).get("run") or {}
                r["deliveries"] = int(dispatch.get("delivery_sent", 0))
                r["deliveries_on_desk"] = int(dispatch.get("delivery_on_desk", 0))
                intake = summary.get("intake-folder") or {}
                r["intake"] = {
                    k: intake.get(k, 0) for k in ("files", "rows", "written", "rejected")
                }
                health = summary.get("health-zones") or {}
                r["health"] = {
                    "zones": health.get("last_week_zones"),
                    "handoffs_created": health.get("handoffs_created"),
                }
                r["sources"] = {
                    source: t.get("fetched", 0)
                    for v in summary.values()
                    if isinstance(v, dict)
                    for source, t in (v.get("totals") or {}).items()
                    if isinstance(t, dict) and "fetched" in t
                }
            else:
                r["records"] = fetched(summary)
            r["store_mb"] = store_size_mb(url)
            results[step] = r
            print(report(step, r), flush=True)
            if step == "daily":
                for name, seconds in r["steps"].items():
                    peak = r["step_peak_rss_mb"].get(name)
                    print(f"             {name}: {seconds:.1f} s, peak RSS {peak} MB")
    finally:
        for p in procs:
            p.terminate()
        for p in procs:
            try:
                p.wait(timeout=30)
            except subprocess.TimeoutExpired:
                p.kill()
        if not args.keep and not args.work:
            shutil.rmtree(work, ignore_errors=True)

    for step, r in results.items():
        figures[step] = {
            "state": r.get("state"),
            "seconds": round(r["seconds"], 1),
            "cpu_s": round(r["cpu_s"], 1),
            "records": r["records"],
            "records_per_s": round(r["records"] / r["seconds"], 1) if r["seconds"] else None,
            "peak_rss_mb": round(r["peak_rss_mb"], 1),
            "processes": r["processes"],
            "sandbox_cpu_s": round(r["sandbox_cpu_s"], 1),
            "prefect_server_cpu_s": round(r["prefect_server_cpu_s"], 1),
            "store_mb": round(r["store_mb"], 1),
            "profiled": r["profiled"],
            **{
                k: r[k]
                for k in (
                    "steps",
                    "step_peak_rss_mb",
                    "deliveries",
                    "deliveries_on_desk",
                    "intake",
                    "health",
                    "sources",
                )
                if k in r
            },
        }
    figures["load_1m"] = round(os.getloadavg()[0], 2)
    print(json.dumps(figures))
    if any(r.get("exit_code") for r in results.values()):
        raise SystemExit("a step did not complete: see its state above")


if __name__ == "__main__":
    main()
