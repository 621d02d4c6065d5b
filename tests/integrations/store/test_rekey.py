"""PII key rotation on a real store: registry tokens recomputed, token-only sources re-read."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from sqlalchemy import Engine, func, select

from integrations.store.audit import verify_audit
from integrations.store.cursors import CursorState
from integrations.store.pages import write_source_page
from integrations.store.rekey import RekeyRefused, rekey_store, token_only_sources
from integrations.store.tables import AUDIT, CURSOR, HOUSEHOLD, MEMBER, source_table
from models.identity import id_token
from models.sources import prepare_page
from tests.factories import household, member
from tests.integrations.store.test_handoffs import one, overlap
from tests.models.test_sources import report

NOW = datetime(2026, 11, 27, 3, 0, tzinfo=UTC)
OLD, NEW = b"the-old-pii-key", b"the-new-pii-key"
PERIOD = "2026-Q4"


def _sync(engine: Engine, source: str, records: list[dict[str, object]], key: bytes) -> None:
    page = prepare_page(source, records, key, NOW)
    assert not page.rejected
    with engine.begin() as conn:
        write_source_page(conn, source, page, CursorState(source, "35.07.01"), None, now=NOW)


def _seed(store: Engine, key: bytes = OLD) -> None:
    households = [
        household(i, desa="35.07.01.2001", members=[member(10 * i + 1, kec="35.07.01")])
        for i in range(1, 4)
    ]
    _sync(store, "registry.households", households, key)
    _sync(store, "pkh.reports", [report()], key)


def _tokens_under(store: Engine, key: bytes) -> bool:
    with store.connect() as conn:
        households = conn.execute(select(HOUSEHOLD.c.no_kk, HOUSEHOLD.c.kk_token)).all()
        members = conn.execute(select(MEMBER.c.nik, MEMBER.c.nik_token)).all()
    pairs = [*households, *members]
    assert pairs
    return all(id_token(clear, key) == token for clear, token in pairs)


def _rows(store: Engine, source: str) -> int:
    with store.connect() as conn:
        return int(conn.execute(select(func.count()).select_from(source_table(source))).scalar())


def test_rotation_recomputes_registry_tokens_and_clears_token_only_sources(store: Engine) -> None:
    _seed(store)
    assert _tokens_under(store, OLD) and _rows(store, "pkh.reports") == 1
    counts = rekey_store(store, key=NEW, now=NOW, period=PERIOD)
    assert counts.recomputed == {"household": 3, "member": 3}
    assert counts.cleared["pkh.reports"] == 1
    assert set(counts.cleared) == set(token_only_sources())
    assert "registry.households" not in counts.cleared
    assert _tokens_under(store, NEW)
    assert _rows(store, "pkh.reports") == 0
    with store.connect() as conn:
        cursors = {r.source for r in conn.execute(select(CURSOR.c.source))}
        assert cursors == {"registry.households"}  # pkh.reports reads whole next time
        assert verify_audit(conn).ok
        (reason,) = conn.execute(
            select(AUDIT.c.reason).where(AUDIT.c.seq == counts.audit_seq)
        ).one()
    assert '"pkh.reports": 1' in reason

    # The next sync of the cleared source stores it again, keyed with the new key.
    _sync(store, "pkh.reports", [report()], NEW)
    assert _rows(store, "pkh.reports") == 1

    # A second rotation with the same key changes nothing.
    again = rekey_store(store, key=NEW, now=NOW, period=PERIOD)
    assert again.already_keyed and again.audit_seq is None
    assert _rows(store, "pkh.reports") == 1


def test_rotation_refuses_inside_a_period_with_handoffs_unless_forced(store: Engine) -> None:
    _seed(store)
    # One finding for the kecamatan and its desa: two handoffs.
    one(store, overlap(id_token(member(11, kec="35.07.01")["nik"], OLD), period=PERIOD))
    with pytest.raises(RekeyRefused, match=r"^2 handoffs of period 2026-Q4 exist"):
        rekey_store(store, key=NEW, now=NOW, period=PERIOD)
    assert _tokens_under(store, OLD)  # nothing changed
    # Another period's handoffs are no reason to wait.
    assert rekey_store(store, key=NEW, now=NOW, period="2027-Q1").recomputed["member"] == 3


def test_an_empty_registry_is_refused_unless_forced(store: Engine) -> None:
    _sync(store, "pkh.reports", [report()], OLD)
    with pytest.raises(RekeyRefused, match="no household"):
        rekey_store(store, key=NEW, now=NOW, period=PERIOD)
    counts = rekey_store(store, key=NEW, now=NOW, period=PERIOD, force=True)
    assert counts.cleared["pkh.reports"] == 1 and counts.recomputed == {"household": 0, "member": 0}


def test_a_failed_rotation_leaves_the_store_as_it_was(
    store: Engine, monkeypatch: pytest.MonkeyPatch
) -> None:
    _seed(store)
    from integrations.store import rekey

    calls = []

    def broken(value: str, key: bytes) -> str:
        # The households' tokens are rewritten by then; the members' are not.
        calls.append(value)
        if len(calls) == 6:
            raise RuntimeError("interrupted")
        return id_token(value, key)

    monkeypatch.setattr(rekey, "id_token", broken)
    with pytest.raises(RuntimeError, match="interrupted"):
        rekey_store(store, key=NEW, now=NOW, period=PERIOD)
    monkeypatch.undo()
    assert _tokens_under(store, OLD) and _rows(store, "pkh.reports") == 1


def test_the_cli_command_rotates_once_then_finds_nothing_to_do(
    store: Engine, store_url: str, prefect_api: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    import json

    from typer.testing import CliRunner

    from deployments.cli import app
    from integrations.settings import get_settings
    from integrations.store.engine import get_engine

    _seed(store)
    monkeypatch.setenv("CETTAR_DATABASE_URL", store_url)
    monkeypatch.setenv("CETTAR_PII_KEY", NEW.decode())
    get_settings.cache_clear()
    get_engine.cache_clear()
    try:
        runner = CliRunner()
        first = runner.invoke(app, ["db", "rekey", "--json"])
        assert first.exit_code == 0, first.output
        assert json.loads(first.stdout)["recomputed"] == {"household": 3, "member": 3}
        second = runner.invoke(app, ["db", "rekey"])
        assert second.exit_code == 0, second.output
        assert "already keyed with CETTAR_PII_KEY: nothing to do" in second.stdout
    finally:
        get_engine().dispose()
        get_settings.cache_clear()
        get_engine.cache_clear()
    assert _tokens_under(store, NEW)
