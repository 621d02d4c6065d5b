"""Writing prepared registry pages: newer wins, members who left are removed, cursor moves."""

from __future__ import annotations

from datetime import UTC, datetime

from sqlalchemy import Engine, select

from integrations.store.cursors import CursorState, load_cursor
from integrations.store.pages import write_source_page
from integrations.store.tables import MEMBER
from models.sources import prepare_page
from tests.factories import household, member

NOW = datetime(2026, 11, 27, tzinfo=UTC)


def _write(store: Engine, records: list[dict[str, object]], state: CursorState) -> int:
    page = prepare_page("registry.households", records, b"k", NOW)
    with store.begin() as conn:
        return write_source_page(conn, "registry.households", page, state, None, now=NOW).upserted


def _members(store: Engine) -> list[str]:
    with store.connect() as conn:
        return sorted(conn.execute(select(MEMBER.c.id)).scalars())


def test_a_newer_version_replaces_the_member_list(store: Engine) -> None:
    state = CursorState("registry.households", "35.78.01")
    state.start_pass(full=False)
    v1 = household(1, members=[member(11), member(12), member(13)])
    assert _write(store, [v1], state) == 1
    assert _members(store) == ["M-11", "M-12", "M-13"]
    # member 12 left the household in a newer version; an older replay changes nothing
    v2 = household(1, updated_at="2026-02-01T08:00:00+07:00", members=[member(11), member(13)])
    assert _write(store, [v2], state) == 1
    assert _members(store) == ["M-11", "M-13"]
    assert _write(store, [v1], state) == 0
    assert _members(store) == ["M-11", "M-13"]
    with store.connect() as conn:
        saved = load_cursor(conn, "registry.households", "35.78.01")
    assert saved.watermark == datetime(2026, 2, 1, 1, 0, tzinfo=UTC)
