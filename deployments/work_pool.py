"""The work-pool pull step: a run starts from a hub checkout or fails naming the setting."""

from __future__ import annotations

import logging
from datetime import UTC, datetime
from pathlib import Path

__all__ = ["checkout_problem", "require_checkout"]

# A file every checkout has; its absence means the folder is not the hub's.
_MARKER = Path("flows") / "daily_coordination.py"


def checkout_problem(directory: str) -> str | None:
    """Why `directory` (the worker's CETTAR_HOME) cannot run the hub's flows, or None."""
    if not directory:
        return (
            "CETTAR_HOME is not set in the worker environment: set it to the CETTAR Hub "
            "checkout (the folder holding prefect.yaml) and restart the worker"
        )
    if not (Path(directory) / _MARKER).is_file():
        return (
            f"CETTAR_HOME={directory} holds no CETTAR Hub checkout ({_MARKER} is missing): "
            "point it at the folder holding prefect.yaml"
        )
    return None


def require_checkout(directory: str = "") -> dict[str, str]:
    """Pull step: go on when CETTAR_HOME names a checkout; else fail the run, saying so."""
    problem = checkout_problem(directory)
    if problem is None:
        return {"directory": directory}
    # A failing pull step only reaches the worker's own stderr, so the reason is written to
    # the run's log and final state, where the operator looks first.
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.actions import LogCreate
    from prefect.runtime import flow_run
    from prefect.states import Failed

    run_id = flow_run.id
    if run_id:
        with get_client(sync_client=True) as client:
            client.create_logs(
                [
                    LogCreate(
                        name="cettar.work_pool",
                        level=logging.ERROR,
                        message=problem,
                        timestamp=datetime.now(UTC),
                        flow_run_id=run_id,
                    )
                ]
            )
            client.set_flow_run_state(run_id, Failed(message=problem), force=True)
    raise RuntimeError(problem)
