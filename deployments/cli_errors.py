"""What every `cettar` command shares: a failure is one line, output never reads markup.

Each Typer app of the CLI is made by `cli_app`, whose group (`CliGroup`) turns whatever a
command raises into one line on stderr and an exit code: 2 for a usage error (a bad
argument or setting), 1 for a runtime failure (no store, a store that does not answer).
`cettar --debug ...` lets the exception through, with its traceback.

Data (stored text, arguments, URLs) is printed through `plain_console`, which interprets
neither Rich markup nor emoji codes; styling is given as `Text` styles.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from typing import Any

import typer
from pydantic import ValidationError
from rich.console import Console
from sqlalchemy import Engine
from sqlalchemy.exc import DBAPIError
from typer.core import TyperGroup

from integrations.settings import Settings
from integrations.store.engine import StoreUnavailable, StoreUrlError, get_engine, require_store

__all__ = [
    "CliFailure",
    "CliGroup",
    "CliUsageError",
    "cli_app",
    "describe_failure",
    "plain_console",
    "settings_problem",
    "store_engine",
    "store_guarded",
]


class CliFailure(Exception):
    """A command failed for a reason the user can act on; the message is shown as is."""

    exit_code = 1


class CliUsageError(CliFailure):
    """A bad argument or option value."""

    exit_code = 2


def plain_console(**options: Any) -> Console:
    """A console that prints text as given: no markup, no emoji codes."""
    return Console(markup=False, emoji=False, **options)


def store_engine() -> Engine:
    """The configured store's engine, once it is known to exist, open and be migrated."""
    engine = get_engine()
    require_store(engine)
    return engine


@contextmanager
def store_guarded(parts: Iterable[str], what: str) -> Iterator[Engine]:
    """The store's engine, with the guards of these parts held (flows/guards.py) as flows do."""
    from deployments.prefect_server import configured_prefect_url, ensure_server, prefect_api
    from flows.guards import store_guard
    from integrations.settings import get_settings

    engine = store_engine()  # a missing or unmigrated store is reported before any server
    server = ensure_server(get_settings(), configured_url=configured_prefect_url())
    with prefect_api(server.api_url), store_guard(parts, what=what):
        yield engine


_SETTING_RULES = {
    "greater_than_equal": "must be at least {ge}",
    "less_than_equal": "must be at most {le}",
    "greater_than": "must be more than {gt}",
    "less_than": "must be less than {lt}",
    "int_parsing": "must be a whole number",
    "int_from_float": "must be a whole number",
    "float_parsing": "must be a number",
    "bool_parsing": "must be true or false",
}


def settings_problem(exc: ValidationError) -> str:
    """`CETTAR_PAGE_LIMIT: must be at least 1` for each bad setting (values never shown)."""
    prefix = str(Settings.model_config.get("env_prefix", ""))
    problems = []
    for error in exc.errors(include_url=False, include_input=False, include_context=True):
        rule = _SETTING_RULES.get(error["type"])
        text = rule.format(**error.get("ctx", {})) if rule else _lower_first(error["msg"])
        if not error["loc"]:  # a rule across settings names them in its own message
            problems.append(f"settings: {text}")
            continue
        name = (prefix + "_".join(str(part) for part in error["loc"])).upper()
        problems.append(f"{name}: {text}")
    return "; ".join(problems)


def describe_failure(exc: Exception) -> tuple[str, int]:
    """The one-line message and the exit code of an exception a command raised."""
    if isinstance(exc, CliFailure):
        return _one_line(str(exc)), exc.exit_code
    if isinstance(exc, StoreUrlError):
        return _one_line(str(exc)), 2
    if isinstance(exc, StoreUnavailable):
        fix = ": run `cettar db upgrade`" if exc.needs_upgrade else ""
        return _one_line(str(exc)) + fix, 1
    if isinstance(exc, ValidationError):
        if exc.title == Settings.__name__:
            return settings_problem(exc), 2
        fields = "; ".join(
            f"{'.'.join(str(p) for p in e['loc'])}: {_lower_first(e['msg'])}"
            for e in exc.errors(include_url=False, include_input=False)
        )
        return _one_line(f"invalid {exc.title}: {fields}"), 1
    if isinstance(exc, DBAPIError):
        # Only the driver's first line: later lines (DETAIL, the statement) may hold data.
        return f"the store failed: {_one_line(str(exc.orig))}", 1
    if isinstance(exc, RuntimeError | OSError):
        return _one_line(str(exc)) or type(exc).__name__, 1
    detail = _one_line(str(exc))
    what = f"{type(exc).__name__}: {detail}" if detail else type(exc).__name__
    return f"{what} (`cettar --debug ...` shows the traceback)", 1


def _one_line(text: str) -> str:
    lines = text.strip().splitlines()
    return lines[0].strip() if lines else ""


def _lower_first(text: str) -> str:
    text = text.removeprefix("Value error, ")
    return text[:1].lower() + text[1:]


class CliGroup(TyperGroup):
    """A command group whose commands fail in one line (the traceback only with --debug)."""

    def invoke(self, ctx: Any) -> Any:
        """Invoke the command; an exception becomes a one-line message and an exit code."""
        try:
            return super().invoke(ctx)
        except (typer.Exit, typer.Abort, typer.TyperException, EOFError):
            raise  # exits, aborts and usage errors of the parser keep Typer's handling
        except Exception as exc:
            if ctx.find_root().params.get("debug"):
                raise
            message, code = describe_failure(exc)
            typer.secho(f"error: {message}", err=True, fg="red")
            raise typer.Exit(code) from None


def cli_app(**options: Any) -> typer.Typer:
    """A Typer app of the CLI: its commands' failures are one line (see `CliGroup`)."""
    return typer.Typer(cls=CliGroup, no_args_is_help=True, **options)
