"""`cettar person check`: one person's records across programmes, for the operator only.

The NIK or No. KK is read from a hidden prompt or from stdin, never from the command line
(which shell history and process lists keep), turned into its keyed token here, and never
sent to Prefect: no flow run, parameter, log line or artifact holds it or the records found.
Every check is written to the audit chain with who asked, when and the token.
"""

from __future__ import annotations

import getpass
import json
import sys
from datetime import UTC, datetime
from typing import Annotated, Any

import typer
from rich.table import Table
from rich.text import Text

from deployments.cli_errors import CliUsageError, cli_app, plain_console, store_engine
from integrations.settings import get_settings
from integrations.store.engine import write_lock
from integrations.store.person import PersonRecords, find_person, record_person_check
from models.identity import IdFormatError, id_token, mask_id, normalise_id

__all__ = ["person_app"]

person_app = cli_app(help="One person across programmes (NIK or No. KK read from a prompt).")
console = plain_console()

# (attribute of PersonRecords, title, the columns shown)
_SECTIONS: tuple[tuple[str, str, tuple[str, ...]], ...] = (
    ("households", "Registry households", ("id", "desa_code", "address", "desil", "updated_at")),
    (
        "members",
        "Registry members",
        ("id", "household_id", "name", "sex", "birth_date", "relationship", "status"),
    ),
    (
        "enrolments",
        "Programme enrolments (PKH, BPNT)",
        ("id", "programme", "household_id", "period", "status"),
    ),
    ("pkh_reports", "PKH facilitator reports", ("id", "kind", "household_id", "updated_at")),
    ("blt_recipients", "BLT-DD lists", ("id", "desa_code", "period", "status")),
    ("farmer_needs", "e-RDKK needs", ("id", "poktan_id", "desa_code", "season", "commodity")),
    ("handoffs", "Handoffs", ("id", "kind", "office", "state", "due_date", "created_at")),
)


def _read_id(from_stdin: bool) -> str:
    raw = sys.stdin.readline() if from_stdin else getpass.getpass("NIK or No. KK (hidden): ")
    try:
        return normalise_id(raw.strip(), label="NIK or No. KK")
    except IdFormatError as exc:
        raise CliUsageError(exc.issue.message) from None


def _plain(value: Any) -> Any:
    return value.isoformat() if isinstance(value, datetime) else value


@person_app.command("check")
def check(
    stdin: Annotated[
        bool, typer.Option("--stdin", help="Read the id from standard input, not a prompt.")
    ] = False,
    as_json: Annotated[bool, typer.Option("--json", help="Print one JSON document.")] = False,
) -> None:
    """Show every record, enrolment and handoff about one person; the check is audited."""
    digits = _read_id(stdin)
    token = id_token(digits, get_settings().pii_key.get_secret_value().encode())
    engine = store_engine()
    with engine.connect() as conn:
        found = find_person(conn, token)
    with write_lock(engine), engine.begin() as conn:
        record_person_check(
            conn, token, actor=f"cli:{getpass.getuser()}", found=found.total, at=datetime.now(UTC)
        )
    if as_json:
        print(
            json.dumps(
                {
                    "token": token,
                    "found": found.total,
                    **{
                        name: [{c: _plain(r[c]) for c in cols} for r in getattr(found, name)]
                        for name, _title, cols in _SECTIONS
                    },
                },
                default=str,
                ensure_ascii=False,
            )
        )
        return
    _print(found, mask_id(digits), token)


def _print(found: PersonRecords, shown: str, token: str) -> None:
    console.print(Text(f"{shown} (token {token}): {found.total} records"))
    for name, title, cols in _SECTIONS:
        rows = getattr(found, name)
        if not rows:
            console.print(Text(f"{title}: none"))
            continue
        table = Table(title=f"{title} ({len(rows)})")
        for col in cols:
            table.add_column(col)
        for row in rows:
            # Stored text is data: shown verbatim, never read as markup.
            table.add_row(*(Text("" if row[c] is None else str(_plain(row[c]))) for c in cols))
        console.print(table)
