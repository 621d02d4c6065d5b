"""The SQLite write path's date texts: the same as SQLAlchemy's own, value for value."""

from __future__ import annotations

import random
from collections.abc import Callable
from datetime import UTC, date, datetime, timedelta, timezone
from pathlib import Path

import pytest
from sqlalchemy import select
from sqlalchemy.dialects import sqlite

from integrations.store.bulk import _sqlite_bind_processor, upsert_newer
from integrations.store.engine import make_engine, upgrade
from integrations.store.tables import MEMBER


def _values(n: int) -> list[date]:
    rng = random.Random(7)
    out: list[date] = [datetime(1, 1, 1), datetime(9999, 12, 31, 23, 59, 59, 999_999)]
    for _ in range(n):
        naive = datetime(1, 1, 1) + timedelta(
            days=rng.randrange(3_652_000), microseconds=rng.randrange(86_400_000_000)
        )
        zone = timezone(timedelta(minutes=rng.randrange(-720, 841, 15)))
        out += [naive, naive.replace(tzinfo=UTC), naive.replace(tzinfo=zone), naive.date()]
    return out


@pytest.mark.parametrize("kind", [sqlite.DATETIME, sqlite.DATE])
def test_fast_date_texts_equal_sqlalchemy_s_for_every_kind_of_value(kind: type) -> None:
    dialect = sqlite.dialect()
    impl = kind()
    ours, theirs = _sqlite_bind_processor(impl, dialect), impl.bind_processor(dialect)
    assert ours is not theirs and ours is not None and theirs is not None
    for value in _values(2_000):
        assert ours(value) == theirs(value), value


def test_a_custom_storage_format_keeps_sqlalchemy_s_processor() -> None:
    impl = sqlite.DATETIME(storage_format="%(year)04d/%(month)02d/%(day)02d")
    out = _sqlite_bind_processor(impl, sqlite.dialect())
    assert out is not None and out(datetime(2026, 12, 2)) == "2026/12/02"


def test_a_non_date_is_refused_with_a_type_error() -> None:
    out = _sqlite_bind_processor(sqlite.DATE(), sqlite.dialect())
    assert out is not None
    with pytest.raises(TypeError):
        out("2026-12-02")


# Alternating versions, and runs of the very same object (a household's version on each of
# its members), which the writer formats once per run.
@pytest.mark.parametrize("pick", [lambda i: i % 2, lambda i: i // 3 % 2], ids=["alternate", "runs"])
def test_the_store_holds_the_texts_sqlalchemy_would_have_written(
    tmp_path: Path, pick: Callable[[int], int]
) -> None:
    url = f"sqlite:///{tmp_path / 'store.db'}"
    engine = make_engine(url)
    upgrade(engine)
    zone = timezone(timedelta(hours=7))
    times = [
        datetime(2026, 11, 3, 8, 30, 15, 250_000, tzinfo=UTC),
        datetime(2026, 1, 5, 1, tzinfo=zone),
    ]
    rows = [
        {
            "id": f"M-{i:05d}",
            "household_id": "HH-00001",
            "nik": "x",
            "nik_token": f"nik{i}",
            "name": "Siti",
            "sex": "P",
            "birth_date": date(1980, 1, 1) + timedelta(days=400 * i),
            "relationship": "lainnya",
            "status": "active",
            "updated_at": times[pick(i)],
        }
        for i in range(6)
    ]
    with engine.begin() as conn:
        assert upsert_newer(conn, MEMBER, rows) == 6
        stored = conn.exec_driver_sql(
            "SELECT id, birth_date, updated_at FROM member ORDER BY id"
        ).all()
    dialect = engine.dialect
    as_date = MEMBER.c.birth_date.type.dialect_impl(dialect).bind_processor(dialect)
    as_time = MEMBER.c.updated_at.type.dialect_impl(dialect).bind_processor(dialect)
    assert stored == [(r["id"], as_date(r["birth_date"]), as_time(r["updated_at"])) for r in rows]
    with engine.connect() as conn:
        back = conn.execute(select(MEMBER.c.updated_at).order_by(MEMBER.c.id)).scalars().all()
    assert back == [r["updated_at"].replace(tzinfo=None) for r in rows]
    engine.dispose()
