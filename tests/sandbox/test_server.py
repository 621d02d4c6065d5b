"""The sandbox on a real port (uvicorn in a thread): paging, drops and truncation on the wire."""

from __future__ import annotations

import json

import httpx
import pytest

from sandbox.config import FaultConfig, RegistryDataConfig, SandboxConfig
from sandbox.server import serve_in_thread
from tests.sandbox.conftest import ADMIN_AUTH, REGISTRY_AUTH, read_all

pytestmark = pytest.mark.slow


def test_paging_over_a_real_port_then_faults_on_the_wire() -> None:
    config = SandboxConfig(registry=RegistryDataConfig(households=600))
    with (
        serve_in_thread(config) as root,
        httpx.Client(base_url=root, headers=REGISTRY_AUTH, timeout=10.0) as client,
    ):
        records = read_all(client, "households", limit=128)
        ids = [r["id"] for r in records]
        assert len(ids) == len(set(ids)) == 600
        assert (
            client.get("/registry/v1/households", headers={"Authorization": ""}).status_code == 401
        )

        client.put("/_admin/faults", json={"drop_rate": 1.0}, headers=ADMIN_AUTH)
        for _ in range(2):
            with pytest.raises(httpx.RemoteProtocolError):
                client.get("/registry/v1/households")

        client.put("/_admin/faults", json={"truncate_rate": 1.0}, headers=ADMIN_AUTH)
        response = client.get("/registry/v1/recipients")
        assert response.status_code == 200
        with pytest.raises(json.JSONDecodeError):
            response.json()

        client.put("/_admin/faults", json={}, headers=ADMIN_AUTH)
        assert client.get("/registry/v1/recipients").status_code == 200
        stats = client.get("/_admin/stats", headers=ADMIN_AUTH).json()["requests"]
        assert stats["GET /registry/v1/households"]["dropped"] == 2
        assert stats["GET /registry/v1/recipients"] == {"200": 1, "truncated": 1}


def test_server_stops_cleanly_and_frees_the_port() -> None:
    config = SandboxConfig(
        registry=RegistryDataConfig(households=50), faults=FaultConfig(rate_limit_rate=1.0)
    )
    with serve_in_thread(config) as root:
        answer = httpx.get(f"{root}/registry/v1/households", headers=REGISTRY_AUTH)
        assert answer.status_code == 429 and answer.headers["Retry-After"] == "1"
    with pytest.raises(httpx.ConnectError):
        httpx.get(f"{root}/registry/v1/households", headers=REGISTRY_AUTH, timeout=2.0)
