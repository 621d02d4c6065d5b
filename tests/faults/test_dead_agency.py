"""A dead or misconfigured agency fails a whole sync run within a minute, with the reason.

Everything is real: the flow runs on the session's Prefect test server, partitions are
Prefect tasks with their production retry options, the store is a SQLite file, and the
agency is a closed port, a name that cannot resolve, an untrusted TLS listener, a
malformed URL or the sandbox with a wrong token. Waits are the production defaults.
Each case prints its measured time-to-fail (run with -s to see it).
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from prefect.states import State

from deployments.run_audit import count_clear_ids, run_summary
from flows.common import SyncIncomplete
from flows.sync_registry import sync_registry
from integrations.settings import get_settings
from integrations.store.engine import get_engine
from models.scope import RegionScope
from sandbox.config import DEFAULT_ADMIN_TOKEN, RegistryDataConfig, SandboxConfig
from sandbox.server import serve_in_thread
from tests.faults.endpoints import closed_port, self_signed_tls_listener

KABUPATEN = ["35.07", "35.09", "35.78"]  # Kab. Malang, Kab. Jember, Kota Surabaya
SCOPE = RegionScope(kabupaten=KABUPATEN)
LIMIT_S = 60.0
WRONG_TOKEN = "wrong-token-value-Q7"

Point = Callable[..., None]


@pytest.fixture
def point(tmp_path: Path, prefect_api: str, monkeypatch: pytest.MonkeyPatch) -> Iterator[Point]:
    """The hub on a fresh SQLite store; `point(url, token=None)` aims it at a registry."""
    monkeypatch.setenv("CETTAR_DATA_DIR", str(tmp_path))
    monkeypatch.setenv("CETTAR_DATABASE_URL", f"sqlite:///{tmp_path / 'store.db'}")
    for name in ("MAX_ATTEMPTS", "BACKOFF_BASE_S", "BACKOFF_MAX_S", "CONNECT_TIMEOUT_S"):
        monkeypatch.delenv(f"CETTAR_HTTP_{name}", raising=False)  # production waits
    monkeypatch.delenv("CETTAR_SYNC_WORKERS", raising=False)
    # A registry off this machine is a real one: the hub refuses it the public dev secrets.
    monkeypatch.setenv("CETTAR_PII_KEY", "dead-agency-test-pii-key")

    def aim(url: str, token: str | None = None) -> None:
        monkeypatch.setenv("CETTAR_REGISTRY_URL", url)
        if token is not None:
            monkeypatch.setenv("CETTAR_REGISTRY_TOKEN", token)
        get_settings.cache_clear()

    get_settings.cache_clear()
    get_engine.cache_clear()
    yield aim
    get_engine().dispose()
    get_settings.cache_clear()
    get_engine.cache_clear()


@pytest.fixture(scope="module")
def sandbox_url() -> Iterator[str]:
    """A small sandbox on a real port."""
    with serve_in_thread(SandboxConfig(registry=RegistryDataConfig(seed=3, households=300))) as url:
        yield url


def _run(case: str, scope: RegionScope = SCOPE) -> tuple[State[Any], float, dict[str, Any]]:
    started = time.perf_counter()
    state = sync_registry(scope=scope, return_state=True)
    seconds = time.perf_counter() - started
    print(f"\ntime-to-fail [{case}] {len(scope.partitions())} partitions: {seconds:.2f} s")
    return state, seconds, run_summary(state)


def _assert_fails_fast_with(
    state: State[Any], seconds: float, summary: dict[str, Any], reason: str
) -> None:
    assert state.is_failed(), state.name
    assert seconds < LIMIT_S
    # The run's own message says why, not only which partitions failed.
    assert reason in (state.message or ""), state.message
    with pytest.raises(SyncIncomplete, match=r"3 of 3 partitions failed: registry 35\.07"):
        state.result()
    # The --json summary carries every failed partition and its reason.
    failed = summary["failed"]
    assert sorted(failed) == [f"registry {k}" for k in KABUPATEN]
    assert all(reason in why for why in failed.values()), failed
    # One partition found the agency dead; the breaker failed the others without trying.
    tried = [job for job, why in failed.items() if "circuit open" not in why]
    assert len(tried) == 1, failed
    assert summary["partitions"] == 3 and summary["totals"] == {}
    text = json.dumps(summary)
    assert count_clear_ids(text) == 0
    assert WRONG_TOKEN not in text and "sandbox-registry-token" not in text


def test_a_closed_port_fails_the_run_within_a_minute(point: Point) -> None:
    port = closed_port()
    point(f"http://127.0.0.1:{port}/registry")
    state, seconds, summary = _run("closed port")
    _assert_fails_fast_with(state, seconds, summary, f"connection refused by 127.0.0.1:{port}")


def test_a_name_that_cannot_resolve_fails_the_run_within_a_minute(point: Point) -> None:
    point("http://nonexistent.invalid/registry", token="registry-production-token")
    state, seconds, summary = _run("unresolvable name")
    _assert_fails_fast_with(state, seconds, summary, "cannot resolve nonexistent.invalid")


def test_an_untrusted_certificate_fails_the_run_within_a_minute(
    point: Point, tmp_path: Path
) -> None:
    with self_signed_tls_listener(tmp_path) as port:
        point(f"https://127.0.0.1:{port}/registry")
        state, seconds, summary = _run("TLS failure")
    _assert_fails_fast_with(state, seconds, summary, "CERTIFICATE_VERIFY_FAILED")


@pytest.mark.parametrize(
    ("url", "reason"),
    [
        ("registry.example", "no http:// or https:// scheme"),
        ("http://", "no host"),
    ],
    ids=["no-scheme", "no-host"],
)
def test_a_malformed_url_fails_the_run_at_once(point: Point, url: str, reason: str) -> None:
    point(url)
    state, seconds, summary = _run(f"malformed URL {url!r}")
    _assert_fails_fast_with(state, seconds, summary, reason)
    assert "CETTAR_REGISTRY_URL" in summary["failed"]["registry 35.07"]


def test_a_refused_token_fails_the_run_after_one_request(point: Point, sandbox_url: str) -> None:
    admin = httpx.Client(
        base_url=sandbox_url, headers={"Authorization": f"Bearer {DEFAULT_ADMIN_TOKEN}"}
    )
    with admin:
        admin.delete("/_admin/stats").raise_for_status()
        point(f"{sandbox_url}/registry", WRONG_TOKEN)
        state, seconds, summary = _run("wrong token")
        requests = admin.get("/_admin/stats").json()["requests"]
    _assert_fails_fast_with(state, seconds, summary, "401")
    assert "check the agency's token" in summary["failed"]["registry 35.07"]
    # The agency saw the token once: the other partitions did not try it again.
    sent = {route: n for route, n in requests.items() if route.startswith("GET /registry/")}
    assert sum(sum(n.values()) for n in sent.values()) == 1, sent
    assert WRONG_TOKEN not in (state.message or "")


@pytest.mark.slow
def test_a_dead_agency_fails_a_whole_province_run_within_a_minute(point: Point) -> None:
    port = closed_port()
    point(f"http://127.0.0.1:{port}/registry")
    province = RegionScope()
    state, seconds, summary = _run("closed port, whole province", province)
    partitions = len(province.partitions())
    assert partitions == 38
    assert state.is_failed()
    assert seconds < LIMIT_S
    assert len(summary["failed"]) == partitions
    assert sum("circuit open" not in why for why in summary["failed"].values()) == 1
    assert f"{partitions} of {partitions} partitions failed" in (state.message or "")
