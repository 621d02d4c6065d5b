"""Newer-wins upserts into PostgreSQL: the batch statement vs COPY + one merge, one invocation.

Writes the same synthetic household rows, in pages of `--page-rows` committed every
`--commit-rows` (as the sync writes them), through `integrations.store.bulk.upsert_newer`
twice in the same run: with the COPY path switched off (the baseline: one multi-row
INSERT .. ON CONFLICT per page) and on. Each path runs three phases on an emptied table:
  insert     every row new;
  update     every row again with a newer `updated_at` (all written);
  unchanged  every row again with the same `updated_at` (none written).
Both paths must end with the same table content and report the same counts; the bench
fails otherwise. It creates a scratch database on the server and drops it afterwards.
Rows per second per phase and path are printed; the last line is one JSON object.

    .venv/bin/python bench/pg_bulk.py --rows 200000
"""

from __future__ import annotations

import argparse
import hashlib
import json
import sys
import time
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from sqlalchemy import Engine, create_engine, func, select, text  # noqa: E402
from sqlalchemy.engine import make_url  # noqa: E402

from integrations.store import bulk  # noqa: E402
from integrations.store.engine import make_engine, upgrade  # noqa: E402
from integrations.store.tables import HOUSEHOLD  # noqa: E402

T0 = datetime(2026, 11, 3, 1, tzinfo=UTC)
PATHS = {"statement": 10**12, "copy": bulk.PG_COPY_MIN_ROWS}
PHASES = (
    ("insert", T0),
    ("update", T0 + timedelta(hours=1)),
    ("unchanged", T0 + timedelta(hours=1)),
)


def rows(n: int, ts: datetime) -> Iterator[dict[str, Any]]:
    for i in range(n):
        kec = f"35.{7 + i % 30:02d}.{1 + i % 17:02d}"
        yield {
            "id": f"HH-{i:08d}",
            # Synthetic digits of the right length, no real No. KK.
            "no_kk": f"{9000000000000000 + i:016d}",
            "kk_token": hashlib.md5(f"kk{i}".encode()).hexdigest(),
            "desa_code": f"{kec}.2{i % 20:03d}",
            "kecamatan_code": kec,
            "kabupaten_code": kec[:5],
            "address": f"Jl. Kenanga {i % 500} RT {i % 9:02d}",
            "desil": 1 + i % 10,
            "member_count": 1 + i % 6,
            "updated_at": ts,
            "synced_at": ts,
        }


def phase(
    engine: Engine, n: int, ts: datetime, page_rows: int, commit_rows: int
) -> tuple[float, int]:
    written = 0
    source = rows(n, ts)
    start = time.perf_counter()
    done = 0
    while done < n:
        with engine.begin() as conn:
            in_group = 0
            while in_group < commit_rows and done < n:
                page = [next(source) for _ in range(min(page_rows, n - done))]
                written += bulk.upsert_newer(conn, HOUSEHOLD, page)
                done += len(page)
                in_group += len(page)
    return time.perf_counter() - start, written


def checksum(engine: Engine) -> str:
    digest = hashlib.sha256()
    with engine.connect() as conn:
        result = conn.execution_options(yield_per=10_000).execute(
            select(HOUSEHOLD).order_by(HOUSEHOLD.c.id)
        )
        for row in result:
            digest.update(repr(tuple(row)).encode())
    return digest.hexdigest()


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--rows", type=int, default=200_000)
    parser.add_argument("--page-rows", type=int, default=1000)
    parser.add_argument("--commit-rows", type=int, default=5000)
    parser.add_argument(
        "--server-url",
        default="postgresql+psycopg://postgres@127.0.0.1:5432/postgres",
        help="a database on the server, used to create and drop the scratch database",
    )
    args = parser.parse_args()

    server = make_url(args.server_url)
    name = f"cettar_bench_bulk_{uuid.uuid4().hex[:8]}"
    admin = create_engine(server, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f'CREATE DATABASE "{name}"'))
    figures: dict[str, Any] = {"rows": args.rows, "page_rows": args.page_rows}
    try:
        engine = make_engine(server.set(database=name).render_as_string(hide_password=False))
        upgrade(engine)
        sums: dict[str, str] = {}
        counts: dict[str, list[int]] = {}
        for path, threshold in PATHS.items():
            bulk.PG_COPY_MIN_ROWS = threshold
            with engine.begin() as conn:
                conn.execute(text("TRUNCATE household"))
            with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
                conn.execute(text("VACUUM ANALYZE household"))
            counts[path] = []
            for label, ts in PHASES:
                seconds, written = phase(engine, args.rows, ts, args.page_rows, args.commit_rows)
                counts[path].append(written)
                rate = args.rows / seconds
                figures[f"{path}_{label}_s"] = round(seconds, 2)
                figures[f"{path}_{label}_rows_per_s"] = round(rate)
                print(
                    f"{path:9} {label:9} {seconds:7.2f} s {rate:9,.0f} rows/s  written {written:,}"
                )
            sums[path] = checksum(engine)
            with engine.connect() as conn:
                stored = conn.execute(select(func.count()).select_from(HOUSEHOLD)).scalar_one()
            assert stored == args.rows, (path, stored)
        engine.dispose()
        if sums["statement"] != sums["copy"] or counts["statement"] != counts["copy"]:
            raise SystemExit(f"the paths differ: counts {counts}")
        for label in ("insert", "update", "unchanged"):
            speedup = figures[f"statement_{label}_s"] / figures[f"copy_{label}_s"]
            figures[f"speedup_{label}"] = round(speedup, 2)
            print(f"speedup   {label:9} {speedup:5.2f}x")
        figures["same_rows"] = True
    finally:
        with admin.connect() as conn:
            conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()
    print(json.dumps(figures))


if __name__ == "__main__":
    main()
