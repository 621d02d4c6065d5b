"""The `revalidate-store` flow on a real Prefect server: what fails today leaves, once."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from sqlalchemy import func, select

from deployments.run_audit import audit_flow_run
from flows.common import SourceName
from flows.revalidate import revalidate_store_flow
from integrations.settings import get_settings
from integrations.store.engine import get_engine
from integrations.store.tables import QUARANTINE
from models.scope import RegionScope
from tests.integrations.store import test_revalidate as seeded


@pytest.fixture
def store_env(store_url: str, prefect_api: str, monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    """The hub's settings pointed at a fresh store, its PII key the seeded rows' key."""
    monkeypatch.setenv("CETTAR_DATABASE_URL", store_url)
    monkeypatch.setenv("CETTAR_PII_KEY", seeded.KEY.decode())
    get_settings.cache_clear()
    get_engine.cache_clear()
    yield store_url
    get_engine().dispose()
    get_settings.cache_clear()
    get_engine.cache_clear()


def test_revalidate_store_quarantines_old_rows_once(store_env: str) -> None:
    engine = get_engine()
    seeded._seed(engine)
    scope = RegionScope(kabupaten=["35.07"])
    sources = [SourceName(s) for s in seeded.SOURCES]

    state = revalidate_store_flow(scope=scope, sources=sources, return_state=True)
    assert state.is_completed(), state.message
    result = state.result()
    assert result["totals"] == {"examined": 8, "quarantined": 3}
    assert result["sources"][seeded.HOUSEHOLDS]["reasons"] == {"desil:less_than_equal": 1}
    assert result["sources"][seeded.FARMS]["unchecked"] == ["name", "nik"]
    with engine.connect() as conn:
        held = conn.execute(select(func.count()).select_from(QUARANTINE)).scalar_one()
    assert held == 3
    assert seeded._ids(engine, seeded.HOUSEHOLDS) == {"HH-1"}
    # Counts and codes only: no NIK or No. KK in the run's parameters, results, logs,
    # artifacts or events, though the moved household's payload holds them.
    run_id = state.state_details.flow_run_id
    assert run_id is not None
    record = audit_flow_run(run_id, expected_tasks=len(seeded.SOURCES))
    assert record.task_runs == len(seeded.SOURCES) and record.artifacts == 2
    assert record.clear_id_total == 0, record.clear_ids

    again = revalidate_store_flow(scope=scope, sources=sources)
    assert again["totals"] == {"examined": 5, "quarantined": 0}
    with engine.connect() as conn:
        assert conn.execute(select(func.count()).select_from(QUARANTINE)).scalar_one() == 3
