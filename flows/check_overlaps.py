"""The `check-programme-overlaps` flow: every cross-programme check and the handoffs it creates."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Any

from prefect import flow, get_run_logger
from prefect.artifacts import create_markdown_artifact, create_table_artifact
from prefect.runtime import flow_run

from flows.common import failed_message, run_instant, run_name
from flows.guards import COORDINATION, store_guard
from models.scope import WHOLE_PROVINCE, RegionScope
from models.workdays import operator_instant
from tasks.checks import CHECK_KINDS, Check, current_period, period_start, run_programme_check

__all__ = ["ChecksIncomplete", "check_programme_overlaps", "summary_rows"]

_COUNTS = ("findings", "created", "existing")


class ChecksIncomplete(RuntimeError):
    """Some checks failed; the others ran and created their handoffs."""


def summary_rows(
    results: dict[str, dict[str, dict[str, int]]], failed: dict[str, str]
) -> list[dict[str, Any]]:
    """One table row per check and handoff kind: findings, handoffs created, already there."""
    rows: list[dict[str, Any]] = []
    for check in Check:
        if check.value in failed:
            rows.append(
                {
                    "check": check.value,
                    "handoff kind": "FAILED",
                    "findings": 0,
                    "handoffs created": 0,
                    "already existing": 0,
                }
            )
            continue
        for kind in CHECK_KINDS[check]:
            c = results.get(check.value, {}).get(kind.value, {})
            rows.append(
                {
                    "check": check.value,
                    "handoff kind": kind.value,
                    "findings": c.get("findings", 0),
                    "handoffs created": c.get("created", 0),
                    "already existing": c.get("existing", 0),
                }
            )
    return rows


def _markdown(
    rows: list[dict[str, Any]],
    totals: dict[str, int],
    failed: dict[str, str],
    *,
    period: str,
    as_of: datetime,
    label: str,
) -> str:
    lines = [
        f"# Cross-programme checks · {period} · {label}",
        "",
        f"As of {as_of.isoformat(timespec='seconds')}.",
        "",
        "| check | handoff kind | findings | handoffs created | already existing |",
        "|---|---|---:|---:|---:|",
    ]
    for r in rows:
        lines.append(
            f"| {r['check']} | {r['handoff kind']} | {r['findings']:,} | "
            f"{r['handoffs created']:,} | {r['already existing']:,} |"
        )
    lines.append(
        f"| **total** | | **{totals['findings']:,}** | **{totals['created']:,}** | "
        f"**{totals['existing']:,}** |"
    )
    if failed:
        lines += ["", "## Failed checks", ""]
        lines += [f"- {check}: {why}" for check, why in sorted(failed.items())]
    return "\n".join(lines)


def _period_detail(parameters: Mapping[str, Any]) -> str:
    """The run name's detail: the period checked (the quarter of the run's as-of if none)."""
    return str(parameters.get("period") or current_period(run_instant(parameters)))


@flow(
    name="check-programme-overlaps",
    flow_run_name=run_name("check-programme-overlaps", _period_detail),
    log_prints=False,
)
def check_programme_overlaps(
    period: str | None = None,
    as_of: datetime | None = None,
    scope: RegionScope = WHOLE_PROVINCE,
) -> dict[str, Any]:
    """Run every cross-programme check on the store, create handoffs, publish the counts."""
    logger = get_run_logger()
    now = operator_instant(as_of)
    period = period or current_period(now)
    period_start(period)
    label = scope.label()
    logger.info("checking %s for %s as of %s", label, period, now.isoformat(timespec="seconds"))
    results: dict[str, dict[str, dict[str, int]]] = {}
    failed: dict[str, str] = {}
    # One check after another: each writes its handoffs in one transaction, and the audit
    # chain gets them in the same order on every run; no other writer of handoffs meanwhile.
    with store_guard((COORDINATION,), what=flow_run.get_name() or "checks"):
        for check in Check:
            state = run_programme_check(check, period, now, scope, return_state=True)
            if state.is_completed():
                results[check.value] = state.result()
            else:
                failed[check.value] = failed_message(state)
    rows = summary_rows(results, failed)
    totals = {
        name: sum(c[name] for kinds in results.values() for c in kinds.values()) for name in _COUNTS
    }
    create_table_artifact(
        key="programme-checks-summary",
        table=rows,
        description=f"Cross-programme checks per handoff kind · {period} · {label}",
    )
    create_markdown_artifact(
        key="programme-checks-report",
        markdown=_markdown(rows, totals, failed, period=period, as_of=now, label=label),
        description="Findings and handoffs of the cross-programme checks",
    )
    if failed:
        raise ChecksIncomplete(
            f"{len(failed)} of {len(Check)} checks failed: {', '.join(sorted(failed))}"
        )
    return {
        "period": period,
        "as_of": now.isoformat(),
        "scope": label,
        "checks": results,
        "totals": totals,
    }
