"""The per-agency circuit breaker: what opens it, what it raises, per run, for how long."""

from __future__ import annotations

import pickle
import threading
from collections.abc import Callable

import pytest

from integrations.agencies.breaker import AGENCY_BREAKER, DEFAULT_OPEN_S, CircuitBreaker
from integrations.agencies.errors import (
    AgencyError,
    AuthError,
    CircuitOpen,
    InvalidEndpoint,
    RateLimited,
    ServerError,
    TransportFailure,
    Unreachable,
)

URL = "http://127.0.0.1:9/registry/v1/households?limit=10&kecamatan=35.07.01&cursor=abc"


def refused() -> Unreachable:
    return Unreachable(
        "registry", "GET", URL, attempts=3, reason="unreachable: connection refused by 127.0.0.1:9"
    )


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def breaker(clock: Clock) -> CircuitBreaker:
    return CircuitBreaker(open_s=60.0, clock=clock)


def _fail_with(error: Exception) -> Callable[[], None]:
    def run() -> None:
        raise error

    return run


def test_an_unreachable_agency_opens_its_circuit_for_the_rest_of_the_run(
    breaker: CircuitBreaker,
) -> None:
    with pytest.raises(Unreachable), breaker.guard("registry", "run-1", "registry 35.07"):
        _fail_with(refused())()
    calls: list[str] = []
    with pytest.raises(CircuitOpen) as caught, breaker.guard("registry", "run-1", "registry 35.09"):
        calls.append("tried")
    assert calls == []  # the guarded block never ran
    error = caught.value
    # The same reason, the partition that found it, and never retried by the task.
    assert "connection refused by 127.0.0.1:9" in str(error)
    assert "circuit open since registry 35.07" in str(error)
    assert "cursor=***" in str(error) and "abc" not in str(error)
    assert isinstance(error, AgencyError) and not error.retryable and not error.opens_circuit
    assert error.cause_type == "Unreachable"
    assert error.origin == "registry 35.07"


@pytest.mark.parametrize(
    "error",
    [
        AuthError("registry", "GET", URL, 401),
        AuthError("registry", "GET", URL, 403),
        InvalidEndpoint("registry", "GET", "registry.example", reason="no http:// scheme"),
    ],
    ids=["401", "403", "malformed-url"],
)
def test_a_refused_token_or_a_malformed_url_opens_the_circuit(
    breaker: CircuitBreaker, error: AgencyError
) -> None:
    assert breaker.record("registry", "run-1", error, "registry 35.07") is True
    with pytest.raises(CircuitOpen, match=str(error.status or "malformed|scheme")):
        breaker.check("registry", "run-1")


@pytest.mark.parametrize(
    "error",
    [
        ServerError("registry", "GET", URL, 503, attempts=6),
        RateLimited("registry", "GET", URL, attempts=6),
        TransportFailure("registry", "GET", URL, attempts=6, reason="ReadTimeout"),
        TransportFailure("registry", "GET", URL, attempts=6, reason="ConnectTimeout"),
        ValueError("not an agency error"),
    ],
    ids=lambda e: type(e).__name__,
)
def test_transient_failures_never_open_the_circuit(
    breaker: CircuitBreaker, error: Exception
) -> None:
    with pytest.raises(type(error)), breaker.guard("registry", "run-1", "registry 35.07"):
        _fail_with(error)()
    breaker.check("registry", "run-1")  # still closed


def test_circuits_are_per_agency_and_per_run(breaker: CircuitBreaker) -> None:
    breaker.record("registry", "run-1", refused(), "registry 35.07")
    breaker.check("pkh", "run-1")
    breaker.check("registry", "run-2")
    with pytest.raises(CircuitOpen):
        breaker.check("registry", "run-1")
    breaker.reset("run-1")
    breaker.check("registry", "run-1")


def test_the_circuit_closes_again_after_its_open_time(
    breaker: CircuitBreaker, clock: Clock
) -> None:
    breaker.record("registry", "run-1", refused(), "registry 35.07")
    clock.now += 59.0
    with pytest.raises(CircuitOpen):
        breaker.check("registry", "run-1")
    clock.now += 2.0
    breaker.check("registry", "run-1")  # the next partition tries the agency again
    assert breaker.open_circuits() == {}


def test_the_first_reason_is_kept_while_the_circuit_is_open(breaker: CircuitBreaker) -> None:
    breaker.record("registry", "run-1", refused(), "registry 35.07")
    breaker.record("registry", "run-1", AuthError("registry", "GET", URL, 401), "registry 35.09")
    with pytest.raises(CircuitOpen, match="connection refused"):
        breaker.check("registry", "run-1")


def test_the_default_breaker_is_short_lived() -> None:
    assert DEFAULT_OPEN_S <= 120
    assert isinstance(AGENCY_BREAKER, CircuitBreaker)


def test_circuit_open_survives_pickling(breaker: CircuitBreaker) -> None:
    # Prefect pickles a failed task's exception into its state.
    breaker.record("registry", "run-1", refused(), "registry 35.07")
    with pytest.raises(CircuitOpen) as caught:
        breaker.check("registry", "run-1")
    again = pickle.loads(pickle.dumps(caught.value))
    assert type(again) is CircuitOpen
    assert str(again) == str(caught.value)


def test_many_threads_share_one_breaker_safely(breaker: CircuitBreaker) -> None:
    opened: list[bool] = []
    blocked: list[str] = []
    start = threading.Barrier(16)

    def partition(n: int) -> None:
        start.wait()
        try:
            breaker.check("registry", "run-1")
        except CircuitOpen:
            blocked.append(f"p{n}")
            return
        opened.append(breaker.record("registry", "run-1", refused(), f"registry p{n}"))

    threads = [threading.Thread(target=partition, args=(n,)) for n in range(16)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    # Exactly one partition opened the circuit, whatever the interleaving.
    assert opened.count(True) == 1
    assert len(opened) + len(blocked) == 16
    assert len(breaker.open_circuits()) == 1
