"""Shared fixtures: a small sandbox app reached through the sync in-process transport."""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Iterable, Iterator
from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from pydantic import BaseModel, ValidationError

from sandbox.app import create_app
from sandbox.config import (
    DEFAULT_ADMIN_TOKEN,
    DEFAULT_REGISTRY_TOKEN,
    CoordinationConfig,
    RegistryDataConfig,
    SandboxConfig,
    default_token,
)
from sandbox.coordination_data import CoordinationData
from sandbox.source_paging import SourceRecord
from sandbox.state import SandboxState
from sandbox.transport import SyncASGITransport

REGISTRY_AUTH = {"Authorization": f"Bearer {DEFAULT_REGISTRY_TOKEN}"}
ADMIN_AUTH = {"Authorization": f"Bearer {DEFAULT_ADMIN_TOKEN}"}


def auth(agency: str) -> dict[str, str]:
    """The Authorization header of an agency's default token."""
    return {"Authorization": f"Bearer {default_token(agency)}"}


def state_of(app: FastAPI) -> SandboxState:
    """The sandbox state behind an app."""
    state = app.state.sandbox
    assert isinstance(state, SandboxState)
    return state


def read_agency(
    client: httpx.Client, agency: str, collection: str, limit: int = 500, **params: Any
) -> list[dict[str, Any]]:
    """Follow next_cursor through one agency collection; every record in serving order."""
    out: list[dict[str, Any]] = []
    query: dict[str, Any] = {"limit": limit, **params}
    while True:
        response = client.get(f"/{agency}/v1/{collection}", params=query, headers=auth(agency))
        assert response.status_code == 200, response.text
        page = response.json()
        out.extend(page["data"])
        if page["next_cursor"] is None:
            return out
        query["cursor"] = page["next_cursor"]


def read_all(
    client: httpx.Client, collection: str, limit: int = 500, **params: Any
) -> list[dict[str, Any]]:
    """Follow next_cursor until the last page; return every record in serving order."""
    return read_agency(client, "registry", collection, limit, **params)


def coordination_data(households: int, **coordination: Any) -> CoordinationData:
    """The coordination data over a registry of `households`, with these coordination settings."""
    config = SandboxConfig(
        registry=RegistryDataConfig(households=households),
        coordination=CoordinationConfig(**coordination),
    )
    return CoordinationData.from_config(config)


def bad_kinds(items: Iterable[SourceRecord], model: type[BaseModel]) -> Counter[str]:
    """How many served records are broken, per kind; asserts exactly those fail `model`."""
    kinds = Counter[str]()
    for item in items:
        try:
            model.model_validate(item.record)
            valid = True
        except ValidationError:
            valid = False
        assert valid == (item.bad is None), (item.record, item.bad)
        if item.bad is not None:
            kinds[item.bad] += 1
    return kinds


@pytest.fixture
def make_client() -> Iterator[Callable[[SandboxConfig], tuple[FastAPI, httpx.Client]]]:
    """Factory of (app, client) pairs with the registry token; all closed at teardown."""
    clients: list[httpx.Client] = []

    def make(config: SandboxConfig) -> tuple[FastAPI, httpx.Client]:
        app = create_app(config)
        client = httpx.Client(
            transport=SyncASGITransport(app), base_url="http://sandbox", headers=REGISTRY_AUTH
        )
        clients.append(client)
        return app, client

    yield make
    for client in clients:
        client.close()


@pytest.fixture(scope="module")
def small() -> Iterator[tuple[FastAPI, httpx.Client]]:
    """A read-only 2,000-household sandbox shared by a test module (do not change its epoch)."""
    app = create_app(SandboxConfig(registry=RegistryDataConfig(households=2000)))
    with httpx.Client(
        transport=SyncASGITransport(app), base_url="http://sandbox", headers=REGISTRY_AUTH
    ) as client:
        yield app, client
