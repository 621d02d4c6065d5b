"""Cached agency pages are the live pages, byte for byte, cursors and bad records too."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from pydantic import BaseModel

from models.contracts.registry import Household, Recipient
from sandbox.app import create_app
from sandbox.config import FaultConfig, RegistryDataConfig, SandboxConfig, default_token
from sandbox.page_cache import (
    CACHED,
    CACHED_COLLECTIONS,
    REGISTRY_AGENCY,
    PageCache,
    prerender,
    prerender_config,
)
from sandbox.transport import SyncASGITransport
from tests.sandbox.conftest import ADMIN_AUTH, REGISTRY_AUTH, state_of

# Many broken records (a fifth of households and enrolments) so every kind of hostile
# record is on some page; a small limit so most kecamatan have several pages and cursors.
HOUSEHOLDS = 900
LIMIT = 3
CONFIG = SandboxConfig(registry=RegistryDataConfig(seed=7, households=HOUSEHOLDS, bad_rate=0.2))
MODELS: dict[str, type[BaseModel]] = {"households": Household, "recipients": Recipient}

Client = Callable[[SandboxConfig], tuple[FastAPI, httpx.Client]]


@pytest.fixture
def client_of() -> Iterator[Client]:
    clients: list[httpx.Client] = []

    def make(config: SandboxConfig) -> tuple[FastAPI, httpx.Client]:
        app = create_app(config)
        client = httpx.Client(
            transport=SyncASGITransport(app), base_url="http://sandbox", headers=REGISTRY_AUTH
        )
        clients.append(client)
        return app, client

    yield make
    for c in clients:
        c.close()


def chain(
    client: httpx.Client,
    collection: str,
    limit: int = LIMIT,
    agency: str = REGISTRY_AGENCY,
    **params: Any,
) -> list[bytes]:
    """The raw bodies of every page of one query, following next_cursor."""
    query: dict[str, Any] = {"limit": limit, **params}
    bodies: list[bytes] = []
    auth = {"Authorization": f"Bearer {default_token(agency)}"}
    while True:
        response = client.get(f"/{agency}/v1/{collection}", params=query, headers=auth)
        assert response.status_code == 200, response.text
        bodies.append(response.content)
        cursor = json.loads(response.content)["next_cursor"]
        if cursor is None:
            return bodies
        query["cursor"] = cursor


def kecamatan_codes(app: FastAPI) -> list[str]:
    return [k.code for k in state_of(app).registry.layout.kecamatan]


def test_every_cached_page_is_byte_identical_to_the_live_page(
    client_of: Client, tmp_path: Path
) -> None:
    live_app, live = client_of(CONFIG)
    _, cached = client_of(CONFIG.model_copy(update={"page_cache_dir": tmp_path}))
    pages = bad = 0
    for collection in CACHED_COLLECTIONS:
        for kec in kecamatan_codes(live_app):
            want = chain(live, collection, kecamatan=kec)
            # First read renders and stores the pages, the second serves them from disk.
            assert chain(cached, collection, kecamatan=kec) == want, (collection, kec)
            assert chain(cached, collection, kecamatan=kec) == want, (collection, kec)
            pages += len(want)
            for body in want:
                for record in json.loads(body)["data"]:
                    try:
                        MODELS[collection].model_validate(record)
                    except ValueError:
                        bad += 1
        # The province-wide query (no kecamatan filter) and an incremental one.
        assert chain(cached, collection) == chain(live, collection)
        since = "2025-07-01T00:00:00+07:00"
        assert chain(cached, collection, updated_since=since) == chain(
            live, collection, updated_since=since
        )
    files = list(tmp_path.rglob("*.json"))
    assert pages > 2 * len(kecamatan_codes(live_app))
    assert len(files) >= pages
    # Hostile records are served as they are, not cleaned up on the way through the cache.
    assert bad > 100


def test_the_other_agencies_cached_pages_are_their_live_pages(
    client_of: Client, tmp_path: Path
) -> None:
    live_app, live = client_of(CONFIG)
    cached_app, cached = client_of(CONFIG.model_copy(update={"page_cache_dir": tmp_path}))
    cache = state_of(cached_app).page_cache
    assert cache is not None
    others = sorted((a, c) for a, c in CACHED if a != REGISTRY_AGENCY)
    assert {a for a, _ in others} == {"pkh", "desa", "pertanian", "statistik", "puskesmas"}
    codes = kecamatan_codes(live_app)[:8]
    for agency, collection in others:
        for kec in codes:
            want = chain(live, collection, 50, agency, kecamatan=kec)
            assert chain(cached, collection, 50, agency, kecamatan=kec) == want
        want = chain(live, collection, 50, agency)
        assert chain(cached, collection, 50, agency) == want
        assert sum(len(json.loads(b)["data"]) for b in want) > 0, (agency, collection)
        # Stored on first read: the folder of this collection holds the pages.
        assert (cache.directory / "epoch-0" / f"{agency}.{collection}").is_dir()
        since = "2026-11-20T00:00:00+07:00"
        want = chain(live, collection, 200, agency, updated_since=since)
        assert chain(cached, collection, 200, agency, updated_since=since) == want
    # The inbox's decisions depend on what the hub delivered: never cached.
    assert not cache.serves("kecamatan", "decisions")


def test_prerendered_pages_are_the_live_pages_and_are_read_from_disk(
    client_of: Client, tmp_path: Path
) -> None:
    config = CONFIG.model_copy(update={"page_cache_dir": tmp_path})
    written = prerender_config(config, LIMIT)
    assert written > 0
    # A second pre-render finds every page on disk.
    assert prerender_config(config, LIMIT) == 0
    live_app, live = client_of(CONFIG)
    cached_app, cached = client_of(config)
    cache = state_of(cached_app).page_cache
    assert cache is not None
    codes = kecamatan_codes(live_app)[:40]
    for kec in codes:
        for collection in CACHED_COLLECTIONS:
            assert chain(cached, collection, kecamatan=kec) == chain(
                live, collection, kecamatan=kec
            )
    # Served from the files: a page file edited on disk is what the client gets.
    path = cache.path("households", 0, since=None, after=None, kecamatan=codes[0], limit=LIMIT)
    assert path.exists()
    path.write_bytes(b'{"data":[],"next_cursor":null}')
    assert (
        cached.get(
            "/registry/v1/households", params={"limit": LIMIT, "kecamatan": codes[0]}
        ).content
        == b'{"data":[],"next_cursor":null}'
    )


def test_each_epoch_has_its_own_pages(client_of: Client, tmp_path: Path) -> None:
    _, live = client_of(CONFIG)
    cached_app, cached = client_of(CONFIG.model_copy(update={"page_cache_dir": tmp_path}))
    before = chain(cached, "households", limit=100)
    for client in (live, cached):
        assert client.post("/_admin/epoch", json={"epoch": 2}, headers=ADMIN_AUTH).is_success
    after = chain(cached, "households", limit=100)
    assert after == chain(live, "households", limit=100)
    assert after != before
    assert state_of(cached_app).epoch == 2


def test_faults_strike_cached_pages_as_they_strike_live_ones(
    client_of: Client, tmp_path: Path
) -> None:
    faulty = CONFIG.model_copy(update={"faults": FaultConfig(truncate_rate=0.3, error_rate=0.1)})
    live_app, live = client_of(faulty)
    _, cached = client_of(faulty.model_copy(update={"page_cache_dir": tmp_path}))
    statuses = set()
    for kec in kecamatan_codes(live_app)[:60]:
        params: dict[str, str | int] = {"limit": LIMIT, "kecamatan": kec}
        want = live.get("/registry/v1/households", params=params)
        got = cached.get("/registry/v1/households", params=params)
        assert (got.status_code, got.content) == (want.status_code, want.content)
        statuses.add(want.status_code)
    assert {200, 500, 503} & statuses


def test_another_configuration_never_reads_these_pages(tmp_path: Path) -> None:
    a = state_of(create_app(CONFIG.model_copy(update={"page_cache_dir": tmp_path}))).page_cache
    other = CONFIG.model_copy(
        update={
            "registry": CONFIG.registry.model_copy(update={"bad_rate": 0.1}),
            "page_cache_dir": tmp_path,
        }
    )
    b = state_of(create_app(other)).page_cache
    assert isinstance(a, PageCache) and isinstance(b, PageCache)
    assert a.directory != b.directory
    assert a.directory.name.startswith(f"seed7-households{HOUSEHOLDS}-")
    # Pre-rendering one kecamatan touches only that kecamatan's pages.
    assert prerender(a, LIMIT, kecamatan=["35.01.01"]) > 0
    assert not b.directory.exists()


def test_the_sandbox_command_prerenders_into_its_page_cache(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from typer.testing import CliRunner

    import sandbox.server
    from deployments.cli import app

    served: list[SandboxConfig] = []
    monkeypatch.setattr(sandbox.server, "run", lambda **kw: served.append(kw["config"]))
    runner = CliRunner()
    args = ["sandbox", "--households", "300", "--page-cache", str(tmp_path)]
    result = runner.invoke(app, [*args, "--prerender", "50"])
    assert result.exit_code == 0, result.output
    assert "registry pages of 50 rendered into" in result.stdout
    assert served[0].page_cache_dir == tmp_path
    assert any(tmp_path.rglob("50-*.json"))
    refused = runner.invoke(app, ["sandbox", "--prerender", "50"])
    assert refused.exit_code == 2
    assert "--prerender needs --page-cache" in refused.output
