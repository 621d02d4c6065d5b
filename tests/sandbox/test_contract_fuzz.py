"""Schemathesis against the sandbox agencies' published OpenAPI document, every check on.

Every operation of every agency app in the document is fuzzed (examples, coverage and
fuzzing phases, positive and negative data), then the linked operations statefully; each
response must pass every registered Schemathesis check. The deliberate bad records are
switched off (`SandboxConfig.bad_records=False`): with them on, responses break the
document on purpose. Deterministic (fixed seed, derandomized); the depth per operation is
`CETTAR_CONTRACT_FUZZ_EXAMPLES` (default 25), e.g. 500 for a deep run:

    CETTAR_CONTRACT_FUZZ_EXAMPLES=500 .venv/bin/pytest -q tests/sandbox/test_contract_fuzz.py
"""

from __future__ import annotations

import os
from datetime import datetime

import hypothesis
import pytest
import schemathesis
from schemathesis.checks import CHECKS
from schemathesis.config import SchemathesisConfig
from schemathesis.generation.case import Case

from sandbox.app import create_app
from sandbox.config import (
    AGENCIES,
    WIB,
    CoordinationConfig,
    RegistryDataConfig,
    SandboxConfig,
    default_token,
)
from tests.sandbox.conftest import state_of

# The only knob of a deeper run; read here because it configures this test, not the hub.
MAX_EXAMPLES = int(os.environ.get("CETTAR_CONTRACT_FUZZ_EXAMPLES", "25"))
SEED = 35

APP = create_app(
    SandboxConfig(
        registry=RegistryDataConfig(households=300),
        coordination=CoordinationConfig(clock_origin=datetime(2026, 11, 3, 8, tzinfo=WIB)),
        bad_records=False,
    )
)

CONFIG = SchemathesisConfig.from_dict(
    {
        "seed": SEED,
        "generation": {"max-examples": MAX_EXAMPLES, "deterministic": True, "mode": "all"},
        "phases": {
            "examples": {"enabled": True},
            "coverage": {"enabled": True},
            "fuzzing": {"enabled": True},
            "stateful": {"enabled": True},
        },
        "auth": {
            "openapi": {agency: {"bearer": default_token(agency)} for agency in AGENCIES},
        },
    }
)

schema = schemathesis.openapi.from_asgi("/openapi.json", APP, config=CONFIG)


def _all_checks() -> list:
    # Importing the OpenAPI checks registers them; then the registry holds every check.
    from schemathesis.specs.openapi import checks  # noqa: F401

    return CHECKS.get_all()


ALL_CHECKS = _all_checks()


def test_the_document_covers_every_agency_and_no_admin_route() -> None:
    doc = APP.openapi()
    prefixes = {path.split("/")[1] for path in doc["paths"]}
    assert prefixes == set(AGENCIES)
    assert not any(path.startswith("/_admin") for path in doc["paths"])
    assert len(ALL_CHECKS) >= 10


@schema.parametrize()
def test_every_operation_keeps_to_the_document(case: Case) -> None:
    case.call_and_validate(checks=ALL_CHECKS)


class Stateful(schema.as_state_machine()):  # type: ignore[misc]
    """Linked operations from a fresh inbox and proposal log each run (replays stay exact)."""

    def setup(self) -> None:
        """Forget every write, so a run does not see the keys of the one before."""
        state = state_of(APP)
        state.inbox.reset()
        state.proposals.log.reset()


@pytest.mark.slow
def test_linked_operations_keep_to_the_document() -> None:
    Stateful.run(
        settings=hypothesis.settings(
            max_examples=MAX_EXAMPLES,
            derandomize=True,
            stateful_step_count=6,
            deadline=None,
            suppress_health_check=list(hypothesis.HealthCheck),
        )
    )
