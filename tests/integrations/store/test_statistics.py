"""Planner statistics are refreshed on PostgreSQL after a load, and left alone on SQLite."""

from __future__ import annotations

from sqlalchemy import Engine, text

from integrations.store.statistics import refresh_statistics, written_tables


def test_the_registry_writes_households_members_and_enrolments() -> None:
    names = [t.name for t in written_tables(["registry.households", "registry.recipients"])]
    assert names == ["enrolment", "household", "member"]


def test_postgresql_analyses_the_written_tables_and_sqlite_is_left_alone(store: Engine) -> None:
    tables = written_tables(["pertanian.farmer-needs"])
    analysed = refresh_statistics(store, tables)
    with store.connect() as conn:
        if store.dialect.name == "sqlite":
            assert analysed == 0
            # No ANALYZE ran: SQLite keeps no statistics table until one does.
            stat = text("SELECT name FROM sqlite_master WHERE name = 'sqlite_stat1'")
            assert conn.execute(stat).first() is None
        else:
            assert analysed == 1
            last = text(
                "SELECT last_analyze FROM pg_stat_user_tables WHERE relname = 'farmer_need'"
            )
            assert conn.execute(last).scalar_one() is not None
