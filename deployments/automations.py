"""Automations the hub keeps on its Prefect server: alerts, re-runs, dead runs Crashed.

Alerts: a failed, crashed or late scheduled run, a broken audit chain and a quarantine spike
go to the notification block named by `CETTAR_ALERT_WEBHOOK_BLOCK` and, through the
`send-alert/alert-mail` deployment, by e-mail to `CETTAR_ALERT_EMAIL_TO` (the hub's own
SMTP settings). A sync run with failed partitions gets the `rerun-failed-partitions`
deployment run for it, once (a re-run that fails again is not re-run).

A flow run whose process is killed (SIGKILL, OOM, a lost machine) never reports a final
state and would stay Running for good. Every hub flow run sends a heartbeat event
(`prefect.flow-run.heartbeat`, every `flow_heartbeat_s`; see `prefect_api` in
`deployments/prefect_server.py`), and a proactive automation crashes a run whose last
heartbeat is older than `flow_crash_after_s` while no final state has arrived. This is
Prefect's own zombie-run detection: the server's trigger service does the watching, so it
works whether a run was started by `cettar serve`, `cettar sync` or `cettar run`.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from flows.signals import AUDIT_CHAIN_BROKEN, QUARANTINE_SPIKE, SYNC_FAILED
from integrations.settings import Settings, get_settings

__all__ = [
    "ALERTS",
    "CRASH_DEAD_RUNS",
    "RERUN_FAILED",
    "AutomationChange",
    "apply_or_warn",
    "crash_dead_runs",
    "ensure_automations",
]

CRASH_DEAD_RUNS = "cettar: crash flow runs without heartbeat"
"""Name of the automation; the hub finds (and updates) it by this name."""

# Events that end a run's wait for its next heartbeat: another heartbeat, or a final state.
_LIVELY = (
    "prefect.flow-run.heartbeat",
    "prefect.flow-run.Completed",
    "prefect.flow-run.Failed",
    "prefect.flow-run.Cancelled",
    "prefect.flow-run.Crashed",
)


@dataclass(frozen=True)
class AutomationChange:
    """What `ensure_automations` did with one automation."""

    name: str
    action: str  # "created", "updated", "unchanged" or "skipped"
    automation_id: str

    def as_dict(self) -> dict[str, str]:
        """A plain dict for JSON output."""
        return {"name": self.name, "action": self.action, "id": self.automation_id}


def crash_dead_runs(crash_after_s: int) -> Any:
    """The automation that crashes a flow run `crash_after_s` after its last heartbeat."""
    from prefect.client.schemas.objects import StateType
    from prefect.events.actions import ChangeFlowRunState
    from prefect.events.schemas.automations import AutomationCore, EventTrigger, Posture
    from prefect.events.schemas.events import ResourceSpecification

    return AutomationCore(
        name=CRASH_DEAD_RUNS,
        description=(
            "Marks a flow run Crashed when it has sent no heartbeat for "
            f"{crash_after_s} s and reported no final state: its process died."
        ),
        enabled=True,
        trigger=EventTrigger(
            match=ResourceSpecification({"prefect.resource.id": "prefect.flow-run.*"}),
            after={"prefect.flow-run.heartbeat"},
            expect=set(_LIVELY),
            # One watch per flow run: each run's silence is timed on its own.
            for_each={"prefect.resource.id"},
            posture=Posture.Proactive,
            threshold=1,
            within=timedelta(seconds=crash_after_s),
        ),
        actions=[
            ChangeFlowRunState(
                state=StateType.CRASHED,
                name="Crashed",
                message=(
                    f"No heartbeat for {crash_after_s} s: the flow run's process is gone "
                    "(killed or its machine lost)."
                ),
            )
        ],
    )


ALERTS = {
    "cettar: scheduled run failed or late": (
        {"prefect.flow-run.Failed", "prefect.flow-run.Crashed", "prefect.flow-run.Late"},
        {"prefect.resource.id": "prefect.flow-run.*"},
        {"prefect.resource.id": "prefect.tag.scheduled"},
    ),
    "cettar: audit chain broken": (
        {AUDIT_CHAIN_BROKEN},
        {"prefect.resource.id": "cettar.audit-chain"},
        None,
    ),
    "cettar: quarantine spike": (
        {QUARANTINE_SPIKE},
        {"prefect.resource.id": "cettar.source.*"},
        None,
    ),
}
"""Alert automations by name: (events, resource match, related-resource match)."""
RERUN_FAILED = "cettar: re-run failed sync partitions"
ALERT_DEPLOYMENT = "send-alert/alert-mail"
RERUN_DEPLOYMENT = "rerun-failed-partitions/rerun-failed-partitions"

_SUBJECT = "CETTAR Hub: {{ event.event }} {{ event.resource.get('prefect.resource.name', '') }}"
_BODY = (
    "{{ event.event }} at {{ event.occurred }}\n"
    "resource: {{ event.resource.id }}\n"
    "details: {{ event.payload }}\n"
    "{% if flow_run %}flow run: {{ flow_run.name }} ({{ flow_run.state.name }}: "
    "{{ flow_run.state.message }}){% endif %}"
)


def _trigger(events: set[str], match: dict[str, str], related: dict[str, str] | None) -> Any:
    from prefect.events.schemas.automations import EventTrigger, Posture
    from prefect.events.schemas.events import ResourceSpecification

    return EventTrigger(
        match=ResourceSpecification(match),
        match_related=ResourceSpecification(related) if related else ResourceSpecification({}),
        expect=events,
        posture=Posture.Reactive,
        threshold=1,
        within=timedelta(0),
    )


def alert_automations(block_id: Any, alert_deployment_id: Any) -> list[Any]:
    """The alert automations, sending to the webhook block and/or the alert-mail deployment."""
    from prefect.events.actions import RunDeployment, SendNotification
    from prefect.events.schemas.automations import AutomationCore

    actions: list[Any] = []
    if block_id is not None:
        actions.append(SendNotification(block_document_id=block_id, subject=_SUBJECT, body=_BODY))
    if alert_deployment_id is not None:
        actions.append(
            RunDeployment(
                source="selected",
                deployment_id=alert_deployment_id,
                parameters={"subject": _SUBJECT, "body": _BODY},
            )
        )
    if not actions:
        return []
    return [
        AutomationCore(
            name=name,
            description=f"Alert the province: {name.removeprefix('cettar: ')}.",
            enabled=True,
            trigger=_trigger(events, match, related),
            actions=actions,
        )
        for name, (events, match, related) in ALERTS.items()
    ]


def rerun_automation(rerun_deployment_id: Any) -> Any:
    """Run `rerun-failed-partitions` for a sync run that failed (not for a failed re-run)."""
    from prefect.events.actions import RunDeployment
    from prefect.events.schemas.automations import AutomationCore

    return AutomationCore(
        name=RERUN_FAILED,
        description="A sync run with failed partitions: sync exactly those again, once.",
        enabled=True,
        trigger=_trigger(
            {SYNC_FAILED},
            {"prefect.resource.id": "cettar.sync-run.*", "cettar.rerun": "false"},
            None,
        ),
        actions=[
            RunDeployment(
                source="selected",
                deployment_id=rerun_deployment_id,
                parameters={"flow_run_id": "{{ event.resource['cettar.flow-run-id'] }}"},
            )
        ],
    )


def _same(existing: Any, wanted: Any) -> bool:
    keys = {"name", "description", "enabled", "trigger", "actions"}
    return bool(
        _canonical(existing.model_dump(mode="json", include=keys))
        == _canonical(wanted.model_dump(mode="json", include=keys))
    )


def _canonical(value: Any) -> Any:
    """A dump with its sets of names in one order (a set dumps as a list in iteration order)."""
    # The same set built in another order, or in a process with another hash seed, iterates
    # in another order: compared as dumped, an automation read back could differ from
    # itself and be updated on every apply.
    if isinstance(value, dict):
        return {k: _canonical(v) for k, v in value.items()}
    if isinstance(value, list):
        items = [_canonical(v) for v in value]
        return sorted(items) if all(isinstance(v, str) for v in items) else items
    return value


def _deployment_id(client: Any, name: str) -> Any:
    try:
        return client.read_deployment_by_name(name).id
    except Exception:  # not deployed on this server (yet): its automation waits for it
        return None


def _block_id(client: Any, name: str | None) -> Any:
    if not name:
        return None
    for block in client.read_block_documents():
        if block.name == name:
            return block.id
    raise ValueError(f"CETTAR_ALERT_WEBHOOK_BLOCK: no block named {name!r} on the Prefect API")


def _ensure(client: Any, wanted: Any) -> AutomationChange:
    """Create, update or keep one automation, found by name; extra copies deleted."""
    name = wanted.name
    existing = client.read_automations_by_name(name)
    if not existing:
        return AutomationChange(name, "created", str(client.create_automation(wanted)))
    keep, *extra = sorted(existing, key=lambda a: str(a.id))
    for duplicate in extra:
        # Two processes applying at once can both create it; one is enough.
        client.delete_automation(duplicate.id)
    if _same(keep, wanted) and not extra:
        return AutomationChange(name, "unchanged", str(keep.id))
    client.update_automation(keep.id, wanted)
    return AutomationChange(name, "updated", str(keep.id))


def ensure_automations(settings: Settings | None = None) -> list[AutomationChange]:
    """Create or update the hub's automations on the Prefect API in force (idempotent).

    Found by name: one that matches is left alone, one that differs (another threshold) is
    updated in place, extra copies of the same name are deleted. Alerts need a webhook
    block or the alert-mail deployment, the re-run its deployment; without them they are
    reported as "skipped".
    """
    from prefect import get_client

    settings = settings or get_settings()
    changes: list[AutomationChange] = []
    with get_client(sync_client=True) as client:
        changes.append(_ensure(client, crash_dead_runs(settings.flow_crash_after_s)))
        alerts = alert_automations(
            _block_id(client, settings.alert_webhook_block),
            _deployment_id(client, ALERT_DEPLOYMENT) if settings.alert_email_to else None,
        )
        changes += [_ensure(client, a) for a in alerts]
        if not alerts:
            changes += [AutomationChange(n, "skipped", "") for n in ALERTS]
        rerun_id = _deployment_id(client, RERUN_DEPLOYMENT)
        if rerun_id is not None:
            changes.append(_ensure(client, rerun_automation(rerun_id)))
        else:
            changes.append(AutomationChange(RERUN_FAILED, "skipped", ""))
    return changes


def apply_or_warn(settings: Settings | None = None) -> list[AutomationChange]:
    """`ensure_automations`, but a refusal of the API is logged rather than raised."""
    import logging

    try:
        return ensure_automations(settings)
    except Exception as exc:  # a sync must not fail because the API refused an automation
        logging.getLogger(__name__).warning(
            "could not apply the hub's automations (dead runs will not be marked Crashed): %s: %s",
            type(exc).__name__,
            str(exc)[:300],
        )
        return []
