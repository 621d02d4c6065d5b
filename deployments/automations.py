"""Automations the hub keeps on its Prefect server: dead flow runs are marked Crashed.

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

from integrations.settings import Settings, get_settings

__all__ = [
    "CRASH_DEAD_RUNS",
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
    action: str  # "created", "updated" or "unchanged"
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


def _same(existing: Any, wanted: Any) -> bool:
    keys = {"name", "description", "enabled", "trigger", "actions"}
    return bool(
        existing.model_dump(mode="json", include=keys)
        == wanted.model_dump(mode="json", include=keys)
    )


def ensure_automations(settings: Settings | None = None) -> list[AutomationChange]:
    """Create or update the hub's automations on the Prefect API in force (idempotent).

    Found by name: one that matches is left alone, one that differs (another threshold) is
    updated in place, extra copies of the same name are deleted.
    """
    from prefect import get_client

    settings = settings or get_settings()
    wanted = crash_dead_runs(settings.flow_crash_after_s)
    with get_client(sync_client=True) as client:
        existing = client.read_automations_by_name(CRASH_DEAD_RUNS)
        if not existing:
            new_id = client.create_automation(wanted)
            return [AutomationChange(CRASH_DEAD_RUNS, "created", str(new_id))]
        keep, *extra = sorted(existing, key=lambda a: str(a.id))
        for duplicate in extra:
            # Two processes applying at once can both create it; one is enough.
            client.delete_automation(duplicate.id)
        if _same(keep, wanted) and not extra:
            return [AutomationChange(CRASH_DEAD_RUNS, "unchanged", str(keep.id))]
        client.update_automation(keep.id, wanted)
        return [AutomationChange(CRASH_DEAD_RUNS, "updated", str(keep.id))]


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
