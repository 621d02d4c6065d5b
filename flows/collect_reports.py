"""The `collect-facilitator-reports` flow: PKH facilitators' reports, per kabupaten/kota."""

from __future__ import annotations

from typing import Any

from prefect import flow, get_run_logger

from flows.sync_registry import WHOLE_PROVINCE, SyncScope, run_scope
from flows.sync_sources import sync_and_publish
from tasks.registry_sync import prepare_store

AGENCY = "pkh"


def _run_name() -> str:
    return f"collect-facilitator-reports · {run_scope().label()}"


@flow(name="collect-facilitator-reports", flow_run_name=_run_name, log_prints=False)
def collect_facilitator_reports(scope: SyncScope = WHOLE_PROVINCE) -> dict[str, Any]:
    """Collect PKH facilitator reports (updates, deaths, moves, ...) into the store."""
    logger = get_run_logger()
    prepare_store()
    logger.info("collecting facilitator reports for %s", scope.label())
    return sync_and_publish([AGENCY], scope, key="facilitator-reports", title="Facilitator reports")
