"""PostgreSQL's COPY path of the newer-wins upsert writes what the batch statement writes."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from datetime import UTC, date, datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import Engine, delete, select
from sqlalchemy.exc import DataError, IntegrityError

from integrations.store import bulk
from integrations.store.tables import HOUSEHOLD, MEMBER

T0 = datetime(2026, 1, 5, 1, tzinfo=UTC)
HOUR = timedelta(hours=1)

pytestmark = pytest.mark.parametrize(
    "store_url", [pytest.param("postgresql", marks=pytest.mark.postgres)], indirect=True
)


def _hh(i: int, ts: datetime, desil: Any = 1, **over: Any) -> dict[str, Any]:
    row = {
        "id": f"HH-{i:05d}",
        "no_kk": "x",
        "kk_token": f"kk{i}",
        "desa_code": "35.78.01.1001",
        "kecamatan_code": "35.78.01",
        "kabupaten_code": "35.78",
        "address": f"Jl. Mawar {i}",
        "desil": desil,
        "member_count": 3,
        "updated_at": ts,
        "synced_at": ts,
    }
    row.update(over)
    return row


def _member(i: int, ts: datetime, status: str = "active") -> dict[str, Any]:
    return {
        "id": f"M-{i:05d}",
        "household_id": f"HH-{i // 3:05d}",
        "nik": "x",
        "nik_token": f"nik{i}",
        "name": "Siti",
        "sex": "P",
        "birth_date": date(1980, 1, 1) + timedelta(days=i),
        "relationship": "lainnya",
        "status": status,
        "updated_at": ts,
    }


def _batches() -> list[list[dict[str, Any]]]:
    """A first load, then a batch of every case the newer-wins rule has."""
    first = [_hh(i, T0) for i in range(800)]
    second = (
        # newer: written, whatever else changed
        [_hh(i, T0 + HOUR, desil=5, address="baru") for i in range(0, 200)]
        # older: loses
        + [_hh(i, T0 - HOUR, desil=6, address="lama") for i in range(200, 400)]
        # the same version: the stored row stays, even with other values
        + [_hh(i, T0, desil=7, address="sama") for i in range(400, 600)]
        # new keys, one of them with no desil
        + [_hh(i, T0, desil=None if i == 900 else 2) for i in range(800, 1000)]
        # one key twice in the batch: the newer row wins; equal versions: the first seen
        + [_hh(600, T0 + 2 * HOUR, desil=8), _hh(600, T0 + HOUR, desil=9)]
        + [_hh(601, T0 + HOUR, desil=3), _hh(601, T0 + HOUR, desil=4)]
    )
    return [first, second]


@pytest.fixture
def paths(monkeypatch: pytest.MonkeyPatch) -> Iterator[Callable[[str], list[str]]]:
    """Switch between the statement path and the COPY path; records the path each call took."""
    taken: list[str] = []
    copy = bulk._copy_upsert_newer

    def spy(*args: Any, **kwargs: Any) -> int:
        taken.append("copy")
        return copy(*args, **kwargs)

    monkeypatch.setattr(bulk, "_copy_upsert_newer", spy)

    def use(path: str) -> list[str]:
        monkeypatch.setattr(bulk, "PG_COPY_MIN_ROWS", 1 if path == "copy" else 10**9)
        taken.clear()
        return taken

    yield use


def _run(store: Engine, table: Any, batches: list[list[dict[str, Any]]]) -> tuple[list[int], set]:
    with store.begin() as conn:
        conn.execute(delete(table))
    counts = []
    with store.begin() as conn:
        # Several batches in one transaction, as a group of pages is written.
        for batch in batches:
            counts.append(bulk.upsert_newer(conn, table, batch))
    with store.connect() as conn:
        stored = {tuple(r) for r in conn.execute(select(table))}
    return counts, stored


def test_copy_path_matches_the_statement_path(
    store: Engine, paths: Callable[[str], list[str]]
) -> None:
    taken = paths("statement")
    want = _run(store, HOUSEHOLD, _batches())
    assert taken == []
    taken = paths("copy")
    got = _run(store, HOUSEHOLD, _batches())
    assert taken == ["copy", "copy"]
    assert got == want
    counts, stored = got
    # 200 newer + 200 new + HH-600 + HH-601
    assert counts == [800, 402]
    by_id = {row[0]: row for row in stored}
    desil = HOUSEHOLD.c.keys().index("desil")
    assert by_id["HH-00000"][desil] == 5
    assert by_id["HH-00300"][desil] == 1
    assert by_id["HH-00500"][desil] == 1
    assert by_id["HH-00600"][desil] == 8
    assert by_id["HH-00601"][desil] == 3
    assert by_id["HH-00900"][desil] is None


def test_copy_path_matches_for_member_rows_and_fills_defaults(
    store: Engine, paths: Callable[[str], list[str]]
) -> None:
    members = [
        [_member(i, T0) for i in range(600)],
        [_member(i, T0 + HOUR, "moved") for i in range(0, 600, 2)],
    ]
    # Rows without a column the table defaults fill it the same way on both paths.
    households = [[{k: v for k, v in _hh(i, T0).items() if k != "address"} for i in range(600)]]
    results = {}
    for path in ("statement", "copy"):
        taken = paths(path)
        results[path] = (_run(store, MEMBER, members), _run(store, HOUSEHOLD, households))
        assert taken == ([] if path == "statement" else ["copy", "copy", "copy"])
    assert results["copy"] == results["statement"]
    (member_counts, _), (_, stored) = results["copy"]
    assert member_counts == [600, 300]
    address = HOUSEHOLD.c.keys().index("address")
    assert {row[address] for row in stored} == {""}


def test_small_batches_keep_the_statement_path(
    store: Engine, paths: Callable[[str], list[str]]
) -> None:
    taken = paths("statement")
    with store.begin() as conn:
        assert bulk.upsert_newer(conn, HOUSEHOLD, [_hh(1, T0)]) == 1
    assert taken == []
    assert bulk.PG_COPY_MIN_ROWS > 1


def test_a_failed_batch_leaves_nothing_staged(
    store: Engine, paths: Callable[[str], list[str]]
) -> None:
    paths("copy")
    good = [_hh(i, T0) for i in range(10)]
    # Refused by the merge (NOT NULL) and by the COPY itself (not an integer): both raise
    # SQLAlchemy's errors, as the statement path does.
    with pytest.raises(IntegrityError, match="member_count"), store.begin() as conn:
        bulk.upsert_newer(conn, HOUSEHOLD, [*good, _hh(10, T0, member_count=None)])
    with pytest.raises(DataError, match="integer"), store.begin() as conn:
        bulk.upsert_newer(conn, HOUSEHOLD, [*good, _hh(10, T0, desil="banyak")])
    # The next batch, maybe on the same session, sees none of the failed batch's rows.
    with store.begin() as conn:
        assert bulk.upsert_newer(conn, HOUSEHOLD, [_hh(i, T0) for i in range(5)]) == 5
    with store.connect() as conn:
        stored = sorted(conn.execute(select(HOUSEHOLD.c.id)).scalars())
    assert stored == [f"HH-{i:05d}" for i in range(5)]


def test_batches_in_one_transaction_do_not_see_each_other(
    store: Engine, paths: Callable[[str], list[str]]
) -> None:
    paths("copy")
    with store.begin() as conn:
        assert bulk.upsert_newer(conn, HOUSEHOLD, [_hh(i, T0) for i in range(50)]) == 50
        # The staging table was emptied: only the second batch's rows are merged.
        assert bulk.upsert_newer(conn, HOUSEHOLD, [_hh(i, T0 + HOUR) for i in range(40, 45)]) == 5
