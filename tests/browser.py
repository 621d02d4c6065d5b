"""Debian's chromium for the browser tests (the Prefect UI's and the desk's).

Playwright cannot download browsers here: the tests drive the system's chromium. Without it
or the `playwright` package they skip with the reason; under `CI=true` both are mandatory.
"""

from __future__ import annotations

import importlib.util
import os
import shutil

import pytest


def missing_browser() -> str | None:
    """Why no browser test can run here, or None when one can."""
    if importlib.util.find_spec("playwright") is None:
        return "the Python package `playwright` is not installed (uv sync installs it)"
    if shutil.which("chromium") is None:
        return "Debian's chromium is not installed (apt-get install chromium)"
    return None


def chromium_or_skip(tests: str) -> str:
    """The chromium binary for `tests`; skips without one, fails in CI."""
    problem = missing_browser()
    if problem:
        if os.environ.get("CI") == "true":
            pytest.fail(f"CI requires a browser for {tests}: {problem}")
        pytest.skip(f"no browser for {tests}: {problem}")
    path = shutil.which("chromium")
    assert path is not None
    return path
