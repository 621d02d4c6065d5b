"""The `kecamatan-scorecard` flow: per kecamatan and kabupaten/kota, how handoffs are handled."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from prefect import flow
from prefect.artifacts import create_markdown_artifact, create_table_artifact

from flows.common import as_of_detail, run_name
from models.scope import WHOLE_PROVINCE, RegionScope
from models.workdays import local_date, operator_instant
from tasks.scorecard import WORST, publish_scorecard

__all__ = ["kecamatan_scorecard", "scorecard_markdown"]

_SHARE = "share resolved within deadline"
_RATE = "quarantine rate"
_MEDIAN = "median workdays to acknowledge"
_OLDEST = "oldest backlog (workdays)"


def _pct(value: Any) -> str:
    return "–" if value is None else f"{value:.1%}"


def _num(value: Any) -> str:
    if value is None:
        return "–"
    return f"{value:,.1f}" if isinstance(value, float) else f"{value:,}"


def scorecard_markdown(summary: dict[str, Any], as_of: datetime) -> str:
    """The report: province totals, the worst kecamatan with the ranking rule, the files."""
    prov = summary["province"]
    lines = [
        f"# Kecamatan scorecard · {local_date(as_of).isoformat()}",
        "",
        f"As of {as_of.isoformat(timespec='seconds')}; working days exclude weekends, "
        "public holidays and cuti bersama.",
        "",
        "## Province totals",
        "",
        "| handoffs | acknowledged | median workdays to acknowledge | resolved within "
        "deadline | backlog | overdue | oldest backlog (workdays) | escalations | "
        "quarantine rate | overlaps found |",
        "|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
        f"| {_num(prov['handoffs'])} | {_num(prov['acknowledged'])} | {_num(prov[_MEDIAN])} | "
        f"{_pct(prov[_SHARE])} | {_num(prov['backlog'])} | {_num(prov['overdue'])} | "
        f"{_num(prov[_OLDEST])} | {_num(prov['escalations'])} | {_pct(prov[_RATE])} | "
        f"{_num(prov['overlaps found'])} |",
        "",
        f"## The {WORST} worst kecamatan",
        "",
        "Ranked by the share resolved within the deadline (lowest first), then overdue "
        "handoffs, the oldest backlog, the median time to acknowledge and escalations.",
        "",
        "| rank | kecamatan | name | resolved within deadline | overdue | oldest backlog "
        "(workdays) | median workdays to acknowledge | escalations |",
        "|---:|---|---|---:|---:|---:|---:|---:|",
    ]
    for r in summary["worst"]:
        lines.append(
            f"| {r['rank (1 = worst)']} | {r['code']} | {r['name']} | {_pct(r[_SHARE])} | "
            f"{_num(r['overdue'])} | {_num(r[_OLDEST])} | {_num(r[_MEDIAN])} | "
            f"{_num(r['escalations'])} |"
        )
    lines += ["", "## Files", ""]
    lines += [f"- {name}: `{path}`" for name, path in summary["files"].items()]
    return "\n".join(lines)


@flow(
    name="kecamatan-scorecard",
    flow_run_name=run_name(
        "kecamatan-scorecard", as_of_detail(lambda at: local_date(at).isoformat())
    ),
    log_prints=False,
)
def kecamatan_scorecard(
    as_of: datetime | None = None, scope: RegionScope = WHOLE_PROVINCE
) -> dict[str, Any]:
    """Score every kecamatan and kabupaten/kota; publish tables, a report and CSV/XLSX files."""
    now = operator_instant(as_of)
    summary = publish_scorecard(now, scope)
    create_table_artifact(
        key="kecamatan-scorecard-kabupaten",
        table=[*summary["kabupaten_lines"], summary["province"]],
        description=f"Scorecard per kabupaten/kota · {local_date(now).isoformat()}",
    )
    create_markdown_artifact(
        key="kecamatan-scorecard-report",
        markdown=scorecard_markdown(summary, now),
        description="Province totals, the worst kecamatan and the scorecard files",
    )
    prov = summary["province"]
    return {
        "as_of": now.isoformat(),
        "scope": scope.label(),
        "kecamatan": summary["kecamatan"],
        "kabupaten": summary["kabupaten"],
        "handoffs": prov["handoffs"],
        "backlog": prov["backlog"],
        "overdue": prov["overdue"],
        "escalations": prov["escalations"],
        "overlaps_found": prov["overlaps found"],
        "other_offices": summary["other_offices"],
        "worst": [r["code"] for r in summary["worst"]],
        "files": summary["files"],
    }
