"""The store: migrations, bulk upserts, cursor and quarantine writes (SQLite, PostgreSQL)."""

from __future__ import annotations

import re
import sqlite3
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import Engine, func, select
from sqlalchemy.exc import OperationalError
from sqlmodel import SQLModel

from integrations.store.bulk import _newest_per_key, upsert_newer
from integrations.store.cursors import CursorState, load_cursor, save_cursor
from integrations.store.engine import (
    StoreUnavailable,
    StoreUrlError,
    make_engine,
    migrations_head,
    require_store,
    upgrade,
)
from integrations.store.quarantine import quarantine
from integrations.store.regions import load_regions
from models.tables import Household, Quarantine, Region
from models.validation import Reason, Rejection

HH = Household.__table__  # type: ignore[attr-defined]
T0 = datetime(2026, 1, 5, tzinfo=UTC)


def _hh(i: int, ts: datetime, desil: int = 1) -> dict[str, object]:
    return {
        "id": f"HH-{i}",
        "no_kk": "3578010101200001",
        "kk_token": "t",
        "desa_code": "35.78.01.1001",
        "kecamatan_code": "35.78.01",
        "kabupaten_code": "35.78",
        "address": "",
        "desil": desil,
        "member_count": 1,
        "updated_at": ts,
        "synced_at": ts,
    }


def test_migrations_match_the_models(store: Engine) -> None:
    with store.connect() as conn:
        diff = compare_metadata(MigrationContext.configure(conn), SQLModel.metadata)
    assert diff == []


def test_upgrade_is_idempotent(store: Engine) -> None:
    upgrade(store)
    upgrade(store)


def test_an_engine_never_creates_a_sqlite_store(tmp_path: Path) -> None:
    path = tmp_path / "typo" / "store.db"
    engine = make_engine(f"sqlite:///{path}")
    assert not path.parent.exists()
    with pytest.raises(StoreUnavailable, match=re.escape(f"no store at {path}")) as missing:
        require_store(engine)
    assert missing.value.needs_upgrade
    path.parent.mkdir()
    with pytest.raises(OperationalError):
        engine.connect().close()
    assert list(path.parent.iterdir()) == []
    engine.dispose()


def test_upgrade_creates_the_sqlite_store_and_its_directories(tmp_path: Path) -> None:
    path = tmp_path / "new" / "dirs" / "store.db"
    engine = make_engine(f"sqlite:///{path}")
    upgrade(engine)
    assert path.is_file()
    require_store(engine)
    engine.dispose()


def test_the_store_is_ready_once_migrated(store: Engine) -> None:
    require_store(store)


def test_a_store_not_migrated_or_behind_is_reported(tmp_path: Path) -> None:
    path = tmp_path / "store.db"
    sqlite3.connect(path).close()
    engine = make_engine(f"sqlite:///{path}")
    not_migrated = re.escape(f"the store at {path} is not migrated") + "$"
    with pytest.raises(StoreUnavailable, match=not_migrated) as err:
        require_store(engine)
    assert err.value.needs_upgrade
    upgrade(engine, "0001")
    with pytest.raises(StoreUnavailable, match=rf"is at revision 0001, not {migrations_head()}$"):
        require_store(engine)
    upgrade(engine)
    require_store(engine)
    engine.dispose()


def test_an_unreachable_store_is_one_line() -> None:
    engine = make_engine("postgresql+psycopg://u:secret@127.0.0.1:1/x")
    for action in (require_store, upgrade):
        with pytest.raises(StoreUnavailable) as err:
            action(engine)
        message = str(err.value)
        assert message.startswith("the store at postgresql+psycopg://u:***@127.0.0.1:1/x ")
        assert "cannot be opened: " in message and "\n" not in message
        assert "secret" not in message and not err.value.needs_upgrade


@pytest.mark.parametrize("url", ["nonsense", "nosuchdb://host/x", ""])
def test_a_url_that_is_not_a_database_url(url: str) -> None:
    with pytest.raises(StoreUrlError, match=r"^not a database URL"):
        make_engine(url)


def test_upsert_applies_only_newer_versions(store: Engine) -> None:
    with store.begin() as conn:
        assert upsert_newer(conn, HH, [_hh(1, T0), _hh(2, T0)]) == 2
    with store.begin() as conn:
        # same version again: unchanged; older: ignored; newer: applied
        written = upsert_newer(
            conn, HH, [_hh(1, T0, 5), _hh(2, T0 - timedelta(days=1), 6), _hh(3, T0)]
        )
        assert written == 1  # HH-3
        written = upsert_newer(conn, HH, [_hh(1, T0 + timedelta(seconds=1), 7)])
        assert written == 1
    with store.connect() as conn:
        desil = dict(conn.execute(select(HH.c.id, HH.c.desil)).all())
    assert desil == {"HH-1": 7, "HH-2": 1, "HH-3": 1}


def test_upsert_keeps_the_newest_duplicate_in_one_batch(store: Engine) -> None:
    with store.begin() as conn:
        written = upsert_newer(
            conn, HH, [_hh(1, T0, 2), _hh(1, T0 + timedelta(hours=1), 9), _hh(1, T0, 3)]
        )
    assert written == 1
    with store.connect() as conn:
        assert conn.execute(select(HH.c.desil)).scalar_one() == 9


def test_cursor_round_trip_and_pass_lifecycle(store: Engine) -> None:
    state = CursorState("registry.households", "35.78.01")
    state.start_pass(full=False)
    state.advance("c1", T0, 10)
    with store.begin() as conn:
        save_cursor(conn, state, now=T0)
    with store.connect() as conn:
        loaded = load_cursor(conn, "registry.households", "35.78.01")
    assert loaded.in_pass and loaded.cursor == "c1" and loaded.pass_high == T0
    assert loaded.watermark is None
    loaded.advance(None, T0 + timedelta(hours=2), 5)
    with store.begin() as conn:
        save_cursor(conn, loaded, now=T0)
    with store.connect() as conn:
        done = load_cursor(conn, "registry.households", "35.78.01")
    assert not done.in_pass
    assert done.watermark == T0 + timedelta(hours=2)
    assert (done.pages, done.records) == (2, 15)


def test_quarantine_keeps_payload_once_and_counts_sightings(store: Engine) -> None:
    rej = Rejection("HH-9", (Reason("members.nik", "nik_invalid", "bad"),), {"id": "HH-9", "x": 1})
    with store.begin() as conn:
        quarantine(conn, "registry.households", "35.78.01", [rej, rej], now=T0)
    with store.begin() as conn:
        quarantine(conn, "registry.households", "35.78.01", [rej], now=T0 + timedelta(days=1))
    with store.connect() as conn:
        rows = conn.execute(select(Quarantine.__table__)).mappings().all()  # type: ignore[attr-defined]
    assert len(rows) == 1
    assert rows[0]["seen_count"] == 2
    assert rows[0]["reason_codes"] == "members.nik:nik_invalid"
    assert '"x": 1' in rows[0]["payload"]


def test_regions_load_exactly_the_jatim_codes(store: Engine) -> None:
    assert load_regions(store) == 1 + 38 + 666 + 8494
    load_regions(store)
    region = Region.__table__  # type: ignore[attr-defined]
    with store.connect() as conn:
        counts = dict(
            conn.execute(select(region.c.kind, func.count()).group_by(region.c.kind)).all()
        )
    assert counts == {
        "provinsi": 1,
        "kabupaten": 29,
        "kota": 9,
        "kecamatan": 666,
        "desa": 7721,
        "kelurahan": 773,
    }


def test_bulk_path_stores_values_exactly_as_sqlalchemy_does(store: Engine) -> None:
    """The fast SQLite path must write the same text as SQLAlchemy, or comparisons break."""
    from sqlalchemy import insert, text

    row = _hh(1, datetime(2026, 1, 5, 1, 2, 3, 456, tzinfo=UTC))
    with store.begin() as conn:
        upsert_newer(conn, HH, [row])
        conn.execute(insert(HH), [{**row, "id": "HH-2"}])
        stored = conn.execute(text("select updated_at from household order by id")).scalars().all()
    assert stored[0] == stored[1]


def test_newest_per_key_keeps_the_newest_of_each_key_in_first_seen_order() -> None:
    rows = [
        {"a": 1, "b": "x", "v": 1},
        {"a": 1, "b": "y", "v": 1},
        {"a": 1, "b": "x", "v": 3},
        {"a": 1, "b": "x", "v": 2},
    ]
    assert _newest_per_key(rows, ("a", "b"), "v") == [rows[2], rows[1]]
    assert _newest_per_key(rows[:2], ("a", "b"), "v") == rows[:2]
    assert _newest_per_key(rows, ("a",), "v") == [rows[2]]
