"""`cettar intake`: the spreadsheet templates desa fill in for the hub (models/intake.py)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from deployments.cli_errors import CliUsageError, cli_app, plain_console
from models.intake import TEMPLATES, template_of, template_workbook

__all__ = ["intake_app", "intake_template"]

intake_app = cli_app(help="Spreadsheet intake from desa: XLSX/CSV templates.")
console = plain_console()


@intake_app.command("template")
def intake_template(
    source: Annotated[str, typer.Argument(help=f"Source: {', '.join(TEMPLATES)}.")],
    path: Annotated[Path, typer.Argument(help="Where to write the XLSX template.")],
    force: Annotated[bool, typer.Option(help="Replace an existing file.")] = False,
) -> None:
    """Write the XLSX template of a source: Indonesian headers, id columns as text, notes."""
    try:
        template = template_of(source)
    except ValueError as exc:
        raise CliUsageError(str(exc)) from None
    if path.suffix.lower() != ".xlsx":
        raise CliUsageError(f"{path}: the template is an .xlsx file")
    if path.exists() and not force:
        raise CliUsageError(f"{path} exists; pass --force to replace it")
    path.write_bytes(template_workbook(source))
    console.print(f"{template.title}: template written to {path}")
