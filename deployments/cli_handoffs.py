"""Operator commands for handoffs: list and filter, show one with its audit trail, verify the chain.

Everything shown is masked: subjects are keyed tokens, evidence and reasons were masked when
stored, and every text is masked once more on the way out.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Annotated, Any, TypeVar

import typer
from rich.table import Table
from rich.text import Text
from sqlalchemy import Connection

from deployments.cli_errors import CliFailure, CliUsageError, cli_app, plain_console, store_engine
from integrations.store.audit import verify_audit
from integrations.store.handoff_queries import get_handoff, handoff_audit, list_handoffs

__all__ = ["handoffs_app"]

handoffs_app = cli_app(
    help="Handoffs to offices: list, show with the audit trail, verify the audit chain."
)
console = plain_console()

T = TypeVar("T")
AsJson = Annotated[bool, typer.Option("--json", help="Print one JSON document.")]


def _read(query: Callable[[Connection], T]) -> T:
    with store_engine().connect() as conn:
        return query(conn)


def _dumps(value: Any) -> str:
    return json.dumps(value, default=str, ensure_ascii=False)


@handoffs_app.command("list")
def list_cmd(
    office: Annotated[
        str | None, typer.Option(help="Office holding it, e.g. kecamatan:35.78.01.")
    ] = None,
    state: Annotated[str | None, typer.Option(help="open, delivered, acknowledged, ...")] = None,
    kind: Annotated[str | None, typer.Option(help="Kind, e.g. blt_pkh_overlap.")] = None,
    kecamatan: Annotated[str | None, typer.Option(help="Kecamatan code, e.g. 35.78.01.")] = None,
    limit: Annotated[int, typer.Option(min=1, max=10_000, help="Rows at most.")] = 50,
    as_json: AsJson = False,
) -> None:
    """List handoffs, newest first, filtered by office, state, kind and kecamatan."""

    def query(conn: Connection) -> list[dict[str, Any]]:
        try:
            return list_handoffs(
                conn, office=office, state=state, kind=kind, kecamatan=kecamatan, limit=limit
            )
        except ValueError as exc:  # only the filters' own errors, not the store's or settings'
            raise CliUsageError(f"bad filter: {str(exc).splitlines()[0][:200]}") from None

    rows = _read(query)
    if as_json:
        print(_dumps({"count": len(rows), "handoffs": rows}))
        return
    table = Table("id", "kind", "state", "office", "kecamatan", "due", "created")
    for r in rows:
        table.add_row(
            r["id"],
            r["kind"],
            r["state"],
            r["office"],
            r["kecamatan_code"],
            str(r["due_date"]),
            r["created_at"].strftime("%Y-%m-%d %H:%M") if r["created_at"] else "",
        )
    console.print(table)
    console.print(f"{len(rows)} handoffs")


@handoffs_app.command("show")
def show_cmd(
    handoff_id: Annotated[str, typer.Argument(help="The handoff id (32 hex).")],
    as_json: AsJson = False,
) -> None:
    """Show one handoff, its evidence and deliveries, and its audit trail."""

    def query(conn: Connection) -> tuple[dict[str, Any] | None, list[dict[str, Any]]]:
        return get_handoff(conn, handoff_id), handoff_audit(conn, handoff_id)

    handoff, trail = _read(query)
    if handoff is None:
        raise CliFailure(f"no handoff {handoff_id[:40]!r}")
    if as_json:
        print(_dumps({"handoff": handoff, "audit": trail}))
        return
    for name, value in handoff.items():
        if name not in ("evidence", "deliveries"):
            console.print(Text.assemble((name, "bold"), f": {'' if value is None else value}"))
    console.print(Text("evidence", "bold") + ":")
    for name, value in handoff["evidence"].items():
        console.print(f"  {name}: {value}")
    console.print(Text("deliveries", "bold") + ":")
    for d in handoff["deliveries"]:
        console.print(
            f"  {d['office']} {d['status']} attempts={d['attempts']} {d['receipt_id'] or ''}"
        )
    table = Table("seq", "at", "from", "to", "actor", "reason")
    for t in trail:
        table.add_row(
            str(t["seq"]),
            t["at"].isoformat(timespec="seconds"),
            t["from_state"] or "",
            t["to_state"],
            t["actor"],
            t["reason"],
        )
    console.print(table)


@handoffs_app.command("verify-audit")
def verify_audit_cmd(as_json: AsJson = False) -> None:
    """Verify the audit hash chain; exit 1 with the first bad row when it was tampered with."""
    report = _read(verify_audit)
    if as_json:
        print(
            _dumps(
                {
                    "ok": report.ok,
                    "checked": report.checked,
                    "first_bad_seq": report.first_bad_seq,
                    "problem": report.problem,
                    "last_seq": report.last_seq,
                    "last_hash": report.last_hash,
                }
            )
        )
    elif report.ok:
        console.print(f"audit chain intact: {report.checked:,} rows, last hash {report.last_hash}")
    else:
        console.print(
            f"audit chain broken at row {report.first_bad_seq}: {report.problem} "
            f"({report.checked:,} rows verified before it)"
        )
    raise typer.Exit(0 if report.ok else 1)
