"""The `kecamatan-scorecard` flow: per kecamatan and kabupaten/kota, how handoffs are handled."""

from __future__ import annotations

from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

from prefect import flow
from prefect.artifacts import create_markdown_artifact, create_table_artifact

from flows.common import run_name
from flows.signals import emit_overdue
from models.scope import WHOLE_PROVINCE, RegionScope
from models.scorecard import CALENDAR_RULE, HEADER, RANKING_RULE
from models.workdays import JAKARTA, local_date, operator_instant
from tasks.scorecard import WORST, publish_scorecard

__all__ = ["kecamatan_scorecard", "scorecard_markdown"]

_TOTALS = (
    "handoffs",
    "acknowledged",
    "median_ack_workdays",
    "resolved_in_time_share",
    "backlog",
    "overdue",
    "oldest_backlog_workdays",
    "escalations",
    "quarantine_rate",
    "overlaps_found",
)
_WORST = (
    "rank",
    "code",
    "name",
    "kabupaten_name",
    "resolved_in_time_share",
    "overdue",
    "oldest_backlog_workdays",
    "median_ack_workdays",
    "escalations",
)


def _cell(value: Any) -> str:
    if value is None:
        return "–"
    text = f"{value:,}" if isinstance(value, int | float) else str(value)
    # Region names are data: a pipe or a bracket must not become table or link syntax.
    return text.replace("|", "\\|").replace("[", "\\[").replace("]", "\\]")


def _table(columns: tuple[str, ...], rows: list[dict[str, Any]]) -> list[str]:
    headers = [HEADER[c] for c in columns]
    numeric = {"code", "name", "kabupaten_name"}
    return [
        "| " + " | ".join(headers) + " |",
        "|" + "|".join("---" if c in numeric else "---:" for c in columns) + "|",
        *("| " + " | ".join(_cell(r[HEADER[c]]) for c in columns) + " |" for r in rows),
    ]


def scorecard_markdown(summary: dict[str, Any], as_of: datetime) -> str:
    """The report: province totals and what they include, the worst kecamatan, the files."""
    lines = [
        f"# Rapor kecamatan · {local_date(as_of).isoformat()}",
        "",
        f"Data per {as_of.astimezone(ZoneInfo(JAKARTA)).strftime('%Y-%m-%d %H:%M')} WIB. "
        + CALENDAR_RULE,
        "",
        "## Jumlah provinsi",
        "",
        *_table(_TOTALS, [summary["province"]]),
        "",
        f"{summary['all_handoffs']:,} kasus dibaca: {summary['province'][HEADER['handoffs']]:,} "
        f"ke kantor kecamatan dan desa (dinilai di sini), {summary['other_offices']:,} ke "
        "instansi program atau tanpa kecamatan (tidak dinilai).",
        "",
        f"## {WORST} kecamatan terburuk",
        "",
        RANKING_RULE,
        "",
        *_table(_WORST, summary["worst"]),
        "",
        "## Berkas",
        "",
        *(f"- {name}: `{path}`" for name, path in summary["files"].items()),
    ]
    return "\n".join(lines)


@flow(
    name="kecamatan-scorecard",
    flow_run_name=run_name("kecamatan-scorecard"),
    log_prints=False,
)
def kecamatan_scorecard(
    as_of: datetime | None = None, scope: RegionScope = WHOLE_PROVINCE
) -> dict[str, Any]:
    """Score every kecamatan and kabupaten/kota; publish tables, a report and CSV/XLSX files."""
    now = operator_instant(as_of)
    summary = publish_scorecard(now, scope)
    create_table_artifact(
        key="kecamatan-scorecard-kecamatan",
        table=summary["kecamatan_lines"],
        description=f"Rapor per kecamatan (terburuk dahulu) · {local_date(now).isoformat()}",
    )
    create_table_artifact(
        key="kecamatan-scorecard-kabupaten",
        table=[*summary["kabupaten_lines"], summary["province"]],
        description=f"Rapor per kabupaten/kota (terburuk dahulu) · {local_date(now).isoformat()}",
    )
    create_markdown_artifact(
        key="kecamatan-scorecard-report",
        markdown=scorecard_markdown(summary, now),
        description="Province totals, the worst kecamatan and the scorecard files",
    )
    emit_overdue(
        {attr: line[HEADER[attr]] for attr in ("code", "name", "overdue", "escalations", "backlog")}
        for line in summary["kabupaten_lines"]
    )
    prov = summary["province"]
    return {
        "as_of": now.isoformat(),
        "scope": scope.label(),
        "kecamatan": summary["kecamatan"],
        "kabupaten": summary["kabupaten"],
        "handoffs": prov[HEADER["handoffs"]],
        "backlog": prov[HEADER["backlog"]],
        "overdue": prov[HEADER["overdue"]],
        "escalations": prov[HEADER["escalations"]],
        "overlaps_found": prov[HEADER["overlaps_found"]],
        "other_offices": summary["other_offices"],
        "all_handoffs": summary["all_handoffs"],
        "worst": [r[HEADER["code"]] for r in summary["worst"]],
        "files": summary["files"],
    }
