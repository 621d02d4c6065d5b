"""The `purge-quarantine` flow: quarantined payloads leave the store after their retention.

A quarantined record is kept whole, clear NIK and No. KK included, so it is kept only
`quarantine_retention_days` after it was last seen, then deleted. Each purge writes one
row with its counts to the audit chain (verified by `cettar handoffs verify-audit`).
"""

from __future__ import annotations

from contextlib import nullcontext
from typing import Annotated, Any

from prefect import flow
from prefect.artifacts import create_markdown_artifact
from prefect.runtime import flow_run
from pydantic import Field

from flows.common import run_name
from flows.guards import store_guard
from integrations.settings import get_settings
from models.sources import AGENCIES
from tasks.store_maintenance import purge_task

__all__ = ["purge_markdown", "purge_quarantine_flow"]

RetentionDays = Annotated[
    int | None,
    Field(ge=1, le=3650, description="Days after the last sighting (None: the setting)."),
]


def purge_markdown(summary: dict[str, Any]) -> str:
    """The run report: the cutoff and what went, by source and status."""
    verb = "Would purge" if summary["dry_run"] else "Purged"
    lines = [
        "# Quarantine purge",
        "",
        f"{verb} {summary['purged']:,} records last seen before {summary['cutoff']} "
        f"(retention {summary['retention_days']} days).",
    ]
    if summary["by_source"]:
        lines += ["", "| source | records |", "|---|---:|"]
        lines += [f"| {s} | {n:,} |" for s, n in sorted(summary["by_source"].items())]
    if summary["audit_seq"]:
        lines += ["", f"Audit chain row {summary['audit_seq']}."]
    return "\n".join(lines)


@flow(name="purge-quarantine", flow_run_name=run_name("purge-quarantine"), log_prints=False)
def purge_quarantine_flow(
    retention_days: RetentionDays = None, dry_run: bool = False
) -> dict[str, Any]:
    """Purge quarantined records not seen for the retention period; audited with counts."""
    days = retention_days or get_settings().quarantine_retention_days
    # Every source's sync writes quarantine rows: the purge deletes with no sync running
    # (a dry run only counts).
    guard = nullcontext() if dry_run else store_guard(AGENCIES, what=flow_run.get_name() or "purge")
    with guard:
        summary = purge_task(days, dry_run)
    create_markdown_artifact(
        key="purge-quarantine-report",
        markdown=purge_markdown(summary),
        description="Quarantine purge: cutoff and counts",
    )
    return summary
