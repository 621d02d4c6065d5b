"""The `revalidate-store` flow: stored rows re-checked against today's contracts.

When a contract gets stricter, rows synced under the old rules would keep feeding the
checks. This flow rebuilds each stored row's wire record, validates it with the current
contract and moves what fails to quarantine with its reasons (see
`integrations/store/revalidate.py` for what each source can be re-checked on). One task
per source; the run shows counts and reason codes, never a record.
"""

from __future__ import annotations

from typing import Any

from prefect import flow
from prefect.artifacts import create_markdown_artifact, create_table_artifact
from prefect.runtime import flow_run

from flows.common import SourceName, run_name
from flows.guards import parts_of_sources, store_guard
from models.scope import WHOLE_PROVINCE, RegionScope
from models.sources import CATALOGUE
from tasks.store_maintenance import revalidate_source_task

__all__ = ["revalidate_markdown", "revalidate_store_flow"]


def revalidate_markdown(results: dict[str, dict[str, Any]], label: str) -> str:
    """The run report: per source what was examined, moved and not checkable."""
    lines = [
        f"# Store re-validation · {label}",
        "",
        "| source | examined | quarantined | kept | not re-validated fields | note |",
        "|---|---:|---:|---:|---|---|",
    ]
    for name, r in results.items():
        unchecked = ", ".join(r["unchecked"]) or "–"
        note = r["skipped"] or (f"{r['errors']} rows raised" if r["errors"] else "")
        lines.append(
            f"| {name} | {r['examined']:,} | {r['quarantined']:,} | {r['kept']:,} | "
            f"{unchecked} | {note} |"
        )
    reasons = [
        (f"{name}/{code}", n) for name, r in results.items() for code, n in r["reasons"].items()
    ]
    if reasons:
        lines += ["", "## Quarantined by reason", "", "| reason | records |", "|---|---:|"]
        lines += [f"| `{code}` | {n:,} |" for code, n in sorted(reasons, key=lambda kv: -kv[1])]
    return "\n".join(lines)


@flow(name="revalidate-store", flow_run_name=run_name("revalidate-store"), log_prints=False)
def revalidate_store_flow(
    scope: RegionScope = WHOLE_PROVINCE, sources: list[SourceName] | None = None
) -> dict[str, Any]:
    """Re-validate stored rows against the current contracts; quarantine what fails now."""
    names = [str(s) for s in sources] if sources else list(CATALOGUE)
    with store_guard(parts_of_sources(names), what=flow_run.get_name() or "revalidate"):
        results = {name: revalidate_source_task(name, scope) for name in names}
    create_table_artifact(
        key="revalidate-store-summary",
        table=[
            {k: v for k, v in r.items() if k not in ("reasons", "unchecked")}
            for r in results.values()
        ],
        description=f"Store re-validation per source · {scope.label()}",
    )
    create_markdown_artifact(
        key="revalidate-store-report",
        markdown=revalidate_markdown(results, scope.label()),
        description="Store re-validation: moved to quarantine, and what cannot be re-checked",
    )
    return {
        "sources": results,
        "totals": {
            "examined": sum(r["examined"] for r in results.values()),
            "quarantined": sum(r["quarantined"] for r in results.values()),
        },
    }
