"""The retry layer: scripted agency answers through httpx.MockTransport, with no real waits."""

from __future__ import annotations

import logging
import pickle
import random
import ssl
import threading
import time
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from email.utils import format_datetime
from typing import Any

import httpx
import pytest

from integrations.agencies.errors import (
    AgencyError,
    AuthError,
    BadRequest,
    Conflict,
    ContractViolation,
    NotFound,
    PermanentError,
    RateLimited,
    ServerError,
    TransientError,
    TransportFailure,
    Unprocessable,
    Unreachable,
    sanitise_url,
)
from integrations.agencies.http import (
    ATTEMPTS_EXTENSION,
    JSON_EXTENSION,
    USER_AGENT,
    RetryingTransport,
    RetryPolicy,
    build_client,
    parse_retry_after,
    raise_for_status,
    tls_context,
)
from integrations.settings import Settings

TOKEN = "s3cret-token-value-XYZ"
NIK = "3578014508900001"
CURSOR = "opaque-cursor-c2VjcmV0"
BASE = "https://agency.test/registry"
NOW = 1_767_225_600.0  # 2026-01-01T00:00:00Z
POLICY = RetryPolicy(max_attempts=6, backoff_base_s=0.2, backoff_max_s=2.0, retry_after_max_s=30.0)

Step = httpx.Response | Exception


class Script:
    """An agency that plays back scripted answers (or raises scripted errors) in order."""

    def __init__(self, *steps: Step, then: Step | None = None) -> None:
        self.steps = list(steps)
        self.then = then
        self.requests: list[httpx.Request] = []
        self.bodies: list[bytes] = []

    def __call__(self, request: httpx.Request) -> httpx.Response:
        self.requests.append(request)
        self.bodies.append(request.read())
        step = self.steps.pop(0) if self.steps else self.then
        if step is None:
            raise AssertionError("agency called more often than scripted")
        if isinstance(step, Exception):
            raise step
        return step

    @property
    def calls(self) -> int:
        return len(self.requests)


def ok(payload: Any = None) -> httpx.Response:
    return httpx.Response(
        200, json={"data": [], "next_cursor": None} if payload is None else payload
    )


def status(code: int, headers: dict[str, str] | None = None, body: Any = None) -> httpx.Response:
    return httpx.Response(code, headers=headers, json=body if body is not None else {"error": "x"})


class Harness:
    """A client over a scripted agency, with recorded (not slept) delays."""

    def __init__(self, script: Script, policy: RetryPolicy = POLICY, concurrency: int = 8) -> None:
        self.script = script
        self.delays: list[float] = []
        self.transport = RetryingTransport(
            httpx.MockTransport(script),
            policy=policy,
            agency="registry",
            max_concurrency=concurrency,
            sleep=self.delays.append,
            clock=lambda: NOW,
            rng=random.Random(7),
        )
        self.client = build_client(
            BASE, TOKEN, agency="registry", settings=Settings(), transport=self.transport
        )

    def get(self, path: str = "/v1/households", **kwargs: Any) -> httpx.Response:
        response = self.client.get(path, **kwargs)
        raise_for_status(response, "registry")
        return response


@pytest.fixture
def harness() -> Iterator[Callable[..., Harness]]:
    made: list[Harness] = []

    def make(*steps: Step, then: Step | None = None, **kwargs: Any) -> Harness:
        h = Harness(Script(*steps, then=then), **kwargs)
        made.append(h)
        return h

    yield make
    for h in made:
        h.client.close()


def in_backoff_bounds(delay: float, attempt: int, policy: RetryPolicy = POLICY) -> bool:
    ceiling = policy.backoff_ceiling(attempt)
    return ceiling * (1 - policy.jitter) - 1e-9 <= delay <= ceiling + 1e-9


# --- policy -------------------------------------------------------------------------------


def test_policy_from_settings() -> None:
    s = Settings(
        http_max_attempts=3,
        http_backoff_base_s=0.5,
        http_backoff_max_s=4.0,
        http_retry_after_max_s=9.0,
    )
    assert RetryPolicy.from_settings(s) == RetryPolicy(3, 0.5, 4.0, 9.0)


def test_backoff_grows_exponentially_within_jitter_bounds_and_cap() -> None:
    rng = random.Random(1)
    assert [POLICY.backoff_ceiling(n) for n in range(1, 6)] == [0.2, 0.4, 0.8, 1.6, 2.0]
    for attempt in range(1, 30):
        for _ in range(50):
            assert in_backoff_bounds(POLICY.backoff(attempt, rng), attempt)
    full = RetryPolicy(backoff_base_s=1.0, backoff_max_s=1.0, jitter=1.0)
    draws = [full.backoff(1, rng) for _ in range(200)]
    assert min(draws) < 0.1 and max(draws) > 0.9


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [({"max_attempts": 0}, "max_attempts"), ({"jitter": 1.5}, "jitter")],
)
def test_policy_rejects_nonsense(kwargs: dict[str, Any], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        RetryPolicy(**kwargs)


@pytest.mark.parametrize(
    ("header", "expected"),
    [
        ("5", 5.0),
        (" 0 ", 0.0),
        ("-3", 0.0),
        ("1.5", 1.5),
        (format_datetime(datetime.fromtimestamp(NOW + 42, UTC), usegmt=True), 42.0),
        (format_datetime(datetime.fromtimestamp(NOW - 42, UTC), usegmt=True), 0.0),
        ("soon", None),
        ("", None),
        (None, None),
        ("nan", None),
    ],
)
def test_parse_retry_after(header: str | None, expected: float | None) -> None:
    assert parse_retry_after(header, now=NOW) == expected


# --- retried answers ------------------------------------------------------------------------


def test_429_then_200_waits_retry_after_seconds(harness: Callable[..., Harness]) -> None:
    h = harness(status(429, {"Retry-After": "3"}), ok())
    response = h.get()
    assert response.status_code == 200
    assert h.script.calls == 2
    assert h.delays == [3.0]
    assert response.extensions[ATTEMPTS_EXTENSION] == 2


def test_429_then_200_waits_until_retry_after_date(harness: Callable[..., Harness]) -> None:
    when = format_datetime(datetime.fromtimestamp(NOW + 7, UTC), usegmt=True)
    h = harness(status(429, {"Retry-After": when}), ok())
    assert h.get().status_code == 200
    assert h.delays == [7.0]


def test_retry_after_is_capped(harness: Callable[..., Harness]) -> None:
    far = format_datetime(datetime.fromtimestamp(NOW + 86_400, UTC), usegmt=True)
    h = harness(status(429, {"Retry-After": "3600"}), status(503, {"Retry-After": far}), ok())
    assert h.get().status_code == 200
    assert h.delays == [POLICY.retry_after_max_s, POLICY.retry_after_max_s]


def test_429_without_usable_retry_after_backs_off(harness: Callable[..., Harness]) -> None:
    h = harness(status(429, {"Retry-After": "later"}), status(429), ok())
    assert h.get().status_code == 200
    assert len(h.delays) == 2
    assert all(in_backoff_bounds(d, n) for n, d in enumerate(h.delays, start=1))


def test_503_503_200_succeeds_on_third_attempt(harness: Callable[..., Harness]) -> None:
    h = harness(status(503), status(503), ok())
    response = h.get()
    assert response.status_code == 200
    assert h.script.calls == 3
    assert response.extensions[ATTEMPTS_EXTENSION] == 3
    assert len(h.delays) == 2
    assert all(in_backoff_bounds(d, n) for n, d in enumerate(h.delays, start=1))
    assert response.elapsed.total_seconds() >= 0


@pytest.mark.parametrize("code", [500, 502, 503, 504])
def test_exhausted_5xx_raises_server_error_with_attempts(
    harness: Callable[..., Harness], code: int
) -> None:
    h = harness(then=status(code, body={"error": "upstream_down", "detail": f"NIK {NIK}"}))
    with pytest.raises(ServerError) as caught:
        h.get()
    error = caught.value
    assert h.script.calls == POLICY.max_attempts
    assert len(h.delays) == POLICY.max_attempts - 1
    assert error.attempts == POLICY.max_attempts
    assert error.status == code
    assert error.retryable and isinstance(error, TransientError)
    assert str(error) == (
        f"registry GET /registry/v1/households -> {code} after 6 attempts (upstream_down)"
    )


def test_exhausted_429_raises_rate_limited_with_retry_after(
    harness: Callable[..., Harness],
) -> None:
    h = harness(then=status(429, {"Retry-After": "2"}))
    with pytest.raises(RateLimited) as caught:
        h.get()
    assert caught.value.attempts == POLICY.max_attempts
    assert caught.value.retry_after == 2.0
    assert h.delays == [2.0] * (POLICY.max_attempts - 1)


def test_failed_answers_are_closed_before_retrying(harness: Callable[..., Harness]) -> None:
    closed: list[int] = []

    class Tracked(httpx.SyncByteStream):
        def __init__(self, code: int) -> None:
            self.code = code

        def __iter__(self) -> Iterator[bytes]:
            yield b'{"error": "busy"}'

        def close(self) -> None:
            closed.append(self.code)

    h = harness(
        httpx.Response(503, stream=Tracked(503)), httpx.Response(502, stream=Tracked(502)), ok()
    )
    h.get()
    assert closed == [503, 502]


# --- answers never retried ------------------------------------------------------------------


@pytest.mark.parametrize(
    ("code", "error_type"),
    [
        (400, BadRequest),
        (401, AuthError),
        (403, AuthError),
        (404, NotFound),
        (409, Conflict),
        (422, Unprocessable),
        (410, PermanentError),
        (302, PermanentError),
    ],
)
def test_permanent_statuses_are_not_retried(
    harness: Callable[..., Harness], code: int, error_type: type[AgencyError]
) -> None:
    h = harness(then=status(code, {"Location": "https://elsewhere.test/"}))
    with pytest.raises(error_type) as caught:
        h.get()
    assert type(caught.value) is error_type
    assert h.script.calls == 1
    assert h.delays == []
    assert caught.value.attempts == 1
    assert caught.value.status == code
    assert not caught.value.retryable


def test_422_carries_field_errors_without_echoing_values(harness: Callable[..., Harness]) -> None:
    body = {
        "error": "validation_failed",
        "detail": f"member {NIK} is invalid",
        "fields": [
            {"loc": ["members", 0, "nik"], "msg": f"{NIK} fails the date check", "type": "nik"},
            {"loc": ["desa_code"], "msg": "unknown", "type": "region_code_unknown"},
        ],
    }
    h = harness(status(422, body=body))
    with pytest.raises(Unprocessable) as caught:
        raise_for_status(h.client.post("/v1/proposals", json={"nik": NIK}), "registry")
    error = caught.value
    assert [f.loc for f in error.fields] == [["members", 0, "nik"], ["desa_code"]]
    assert NIK not in error.fields[0].msg and "fails the date check" in error.fields[0].msg
    assert str(error) == (
        "registry POST /registry/v1/proposals -> 422 (validation_failed): "
        "members.0.nik [nik], desa_code [region_code_unknown]"
    )


def test_error_code_that_is_free_text_is_not_echoed(harness: Callable[..., Harness]) -> None:
    h = harness(status(404, body={"error": f"no household with NIK {NIK}"}))
    with pytest.raises(NotFound) as caught:
        h.get()
    assert caught.value.code is None
    assert str(caught.value) == "registry GET /registry/v1/households -> 404"


# --- transport errors -----------------------------------------------------------------------


@pytest.mark.parametrize(
    "error",
    [
        httpx.ConnectError("connection refused"),
        httpx.ReadTimeout("timed out"),
        httpx.RemoteProtocolError("peer closed connection without sending complete message"),
        httpx.ConnectTimeout("timed out"),
    ],
    ids=lambda e: type(e).__name__,
)
def test_transport_errors_are_retried(harness: Callable[..., Harness], error: Exception) -> None:
    h = harness(error, error, ok())
    assert h.get().status_code == 200
    assert h.script.calls == 3
    assert all(in_backoff_bounds(d, n) for n, d in enumerate(h.delays, start=1))


def test_exhausted_transport_errors_raise_transport_failure(
    harness: Callable[..., Harness],
) -> None:
    h = harness(then=httpx.ReadTimeout("timed out"))
    with pytest.raises(TransportFailure) as caught:
        h.get()
    assert h.script.calls == POLICY.max_attempts
    assert caught.value.attempts == POLICY.max_attempts
    assert caught.value.status is None
    assert isinstance(caught.value.__cause__, httpx.ReadTimeout)
    assert str(caught.value) == (
        "registry GET /registry/v1/households -> failed after 6 attempts: ReadTimeout"
    )


def test_body_dropped_mid_read_is_retried(harness: Callable[..., Harness]) -> None:
    class Dropping(httpx.SyncByteStream):
        def __iter__(self) -> Iterator[bytes]:
            yield b'{"data": [{"id": "h1"'
            raise httpx.RemoteProtocolError("peer closed connection")

    h = harness(httpx.Response(200, stream=Dropping()), ok({"data": [{"id": "h1"}]}))
    assert h.get().json() == {"data": [{"id": "h1"}]}
    assert h.script.calls == 2


def test_truncated_json_is_retried_then_exhausted(harness: Callable[..., Harness]) -> None:
    cut = httpx.Response(
        200,
        content=b'{"data": [{"id": "h1"}, {"id": "h',
        headers={"content-type": "application/json"},
    )
    h = harness(cut, ok())
    assert h.get().status_code == 200
    assert h.script.calls == 2

    h = harness(
        then=httpx.Response(200, content=b"\x00\xff", headers={"content-type": "application/json"})
    )
    with pytest.raises(TransportFailure, match="truncated or undecodable body") as caught:
        h.get()
    assert caught.value.attempts == POLICY.max_attempts


def test_a_lone_surrogate_escape_is_read_not_refused(harness: Callable[..., Harness]) -> None:
    # JSON allows "\ud800" alone; the fast parser refuses it, which would fail the whole page
    # on every rerun. The body is read, and the record holding it is left to validation.
    body = b'{"data": [{"id": "h1", "name": "a\\ud800b"}, {"id": "h2"}], "next_cursor": null}'
    h = harness(httpx.Response(200, content=body, headers={"content-type": "application/json"}))
    response = h.get()
    assert response.extensions[JSON_EXTENSION]["data"] == [
        {"id": "h1", "name": "a\ud800b"},
        {"id": "h2"},
    ]
    assert h.script.calls == 1


def test_non_json_2xx_is_passed_through(harness: Callable[..., Harness]) -> None:
    h = harness(
        httpx.Response(200, text="<html>portal</html>", headers={"content-type": "text/html"})
    )
    assert h.get().text == "<html>portal</html>"
    assert h.script.calls == 1


# --- methods --------------------------------------------------------------------------------


def test_post_without_idempotency_key_is_not_retried(harness: Callable[..., Harness]) -> None:
    h = harness(then=status(503))
    response = h.client.post("/v1/proposals", json={"a": 1})
    assert response.status_code == 503
    assert h.script.calls == 1
    with pytest.raises(ServerError) as caught:
        raise_for_status(response, "registry")
    assert caught.value.attempts == 1

    h = harness(then=httpx.ReadTimeout("timed out"))
    with pytest.raises(TransportFailure):
        h.client.post("/v1/proposals", json={"a": 1})
    assert h.script.calls == 1


def test_post_with_idempotency_key_is_retried_with_the_same_body(
    harness: Callable[..., Harness],
) -> None:
    h = harness(status(503), httpx.ReadTimeout("timed out"), ok())
    response = h.client.post("/v1/proposals", json={"a": 1}, headers={"Idempotency-Key": "k-1"})
    assert response.status_code == 200
    assert h.script.calls == 3
    assert len(set(h.script.bodies)) == 1 and h.script.bodies[0] == b'{"a":1}'


def test_post_is_retried_when_the_request_never_left(harness: Callable[..., Harness]) -> None:
    h = harness(httpx.ConnectError("refused"), ok())
    assert h.client.post("/v1/proposals", json={"a": 1}).status_code == 200
    assert h.script.calls == 2


@pytest.mark.parametrize("method", ["PUT", "DELETE", "HEAD", "OPTIONS"])
def test_idempotent_methods_are_retried(harness: Callable[..., Harness], method: str) -> None:
    h = harness(status(502), httpx.Response(204))
    assert h.client.request(method, "/v1/x").status_code == 204
    assert h.script.calls == 2


# --- secrets and personal data --------------------------------------------------------------


def test_token_and_query_values_never_reach_errors_or_logs(
    harness: Callable[..., Harness], caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    params = {"cursor": CURSOR, "nik": NIK, "token": TOKEN, "kecamatan": "35.78.01", "limit": 5}
    errors: list[BaseException] = []
    for steps in (
        [status(503, body={"error": "busy", "detail": f"{NIK} {TOKEN}"})],
        [httpx.ReadTimeout(f"timed out {TOKEN}")],
        [status(401, body={"error": "bad_token", "detail": TOKEN})],
        [status(422, body={"error": "x", "fields": [{"loc": ["nik"], "msg": NIK}]})],
    ):
        h = harness(then=steps[0])
        with pytest.raises(AgencyError) as caught:
            h.get(params=params)
        errors.append(caught.value)
    assert any("retry 2/6" in r.getMessage() for r in caplog.records if r.name == "cettar.http")
    assert any(r.name == "httpx" for r in caplog.records)
    texts = [str(e) for e in errors] + [repr(e) for e in errors]
    texts += [r.getMessage() for r in caplog.records] + [caplog.text]
    for text in texts:
        for secret in (TOKEN, NIK, CURSOR, "Bearer"):
            assert secret not in text
    assert "kecamatan=35.78.01" in str(errors[0])
    assert "cursor=***" in str(errors[0])


def test_retry_warning_names_url_outcome_attempt_and_delay(
    harness: Callable[..., Harness], caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.WARNING, logger="cettar.http")
    h = harness(status(429, {"Retry-After": "1"}), httpx.ConnectError("refused"), ok())
    h.get(params={"cursor": CURSOR})
    lines = [r.getMessage() for r in caplog.records if r.name == "cettar.http"]
    assert lines == [
        "registry GET https://agency.test/registry/v1/households?cursor=*** -> 429; "
        "retry 2/6 in 1.00s",
        "registry GET https://agency.test/registry/v1/households?cursor=*** -> ConnectError; "
        f"retry 3/6 in {h.delays[1]:.2f}s",
    ]
    assert all(r.levelno == logging.WARNING for r in caplog.records if r.name == "cettar.http")


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        (
            "https://user:pw@agency.test:8443/v1/x?token=abc&key=k&nik=1&limit=10#frag",
            "https://agency.test:8443/v1/x?token=***&key=***&nik=***&limit=10",
        ),
        (f"http://h/v1/persons/{NIK}", "http://h/v1/persons/3578••••••••0001"),
        (
            "http://h/v1/x?kecamatan=35.78.01&cursor=abc",
            "http://h/v1/x?kecamatan=35.78.01&cursor=***",
        ),
        ("http://[::1]:80/v1/x", "http://[::1]:80/v1/x"),
    ],
)
def test_sanitise_url(url: str, expected: str) -> None:
    assert sanitise_url(url) == expected
    assert sanitise_url(sanitise_url(url)) == expected


def test_errors_survive_pickling() -> None:
    error = RateLimited("registry", "GET", f"http://h/v1/x?nik={NIK}", attempts=3, retry_after=1.0)
    clone = pickle.loads(pickle.dumps(error))
    assert type(clone) is RateLimited
    assert str(clone) == str(error) == "registry GET /v1/x?nik=*** -> 429 after 3 attempts"
    assert clone.retry_after == 1.0
    violation = ContractViolation("registry", "GET", "http://h/v1/x", 200, reason="bad envelope")
    assert str(pickle.loads(pickle.dumps(violation))) == ("registry GET /v1/x -> 200: bad envelope")


# --- client construction and limits ---------------------------------------------------------


def test_build_client_sets_auth_agent_timeouts_and_no_redirects() -> None:
    seen: list[httpx.Request] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return ok()

    settings = Settings(http_timeout_s=12.0, http_connect_timeout_s=3.0, http_max_concurrency=5)
    with build_client(
        BASE, TOKEN, agency="registry", settings=settings, transport=httpx.MockTransport(handler)
    ) as client:
        client.get("/v1/households")
        assert client.follow_redirects is False
        assert client.timeout == httpx.Timeout(12.0, connect=3.0)
        transport = client._transport
        assert isinstance(transport, RetryingTransport)
        assert transport.max_concurrency == 5
        assert transport.policy == RetryPolicy.from_settings(settings)
        assert TOKEN not in repr(client.headers)
    request = seen[0]
    assert request.url == "https://agency.test/registry/v1/households"
    assert request.headers["authorization"] == f"Bearer {TOKEN}"
    assert request.headers["user-agent"] == USER_AGENT
    assert request.extensions["timeout"] == {
        "connect": 3.0,
        "read": 12.0,
        "write": 12.0,
        "pool": 12.0,
    }


def test_build_client_never_stacks_retry_layers(harness: Callable[..., Harness]) -> None:
    h = harness(then=status(503))
    assert h.client._transport is h.transport
    with pytest.raises(ServerError):
        h.get()
    assert h.script.calls == POLICY.max_attempts


def test_concurrency_limit_is_honoured_across_threads() -> None:
    lock = threading.Lock()
    in_flight = 0
    peak = 0

    def handler(request: httpx.Request) -> httpx.Response:
        nonlocal in_flight, peak
        with lock:
            in_flight += 1
            peak = max(peak, in_flight)
        time.sleep(0.02)
        with lock:
            in_flight -= 1
        return ok()

    transport = RetryingTransport(
        httpx.MockTransport(handler), max_concurrency=3, sleep=lambda _: None
    )
    with build_client(BASE, TOKEN, agency="registry", transport=transport) as client:
        threads = [threading.Thread(target=client.get, args=("/v1/households",)) for _ in range(12)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
    assert peak == 3


def test_waits_between_attempts_do_not_hold_a_slot() -> None:
    release = threading.Event()
    calls: list[str] = []

    def handler(request: httpx.Request) -> httpx.Response:
        calls.append(request.url.path)
        if request.url.path.endswith("/slow"):
            return status(503) if len(calls) == 1 else ok()
        return ok()

    def sleep(_: float) -> None:
        # While the first request waits to retry, the only slot must be free for another.
        other = threading.Thread(target=client.get, args=("/v1/fast",))
        other.start()
        other.join(timeout=5)
        release.set()

    transport = RetryingTransport(httpx.MockTransport(handler), max_concurrency=1, sleep=sleep)
    with build_client(BASE, TOKEN, agency="registry", transport=transport) as client:
        assert client.get("/v1/slow").status_code == 200
    assert release.is_set()
    assert calls == ["/registry/v1/slow", "/registry/v1/fast", "/registry/v1/slow"]


def test_clients_share_one_verifying_tls_context() -> None:
    first, second = RetryingTransport(), RetryingTransport()
    try:
        pools = [t.inner._pool for t in (first, second)]  # type: ignore[attr-defined]
        assert pools[0]._ssl_context is pools[1]._ssl_context is tls_context()
        assert tls_context().verify_mode is ssl.CERT_REQUIRED
        assert tls_context().check_hostname
    finally:
        first.close()
        second.close()


# --- unreachable agencies (the real sockets are in test_unreachable.py) ------------------


def _refused() -> httpx.ConnectError:
    # What httpx raises for a closed port: a ConnectError raised from ConnectionRefusedError.
    error = httpx.ConnectError("[Errno 111] Connection refused")
    error.__cause__ = ConnectionRefusedError(111, "Connection refused")
    return error


def test_an_unreachable_agency_gets_a_couple_of_attempts_not_the_whole_budget(
    harness: Callable[..., Harness],
) -> None:
    h = harness(then=_refused())
    with pytest.raises(Unreachable) as caught:
        h.get()
    assert h.script.calls == POLICY.unreachable_attempts == 3
    assert len(h.delays) == 2 and all(in_backoff_bounds(d, n) for n, d in enumerate(h.delays, 1))
    assert str(caught.value) == (
        "registry GET /registry/v1/households -> failed after 3 attempts: "
        "unreachable: connection refused by agency.test:443"
    )


def test_answers_before_a_refusal_do_not_count_against_its_attempts(
    harness: Callable[..., Harness],
) -> None:
    h = harness(status(503), status(503), then=_refused())
    with pytest.raises(Unreachable) as caught:
        h.get()
    assert caught.value.attempts == h.script.calls == 5


def test_a_refused_connection_that_recovers_succeeds(harness: Callable[..., Harness]) -> None:
    h = harness(_refused(), _refused(), ok())
    assert h.get().status_code == 200


def test_a_refused_post_is_retried_too(harness: Callable[..., Harness]) -> None:
    h = harness(_refused(), ok({"receipt_id": "r"}))
    assert h.client.post("/v1/update_proposals", json={}).status_code == 200
