"""Fault injection in-process: 429, 5xx, drops, truncation, latency, runtime changes."""

from __future__ import annotations

import asyncio
import json
import time
from collections import Counter
from collections.abc import Callable

import httpx
import pytest
from fastapi import FastAPI

from sandbox.app import create_app
from sandbox.config import FaultConfig, RegistryDataConfig, SandboxConfig
from sandbox.transport import SandboxASGITransport
from tests.sandbox.conftest import ADMIN_AUTH, REGISTRY_AUTH

MakeClient = Callable[[SandboxConfig], tuple[FastAPI, httpx.Client]]
URL = "/registry/v1/households"
DATA = RegistryDataConfig(households=400)


def _config(**faults: float) -> SandboxConfig:
    return SandboxConfig(registry=DATA, faults=FaultConfig(**faults))


def test_rate_limit_carries_retry_after(make_client: MakeClient) -> None:
    _, client = make_client(_config(rate_limit_rate=1.0, retry_after_s=2.0))
    response = client.get(URL)
    assert response.status_code == 429
    assert response.headers["Retry-After"] == "2"
    assert response.json()["error"] == "rate_limited"
    client.put(
        "/_admin/faults", json={"rate_limit_rate": 1.0, "retry_after_s": 0.5}, headers=ADMIN_AUTH
    )
    assert client.get(URL).headers["Retry-After"] == "0.5"


def test_server_errors_come_at_the_configured_rate(make_client: MakeClient) -> None:
    _, client = make_client(_config(error_rate=0.3))
    statuses = Counter(client.get(URL, params={"limit": 1}).status_code for _ in range(200))
    errors = statuses[500] + statuses[503]
    assert set(statuses) <= {200, 500, 503}
    assert 35 <= errors <= 85  # 60 expected, sd 6.5
    assert statuses[500] > 0 and statuses[503] > 0
    stats = client.get("/_admin/stats", headers=ADMIN_AUTH).json()["requests"][f"GET {URL}"]
    assert stats.get("500", 0) + stats.get("503", 0) == errors


def test_fault_sequence_is_deterministic_per_seed(make_client: MakeClient) -> None:
    runs = []
    for seed in (7, 7, 8):
        _, client = make_client(
            SandboxConfig(
                registry=DATA, faults=FaultConfig(error_rate=0.2, rate_limit_rate=0.2, seed=seed)
            )
        )
        runs.append([client.get(URL, params={"limit": 1}).status_code for _ in range(40)])
    assert runs[0] == runs[1] != runs[2]


def test_dropped_connection_raises_remote_protocol_error(make_client: MakeClient) -> None:
    _, client = make_client(_config(drop_rate=1.0))
    for _ in range(3):
        with pytest.raises(httpx.RemoteProtocolError):
            client.get(URL)
    stats = client.get("/_admin/stats", headers=ADMIN_AUTH).json()["requests"][f"GET {URL}"]
    assert stats == {"dropped": 3}


def test_dropped_connection_via_the_async_transport() -> None:
    app = create_app(_config(drop_rate=1.0))

    async def fetch() -> None:
        transport = SandboxASGITransport(app)
        async with httpx.AsyncClient(
            transport=transport, base_url="http://sandbox", headers=REGISTRY_AUTH
        ) as client:
            with pytest.raises(httpx.RemoteProtocolError):
                await client.get(URL)
            await client.put("/_admin/faults", json={}, headers=ADMIN_AUTH)
            response = await client.get(URL, params={"limit": 3})
            assert response.status_code == 200 and len(response.json()["data"]) == 3

    asyncio.run(fetch())


def test_truncated_page_is_not_json(make_client: MakeClient) -> None:
    _, client = make_client(_config(truncate_rate=1.0))
    response = client.get(URL)
    assert response.status_code == 200
    assert int(response.headers["Content-Length"]) == len(response.content) > 0
    with pytest.raises(json.JSONDecodeError):
        response.json()
    stats = client.get("/_admin/stats", headers=ADMIN_AUTH).json()["requests"][f"GET {URL}"]
    assert stats == {"truncated": 1}


def test_latency_and_read_timeout(make_client: MakeClient) -> None:
    _, client = make_client(_config(latency_ms=60))
    began = time.perf_counter()
    assert client.get(URL, params={"limit": 1}).status_code == 200
    assert time.perf_counter() - began >= 0.05
    client.put("/_admin/faults", json={"latency_ms": 2000}, headers=ADMIN_AUTH)
    with pytest.raises(httpx.ReadTimeout):
        client.get(URL, params={"limit": 1}, timeout=0.2)


def test_faults_change_at_runtime_and_spare_admin_routes(make_client: MakeClient) -> None:
    _, client = make_client(_config(error_rate=1.0))
    assert client.get(URL).status_code in (500, 503)
    assert client.get("/_admin/faults", headers=ADMIN_AUTH).json()["error_rate"] == 1.0
    assert client.get("/_admin/stats", headers=ADMIN_AUTH).status_code == 200
    put = client.put("/_admin/faults", json={"error_rate": 0.0}, headers=ADMIN_AUTH)
    assert put.status_code == 200 and put.json()["error_rate"] == 0.0
    assert client.get(URL).status_code == 200
    invalid = client.put(
        "/_admin/faults", json={"error_rate": 0.7, "drop_rate": 0.7}, headers=ADMIN_AUTH
    )
    assert invalid.status_code == 422 and invalid.json()["error"] == "validation_error"


def test_auth_is_checked_before_faults(make_client: MakeClient) -> None:
    _, client = make_client(_config(error_rate=1.0))
    response = client.get(URL, headers={"Authorization": "Bearer nope"})
    assert response.status_code == 401
