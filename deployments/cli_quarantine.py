"""`cettar quarantine`: list quarantined records by source and reason; replay them after a fix."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from enum import StrEnum
from typing import Annotated

import typer
from rich.table import Table

from deployments.cli_errors import CliUsageError, cli_app, plain_console, store_engine
from integrations.settings import get_settings
from integrations.store.quarantine import quarantine_summary, quarantine_totals
from integrations.store.replay import replay_quarantined
from models.sources import CATALOGUE

__all__ = ["quarantine_app"]

quarantine_app = cli_app(help="Quarantined records: what is held and why, and replay after a fix.")
console = plain_console()


class Status(StrEnum):
    """Which quarantine rows to show."""

    open = "open"
    replayed = "replayed"
    all = "all"


def _check_source(source: str | None) -> None:
    if source is not None and source not in CATALOGUE:
        raise CliUsageError(f"unknown source {source!r}; one of: {', '.join(CATALOGUE)}")


@quarantine_app.command("list")
def list_quarantine(
    source: Annotated[
        str | None, typer.Option(help="Only this source, e.g. desa.blt-recipients.")
    ] = None,
    status: Annotated[Status, typer.Option(help="Rows to count.")] = Status.open,
    as_json: Annotated[bool, typer.Option("--json", help="Print one JSON object.")] = False,
) -> None:
    """Count quarantined records by source and reason, with one masked example message each."""
    _check_source(source)
    wanted = None if status is Status.all else status.value
    with store_engine().connect() as conn:
        groups = quarantine_summary(conn, source=source, status=wanted)
        totals = quarantine_totals(conn, source=source, status=wanted)
    if as_json:
        print(
            json.dumps(
                {
                    "status": status.value,
                    "records": totals,
                    "groups": [g.as_dict() for g in groups],
                },
                ensure_ascii=False,
            )
        )
        return
    if not groups:
        scope = f" of {source}" if source else ""
        console.print(f"no {status.value} quarantined records{scope}")
        return
    table = Table(title=f"Quarantine ({status.value})")
    for column in ("source", "reason", "records", "sightings", "last seen", "example"):
        table.add_column(column, justify="right" if column in ("records", "sightings") else "left")
    for g in groups:
        table.add_row(
            g.source,
            g.reason,
            f"{g.records:,}",
            f"{g.sightings:,}",
            g.last_seen.strftime("%Y-%m-%d %H:%M") if g.last_seen else "",
            g.example,
        )
    console.print(table)
    console.print("records per source: " + ", ".join(f"{name} {n:,}" for name, n in totals.items()))


@quarantine_app.command("replay")
def replay(
    source: Annotated[str, typer.Argument(help="The source to replay, e.g. pkh.reports.")],
    batch: Annotated[int, typer.Option(min=1, help="Records per transaction.")] = 500,
    as_json: Annotated[bool, typer.Option("--json", help="Print one JSON object.")] = False,
) -> None:
    """Re-validate a source's open quarantine: store what is valid now, refresh the reasons."""
    _check_source(source)
    settings = get_settings()
    counts = replay_quarantined(
        store_engine(),
        source,
        key=settings.pii_key.get_secret_value().encode(),
        now=datetime.now(UTC),
        batch=batch,
    )
    if as_json:
        print(json.dumps(counts.as_dict(), ensure_ascii=False))
        return
    console.print(
        f"{source}: {counts.examined:,} examined, {counts.replayed:,} replayed "
        f"({counts.written:,} written, {counts.unchanged:,} already newer or present), "
        f"{counts.still_invalid:,} still invalid"
    )
    for reason, n in counts.reasons.most_common():
        console.print(f"  {reason}: {n:,}")
