"""Prefect UI fixtures: a real Prefect server with one hub run on it, and Debian's chromium.

Programme managers follow the hub's runs in the Prefect UI, so these tests drive a real
browser against a real server. Without chromium or the `playwright` package they skip with
the reason; under `CI=true` both are mandatory and their absence fails the tests.
"""

from __future__ import annotations

import os
import socket
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any
from uuid import UUID

import pytest

from deployments.run_audit import flush_run_records
from tests.browser import chromium_or_skip

if TYPE_CHECKING:
    from playwright.sync_api import Page

# Navigation waits for the UI's first load (its assets and API calls); locators auto-wait.
NAVIGATION_TIMEOUT_MS = 60_000
UI_TIMEOUT_MS = 30_000

KABUPATEN = "35.78"  # Kota Surabaya: one partition keeps the run small and fast


@pytest.fixture(scope="module")
def chromium_executable() -> str:
    """The chromium binary Playwright drives; skipped without it, except in CI."""
    return chromium_or_skip("the Prefect UI tests")


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


@dataclass(frozen=True)
class HubRun:
    """A finished `sync-registry` run recorded by a real Prefect server."""

    ui_url: str
    flow_run_id: UUID
    summary: dict[str, Any]  # what the flow returned: totals per collection, reasons

    @property
    def page_url(self) -> str:
        """The flow run's page in the Prefect UI."""
        return f"{self.ui_url}/runs/flow-run/{self.flow_run_id}"


@pytest.fixture(scope="module")
def hub_run(chromium_executable: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[HubRun]:
    """Start a Prefect server on a free port and sync one kabupaten from the sandbox into it.

    The registry is served in-process on a real port with a raised bad-record rate, so the
    run quarantines records (whose IDs must still never show in the UI). The server is
    stopped at the end of the module.
    """
    from deployments.prefect_server import ensure_server, stop_server
    from deployments.prefect_server import prefect_api as use_prefect_api
    from integrations.settings import Settings, get_settings
    from integrations.store.engine import get_engine
    from sandbox.config import RegistryDataConfig, SandboxConfig
    from sandbox.server import serve_in_thread

    data_dir = tmp_path_factory.mktemp("ui-hub")
    settings = Settings(data_dir=data_dir, prefect_port=_free_port())
    sandbox = SandboxConfig(registry=RegistryDataConfig(households=1000, bad_rate=0.3))
    with pytest.MonkeyPatch.context() as env:
        env.setenv("PREFECT_SERVER_ANALYTICS_ENABLED", "false")
        env.delenv("PREFECT_API_URL", raising=False)  # restored when the module ends
        try:
            server = ensure_server(settings, configured_url=None)
            assert server.started_here, f"another Prefect server answers on {server.api_url}"
            with serve_in_thread(sandbox) as sandbox_url, use_prefect_api(server.api_url):
                env.setenv("CETTAR_DATA_DIR", str(data_dir))
                env.setenv("CETTAR_DATABASE_URL", f"sqlite:///{data_dir / 'store.db'}")
                env.setenv("CETTAR_REGISTRY_URL", f"{sandbox_url}/registry")
                get_settings.cache_clear()
                get_engine.cache_clear()
                flush_run_records()
                from flows.sync_registry import sync_registry
                from models.scope import RegionScope

                state = sync_registry(scope=RegionScope(kabupaten=[KABUPATEN]), return_state=True)
                flush_run_records()
                get_engine().dispose()
            assert state.is_completed(), f"the hub run ended {state.name}: {state.message}"
            flow_run_id = state.state_details.flow_run_id
            assert flow_run_id is not None
            yield HubRun(server.ui_url, flow_run_id, state.result())
        finally:
            stop_server(settings)
            get_settings.cache_clear()
            get_engine.cache_clear()


@pytest.fixture
def page(chromium_executable: str, hub_run: HubRun, tmp_path: Path) -> Iterator[Page]:
    """A headless chromium page; its last view is saved as `prefect-ui.png` in `tmp_path`.

    The browser starts after the hub run: while it is open, Playwright's sync API marks this
    thread's event loop as running, which Prefect's sync calls would then see.
    """
    from playwright.sync_api import expect, sync_playwright

    expect.set_options(timeout=UI_TIMEOUT_MS)
    args = ["--no-sandbox"] if os.geteuid() == 0 else []
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(
            executable_path=chromium_executable, headless=True, args=args
        )
        try:
            view = browser.new_page(viewport={"width": 1400, "height": 1000})
            view.set_default_navigation_timeout(NAVIGATION_TIMEOUT_MS)
            view.set_default_timeout(UI_TIMEOUT_MS)
            try:
                yield view
            finally:
                view.screenshot(path=tmp_path / "prefect-ui.png", full_page=True)
        finally:
            browser.close()
