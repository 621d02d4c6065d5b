"""Registry sync throughput: the hub's flow vs the raw pipeline on the same pages.

Starts the sandbox registry (its own process, real HTTP) and a Prefect server, then runs, each
in a fresh child process and a fresh SQLite store:
  hub  the `sync-registry` flow (households collection, whole province);
  raw  the same pages with no Prefect and no hub code: httpx GET, pydantic `validate_json`,
       sqlite3 `executemany` upserts of households and members.
Prints one line per run and, last, one JSON object with the figures.

    .venv/bin/python bench/sync_throughput.py --households 200000
"""

from __future__ import annotations

import argparse
import json
import os
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def wait_http(url: str, timeout: float = 120.0) -> None:
    import httpx

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            if httpx.get(url, timeout=2).status_code < 500:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.3)
    raise RuntimeError(f"{url} did not come up")


def child(mode: str, env: dict[str, str]) -> dict[str, Any]:
    out = subprocess.run(
        [sys.executable, __file__, "--child", mode],
        env=env,
        capture_output=True,
        text=True,
        check=False,
    )
    if out.returncode != 0:
        sys.stderr.write(out.stderr[-4000:])
        raise RuntimeError(f"{mode} run failed with {out.returncode}")
    return json.loads(out.stdout.strip().splitlines()[-1])


def cpu_seconds() -> float:
    """User plus system CPU seconds this process has used so far."""
    import resource

    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def peak_rss_mb(workers: int = 0) -> float:
    """Peak RSS of this process plus `workers` times its largest finished child (an upper bound)."""
    import resource

    own = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    children = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    return (own + workers * children) / 1024


def run_hub() -> dict[str, Any]:
    from flows.sync_registry import Collection, sync_registry
    from integrations.settings import get_settings

    started, cpu = time.perf_counter(), cpu_seconds()
    summary = sync_registry(collections=[Collection.households])
    seconds, cpu = time.perf_counter() - started, cpu_seconds() - cpu
    hh = summary["totals"]["registry.households"]
    return {
        "records": hh["fetched"],
        "stored": hh["upserted"],
        "members": hh["members_upserted"],
        "quarantined": hh["quarantined"],
        "seconds": seconds,
        "cpu_s": cpu,
        "peak_rss_mb": peak_rss_mb(workers=get_settings().sync_workers),
    }


RAW_SCHEMA = [
    "CREATE TABLE household (id TEXT PRIMARY KEY, no_kk TEXT, desa_code TEXT, address TEXT,"
    " desil INTEGER, updated_at TEXT)",
    "CREATE TABLE member (id TEXT PRIMARY KEY, household_id TEXT, nik TEXT, name TEXT, sex TEXT,"
    " birth_date TEXT, relationship TEXT, status TEXT, updated_at TEXT)",
]
RAW_HH = (
    "INSERT INTO household VALUES (?,?,?,?,?,?) ON CONFLICT(id) DO UPDATE SET no_kk=excluded.no_kk,"
    " desa_code=excluded.desa_code, address=excluded.address, desil=excluded.desil,"
    " updated_at=excluded.updated_at WHERE excluded.updated_at > household.updated_at"
)
RAW_MEMBER = (
    "INSERT INTO member VALUES (?,?,?,?,?,?,?,?,?) ON CONFLICT(id) DO UPDATE SET"
    " household_id=excluded.household_id, nik=excluded.nik, name=excluded.name, sex=excluded.sex,"
    " birth_date=excluded.birth_date, relationship=excluded.relationship, status=excluded.status,"
    " updated_at=excluded.updated_at WHERE excluded.updated_at > member.updated_at"
)


def run_raw(registry_url: str, token: str, db: str, limit: int) -> dict[str, Any]:
    import sqlite3

    import httpx
    from pydantic import TypeAdapter, ValidationError

    from models.contracts.common import RawPage
    from models.contracts.registry import Household
    from models.wilayah import get_region_registry

    page_adapter = TypeAdapter(RawPage)
    conn = sqlite3.connect(db)
    conn.execute("PRAGMA journal_mode=WAL")
    conn.execute("PRAGMA synchronous=NORMAL")
    for stmt in RAW_SCHEMA:
        conn.execute(stmt)
    records = stored = members = 0
    started, cpu = time.perf_counter(), cpu_seconds()
    with httpx.Client(
        base_url=registry_url, headers={"Authorization": f"Bearer {token}"}, timeout=60
    ) as client:
        for kec in get_region_registry().kecamatan():
            cursor = None
            while True:
                params: dict[str, Any] = {"kecamatan": kec.code, "limit": limit}
                if cursor:
                    params["cursor"] = cursor
                resp = client.get("/v1/households", params=params)
                resp.raise_for_status()
                page = page_adapter.validate_json(resp.content)
                hh_rows, m_rows = [], []
                for raw in page.data:
                    records += 1
                    try:
                        hh = Household.model_validate(raw)
                    except ValidationError:
                        continue
                    ts = hh.updated_at.isoformat()
                    hh_rows.append((hh.id, hh.no_kk, hh.desa_code, hh.address, hh.desil, ts))
                    m_rows.extend(
                        (
                            m.id,
                            hh.id,
                            m.nik,
                            m.name,
                            m.sex,
                            m.birth_date.isoformat(),
                            m.relationship,
                            m.status,
                            ts,
                        )
                        for m in hh.members
                    )
                with conn:
                    stored += conn.executemany(RAW_HH, hh_rows).rowcount
                    members += conn.executemany(RAW_MEMBER, m_rows).rowcount
                cursor = page.next_cursor
                if not cursor:
                    break
    seconds, cpu = time.perf_counter() - started, cpu_seconds() - cpu
    return {
        "records": records,
        "stored": stored,
        "members": members,
        "seconds": seconds,
        "cpu_s": cpu,
        "peak_rss_mb": peak_rss_mb(),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--households", type=int, default=200_000)
    parser.add_argument("--page-limit", type=int, default=1000)
    parser.add_argument("--seed", type=int, default=35)
    parser.add_argument("--child", choices=["hub", "raw"])
    args = parser.parse_args()

    if args.child == "hub":
        print(json.dumps(run_hub()))
        return
    if args.child == "raw":
        print(
            json.dumps(
                run_raw(
                    os.environ["CETTAR_REGISTRY_URL"],
                    "sandbox-registry-token",
                    os.environ["BENCH_RAW_DB"],
                    args.page_limit,
                )
            )
        )
        return

    from deployments.prefect_server import server_command

    work = Path(tempfile.mkdtemp(prefix="cettar-bench-"))
    sandbox_port, prefect_port = free_port(), free_port()
    base_env = {**os.environ, "PREFECT_SERVER_ANALYTICS_ENABLED": "false", "PYTHONPATH": str(ROOT)}
    procs = []
    try:
        procs.append(
            subprocess.Popen(
                [
                    sys.executable,
                    "-m",
                    "deployments.cli",
                    "sandbox",
                    "--port",
                    str(sandbox_port),
                    "--households",
                    str(args.households),
                    "--seed",
                    str(args.seed),
                ],
                env=base_env,
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
                cwd=ROOT,
            )
        )
        prefect_env = {
            **base_env,
            "PREFECT_HOME": str(work / "prefect"),
            "PREFECT_UI_API_URL": f"http://127.0.0.1:{prefect_port}/api",
        }
        procs.append(
            subprocess.Popen(
                server_command(prefect_port),
                env=prefect_env,
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
            )
        )
        registry_url = f"http://127.0.0.1:{sandbox_port}/registry"
        wait_http(f"http://127.0.0.1:{sandbox_port}/openapi.json")
        wait_http(f"http://127.0.0.1:{prefect_port}/api/health")
        env = {
            **base_env,
            "CETTAR_REGISTRY_URL": registry_url,
            "CETTAR_DATA_DIR": str(work),
            "CETTAR_PAGE_LIMIT": str(args.page_limit),
            "PREFECT_API_URL": f"http://127.0.0.1:{prefect_port}/api",
        }
        raw = child("raw", {**env, "BENCH_RAW_DB": str(work / "raw.db")})
        print(
            f"raw: {raw['records']:,} households in {raw['seconds']:.1f} s "
            f"({raw['records'] / raw['seconds']:,.0f}/s), peak RSS {raw['peak_rss_mb']:.0f} MB"
        )
        hub = child("hub", {**env, "CETTAR_DATABASE_URL": f"sqlite:///{work / 'hub.db'}"})
        print(
            f"hub: {hub['records']:,} households in {hub['seconds']:.1f} s "
            f"({hub['records'] / hub['seconds']:,.0f}/s), peak RSS {hub['peak_rss_mb']:.0f} MB"
        )
    finally:
        for p in procs:
            p.terminate()
        for p in procs:
            p.wait(timeout=30)
    rps, raw_rps = hub["records"] / hub["seconds"], raw["records"] / raw["seconds"]
    print(
        json.dumps(
            {
                "households": args.households,
                "records": hub["records"],
                "members": hub["members"],
                "quarantined": hub["quarantined"],
                "seconds": round(hub["seconds"], 2),
                "cpu_s": round(hub["cpu_s"], 2),
                "records_per_s": round(rps, 1),
                "raw_seconds": round(raw["seconds"], 2),
                "raw_cpu_s": round(raw["cpu_s"], 2),
                "raw_records_per_s": round(raw_rps, 1),
                "ratio_vs_raw": round(rps / raw_rps, 3),
                "peak_rss_mb": round(hub["peak_rss_mb"], 1),
                "raw_peak_rss_mb": round(raw["peak_rss_mb"], 1),
                "page_limit": args.page_limit,
            }
        )
    )


if __name__ == "__main__":
    main()
