"""Settings refuse the public development secrets once an agency is off this machine."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from deployments.cli_errors import settings_problem
from integrations.settings import DEVELOPMENT_PII_KEY, Settings, sandbox_token

REAL = "https://dtks.jatimprov.go.id/registry"


def _problem(**values: str) -> str:
    with pytest.raises(ValidationError) as caught:
        Settings(**values)  # type: ignore[arg-type]
    return settings_problem(caught.value)


@pytest.mark.parametrize(
    "url", ["http://127.0.0.1:8765/registry", "http://localhost:9/registry", "http://[::1]/r"]
)
def test_the_sandbox_on_loopback_runs_with_the_development_secrets(url: str) -> None:
    settings = Settings(registry_url=url)
    assert settings.pii_key.get_secret_value() == DEVELOPMENT_PII_KEY


def test_a_real_agency_with_the_development_key_and_token_is_refused_in_one_line() -> None:
    line = _problem(registry_url=REAL)
    assert line == (
        "settings: agencies off this machine (dtks.jatimprov.go.id) need the hub's own "
        "secrets; still the public development value: CETTAR_PII_KEY, CETTAR_REGISTRY_TOKEN"
    )


def test_each_public_secret_is_named_alone() -> None:
    assert _problem(registry_url=REAL, registry_token="issued-by-dtks").endswith(
        "value: CETTAR_PII_KEY"
    )
    assert _problem(registry_url=REAL, pii_key="a-key-of-the-province").endswith(
        "value: CETTAR_REGISTRY_TOKEN"
    )
    # A sandbox token on another real agency is refused too, whatever the registry holds.
    line = _problem(
        registry_url=REAL,
        registry_token="issued-by-dtks",
        pii_key="a-key-of-the-province",
        pkh_url="http://10.20.0.5/pkh",
        pkh_token=sandbox_token("pkh"),
    )
    assert line.endswith(
        "(10.20.0.5, dtks.jatimprov.go.id) need the hub's own secrets; "
        "still the public development value: CETTAR_PKH_TOKEN"
    )


def test_own_secrets_for_real_agencies_pass() -> None:
    settings = Settings(
        registry_url=REAL, registry_token="issued-by-dtks", pii_key="a-key-of-the-province"
    )
    assert settings.agency_endpoint("registry") == (REAL, "issued-by-dtks")


def test_no_secret_value_is_in_the_message() -> None:
    line = _problem(registry_url=REAL, registry_token=sandbox_token("registry"))
    assert DEVELOPMENT_PII_KEY not in line and sandbox_token("registry") not in line
