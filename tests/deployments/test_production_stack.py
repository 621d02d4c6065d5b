"""The production stack: Dockerfile, docker-compose.yml and .env.example, and the Prefect
server on PostgreSQL behind its auth string.

No image can be built here (no Docker daemon), so the compose file is validated by
docker-compose's own `config` (skipped without docker-compose, mandatory under CI=true),
checked against the README's list of services, and the Dockerfile is checked statically.
The Prefect server itself is run on the PostgreSQL at 127.0.0.1:5432 with
PREFECT_SERVER_API_AUTH_STRING, and one of the hub's flows runs against it.
"""

from __future__ import annotations

import json
import os
import re
import secrets
import shutil
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml
from sqlalchemy import create_engine, text

from deployments.prefect_server import ensure_server, healthy, stop_server
from integrations.settings import AGENCIES, DEVELOPMENT_PII_KEY, Settings, sandbox_token
from tests.conftest import PG_ADMIN_URL, _postgres_available

ROOT = Path(__file__).resolve().parents[2]
README_SECTION = "## Production stack (second way to run it)"
CETTAR = [sys.executable, "-m", "deployments.cli"]
NO_COMPOSE = "no docker-compose on PATH (Debian: apt-get install docker-compose)"


def _mandatory_in_ci(missing: str) -> None:
    # As with PostgreSQL and chromium (tests/conftest.py): CI must not skip these checks.
    if os.environ.get("CI") == "true":
        pytest.fail(f"CI requires what is missing: {missing}")
    pytest.skip(missing)


@pytest.fixture(scope="module")
def compose_config(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """`docker-compose config` of the stack with .env.example as its .env, parsed."""
    exe = shutil.which("docker-compose")
    if exe is None:
        _mandatory_in_ci(NO_COMPOSE)
    project = tmp_path_factory.mktemp("stack")
    for name in ("docker-compose.yml", "Dockerfile"):
        shutil.copy(ROOT / name, project / name)
    shutil.copytree(ROOT / "docker", project / "docker")
    shutil.copy(ROOT / ".env.example", project / ".env")
    # Nothing from this machine's environment may fill in a variable the env file misses.
    env = {"PATH": os.environ.get("PATH", ""), "HOME": str(project)}
    done = _compose(exe, project, env)
    assert done.returncode == 0, done.stderr
    assert done.stderr.strip() == "", done.stderr  # no warning about an unset variable
    config: dict[str, Any] = yaml.safe_load(done.stdout)
    return config


def _compose(
    exe: str | None, project: Path, env: dict[str, str]
) -> subprocess.CompletedProcess[str]:
    assert exe is not None
    return subprocess.run(
        [exe, "-f", str(project / "docker-compose.yml"), "config"],
        cwd=project,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )


def _env(config: dict[str, Any], service: str) -> dict[str, str]:
    return {k: str(v) for k, v in config["services"][service].get("environment", {}).items()}


def _example() -> dict[str, str]:
    pairs = {}
    for line in (ROOT / ".env.example").read_text().splitlines():
        if line.strip() and not line.lstrip().startswith("#"):
            key, _, value = line.partition("=")
            pairs[key.strip()] = value.strip()
    return pairs


def readme_services() -> list[str]:
    """The services the README's production-stack section lists in its table."""
    text_ = (ROOT / "README.md").read_text()
    assert README_SECTION in text_, f"README.md has no section {README_SECTION!r}"
    section = text_.split(README_SECTION, 1)[1].split("\n## ", 1)[0]
    return re.findall(r"^\| `([a-z0-9-]+)` \|", section, flags=re.MULTILINE)


# 1. The compose file


def test_the_compose_file_is_valid_and_its_services_are_the_readmes(
    compose_config: dict[str, Any],
) -> None:
    services = set(compose_config["services"])
    listed = readme_services()
    assert len(listed) == len(set(listed)), listed
    assert services == set(listed), (
        f"only in docker-compose.yml: {sorted(services - set(listed))}; "
        f"only in the README: {sorted(set(listed) - services)}"
    )
    assert {"postgres", "prefect-server", "worker", "sandbox"} <= services
    for name, service in compose_config["services"].items():
        assert service.get("healthcheck", {}).get("test"), f"{name} has no healthcheck"
        if service.get("image") == "cettar-hub:local":
            assert service.get("build"), name  # the image of this checkout's Dockerfile
            assert service.get("init") is True, f"{name}: PID 1 must forward signals"


def test_the_prefect_api_is_protected_and_each_side_has_its_own_database(
    compose_config: dict[str, Any],
) -> None:
    server, worker = _env(compose_config, "prefect-server"), _env(compose_config, "worker")
    auth = server["PREFECT_SERVER_API_AUTH_STRING"]
    assert auth and ":" in auth
    assert worker["PREFECT_API_AUTH_STRING"] == auth
    assert worker["PREFECT_API_URL"] == "http://prefect-server:4200/api"
    prefect_db = server["PREFECT_SERVER_DATABASE_CONNECTION_URL"]
    hub_db = worker["CETTAR_DATABASE_URL"]
    assert re.fullmatch(r"postgresql\+asyncpg://prefect:[^@]+@postgres:5432/prefect", prefect_db)
    assert re.fullmatch(r"postgresql\+psycopg://cettar:[^@]+@postgres:5432/cettar", hub_db)
    # The worker gets none of the other roles' passwords.
    assert worker["POSTGRES_PASSWORD"] == "" and worker["PREFECT_DB_PASSWORD"] == ""
    # The init script makes both databases; the server and the worker wait for it.
    init = (ROOT / "docker" / "postgres-init.sh").read_text()
    assert "CREATE DATABASE prefect OWNER prefect" in init
    assert "CREATE DATABASE cettar OWNER cettar" in init
    volumes = compose_config["services"]["postgres"]["volumes"]
    assert any(
        v.endswith("postgres-init.sh:/docker-entrypoint-initdb.d/10-cettar.sh:ro") for v in volumes
    )
    for name in ("prefect-server", "worker"):
        depends = compose_config["services"][name]["depends_on"]
        assert depends["postgres"]["condition"] == "service_healthy", name
    assert compose_config["services"]["worker"]["depends_on"]["prefect-server"] == {
        "condition": "service_healthy"
    }


def test_the_worker_runs_the_deployments_of_prefect_yaml_with_the_hubs_settings(
    compose_config: dict[str, Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    worker = compose_config["services"]["worker"]
    env = _env(compose_config, "worker")
    assert env["CETTAR_HOME"] == "/app"  # the pull step of prefect.yaml starts runs there
    assert env["PREFECT_FLOWS_HEARTBEAT_FREQUENCY"] == "60"
    start = (ROOT / "docker" / "worker-start.sh").read_text()
    pools = {
        d["work_pool"]["name"]
        for d in yaml.safe_load((ROOT / "prefect.yaml").read_text())["deployments"]
    }
    assert pools == {"cettar-process"}
    for step in (
        "cettar db upgrade",
        "prefect work-pool create cettar-process --type process",
        "prefect --no-prompt deploy --all",
        "cettar automations apply",
        "prefect worker start --pool cettar-process --type process",
    ):
        assert step in start, step
    assert worker["entrypoint"] == ["sh", "/app/docker/worker-start.sh"]

    # Every agency of the catalogue is configured from the env file, and the hub accepts
    # the worker's settings: no development PII key; sandbox tokens only on loopback.
    for agency in AGENCIES:
        assert f"CETTAR_{agency.upper()}_URL" in env, f"add CETTAR_{agency.upper()}_URL"
        assert f"CETTAR_{agency.upper()}_TOKEN" in env, f"add CETTAR_{agency.upper()}_TOKEN"
    assert env["CETTAR_PII_KEY"] != DEVELOPMENT_PII_KEY
    for name in list(os.environ):
        if name.startswith("CETTAR_"):
            monkeypatch.delenv(name)
    for name, value in env.items():
        if name.startswith("CETTAR_"):
            monkeypatch.setenv(name, value)
    settings = Settings(_env_file=None)
    assert settings.sqlalchemy_url == env["CETTAR_DATABASE_URL"]
    assert settings.agency_endpoint("registry")[1] == sandbox_token("registry")

    # The sandbox shares the worker's network, so those default URLs reach it.
    sandbox = compose_config["services"]["sandbox"]
    assert sandbox["network_mode"] == "service:worker"
    assert sandbox["command"][:5] == ["sandbox", "--host", "127.0.0.1", "--port", "8765"]
    assert env["CETTAR_REGISTRY_URL"] == "http://127.0.0.1:8765/registry"


def test_secrets_live_in_the_env_file_only(compose_config: dict[str, Any]) -> None:
    compose = (ROOT / "docker-compose.yml").read_text()
    example = _example()
    for key in ("POSTGRES_PASSWORD", "PREFECT_DB_PASSWORD", "HUB_DB_PASSWORD"):
        assert example[key].startswith("change-me"), key
        assert example[key] not in compose
        assert f"${{{key}:?" in compose, f"{key} must be required, not defaulted"
    for key in ("PREFECT_API_AUTH_STRING", "CETTAR_PII_KEY"):
        assert "change-me" in example[key], key
        assert f"${{{key}:?" in compose, f"{key} must be required, not defaulted"
    assert "change-me-" not in compose  # no value of the example, only its comments
    ignored = (ROOT / ".dockerignore").read_text().split()
    assert ".env" in ignored and ".venv" in ignored  # never baked into the image
    # The worker reads the hub's settings (CETTAR_*) from the same file.
    assert yaml.safe_load(compose)["services"]["worker"]["env_file"] == ".env"
    assert (
        compose_config["services"]["worker"]["environment"]["CETTAR_PII_KEY"]
        == (example["CETTAR_PII_KEY"])
    )


def test_without_an_env_file_the_stack_does_not_start(tmp_path: Path) -> None:
    exe = shutil.which("docker-compose")
    if exe is None:
        _mandatory_in_ci(NO_COMPOSE)
    shutil.copy(ROOT / "docker-compose.yml", tmp_path / "docker-compose.yml")
    done = _compose(exe, tmp_path, {"PATH": os.environ.get("PATH", ""), "HOME": str(tmp_path)})
    assert done.returncode != 0
    assert "set POSTGRES_PASSWORD in .env" in done.stderr, done.stderr


# 2. The Dockerfile, statically


def _instructions() -> list[tuple[str, str]]:
    joined = re.sub(r"\\\n", " ", (ROOT / "Dockerfile").read_text())
    out = []
    for line in joined.splitlines():
        line = line.strip()
        if line and not line.startswith("#"):
            word, _, rest = line.partition(" ")
            out.append((word.upper(), rest.strip()))
    return out


def test_the_dockerfile_pins_its_base_installs_the_lock_and_runs_cettar_unprivileged() -> None:
    steps = _instructions()
    froms = [arg for op, arg in steps if op == "FROM"]
    assert len(froms) == 1
    # An official python 3.11 slim image, pinned to a patch release (never `latest`).
    assert re.fullmatch(r"python:3\.11\.\d+-slim(-[a-z]+)?(@sha256:[0-9a-f]{64})?", froms[0])

    runs = " ".join(arg for op, arg in steps if op == "RUN")
    dev_uv = re.search(r'"uv==([0-9.]+)"', (ROOT / "dev").read_text())
    assert dev_uv, "./dev pins no uv version"
    assert f"uv=={dev_uv.group(1)}" in runs, "the image must use the uv version ./dev pins"
    syncs = re.findall(r"uv sync[^&]*", runs)
    assert syncs and all("--frozen" in s and "--no-dev" in s for s in syncs), syncs
    copies = [arg for op, arg in steps if op == "COPY"]
    assert any("uv.lock" in c for c in copies) and any(c.startswith(". ") for c in copies)

    users = [arg for op, arg in steps if op == "USER"]
    assert users and users[-1] not in ("root", "0"), users
    last_user = max(i for i, (op, _) in enumerate(steps) if op == "USER")
    assert all(op != "RUN" for op, _ in steps[last_user:]), "nothing may run as root after USER"
    entrypoints = [arg for op, arg in steps if op == "ENTRYPOINT"]
    assert len(entrypoints) == 1 and json.loads(entrypoints[0]) == ["cettar"]


# 3. The Prefect server on PostgreSQL, behind its auth string


@pytest.fixture
def prefect_database() -> Iterator[str]:
    """A fresh PostgreSQL database for a Prefect server, dropped afterwards."""
    problem = _postgres_available()
    if problem:
        _mandatory_in_ci(f"no PostgreSQL at 127.0.0.1:5432 ({problem})")
    name = f"cettar_prefect_auth_{uuid.uuid4().hex[:10]}"
    admin = create_engine(PG_ADMIN_URL, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f'CREATE DATABASE "{name}"'))
    try:
        yield f"postgresql+asyncpg://postgres@127.0.0.1:5432/{name}"
    finally:
        with admin.connect() as conn:
            conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.mark.slow
@pytest.mark.postgres
def test_a_flow_runs_against_the_prefect_server_on_postgresql_with_the_auth_string(
    prefect_database: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from integrations.store.engine import make_engine, upgrade
    from integrations.store.regions import load_regions

    auth = f"cettar:{secrets.token_hex(12)}"
    # The server process gets the environment of this one (deployments/prefect_server.py),
    # as the compose file's prefect-server service gets its own.
    monkeypatch.setenv("PREFECT_SERVER_DATABASE_CONNECTION_URL", prefect_database)
    monkeypatch.setenv("PREFECT_SERVER_API_AUTH_STRING", auth)
    for name in ("PREFECT_API_URL", "PREFECT_API_AUTH_STRING"):
        monkeypatch.delenv(name, raising=False)  # left by other tests' runs; not the server's
    settings = Settings(_env_file=None, data_dir=tmp_path / "data", prefect_port=_free_port())
    server = ensure_server(settings, configured_url=None, wait_s=90)
    try:
        api = server.api_url
        assert server.started_here
        # Probes need no password; everything else is refused without the right one.
        assert healthy(api)
        assert httpx.post(f"{api}/flow_runs/filter", json={}).status_code == 401
        wrong = httpx.post(f"{api}/flow_runs/filter", json={}, auth=("cettar", "wrong"))
        assert wrong.status_code == 401

        store_url = f"sqlite:///{tmp_path / 'data' / 'cettar.db'}"
        engine = make_engine(store_url)
        upgrade(engine)
        load_regions(engine)
        engine.dispose()
        env = {k: v for k, v in os.environ.items() if not k.startswith(("CETTAR_", "PREFECT_"))}
        env.update(
            {
                "PREFECT_API_URL": api,
                "PREFECT_API_AUTH_STRING": auth,
                "PREFECT_SERVER_ANALYTICS_ENABLED": "false",
                "PREFECT_HOME": str(tmp_path / "client"),
                "CETTAR_DATA_DIR": str(tmp_path / "data"),
                "CETTAR_DATABASE_URL": store_url,
            }
        )
        done = subprocess.run(
            [*CETTAR, "run", "scorecard", "--kecamatan", "35.07.01", "--json"],
            env=env,
            cwd=ROOT,
            capture_output=True,
            text=True,
            timeout=120,
        )
        assert done.returncode == 0, (done.stdout[-2000:], done.stderr[-2000:])
        result = json.loads(done.stdout.strip().splitlines()[-1])
        assert result["state"] == "Completed", result
        run_id = result["flow_run_url"].rsplit("/", 1)[1]

        user, _, password = auth.partition(":")
        basic = (user, password)
        read = httpx.get(f"{api}/flow_runs/{run_id}", auth=basic)
        assert read.status_code == 200, read.text
        assert read.json()["state"]["type"] == "COMPLETED"
        assert httpx.get(f"{api}/flow_runs/{run_id}").status_code == 401
        # The hub's automations reached the server through the same auth string.
        automations = httpx.post(f"{api}/automations/filter", json={}, auth=basic)
        assert automations.status_code == 200
        assert any(a["name"].startswith("cettar: ") for a in automations.json())
    finally:
        stop_server(settings)
        deadline = time.monotonic() + 30
        while healthy(server.api_url, timeout=0.5) and time.monotonic() < deadline:
            time.sleep(0.2)
