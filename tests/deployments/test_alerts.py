"""Alerts on a real Prefect server: events reach a local webhook and a local SMTP server,
and a failed sync run gets its partitions re-run by the automation, once.

The session's Prefect test server runs the trigger and action services like any
`prefect server start`; the alert-mail and rerun deployments are served by a runner in a
child process (as `cettar serve` would), with the test's settings.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any, ClassVar

import pytest
from aiosmtpd.controller import Controller
from prefect import flow, get_client, tags
from prefect.client.schemas.filters import DeploymentFilter, DeploymentFilterName, FlowRunFilter

from deployments.automations import ALERTS, RERUN_FAILED, ensure_automations
from flows.sync_registry import sync_registry
from flows.verify_audit import verify_audit_chain
from integrations.settings import get_settings
from integrations.store.engine import get_engine, make_engine, upgrade
from tests.faults.endpoints import closed_port

BLOCK = "cettar-test-alerts"
MAILBOX = "province@example.test"
SERVED = """
from flows.alerts import send_alert
from flows.resync import rerun_failed_partitions
from prefect import serve
serve(
    send_alert.to_deployment(name="alert-mail"),
    rerun_failed_partitions.to_deployment(name="rerun-failed-partitions"),
)
"""


def _free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class _Hooks(BaseHTTPRequestHandler):
    received: ClassVar[list[dict[str, Any]]] = []

    def do_POST(self) -> None:
        body = self.rfile.read(int(self.headers.get("content-length", 0)))
        type(self).received.append(json.loads(body or b"{}"))
        self.send_response(200)
        self.end_headers()

    def log_message(self, *args: Any) -> None:
        pass


class _Mail:
    def __init__(self) -> None:
        self.messages: list[Any] = []

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        self.messages.append(envelope)
        return "250 OK"


def _until(what: str, ready: Callable[[], bool], timeout: float = 90.0) -> None:
    deadline = time.monotonic() + timeout
    while not ready():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.5)


@pytest.fixture
def alerting(
    prefect_api: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> Iterator[tuple[list[dict[str, Any]], _Mail]]:
    """A store, a webhook receiver, an SMTP server, the served deployments, the automations."""
    from prefect.blocks.notifications import CustomWebhookNotificationBlock

    hooks = ThreadingHTTPServer(("127.0.0.1", 0), _Hooks)
    _Hooks.received = []
    threading.Thread(target=hooks.serve_forever, daemon=True).start()
    mail = _Mail()
    smtp_port = _free_port()
    smtp = Controller(mail, hostname="127.0.0.1", port=smtp_port)
    smtp.start()
    url = f"sqlite:///{tmp_path / 'store.db'}"
    upgrade(make_engine(url))
    env = {
        "CETTAR_DATA_DIR": str(tmp_path),
        "CETTAR_DATABASE_URL": url,
        "CETTAR_REGISTRY_URL": f"http://127.0.0.1:{closed_port()}/registry",
        "CETTAR_ALERT_WEBHOOK_BLOCK": BLOCK,
        "CETTAR_ALERT_EMAIL_TO": json.dumps([MAILBOX]),
        "CETTAR_SMTP_HOST": "127.0.0.1",
        "CETTAR_SMTP_PORT": str(smtp_port),
        "CETTAR_SMTP_STARTTLS": "false",
    }
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    get_settings.cache_clear()
    get_engine.cache_clear()
    CustomWebhookNotificationBlock(
        name="cettar hub alerts",
        url=f"http://127.0.0.1:{hooks.server_port}/hook",
        json_data={"subject": "{{subject}}", "body": "{{body}}"},
    ).save(BLOCK, overwrite=True)
    runner = subprocess.Popen(
        [sys.executable, "-c", SERVED],
        env={**os.environ, **env, "PREFECT_API_URL": prefect_api},
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    names = ["alert-mail", "rerun-failed-partitions"]
    try:

        def deployed() -> bool:
            with get_client(sync_client=True) as client:
                found = client.read_deployments(
                    deployment_filter=DeploymentFilter(name=DeploymentFilterName(any_=names))
                )
            return len(found) == 2

        _until("the served deployments", deployed)
        changes = {c.name: c.action for c in ensure_automations(get_settings())}
        assert {changes[n] for n in [*ALERTS, RERUN_FAILED]} <= {"created", "updated", "unchanged"}
        yield _Hooks.received, mail
    finally:
        # The session's server is shared: no automation of this test may outlive it.
        runner.terminate()
        runner.wait(timeout=30)
        with get_client(sync_client=True) as client:
            for name in [*ALERTS, RERUN_FAILED]:
                for automation in client.read_automations_by_name(name):
                    client.delete_automation(automation.id)
            # Nor the deployments it served: other tests' automations would find them.
            for deployment in client.read_deployments(
                deployment_filter=DeploymentFilter(name=DeploymentFilterName(any_=names))
            ):
                client.delete_deployment(deployment.id)
        smtp.stop()
        hooks.shutdown()
        get_engine().dispose()
        get_settings.cache_clear()
        get_engine.cache_clear()


@flow(name="probe-scheduled-job")
def _failing_job() -> None:
    """A scheduled job that fails."""
    raise RuntimeError("the nightly job broke")


@pytest.mark.slow
def test_alerts_reach_the_webhook_and_the_mailbox_and_a_failed_sync_is_rerun_once(
    alerting: tuple[list[dict[str, Any]], _Mail],
) -> None:
    hooks, mail = alerting

    # A broken audit chain: the nightly check fails and emits cettar.audit.broken.
    from datetime import UTC, datetime

    from sqlalchemy import update

    from integrations.store.audit import ChainWriter
    from integrations.store.tables import AUDIT
    from models.handoffs import HandoffState

    with get_engine().begin() as conn:
        writer = ChainWriter(conn)
        writer.append(
            "H-1", None, HandoffState.OPEN, actor="hub", reason="created", at=datetime.now(UTC)
        )
        writer.flush()
    with get_engine().begin() as conn:
        conn.execute(update(AUDIT).values(reason="edited later"))
    assert verify_audit_chain(return_state=True).is_failed()

    # A scheduled run fails (tagged like the scheduled deployments' runs).
    with tags("scheduled"):
        assert _failing_job(return_state=True).is_failed()

    def hooked(event: str) -> bool:
        return any(event in h.get("subject", "") for h in hooks)

    def mailed(event: str) -> bool:
        return any(event in e.content.decode() for e in mail.messages)

    for event in ("cettar.audit.broken", "prefect.flow-run.Failed"):
        _until(f"the webhook alert for {event}", lambda e=event: hooked(e))
        _until(f"the mail alert for {event}", lambda e=event: mailed(e))
    assert all(e.rcpt_tos == [MAILBOX] for e in mail.messages)

    # A sync run whose agency is down: the automation runs the re-run job for it, once (the
    # re-run fails too, and a failed re-run is not re-run).
    failed = sync_registry(return_state=True)
    assert failed.is_failed()
    failed_id = str(failed.state_details.flow_run_id)

    def reruns() -> list[Any]:
        with get_client(sync_client=True) as client:
            deployment = client.read_deployment_by_name(
                "rerun-failed-partitions/rerun-failed-partitions"
            )
            return client.read_flow_runs(
                flow_run_filter=FlowRunFilter(deployment_id={"any_": [deployment.id]})  # type: ignore[arg-type]
            )

    _until("the re-run of the failed sync", lambda: bool(reruns()))
    _until("the re-run to finish", lambda: all(r.state and r.state.is_final() for r in reruns()))
    time.sleep(10)  # room for a second, looping re-run to appear if the guard failed
    (rerun,) = reruns()
    assert str(rerun.parameters["flow_run_id"]) == failed_id
    assert rerun.state is not None and rerun.state.is_failed()
