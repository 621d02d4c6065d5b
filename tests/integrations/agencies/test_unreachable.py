"""Unreachable and misconfigured agencies, for real: closed ports, unresolvable names, TLS.

No mock of httpx here: each case opens (or fails to open) a real connection through the
hub's transport, so the classification is checked against the exceptions httpx really
raises. The transient cases (5xx, 429, timeouts) are scripted in test_http.py.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from integrations.agencies.client import AgencyClient
from integrations.agencies.errors import (
    AgencyError,
    AuthError,
    ContractViolation,
    InvalidEndpoint,
    RateLimited,
    ServerError,
    TransportFailure,
    Unreachable,
)
from integrations.agencies.http import RetryingTransport, RetryPolicy, build_client
from integrations.settings import Settings
from tests.faults.endpoints import closed_port, plain_http_listener, self_signed_tls_listener

TOKEN = "s3cret-token-value-XYZ"
# Waits scaled down so that the whole file stays fast; the attempt counts are the real ones.
FAST = Settings(http_backoff_base_s=0.01, http_connect_timeout_s=2.0)


@pytest.fixture
def self_signed_tls(tmp_path: Path) -> Iterator[str]:
    """The base URL of an HTTPS listener whose certificate no CA signed."""
    with self_signed_tls_listener(tmp_path) as port:
        yield f"https://127.0.0.1:{port}/registry"


@pytest.fixture
def plain_http() -> Iterator[int]:
    """The port of a listener that answers plain HTTP to a TLS handshake."""
    with plain_http_listener() as port:
        yield port


def _fetch(base_url: str, settings: Settings = FAST) -> tuple[AgencyError, float]:
    started = time.perf_counter()
    with (
        pytest.raises(AgencyError) as caught,
        AgencyClient("registry", base_url, TOKEN, settings=settings) as client,
    ):
        client.fetch_page("households", kecamatan="35.07.01")
    return caught.value, time.perf_counter() - started


def _assert_unreachable(error: AgencyError, reason: str) -> None:
    assert isinstance(error, Unreachable), repr(error)
    assert not error.retryable
    assert error.opens_circuit
    # Retried by the transport a couple of times, never the full transient budget.
    assert error.attempts == RetryPolicy().unreachable_attempts
    assert reason in str(error)
    assert TOKEN not in str(error)


def test_a_closed_port_is_unreachable_after_a_couple_of_attempts() -> None:
    port = closed_port()
    error, seconds = _fetch(f"http://127.0.0.1:{port}/registry")
    _assert_unreachable(error, f"connection refused by 127.0.0.1:{port}")
    assert str(error).startswith("registry GET /registry/v1/households?")
    assert seconds < 5


def test_a_name_that_does_not_resolve_is_unreachable() -> None:
    error, seconds = _fetch("http://nonexistent.invalid/registry")
    _assert_unreachable(error, "cannot resolve nonexistent.invalid")
    # Resolvers answer .invalid at once (RFC 6761); one without a name server may take a
    # few seconds per lookup, which the bound allows.
    assert seconds < 45


def test_a_certificate_no_ca_signed_is_unreachable(self_signed_tls: str) -> None:
    error, seconds = _fetch(self_signed_tls)
    _assert_unreachable(error, "TLS handshake with 127.0.0.1")
    assert "CERTIFICATE_VERIFY_FAILED" in str(error)
    assert seconds < 5


def test_tls_to_a_plain_http_port_is_unreachable(plain_http: int) -> None:
    error, _ = _fetch(f"https://127.0.0.1:{plain_http}/registry")
    _assert_unreachable(error, "TLS handshake with 127.0.0.1")


@pytest.mark.parametrize(
    ("url", "why"),
    [
        ("registry.example", "no http:// or https:// scheme"),
        ("registry.example/registry", "no http:// or https:// scheme"),
        ("ftp://registry.example/registry", "no http:// or https:// scheme"),
        ("http://", "no host"),
        ("http:///registry", "no host"),
        ("https://[::1/registry", "malformed"),
    ],
)
def test_a_malformed_url_is_permanent_and_never_sent(url: str, why: str) -> None:
    started = time.perf_counter()
    with pytest.raises(InvalidEndpoint) as caught:
        AgencyClient("registry", url, TOKEN, settings=FAST)
    error = caught.value
    assert time.perf_counter() - started < 1
    assert not error.retryable
    assert error.opens_circuit
    assert why in str(error)
    assert "CETTAR_REGISTRY_URL" in str(error)
    assert TOKEN not in str(error)


class _Counting(httpx.BaseTransport):
    """A real HTTP transport that counts what is handed to it."""

    def __init__(self) -> None:
        self.inner = httpx.HTTPTransport()
        self.calls = 0

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        self.calls += 1
        return self.inner.handle_request(request)

    def close(self) -> None:
        self.inner.close()


@pytest.mark.parametrize(
    "url", ["registry.example/v1/households", "ftp://registry.example/v1", "http:///v1/households"]
)
def test_a_malformed_request_url_is_refused_by_the_transport_in_one_attempt(url: str) -> None:
    # A request that bypasses build_client's check (an absolute URL of its own) is still
    # never retried: one attempt at most, and InvalidEndpoint, not a transient failure.
    inner = _Counting()
    transport = RetryingTransport(inner, policy=RetryPolicy(max_attempts=6), agency="registry")
    with httpx.Client(transport=transport) as client, pytest.raises(InvalidEndpoint) as caught:
        client.get(url)
    assert caught.value.attempts == 1
    assert inner.calls <= 1


def test_userinfo_in_a_malformed_url_is_not_echoed() -> None:
    with pytest.raises(InvalidEndpoint) as caught:
        build_client("ftp://user:pa55word@registry.example/x", TOKEN, agency="registry")
    assert "pa55word" not in str(caught.value)


@pytest.mark.parametrize(
    "error",
    [
        ServerError("registry", "GET", "http://a.test/v1/x", 503),
        RateLimited("registry", "GET", "http://a.test/v1/x", retry_after=1.0),
        TransportFailure("registry", "GET", "http://a.test/v1/x", reason="ReadTimeout"),
        TransportFailure("registry", "GET", "http://a.test/v1/x", reason="ConnectTimeout"),
        ContractViolation("registry", "GET", "http://a.test/v1/x", 200),
    ],
    ids=lambda e: type(e).__name__,
)
def test_transient_and_data_errors_never_open_the_circuit(error: AgencyError) -> None:
    assert not error.opens_circuit


def test_a_refused_token_opens_the_circuit_and_is_not_retried() -> None:
    error = AuthError("registry", "GET", "http://a.test/v1/x", 401)
    assert error.opens_circuit and not error.retryable
