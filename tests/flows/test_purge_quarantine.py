"""The `purge-quarantine` flow on a real Prefect server: retention from the settings."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import select

from flows.purge_quarantine import purge_quarantine_flow
from integrations.settings import get_settings
from integrations.store.audit import AUDIT, verify_audit
from integrations.store.engine import get_engine
from integrations.store.quarantine import PURGE_SUBJECT, quarantine
from integrations.store.tables import QUARANTINE
from models.validation import Reason, Rejection
from tests.models.test_sources import blt


@pytest.fixture
def store_env(store_url: str, prefect_api: str, monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    """The hub's settings pointed at a fresh store, with a 30-day retention."""
    monkeypatch.setenv("CETTAR_DATABASE_URL", store_url)
    monkeypatch.setenv("CETTAR_QUARANTINE_RETENTION_DAYS", "30")
    get_settings.cache_clear()
    get_engine.cache_clear()
    yield store_url
    get_engine().dispose()
    get_settings.cache_clear()
    get_engine.cache_clear()


def _held(days_ago: int, record_id: str) -> None:
    record = blt(id=record_id)
    why = (Reason("nik", "nik_invalid", "NIK is invalid"),)
    with get_engine().begin() as conn:
        quarantine(
            conn,
            "desa.blt-recipients",
            "35.07.01",
            [Rejection(record_id, why, record)],
            now=datetime.now(UTC) - timedelta(days=days_ago),
        )


def test_purge_quarantine_flow_uses_the_retention_setting(store_env: str) -> None:
    _held(31, "BLT-OLD")
    _held(29, "BLT-KEPT")

    dry = purge_quarantine_flow(dry_run=True)
    assert (dry["purged"], dry["retention_days"], dry["audit_seq"]) == (1, 30, None)

    done = purge_quarantine_flow()
    assert done["purged"] == 1 and done["by_source"] == {"desa.blt-recipients": 1}
    assert done["audit_seq"] == 1
    engine = get_engine()
    with engine.connect() as conn:
        assert list(conn.execute(select(QUARANTINE.c.record_id)).scalars()) == ["BLT-KEPT"]
        assert list(conn.execute(select(AUDIT.c.handoff_id)).scalars()) == [PURGE_SUBJECT]
        assert verify_audit(conn).ok

    assert purge_quarantine_flow()["purged"] == 0
