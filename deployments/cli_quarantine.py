"""`cettar quarantine`: list, replay after a fix, re-validate stored rows, purge old payloads."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from enum import StrEnum
from typing import Annotated

import typer
from rich.table import Table

from deployments.cli_errors import (
    CliUsageError,
    cli_app,
    plain_console,
    store_engine,
    store_guarded,
)
from integrations.settings import get_settings
from integrations.store.quarantine import purge_quarantine, quarantine_summary, quarantine_totals
from integrations.store.replay import replay_quarantined
from integrations.store.revalidate import revalidate_store
from models.sources import CATALOGUE

__all__ = ["quarantine_app"]

quarantine_app = cli_app(
    help="Quarantined records: what is held and why, replay, re-validation, retention."
)
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
    from flows.guards import parts_of_sources

    _check_source(source)
    settings = get_settings()
    with store_guarded(parts_of_sources([source]), f"cettar quarantine replay {source}"):
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


@quarantine_app.command("revalidate")
def revalidate(
    source: Annotated[
        list[str] | None, typer.Option(help="Only this source (repeatable); default: all.")
    ] = None,
    kabupaten: Annotated[
        list[str] | None, typer.Option(help="Kabupaten/kota code, repeatable.")
    ] = None,
    kecamatan: Annotated[list[str] | None, typer.Option(help="Kecamatan code, repeatable.")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print one JSON object.")] = False,
) -> None:
    """Re-check stored rows against today's contracts; quarantine and remove what fails."""
    from deployments.cli import _scope
    from flows.guards import parts_of_sources

    for name in source or []:
        _check_source(name)
    scope = _scope(kabupaten, kecamatan)
    settings = get_settings()
    with store_guarded(parts_of_sources(source or CATALOGUE), "cettar quarantine revalidate"):
        results = revalidate_store(
            store_engine(),
            key=settings.pii_key.get_secret_value().encode(),
            now=datetime.now(UTC),
            sources=source or None,
            scope=scope,
        )
    if as_json:
        print(json.dumps({"scope": scope.label(), "sources": [r.as_dict() for r in results]}))
        return
    for r in results:
        if r.skipped:
            console.print(f"{r.source}: not re-validated ({r.skipped})")
            continue
        unchecked = f"; not re-checkable: {', '.join(r.unchecked)}" if r.unchecked else ""
        console.print(
            f"{r.source}: {r.examined:,} examined, {r.quarantined:,} quarantined, "
            f"{r.kept:,} kept{unchecked}"
        )
        for reason, n in r.reasons.most_common():
            console.print(f"  {reason}: {n:,}")


@quarantine_app.command("purge")
def purge(
    dry_run: Annotated[
        bool, typer.Option("--dry-run", help="Only count what would be purged.")
    ] = False,
    retention_days: Annotated[
        int | None,
        typer.Option(min=1, help="Days after the last sighting (default: the setting)."),
    ] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print one JSON object.")] = False,
) -> None:
    """Delete quarantined records last seen longer ago than the retention; audited."""
    from contextlib import nullcontext

    from models.sources import AGENCIES

    days = retention_days or get_settings().quarantine_retention_days
    # A dry run only counts; a purge deletes with no sync writing quarantine rows.
    with nullcontext() if dry_run else store_guarded(AGENCIES, "cettar quarantine purge"):
        counts = purge_quarantine(
            store_engine(), now=datetime.now(UTC), retention_days=days, dry_run=dry_run
        )
    if as_json:
        print(json.dumps(counts.as_dict(), ensure_ascii=False))
        return
    verb = "would purge" if dry_run else "purged"
    console.print(
        f"{verb} {counts.purged:,} quarantined records last seen before "
        f"{counts.cutoff:%Y-%m-%d %H:%M} UTC (retention {days} days)"
    )
    for name, n in sorted(counts.by_source.items()):
        console.print(f"  {name}: {n:,}")
    if counts.audit_seq:
        console.print(f"audit chain row {counts.audit_seq}")
