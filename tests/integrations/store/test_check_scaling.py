"""Each cross-programme check reads about 4x the rows from a store 4x larger (SQLite, PostgreSQL).

The store is filled with households 0..n, measured, filled on to 4n and measured again, so
both sizes have the same shape: a few seasons and periods, about 3 % of farmers in two
poktan or over the land cap, about 1 % of NIKs in two households, and so on. SQLite has no
rows-read counter: its virtual machine's steps (the progress handler) stand in for it, and
its query plans must not probe a coarse index (a season, a period) once per outer row.
PostgreSQL is ANALYZEd and measured with EXPLAIN (ANALYZE, BUFFERS): the rows every plan
node produced or filtered away, and the rows each repeated (inner) scan reads per loop.
"""

from __future__ import annotations

import hashlib
import random
import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import Connection, Engine, event, func, insert, select, text
from sqlmodel import SQLModel

from integrations.store.engine import make_engine, upgrade
from integrations.store.tables import BLT, ENROLMENT, FARM, HOUSEHOLD, MEMBER, REPORT
from models.scope import RegionScope
from models.wilayah import get_region_registry
from tasks.checks import Check, find

PERIOD = "2026-Q4"
T = datetime(2026, 10, 1, 1, tzinfo=UTC)
SCOPES: dict[str, RegionScope | None] = {
    "province": None,
    "kabupaten": RegionScope(kabupaten=["35.07"]),
}
CASES = [(check, scope) for check in Check for scope in SCOPES]

# 4x the rows may cost a little more than 4x (B-tree depth, sorts): anything near 16x is
# the per-group probing this guards against.
MAX_GROWTH = 5.0
# Rows a repeated probe may read: one person's, household's or farmer's rows, never a
# season's or a period's.
MAX_ROWS_PER_PROBE = 64

SQLITE_N = 5_000
PG_N = 10_000  # 4n: 40,000 households, 120,000 members, about 235,000 rows in all


def _desa_codes() -> list[str]:
    registry = get_region_registry()
    codes: list[str] = []
    # A few kabupaten (35.07 is the scoped one), every desa of some of their kecamatan.
    for kab in ("35.07", "35.15", "35.25", "35.78"):
        for kec in registry.kecamatan(kab)[:6]:
            codes += [v.code for v in registry.villages(kec.code)[:6]]
    return codes


DESA = _desa_codes()


def _token(kind: str, i: int) -> str:
    return hashlib.md5(f"{kind}:{i}".encode()).hexdigest()


def _fill(conn: Connection, lo: int, hi: int) -> None:
    """Households lo..hi-1 and the rows of every other source about them."""
    rows: dict[Any, list[dict[str, Any]]] = {
        t: [] for t in (HOUSEHOLD, MEMBER, ENROLMENT, BLT, REPORT, FARM)
    }
    stamps = {"updated_at": T, "synced_at": T}
    for i in range(lo, hi):
        r = random.Random(i)
        desa = DESA[i % len(DESA)]
        region = {"desa_code": desa, "kecamatan_code": desa[:8]}
        hh, kk = f"H{i}", _token("kk", i)
        rows[HOUSEHOLD].append(
            {"id": hh, "no_kk": "x", "kk_token": kk, "kabupaten_code": desa[:5], "address": ""}
            | region
            | stamps
            | {"desil": 2, "member_count": 3}
        )
        niks = [_token("nik", 4 * i + j) for j in range(3)]
        people = [(f"M{i}-{j}", hh, nik) for j, nik in enumerate(niks)]
        if i >= 7 and r.random() < 0.01:
            # Registered again in another household.
            people.append((f"M{i}-x", f"H{i - 7}", niks[0]))
        for mid, household, nik in people:
            u = r.random()
            rows[MEMBER].append(
                {
                    "id": mid,
                    "household_id": household,
                    "nik": "x",
                    "nik_token": nik,
                    "name": "x",
                    "sex": "P",
                    "birth_date": date(1980, 1, 1),
                    "relationship": "lainnya",
                    "status": "deceased" if u < 0.01 else "moved" if u < 0.02 else "active",
                    "updated_at": T,
                }
            )
        enrolled = r.random() < 0.3
        if enrolled:
            for period in ("2026-Q3", PERIOD):
                rows[ENROLMENT].append(
                    {
                        "id": f"E{i}-{period}",
                        "programme": r.choice(("PKH", "BPNT")),
                        "household_id": hh,
                        "nik_token": niks[0],
                        "kk_token": kk,
                        "period": period,
                        "status": "active" if r.random() < 0.95 else "ended",
                    }
                    | region
                    | stamps
                )
        if r.random() < (0.1 if enrolled else 0.12):
            for period in ("2026-Q3", PERIOD):
                rows[BLT].append(
                    {
                        "id": f"B{i}-{period}",
                        "period": period,
                        "nik_token": niks[r.randrange(3)],
                        "kk_token": kk,
                        "status": "approved" if r.random() < 0.95 else "removed",
                    }
                    | region
                    | stamps
                )
        if r.random() < 0.06:
            rows[REPORT].append(
                {
                    "id": f"R{i}",
                    "kind": r.choice(("deceased", "moved", "household_update", "household_update")),
                    "facilitator_id": f"F{i % 50}",
                    "kecamatan_code": desa[:8],
                    "household_id": hh,
                    "nik_token": niks[1],
                    "reported_on": date(2026, 6 + i % 5, 1 + i % 28),
                    "changes": "",
                    "note": "",
                }
                | stamps
            )
        if r.random() < 0.5:
            for season in range(1, 2 + (r.random() < 0.6) + (r.random() < 0.3)):
                u = r.random()
                lines = [("", f"P{i % 400}", 2.5 if u < 0.02 else 0.5)]
                if u > 0.97:
                    lines.append(("b", f"P{(i + 1) % 400}", 0.3))
                for suffix, poktan, area in lines:
                    rows[FARM].append(
                        {
                            "id": f"F{i}-{season}{suffix}",
                            "nik_token": niks[0],
                            "poktan_id": poktan,
                            "land_area_ha": area,
                            "commodity": "padi",
                            "season": f"2026-MT{season}",
                        }
                        | region
                        | stamps
                    )
    for table, batch in rows.items():
        for start in range(0, len(batch), 5000):
            conn.execute(insert(table), batch[start : start + 5000])


# --- what one check run executes ----------------------------------------------------------------


@dataclass
class Run:
    """The statements one check ran, and what they cost."""

    statements: list[tuple[str, Any]] = field(default_factory=list)
    # SQLite: virtual-machine steps; PostgreSQL: rows every plan node produced or filtered.
    cost: int = 0
    findings: int = 0
    # PostgreSQL: shared buffers hit or read, and the repeated scans reading too many rows.
    buffers: int = 0
    heavy_loops: list[str] = field(default_factory=list)


Runs = dict[tuple[Check, str], Run]


def _capture(engine: Engine) -> Callable[[], list[tuple[str, Any]]]:
    captured: list[tuple[str, Any]] = []

    @event.listens_for(engine, "before_cursor_execute")
    def _keep(_c: Any, _cur: Any, statement: str, params: Any, _ctx: Any, _many: bool) -> None:
        if not statement.startswith("EXPLAIN"):
            captured.append((statement, params))

    def take() -> list[tuple[str, Any]]:
        out = list(captured)
        captured.clear()
        return out

    return take


# --- SQLite: virtual-machine steps and query plans -----------------------------------------------

_STEP_UNIT = 50


class _Steps:
    """Counts the progress handler's calls: one per _STEP_UNIT virtual-machine steps."""

    ticks = 0

    def tick(self) -> int:
        self.ticks += 1
        return 0  # go on


def _sqlite_runs(conn: Connection, take: Callable[[], list[tuple[str, Any]]]) -> Runs:
    raw = conn.connection.driver_connection
    assert raw is not None
    out: Runs = {}
    for check, scope in CASES:
        steps = _Steps()
        take()
        raw.set_progress_handler(steps.tick, _STEP_UNIT)
        try:
            findings = find(conn, check, PERIOD, SCOPES[scope])
        finally:
            raw.set_progress_handler(None, 0)
        out[check, scope] = Run(take(), steps.ticks * _STEP_UNIT, len(findings))
    return out


@pytest.fixture(scope="module")
def sqlite_measured(
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[tuple[Runs, Runs, Engine]]:
    path: Path = tmp_path_factory.mktemp("scaling") / "store.db"
    engine = make_engine(f"sqlite:///{path}")
    upgrade(engine)
    take = _capture(engine)
    with engine.begin() as conn:
        _fill(conn, 0, SQLITE_N)
    with engine.connect() as conn:
        small = _sqlite_runs(conn, take)
    with engine.begin() as conn:
        _fill(conn, SQLITE_N, 4 * SQLITE_N)
    with engine.connect() as conn:
        large = _sqlite_runs(conn, take)
    yield small, large, engine
    engine.dispose()


@pytest.mark.parametrize(("check", "scope"), CASES)
def test_sqlite_steps_grow_linearly(
    sqlite_measured: tuple[Runs, Runs, Engine], check: Check, scope: str
) -> None:
    small, large, _ = sqlite_measured
    a, b = small[check, scope], large[check, scope]
    assert a.cost > 0
    # Findings grow with the store too: the data is the same shape at both sizes.
    assert b.findings >= 3 * a.findings
    assert b.cost / a.cost <= MAX_GROWTH, (
        f"{check} ({scope}): {a.cost:,} VM steps at n, {b.cost:,} at 4n"
    )


# Subqueries SQLite runs once, whatever encloses them.
_ONCE = ("LIST SUBQUERY", "SCALAR SUBQUERY", "MATERIALIZE", "CO-ROUTINE")
_SEARCH = re.compile(r"^SEARCH (\w+) USING (?:COVERING )?INDEX (\w+) \(([^)]*)\)")


def _repeated_searches(plan: list[tuple[int, int, int, str]]) -> list[str]:
    """The SEARCH steps of a plan run once per outer row or per value of a list."""
    by_id = {row[0]: row for row in plan}
    siblings: dict[int, list[int]] = {}
    for node, parent, _, _ in plan:
        siblings.setdefault(parent, []).append(node)

    def repeated(node: int) -> bool:
        parent = by_id[node][1]
        loops = [n for n in siblings[parent] if by_id[n][3].startswith(("SCAN", "SEARCH"))]
        if loops and loops[0] != node:  # the inner side of a nested loop
            return True
        while parent in by_id:
            detail = by_id[parent][3]
            if detail.startswith(("CORRELATED", "MULTI-INDEX OR")):
                return True
            if detail.startswith(_ONCE):
                return False
            parent = by_id[parent][1]
        return False

    return [row[3] for row in plan if row[3].startswith("SEARCH") and repeated(row[0])]


def _largest_group(conn: Connection, table: str, columns: list[str]) -> int:
    t = SQLModel.metadata.tables[table]
    groups = (
        select(func.count().label("n")).select_from(t).group_by(*(t.c[c] for c in columns))
    ).subquery()
    return int(conn.execute(select(func.coalesce(func.max(groups.c.n), 0))).scalar_one())


def test_sqlite_plans_probe_only_fine_indexes(sqlite_measured: tuple[Runs, Runs, Engine]) -> None:
    _, large, engine = sqlite_measured
    problems: list[str] = []
    probed = 0
    with engine.connect() as conn:
        raw = conn.connection.driver_connection
        assert raw is not None
        for (check, scope), run in large.items():
            for statement, params in run.statements:
                plan = raw.execute("EXPLAIN QUERY PLAN " + statement, params).fetchall()
                for detail in _repeated_searches(plan):
                    m = _SEARCH.match(detail)
                    if m is None:  # a primary key or an automatic index: one key's rows
                        continue
                    table, _, terms = m.groups()
                    columns = [t.split("=")[0] for t in terms.split(" AND ") if "=" in t]
                    worst = _largest_group(conn, table, columns)
                    probed += 1
                    if worst > MAX_ROWS_PER_PROBE:
                        problems.append(f"{check} ({scope}): {detail} reads up to {worst} rows")
    assert probed, "expected some per-key index probes (token and household indexes)"
    assert not problems, "\n".join(problems)


# --- PostgreSQL: EXPLAIN (ANALYZE, BUFFERS) on an ANALYZEd store ----------------------------------


def _nodes(plan: dict[str, Any]) -> Iterator[dict[str, Any]]:
    yield plan
    for child in plan.get("Plans", []):
        yield from _nodes(child)


_REMOVED = (
    "Rows Removed by Filter",
    "Rows Removed by Join Filter",
    "Rows Removed by Index Recheck",
)


def _read_per_loop(node: dict[str, Any]) -> float:
    # EXPLAIN reports rows (and rows filtered away) as averages per loop.
    return float(node["Actual Rows"]) + sum(float(node.get(k, 0)) for k in _REMOVED)


def _pg_runs(conn: Connection, take: Callable[[], list[tuple[str, Any]]]) -> Runs:
    out: Runs = {}
    for check, scope in CASES:
        take()
        findings = find(conn, check, PERIOD, SCOPES[scope])
        run = Run(take(), 0, len(findings))
        for statement, params in run.statements:
            explained = conn.exec_driver_sql(
                "EXPLAIN (ANALYZE, BUFFERS, FORMAT JSON) " + statement, params
            ).scalar_one()
            root = explained[0]["Plan"]
            for node in _nodes(root):
                loops = int(node["Actual Loops"])
                # Every loop is a probe: count it even when it finds nothing.
                run.cost += round(loops * _read_per_loop(node)) + loops
                if loops > 1 and _read_per_loop(node) > MAX_ROWS_PER_PROBE:
                    run.heavy_loops.append(
                        f"{node['Node Type']} on {node.get('Relation Name', '?')} "
                        f"({node.get('Index Name', 'no index')}): {loops} loops of "
                        f"{_read_per_loop(node):.0f} rows"
                    )
            run.buffers += root.get("Shared Hit Blocks", 0) + root.get("Shared Read Blocks", 0)
        out[check, scope] = run
    return out


def _analyze(engine: Engine) -> None:
    with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
        conn.execute(text("ANALYZE"))


def _drop_store(engine: Engine) -> None:
    import models.tables  # noqa: F401  (registers every table on the metadata)

    with engine.begin() as conn:
        SQLModel.metadata.drop_all(conn)
        conn.execute(text("DROP TABLE IF EXISTS alembic_version"))


@pytest.fixture(scope="module")
def pg_measured(postgres_url: str) -> Iterator[tuple[Runs, Runs]]:
    engine = make_engine(postgres_url)
    _drop_store(engine)
    upgrade(engine)
    take = _capture(engine)

    def measure() -> Runs:
        _analyze(engine)
        with engine.connect() as conn:
            # One process per plan: the counts are the plan's, not split over workers.
            conn.execute(text("SET max_parallel_workers_per_gather = 0"))
            conn.execute(text("SET jit = off"))
            runs = _pg_runs(conn, take)
            conn.rollback()
        return runs

    try:
        with engine.begin() as conn:
            _fill(conn, 0, PG_N)
        small = measure()
        with engine.begin() as conn:
            _fill(conn, PG_N, 4 * PG_N)
        with engine.connect() as conn:
            stored = sum(
                int(conn.execute(select(func.count()).select_from(t)).scalar_one())
                for t in (HOUSEHOLD, MEMBER, ENROLMENT, BLT, REPORT, FARM)
            )
        assert stored >= 100_000
        large = measure()
        yield small, large
    finally:
        _drop_store(engine)
        engine.dispose()


@pytest.mark.postgres
@pytest.mark.parametrize(("check", "scope"), CASES)
def test_postgres_rows_read_grow_linearly(
    pg_measured: tuple[Runs, Runs], check: Check, scope: str
) -> None:
    small, large = pg_measured
    a, b = small[check, scope], large[check, scope]
    assert b.findings >= 3 * a.findings
    assert b.cost / a.cost <= MAX_GROWTH, (
        f"{check} ({scope}): {a.cost:,} rows read at n, {b.cost:,} at 4n "
        f"(buffers {a.buffers:,} and {b.buffers:,})"
    )
    # No scan repeated per outer row may read more than one key's rows.
    assert not b.heavy_loops, f"{check} ({scope}): {b.heavy_loops}"
