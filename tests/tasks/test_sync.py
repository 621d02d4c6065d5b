"""The partition sync task: one retry policy, counts per collection, unknown collections refused."""

from __future__ import annotations

import time
from pathlib import Path

import pytest
from prefect.logging import disable_run_logger
from prefect.states import Failed

from integrations.agencies.errors import (
    AuthError,
    CircuitOpen,
    InvalidEndpoint,
    RateLimited,
    ServerError,
    TransportFailure,
    Unreachable,
)
from tasks.sync import retry_transient, sync_partition


def test_the_partition_task_retries_only_transient_agency_errors() -> None:
    assert sync_partition.retries == 2
    assert sync_partition.retry_delay_seconds == [5, 30]
    assert sync_partition.retry_condition_fn is retry_transient


def test_a_collection_the_catalogue_does_not_hold_is_refused() -> None:
    with pytest.raises(ValueError, match="pkh has no collection 'visits'"):
        sync_partition.fn("pkh", ["visits"], "35.78", ["35.78.01"])


URL = "http://127.0.0.1:9/registry/v1/households?limit=10&kecamatan=35.07.01"


def _unreachable() -> Unreachable:
    return Unreachable("registry", "GET", URL, attempts=3, reason="unreachable: refused")


@pytest.mark.parametrize(
    ("error", "retried"),
    [
        (ServerError("registry", "GET", URL, 503, attempts=6), True),
        (RateLimited("registry", "GET", URL, attempts=6), True),
        (TransportFailure("registry", "GET", URL, attempts=6, reason="ReadTimeout"), True),
        (TransportFailure("registry", "GET", URL, attempts=6, reason="ConnectTimeout"), True),
        (_unreachable(), False),
        (InvalidEndpoint("registry", "GET", "registry.example", reason="no scheme"), False),
        (AuthError("registry", "GET", URL, 401), False),
        (AuthError("registry", "GET", URL, 403), False),
        (CircuitOpen(_unreachable(), "registry 35.07"), False),
        (ValueError("a bug"), False),
    ],
    ids=lambda v: type(v).__name__ if isinstance(v, Exception) else str(v),
)
def test_only_transient_errors_are_retried_by_the_task(error: Exception, retried: bool) -> None:
    assert retry_transient(sync_partition, None, Failed(data=error)) is retried  # type: ignore[arg-type]


def test_a_dead_agency_fails_a_partition_at_once(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    import socket

    from integrations.settings import get_settings
    from integrations.store.engine import get_engine, upgrade

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    monkeypatch.setenv("CETTAR_DATABASE_URL", f"sqlite:///{tmp_path / 'store.db'}")
    monkeypatch.setenv("CETTAR_REGISTRY_URL", f"http://127.0.0.1:{port}/registry")
    get_settings.cache_clear()
    get_engine.cache_clear()
    try:
        upgrade(get_engine())
        started = time.perf_counter()
        with disable_run_logger(), pytest.raises(Unreachable, match="connection refused"):
            sync_partition.fn("registry", ["households"], "35.07", ["35.07.01"])
        assert time.perf_counter() - started < 5
    finally:
        get_engine().dispose()
        get_settings.cache_clear()
        get_engine.cache_clear()
