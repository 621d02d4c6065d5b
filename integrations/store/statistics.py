"""Planner statistics after bulk writes: PostgreSQL plans the checks on fresh row counts."""

from __future__ import annotations

from collections.abc import Iterable

from sqlalchemy import Engine, Table, text

from integrations.store.tables import source_table, table_of
from models.sources import source_spec

__all__ = ["refresh_statistics", "written_tables"]


def written_tables(sources: Iterable[str]) -> list[Table]:
    """The tables the named catalogue sources write (a household's members included)."""
    found: dict[str, Table] = {}
    for name in sources:
        spec = source_spec(name)
        for table in (
            source_table(name),
            *(() if spec.children is None else (table_of(spec.children),)),
        ):
            found[table.name] = table
    return [found[k] for k in sorted(found)]


def refresh_statistics(engine: Engine, tables: Iterable[Table]) -> int:
    """ANALYZE each table on PostgreSQL; the number analysed (0 on SQLite).

    A first load writes millions of rows in minutes, before autovacuum's next pass: without
    fresh statistics PostgreSQL plans the day's checks for the empty tables it last saw.
    SQLite is left as it is: its plans for the checks come from the indexes alone, tested
    without statistics (tests/integrations/store/test_check_scaling.py).
    """
    if engine.dialect.name != "postgresql":
        return 0
    preparer = engine.dialect.identifier_preparer
    done = 0
    with engine.connect() as conn:
        for table in tables:
            # ANALYZE has no SQLAlchemy construct; the name is the store's own, quoted by the
            # dialect, never input.
            conn.execute(text(f"ANALYZE {preparer.format_table(table)}"))
            done += 1
        conn.commit()
    return done
