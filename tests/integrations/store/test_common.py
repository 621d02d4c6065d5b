"""Generic store helpers: scope conditions in SQL, UTC times, bounded batches."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

import pytest
from sqlalchemy import Column, MetaData, String, Table, create_engine, insert, select

from integrations.store.common import chunks, in_scope, stored_utc, to_utc
from models.scope import WHOLE_PROVINCE, RegionScope

ROWS = [
    ("a", "35.07.01", "35.07"),
    ("b", "35.07.12", "35.07"),
    ("c", "35.78.01", "35.78"),
    ("d", "", "35.09"),  # a kabupaten office's row names no kecamatan
    ("e", "", ""),
]


def _ids(scope: RegionScope, with_kabupaten: bool) -> list[str]:
    meta = MetaData()
    t = Table("t", meta, Column("id", String), Column("kec", String), Column("kab", String))
    engine = create_engine("sqlite://")
    meta.create_all(engine)
    with engine.begin() as conn:
        conn.execute(insert(t), [{"id": i, "kec": k, "kab": b} for i, k, b in ROWS])
        cond = in_scope(scope, t.c.kec, t.c.kab if with_kabupaten else None)
        return sorted(conn.execute(select(t.c.id).where(cond)).scalars())


def test_in_scope_selects_the_scope_s_rows() -> None:
    assert _ids(WHOLE_PROVINCE, True) == ["a", "b", "c", "d", "e"]
    assert _ids(RegionScope(kabupaten=["35.07"]), False) == ["a", "b"]
    assert _ids(RegionScope(kecamatan=["35.78.01"]), True) == ["c"]
    assert _ids(RegionScope(kabupaten=["35.09"]), False) == []
    assert _ids(RegionScope(kabupaten=["35.09"]), True) == ["d"]
    # Kabupaten and kecamatan lists add up.
    assert _ids(RegionScope(kabupaten=["35.07"], kecamatan=["35.78.01"]), True) == ["a", "b", "c"]


def test_times_and_batches() -> None:
    wib = timezone(timedelta(hours=7))
    assert to_utc(datetime(2026, 11, 3, 8, tzinfo=wib)) == datetime(2026, 11, 3, 1, tzinfo=UTC)
    with pytest.raises(ValueError, match="timezone-aware"):
        to_utc(datetime(2026, 11, 3, 8))
    assert stored_utc(datetime(2026, 11, 3, 1)) == datetime(2026, 11, 3, 1, tzinfo=UTC)
    assert stored_utc(None) is None
    assert [list(c) for c in chunks([1, 2, 3, 4, 5], 2)] == [[1, 2], [3, 4], [5]]
