"""The `replay-quarantine` flow: a source's quarantined records validated again after a fix."""

from __future__ import annotations

from typing import Annotated, Any

from prefect import flow
from prefect.artifacts import create_markdown_artifact
from prefect.runtime import flow_run
from pydantic import Field

from flows.common import SourceName, run_name
from flows.guards import parts_of_sources, store_guard
from tasks.store_maintenance import replay_task

__all__ = ["replay_quarantine"]

ReasonKey = Annotated[
    str | None,
    Field(
        max_length=200,
        pattern=r"^[A-Za-z0-9_.:\-]+$",
        description="Only records held for this reason, e.g. members.nik:nik_invalid.",
    ),
]


@flow(
    name="replay-quarantine",
    flow_run_name=run_name(
        "replay-quarantine",
        lambda p: " ".join(str(v) for v in (p.get("source"), p.get("reason")) if v),
    ),
    log_prints=False,
)
def replay_quarantine(source: SourceName, reason: ReasonKey = None) -> dict[str, Any]:
    """Store what of a source's open quarantine is valid now; refresh the others' reasons."""
    with store_guard(parts_of_sources([source]), what=flow_run.get_name() or "replay"):
        result = replay_task(str(source), reason)
    lines = [
        f"# Quarantine replay · {source}" + (f" · {reason}" if reason else ""),
        "",
        "| examined | replayed | written | unchanged | still invalid |",
        "|---:|---:|---:|---:|---:|",
        f"| {result['examined']:,} | {result['replayed']:,} | {result['written']:,} | "
        f"{result['unchanged']:,} | {result['still_invalid']:,} |",
    ]
    if result["reasons"]:
        lines += ["", "| still invalid for | records |", "|---|---:|"]
        lines += [f"| `{code}` | {n:,} |" for code, n in sorted(result["reasons"].items())]
    create_markdown_artifact(
        key="replay-quarantine-report",
        markdown="\n".join(lines),
        description="Quarantine replay: what is stored now and what stays held",
    )
    return result
