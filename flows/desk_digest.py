"""The `desk-digest` flow: the office desk's daily e-mails, once per office and day."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from prefect import flow, get_run_logger
from prefect.artifacts import create_table_artifact
from prefect.states import Completed, State

from flows.common import day_off_state, run_name
from integrations.settings import get_settings
from models.workdays import operator_instant
from tasks.desk_digest import send_desk_digests

__all__ = ["DigestIncomplete", "desk_digest"]


class DigestIncomplete(RuntimeError):
    """The mail server refused some digests; the next run of the day sends them."""


@flow(name="desk-digest", flow_run_name=run_name("desk-digest"), log_prints=False)
def desk_digest(
    as_of: datetime | None = None, skip_days_off: bool = False
) -> dict[str, Any] | State[Any]:
    """Mail each desk office its daily digest and each kabupaten/kota its escalations."""
    now = operator_instant(as_of)
    skipped = day_off_state(now, skip_days_off)
    if skipped is not None:
        return skipped
    if not get_settings().smtp_host:
        message = "CETTAR_SMTP_HOST is not set: no digest sent"
        get_run_logger().warning(message)
        return Completed(message=message, data={"skipped": "no mail server"})
    counts = send_desk_digests(now)
    create_table_artifact(
        key="desk-digest",
        table=[{"counter": name, "count": n} for name, n in counts.items()],
        description="Desk digests of the day: sent, already sent, nothing to report, failed",
    )
    if counts.get("failed"):
        raise DigestIncomplete(f"{counts['failed']} digests refused by the mail server")
    return {"as_of": now.isoformat(), **counts}
