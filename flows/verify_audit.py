"""The `verify-audit-chain` flow: re-check the whole audit hash chain and alert when broken."""

from __future__ import annotations

from typing import Any

from prefect import flow, get_run_logger
from prefect.artifacts import create_markdown_artifact

from flows.common import run_name
from flows.signals import emit_audit_broken
from integrations.store.audit import verify_audit
from integrations.store.engine import get_engine, require_store

__all__ = ["AuditChainBroken", "verify_audit_chain"]


class AuditChainBroken(RuntimeError):
    """The audit chain does not verify: a row was edited, removed or added."""


@flow(name="verify-audit-chain", flow_run_name=run_name("verify-audit-chain"), log_prints=False)
def verify_audit_chain() -> dict[str, Any]:
    """Verify every audit row against the chain's head; emit cettar.audit.broken if not intact."""
    logger = get_run_logger()
    engine = get_engine()
    require_store(engine)
    with engine.connect() as conn:
        report = verify_audit(conn)
    summary = {
        "ok": report.ok,
        "checked": report.checked,
        "first_bad_seq": report.first_bad_seq,
        "problem": report.problem,
    }
    outcome = "intact" if report.ok else f"BROKEN at row {report.first_bad_seq}: {report.problem}"
    create_markdown_artifact(
        key="audit-chain",
        markdown=f"# Audit chain\n\n{report.checked:,} rows checked: {outcome}.",
        description="Verification of the audit hash chain",
    )
    if not report.ok:
        emit_audit_broken(report.checked, report.problem)
        raise AuditChainBroken(
            f"audit chain broken at row {report.first_bad_seq}: {report.problem}"
        )
    logger.info("audit chain intact: %d rows", report.checked)
    return summary
