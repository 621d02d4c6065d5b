"""Reading the hub's events back from the Prefect API in tests."""

from __future__ import annotations

import time
from typing import Any
from uuid import UUID

from prefect import get_client
from prefect.events.filters import EventAnyResourceFilter, EventFilter, EventNameFilter

from deployments.run_audit import flush_run_records


def hub_events(flow_run_id: UUID, wanted: int, wait_s: float = 30.0) -> list[Any]:
    """The `cettar.` events related to a flow run, once at least `wanted` have arrived."""
    flush_run_records()
    deadline = time.monotonic() + wait_s
    while True:
        with get_client(sync_client=True) as client:
            page = client.read_events(
                filter=EventFilter(
                    event=EventNameFilter(prefix=["cettar."]),
                    any_resource=EventAnyResourceFilter(id=[f"prefect.flow-run.{flow_run_id}"]),
                ),
                limit=50,
            )
        if len(page.events) >= wanted or time.monotonic() > deadline:
            return list(page.events)
        time.sleep(0.5)
