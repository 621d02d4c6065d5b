"""`cettar db backup` and `cettar db restore`: the store to one file and back.

Registered on the CLI's `db` group (deployments/cli.py). The store is the configured one
(`CETTAR_DATABASE_URL`, or the SQLite file in `CETTAR_DATA_DIR`).
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from deployments.cli_errors import CliFailure, CliUsageError, plain_console

__all__ = ["db_backup", "db_restore"]

console = plain_console()


def db_backup(
    path: Annotated[Path, typer.Argument(help="The new file to write the backup to.")],
) -> None:
    """Back up the store to a new file (consistent while the hub runs)."""
    from integrations.store.backup import BackupPathError, backup_store
    from integrations.store.engine import get_engine, store_name

    engine = get_engine()
    try:
        result = backup_store(engine, path)
    except BackupPathError as exc:
        raise CliUsageError(str(exc)) from None
    console.print(
        f"backed up the store at {store_name(engine)} (revision {result.revision or 'none'}) "
        f"to {result.path} ({result.size_bytes:,} bytes)",
        soft_wrap=True,
    )


def db_restore(
    path: Annotated[Path, typer.Argument(help="A file written by `cettar db backup`.")],
    force: Annotated[
        bool, typer.Option("--force", help="Replace a store that holds data.")
    ] = False,
) -> None:
    """Replace the store with a backup; refuses a store that holds data unless --force."""
    from integrations.store.backup import BackupPathError, StoreNotEmpty, restore_store
    from integrations.store.engine import MIGRATIONS, get_engine, store_name

    engine = get_engine()
    try:
        result = restore_store(engine, path, force=force)
    except BackupPathError as exc:
        raise CliUsageError(str(exc)) from None
    except StoreNotEmpty as exc:
        raise CliFailure(str(exc)) from None
    from alembic.script import ScriptDirectory

    heads = set(ScriptDirectory(str(MIGRATIONS)).get_heads())
    # An older backup is a valid store once migrated; say so instead of failing later.
    hint = "" if result.revision in heads else "; run `cettar db upgrade` before using it"
    console.print(
        f"restored {result.path} into the store at {store_name(engine)} "
        f"(revision {result.revision or 'none'}){hint}",
        soft_wrap=True,
    )
