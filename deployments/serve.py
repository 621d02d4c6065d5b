"""Deployments of the hub's flows, declared once: served from one process or on a work pool.

`DEPLOYMENTS` is the only list. `cettar serve` builds them from it; `prefect.yaml` (for
`prefect deploy --all` on a `process` work pool) is generated from it by
`cettar deployments yaml` and a test keeps the committed file equal to that output.
Schedules are in Asia/Jakarta time. Serving also applies the hub's automations
(`deployments/automations.py`), so a served run whose process dies is marked Crashed.
"""

from __future__ import annotations

import importlib
import os
from dataclasses import dataclass, field
from typing import Any

import yaml

TIMEZONE = "Asia/Jakarta"
WORK_POOL = "cettar-process"
"""The `process` work pool prefect.yaml's deployments go to (README: work pool)."""


@dataclass(frozen=True, slots=True)
class Deployment:
    """One deployment: the flow it runs, its name, what it is for, its schedule and tags."""

    entrypoint: str
    name: str
    description: str
    cron: str | None = None
    tags: tuple[str, ...] = ()
    parameters: dict[str, Any] = field(default_factory=dict)

    @property
    def all_tags(self) -> list[str]:
        """Its tags plus whether it runs on a schedule or when an operator starts it."""
        return [*self.tags, "scheduled" if self.cron else "ad-hoc"]

    def flow(self) -> Any:
        """The flow object the entrypoint (`flows/x.py:name`) names."""
        path, _, attr = self.entrypoint.partition(":")
        return getattr(importlib.import_module(path.removesuffix(".py").replace("/", ".")), attr)


# Working-day deployments skip Indonesian holidays and cuti bersama in the flow (the crons
# only know Monday-Friday): the run ends at once, naming the day.
_WORKING_DAYS = {"skip_days_off": True}

DEPLOYMENTS: tuple[Deployment, ...] = (
    Deployment(
        "flows/daily_coordination.py:daily_coordination",
        "daily-coordination",
        "Every working-day morning: syncs, checks, dispatch and the scorecard.",
        "30 5 * * 1-5",
        ("coordination",),
        _WORKING_DAYS,
    ),
    Deployment(
        "flows/dispatch_handoffs.py:dispatch_handoffs",
        "dispatch-office-hours",
        "Deliver handoffs, pull the offices' decisions, escalate: hourly, 8-16 on working days.",
        "0 8-16 * * 1-5",
        ("coordination", "handoffs"),
        _WORKING_DAYS,
    ),
    Deployment(
        "flows/desk_digest.py:desk_digest",
        "desk-digest",
        "07:00 on working days: each desk office's digest (new, due soon, overdue) and each "
        "kabupaten/kota's escalations, mailed once per office and day.",
        "0 7 * * 1-5",
        ("desk", "handoffs"),
        _WORKING_DAYS,
    ),
    Deployment(
        "flows/sync_registry.py:sync_registry",
        "registry-nightly",
        "Incremental registry sync of the whole province, every night.",
        "0 2 * * *",
        ("registry", "sync"),
    ),
    Deployment(
        "flows/verify_audit.py:verify_audit_chain",
        "audit-nightly",
        "Every night: verify the whole audit hash chain; a broken chain raises an alert.",
        "30 3 * * *",
        ("store", "audit"),
    ),
    Deployment(
        "flows/purge_quarantine.py:purge_quarantine_flow",
        "purge-quarantine",
        "Every night: delete quarantined records (they hold clear NIK/No. KK) last seen "
        "longer ago than the retention (CETTAR_QUARANTINE_RETENTION_DAYS, 90 days); the "
        "purge is written to the audit chain with its counts.",
        "30 1 * * *",
        ("store", "quarantine"),
    ),
    Deployment(
        "flows/intake_folder.py:intake_folder_flow",
        "intake-folder",
        "Every 15 minutes: take the spreadsheets desa dropped in their folders "
        "(CETTAR_INTAKE_DIR) into the store; counts and rejected rows beside each file.",
        "*/15 * * * *",
        ("intake", "desa"),
    ),
    Deployment(
        "flows/sync_registry.py:sync_registry",
        "registry-adhoc",
        "Operator-triggered sync: one kabupaten, some kecamatan, or a full re-sync.",
        tags=("registry", "sync"),
    ),
    Deployment(
        "flows/resync.py:resync_source",
        "resync-source",
        "Operator-triggered: sync one source for a region now, optionally from scratch.",
        tags=("sync",),
    ),
    Deployment(
        "flows/resync.py:rerun_failed_partitions",
        "rerun-failed-partitions",
        "Operator-triggered: sync again only the partitions a given run failed to sync.",
        tags=("sync",),
    ),
    Deployment(
        "flows/daily_coordination.py:reconcile_region",
        "reconcile-region",
        "Operator-triggered: one kecamatan or kabupaten/kota end to end (every source, the "
        "checks, dispatch, its scorecard), nothing outside it.",
        tags=("coordination",),
    ),
    Deployment(
        "flows/check_overlaps.py:check_programme_overlaps",
        "checks-adhoc",
        "Operator-triggered cross-programme checks for a period or region.",
        tags=("coordination", "checks"),
    ),
    Deployment(
        "flows/kecamatan_scorecard.py:kecamatan_scorecard",
        "scorecard-adhoc",
        "Operator-triggered scorecard, e.g. as of a past day.",
        tags=("coordination", "scorecard"),
    ),
    Deployment(
        "flows/replay_quarantine.py:replay_quarantine",
        "replay-quarantine",
        "Operator-triggered: after a fix, store what of a source's quarantine (one reason's, "
        "if given) is valid now.",
        tags=("store", "quarantine"),
    ),
    Deployment(
        "flows/alerts.py:send_alert",
        "alert-mail",
        "Run by the alert automations: mail an alert to CETTAR_ALERT_EMAIL_TO through the "
        "hub's SMTP server.",
        tags=("alerts",),
    ),
    Deployment(
        "flows/revalidate.py:revalidate_store_flow",
        "revalidate-store",
        "Operator-triggered: re-check stored rows against today's contracts and quarantine "
        "what no longer passes (after a contract gets stricter).",
        tags=("store", "quarantine"),
    ),
)
"""Every deployment the hub ships; a scheduled one runs one at a time (a second is cancelled)."""


def build_deployments() -> list[Any]:
    """The deployments `cettar serve` serves, built from `DEPLOYMENTS`."""
    from prefect.client.schemas.objects import ConcurrencyLimitConfig, ConcurrencyLimitStrategy
    from prefect.schedules import Cron

    # A second scheduled run while one is still going would only wait on the same rows.
    one_at_a_time = ConcurrencyLimitConfig(
        limit=1, collision_strategy=ConcurrencyLimitStrategy.CANCEL_NEW
    )
    return [
        d.flow().to_deployment(
            name=d.name,
            description=d.description,
            schedule=Cron(d.cron, timezone=TIMEZONE) if d.cron else None,
            tags=d.all_tags,
            parameters=d.parameters,
            concurrency_limit=one_at_a_time if d.cron else None,
        )
        for d in DEPLOYMENTS
    ]


_YAML_HEADER = """\
# Deployments for a work pool (`prefect deploy --all`); `cettar serve` serves the same
# flows from one process without a pool. Generated from deployments/serve.py
# (`cettar deployments yaml > prefect.yaml`): edit the list there, not this file.
#
# A worker runs each flow from the hub's checkout on its own machine: CETTAR_HOME in the
# worker's environment names that folder (the one holding this file). The first pull step
# fails the run at once, with the reason in its log and state, when it is unset or wrong,
# instead of a crash later on a missing module.
"""


def prefect_yaml() -> str:
    """The text of `prefect.yaml`: the pull steps and every deployment of `DEPLOYMENTS`."""
    spec: dict[str, Any] = {
        "name": "cettar-hub",
        "prefect-version": "3.9.1",
        "pull": [
            {"deployments.work_pool.require_checkout": {"directory": "{{ $CETTAR_HOME }}"}},
            {
                "prefect.deployments.steps.set_working_directory": {
                    "directory": "{{ $CETTAR_HOME }}"
                }
            },
        ],
        "deployments": [],
    }
    for d in DEPLOYMENTS:
        entry: dict[str, Any] = {
            "name": d.name,
            "entrypoint": d.entrypoint,
            "description": d.description,
            "tags": d.all_tags,
        }
        if d.parameters:
            entry["parameters"] = dict(d.parameters)
        if d.cron:
            entry["schedules"] = [{"cron": d.cron, "timezone": TIMEZONE}]
            entry["concurrency_limit"] = {"limit": 1, "collision_strategy": "CANCEL_NEW"}
        entry["work_pool"] = {"name": WORK_POOL}
        spec["deployments"].append(entry)
    return _YAML_HEADER + yaml.safe_dump(spec, sort_keys=False, width=96)


def serve_all() -> None:
    """Serve every deployment from this process until interrupted (no work pool needed)."""
    from prefect import serve

    from deployments.automations import apply_or_warn
    from deployments.prefect_server import flow_run_env
    from integrations.settings import get_settings

    # Served runs are child processes: they must beat for the automation to watch them.
    os.environ.update(flow_run_env(get_settings()))
    apply_or_warn()
    serve(*build_deployments())
