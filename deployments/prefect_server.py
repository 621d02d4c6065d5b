"""Find or start the Prefect API the hub's flows report to (never ephemeral mode)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import httpx

from integrations.settings import Settings


@dataclass(frozen=True)
class PrefectServer:
    """A reachable Prefect API and where its UI is."""

    api_url: str
    started_here: bool
    log_file: Path | None = None

    @property
    def ui_url(self) -> str:
        """The UI's base URL (the API URL without `/api`)."""
        return self.api_url.removesuffix("/api")

    def flow_run_url(self, flow_run_id: object) -> str:
        """Where a flow run is shown in the UI."""
        return f"{self.ui_url}/runs/flow-run/{flow_run_id}"


def healthy(api_url: str, timeout: float = 2.0) -> bool:
    """True when a Prefect API answers its health check at `api_url`."""
    try:
        return httpx.get(f"{api_url}/health", timeout=timeout).status_code == 200
    except httpx.HTTPError:
        return False


def server_env(settings: Settings) -> dict[str, str]:
    """Environment of a local Prefect server: its own home under the data dir, offline."""
    home = settings.data_dir / "prefect"
    port = settings.prefect_port
    return {
        **os.environ,
        "PREFECT_HOME": str(home),
        "PREFECT_SERVER_ANALYTICS_ENABLED": "false",
        "PREFECT_UI_API_URL": f"http://127.0.0.1:{port}/api",
        "PREFECT_SERVER_API_HOST": "127.0.0.1",
        "PREFECT_SERVER_API_PORT": str(port),
    }


def pid_file(settings: Settings) -> Path:
    """Where the pid of a server started by the hub is kept."""
    return settings.data_dir / "prefect" / "server.pid"


def server_command(port: int) -> list[str]:
    """The command that starts a local Prefect server on 127.0.0.1:`port` with this interpreter."""
    return [
        sys.executable,
        "-m",
        "prefect",
        "server",
        "start",
        "--host",
        "127.0.0.1",
        "--port",
        str(port),
    ]


def ensure_server(
    settings: Settings, configured_url: str | None, wait_s: float = 120.0
) -> PrefectServer:
    """Use the configured Prefect API, else the local one on the port (started if down)."""
    if configured_url:
        if not healthy(configured_url):
            raise RuntimeError(f"the Prefect API at {configured_url} does not answer /health")
        return PrefectServer(configured_url, started_here=False)
    api_url = f"http://127.0.0.1:{settings.prefect_port}/api"
    if healthy(api_url):
        return PrefectServer(api_url, started_here=False)
    env = server_env(settings)
    Path(env["PREFECT_HOME"]).mkdir(parents=True, exist_ok=True)
    log_file = settings.data_dir / "prefect" / "server.log"
    with log_file.open("ab") as log:
        proc = subprocess.Popen(  # noqa: S603 - our own interpreter, fixed arguments
            server_command(settings.prefect_port),
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            start_new_session=True,  # outlives the demo so its history stays browsable
        )
    pid_file(settings).write_text(str(proc.pid))
    deadline = time.monotonic() + wait_s
    while time.monotonic() < deadline:
        if healthy(api_url):
            return PrefectServer(api_url, started_here=True, log_file=log_file)
        if proc.poll() is not None:
            raise RuntimeError(f"the Prefect server exited with {proc.returncode}; see {log_file}")
        time.sleep(0.5)
    raise RuntimeError(
        f"the Prefect server did not become healthy in {wait_s:.0f} s; see {log_file}"
    )


def stop_server(settings: Settings) -> bool:
    """Stop a Prefect server the hub started; False when there was none."""
    path = pid_file(settings)
    if not path.exists():
        return False
    pid = int(path.read_text())
    path.unlink()
    try:
        os.killpg(pid, signal.SIGTERM)
    except ProcessLookupError:
        return False
    return True


def flow_run_env(settings: Settings) -> dict[str, str]:
    """Prefect settings every hub flow run runs with, as environment variables."""
    # Heartbeats let the server's automation crash a run whose process died
    # (deployments/automations.py). Served runs are child processes that read the
    # environment, so the settings go there as well as into this process's context.
    return {"PREFECT_FLOWS_HEARTBEAT_FREQUENCY": str(settings.flow_heartbeat_s)}


@contextmanager
def prefect_api(url: str, *, automations: bool = True) -> Iterator[None]:
    """Point Prefect at a real API for the enclosed block (never ephemeral mode).

    Flow runs of the block (and of processes it serves) send heartbeats, and the API gets
    the hub's automations, so a run whose process dies is marked Crashed.
    """
    from integrations.settings import get_settings

    settings = get_settings()
    os.environ["PREFECT_API_URL"] = url
    os.environ.setdefault("PREFECT_SERVER_ANALYTICS_ENABLED", "false")
    run_env = flow_run_env(settings)
    before = {name: os.environ.get(name) for name in run_env}
    os.environ.update(run_env)
    from prefect.settings import (
        PREFECT_API_URL,
        PREFECT_FLOWS_HEARTBEAT_FREQUENCY,
        temporary_settings,
    )

    with temporary_settings(
        updates={PREFECT_API_URL: url, PREFECT_FLOWS_HEARTBEAT_FREQUENCY: settings.flow_heartbeat_s}
    ):
        try:
            if automations:
                from deployments.automations import apply_or_warn

                apply_or_warn(settings)
            yield
        finally:
            for name, value in before.items():
                if value is None:
                    os.environ.pop(name, None)
                else:
                    os.environ[name] = value


def configured_prefect_url() -> str | None:
    """The PREFECT_API_URL in force, if any."""
    from prefect.settings import PREFECT_API_URL

    value = PREFECT_API_URL.value()
    return str(value) if value else None
