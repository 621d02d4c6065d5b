"""Flow fixtures: the sandbox on a real port and the hub pointed at it and at a fresh store."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

import httpx
import pytest

from integrations.settings import get_settings
from integrations.store.engine import get_engine
from sandbox.config import DEFAULT_ADMIN_TOKEN, RegistryDataConfig, SandboxConfig
from sandbox.registry_data import RegistryData
from sandbox.server import serve_in_thread

DATA = RegistryDataConfig(seed=7, households=1500)


@dataclass
class Sandbox:
    """A running sandbox and an admin client for it."""

    url: str
    admin: httpx.Client

    def set_epoch(self, epoch: int) -> None:
        """Advance the sandbox's data to an epoch of updates."""
        self.admin.post("/_admin/epoch", json={"epoch": epoch}).raise_for_status()

    def data(self, epoch: int) -> RegistryData:
        """The generator the sandbox serves from, at an epoch (ground truth)."""
        data = RegistryData(DATA)
        data.epoch = epoch
        return data


@pytest.fixture(scope="session")
def sandbox() -> Iterator[Sandbox]:
    """The sandbox registry on a real port for the whole session."""
    with (
        serve_in_thread(SandboxConfig(registry=DATA)) as url,
        httpx.Client(
            base_url=url, headers={"Authorization": f"Bearer {DEFAULT_ADMIN_TOKEN}"}
        ) as admin,
    ):
        yield Sandbox(url, admin)


@pytest.fixture
def hub(
    sandbox: Sandbox, store_url: str, prefect_api: str, monkeypatch: pytest.MonkeyPatch
) -> Iterator[str]:
    """The hub's settings pointed at the sandbox and a fresh store; yields the store URL."""
    sandbox.set_epoch(0)
    monkeypatch.setenv("CETTAR_DATABASE_URL", store_url)
    monkeypatch.setenv("CETTAR_REGISTRY_URL", f"{sandbox.url}/registry")
    monkeypatch.setenv("CETTAR_HTTP_BACKOFF_BASE_S", "0.01")
    get_settings.cache_clear()
    get_engine.cache_clear()
    yield store_url
    get_engine().dispose()
    get_settings.cache_clear()
    get_engine.cache_clear()
