"""The registry client against a scripted registry (MockTransport) and the sandbox agency."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import httpx
import pytest

from integrations.agencies.client import AgencyClient, FetchedPage, PageCursor
from integrations.agencies.errors import AuthError, ContractViolation, TransportFailure
from integrations.agencies.http import RetryingTransport, RetryPolicy
from integrations.settings import Settings
from sandbox.app import create_app
from sandbox.config import (
    DEFAULT_REGISTRY_TOKEN,
    FaultConfig,
    RegistryDataConfig,
    SandboxConfig,
)
from sandbox.server import serve_in_thread
from sandbox.transport import SyncASGITransport

TOKEN = "registry-test-token"
BASE = "https://registry.test/registry"
NO_WAIT = RetryPolicy(max_attempts=6, backoff_base_s=0.0, backoff_max_s=0.0)


class FakeRegistry:
    """A registry serving numbered households with offset cursors; records every request."""

    def __init__(self, total: int) -> None:
        self.records = [
            {"id": f"H{i:05d}", "updated_at": "2026-01-01T00:00:00Z"} for i in range(total)
        ]
        self.requests: list[httpx.Request] = []
        # Optional overrides: request number (0-based) -> answer.
        self.overrides: dict[int, httpx.Response] = {}

    def __call__(self, request: httpx.Request) -> httpx.Response:
        n = len(self.requests)
        self.requests.append(request)
        if n in self.overrides:
            return self.overrides[n]
        if request.headers.get("authorization") != f"Bearer {TOKEN}":
            return httpx.Response(401, json={"error": "unauthorised"})
        limit = int(request.url.params["limit"])
        start = int(request.url.params.get("cursor", "0"))
        chunk = self.records[start : start + limit]
        end = start + len(chunk)
        return httpx.Response(
            200,
            json={"data": chunk, "next_cursor": str(end) if end < len(self.records) else None},
        )


def make_client(registry: FakeRegistry, token: str = TOKEN) -> AgencyClient:
    transport = RetryingTransport(
        httpx.MockTransport(registry), policy=NO_WAIT, agency="registry", sleep=lambda _: None
    )
    return AgencyClient(
        "registry", BASE, token, settings=Settings(page_limit=4), transport=transport
    )


def ids(pages: list[FetchedPage]) -> list[str]:
    return [r["id"] for p in pages for r in p.records]


def test_pages_to_exhaustion_with_resume_points() -> None:
    registry = FakeRegistry(10)
    since = datetime(2026, 1, 1, tzinfo=UTC)
    with make_client(registry) as client:
        got = list(
            client.iter_pages("households", updated_since=since, kecamatan="35.78.01", limit=4)
        )
    pages = [p for p, _ in got]
    assert ids(pages) == [r["id"] for r in registry.records]
    assert [len(p.records) for p in pages] == [4, 4, 2]
    assert [c for _, c in got] == [
        PageCursor("households", "35.78.01", since, "4"),
        PageCursor("households", "35.78.01", since, "8"),
        PageCursor("households", "35.78.01", since, None),
    ]
    assert all(p.raw_bytes > 0 and p.elapsed_s >= 0 and p.attempts == 1 for p in pages)


def test_params_sent() -> None:
    registry = FakeRegistry(6)
    since = datetime(2026, 3, 1, 14, 30, tzinfo=timezone(timedelta(hours=7)))
    with make_client(registry) as client:
        list(client.iter_pages("recipients", updated_since=since, kecamatan="35.78.01", limit=3))
    first, second = registry.requests
    assert first.url.path == "/registry/v1/recipients"
    assert dict(first.url.params) == {
        "limit": "3",
        "updated_since": "2026-03-01T07:30:00Z",
        "kecamatan": "35.78.01",
    }
    assert dict(second.url.params) == {**dict(first.url.params), "cursor": "3"}
    assert first.headers["authorization"] == f"Bearer {TOKEN}"
    assert first.method == "GET"


def test_defaults_use_settings_page_limit_and_omit_optional_params() -> None:
    registry = FakeRegistry(3)
    with make_client(registry) as client:
        page = client.fetch_page("households")
    assert dict(registry.requests[0].url.params) == {"limit": "4"}
    assert page.next_cursor is None and len(page.records) == 3


def test_resume_from_a_cursor_reads_the_rest() -> None:
    registry = FakeRegistry(10)
    with make_client(registry) as client:
        pages = [p for p, _ in client.iter_pages("households", limit=4, start_cursor="8")]
    assert ids(pages) == ["H00008", "H00009"]


def test_pages_are_fetched_lazily() -> None:
    registry = FakeRegistry(100)
    with make_client(registry) as client:
        stream = client.iter_pages("households", limit=10)
        next(stream)
        assert len(registry.requests) == 1
        next(stream)
        assert len(registry.requests) == 2


@pytest.mark.parametrize(
    "body",
    [
        {"items": []},
        {"data": "not-a-list"},
        {"data": [], "next_cursor": 7},
        [],
    ],
)
def test_envelope_violation_is_permanent(body: Any) -> None:
    registry = FakeRegistry(1)
    registry.overrides[0] = httpx.Response(200, json=body)
    with make_client(registry) as client, pytest.raises(ContractViolation) as caught:
        client.fetch_page("households")
    assert len(registry.requests) == 1
    assert not caught.value.retryable
    assert str(caught.value).startswith(
        "registry GET /registry/v1/households?limit=4 -> 200: body does not match the page envelope"
    )


def test_violation_message_does_not_echo_values() -> None:
    registry = FakeRegistry(1)
    registry.overrides[0] = httpx.Response(
        200, json={"data": [], "next_cursor": {"nik": "3578014508900001"}}
    )
    with make_client(registry) as client, pytest.raises(ContractViolation) as caught:
        client.fetch_page("households")
    assert "3578" not in str(caught.value)
    assert "next_cursor" in str(caught.value)


def test_records_that_are_not_objects_are_left_to_record_validation() -> None:
    # The page is well formed; each record is validated (and quarantined) on its own.
    registry = FakeRegistry(1)
    registry.overrides[0] = httpx.Response(
        200, json={"data": [{"id": "H00000"}, "3578014508900001", 7]}
    )
    with make_client(registry) as client:
        page = client.fetch_page("households")
    assert page.records == [{"id": "H00000"}, "3578014508900001", 7]


def test_html_answer_is_a_contract_violation() -> None:
    registry = FakeRegistry(1)
    registry.overrides[0] = httpx.Response(
        200, text="<html>login</html>", headers={"content-type": "text/html"}
    )
    with make_client(registry) as client, pytest.raises(ContractViolation, match="json_invalid"):
        client.fetch_page("households")


def test_truncated_json_is_retried_then_succeeds() -> None:
    registry = FakeRegistry(3)
    registry.overrides[0] = httpx.Response(
        200,
        content=b'{"data": [{"id": "H00000"}, {"id": "H0',
        headers={"content-type": "application/json"},
    )
    with make_client(registry) as client:
        page = client.fetch_page("households")
    assert [r["id"] for r in page.records] == ["H00000", "H00001", "H00002"]
    assert page.attempts == 2
    assert len(registry.requests) == 2


def test_truncated_json_every_time_is_transient() -> None:
    registry = FakeRegistry(1)
    for n in range(NO_WAIT.max_attempts):
        registry.overrides[n] = httpx.Response(
            200, content=b'{"data": [', headers={"content-type": "application/json"}
        )
    with make_client(registry) as client, pytest.raises(TransportFailure) as caught:
        client.fetch_page("households")
    assert caught.value.retryable and caught.value.attempts == NO_WAIT.max_attempts


def test_cursor_that_does_not_advance_is_a_violation() -> None:
    registry = FakeRegistry(0)
    registry.overrides[0] = httpx.Response(200, json={"data": [], "next_cursor": "same"})
    registry.overrides[1] = httpx.Response(200, json={"data": [], "next_cursor": "same"})
    with make_client(registry) as client, pytest.raises(ContractViolation, match="did not advance"):
        list(client.iter_pages("households", start_cursor=None))


def test_wrong_token_is_not_retried_and_not_shown() -> None:
    registry = FakeRegistry(1)
    with make_client(registry, token="wrong-token-123") as client:
        with pytest.raises(AuthError) as caught:
            client.fetch_page("households")
        assert "wrong-token-123" not in repr(client)
    assert len(registry.requests) == 1
    assert "wrong-token-123" not in str(caught.value)


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"collection": "persons"}, "unknown registry collection"),
        ({"updated_since": datetime(2026, 1, 1)}, "timezone-aware"),
        ({"kecamatan": "357801"}, "dotted"),
        ({"limit": 0}, "limit"),
    ],
)
def test_bad_arguments_fail_before_any_request(kwargs: dict[str, Any], message: str) -> None:
    registry = FakeRegistry(1)
    args = {"collection": "households", **kwargs}
    with make_client(registry) as client, pytest.raises(ValueError, match=message):
        client.fetch_page(args.pop("collection"), **args)
    assert registry.requests == []


def test_for_agency_uses_registry_url_and_token() -> None:
    registry = FakeRegistry(2)
    settings = Settings(registry_url=BASE, registry_token=TOKEN, pii_key="test-key", page_limit=50)
    with AgencyClient.for_agency(
        "registry", settings, transport=httpx.MockTransport(registry)
    ) as client:
        assert len(client.fetch_page("households").records) == 2
    assert str(registry.requests[0].url) == f"{BASE}/v1/households?limit=50"


def test_close_leaves_an_injected_client_open() -> None:
    registry = FakeRegistry(1)
    http = httpx.Client(
        base_url=BASE,
        transport=httpx.MockTransport(registry),
        headers={"Authorization": f"Bearer {TOKEN}"},
    )
    with AgencyClient("registry", BASE, "unused", client=http) as client:
        client.fetch_page("households")
    assert not http.is_closed
    http.close()
    owned = make_client(registry)
    owned.close()
    assert owned._client.is_closed


# --- against the sandbox registry -----------------------------------------------------------

SANDBOX_TOKEN = DEFAULT_REGISTRY_TOKEN
FAULTY = FaultConfig(
    error_rate=0.10,
    rate_limit_rate=0.05,
    retry_after_s=0.0,
    drop_rate=0.05,
    truncate_rate=0.05,
    seed=11,
)
# Ten attempts: with a 25 % fault rate a page fails them all about once in a million.
SANDBOX_POLICY = RetryPolicy(max_attempts=10, backoff_base_s=0.0, backoff_max_s=0.0)


def sandbox_app(households: int = 1200, faults: FaultConfig = FAULTY, epoch: int = 0) -> Any:
    return create_app(
        SandboxConfig(
            registry=RegistryDataConfig(households=households, epoch=epoch), faults=faults
        )
    )


def sandbox_client(inner: httpx.BaseTransport, base_url: str, delays: list[float]) -> AgencyClient:
    transport = RetryingTransport(
        inner, policy=SANDBOX_POLICY, agency="registry", sleep=delays.append
    )
    return AgencyClient(
        "registry", base_url, SANDBOX_TOKEN, settings=Settings(), transport=transport
    )


def truth_ids(app: Any, collection: str, kecamatan: str | None = None) -> list[str]:
    data = app.state.sandbox.registry
    indices = list(data.indices(kecamatan))
    if collection == "households":
        return [data.household_id(i) for i in indices]
    return [r["id"] for i in indices for r in data.recipients(i)]


def outcomes(app: Any, collection: str) -> dict[str, int]:
    return app.state.sandbox.stats.snapshot()[f"GET /registry/v1/{collection}"]


@pytest.fixture
def faulty_sandbox() -> Iterator[tuple[Any, AgencyClient, list[float]]]:
    app = sandbox_app()
    delays: list[float] = []
    with sandbox_client(SyncASGITransport(app), "http://sandbox.test/registry", delays) as client:
        yield app, client, delays


@pytest.mark.parametrize(("collection", "limit"), [("households", 25), ("recipients", 10)])
def test_whole_sandbox_registry_arrives_exactly_once_despite_faults(
    faulty_sandbox: tuple[Any, AgencyClient, list[float]], collection: str, limit: int
) -> None:
    app, client, delays = faulty_sandbox
    received: list[str] = []
    retried_pages = 0
    for page, cursor in client.iter_pages(collection, limit=limit):
        assert len(page.records) <= limit
        assert cursor.cursor == page.next_cursor
        received.extend(r["id"] for r in page.records)
        retried_pages += page.attempts > 1
    expected = truth_ids(app, collection)
    assert len(received) == len(set(received)) == len(expected)
    assert set(received) == set(expected)
    seen = outcomes(app, collection)
    # Every kind of fault was met (and survived) on the way.
    for outcome in ("500", "503", "429", "dropped", "truncated"):
        assert seen.get(outcome, 0) > 0, (outcome, seen)
    assert retried_pages > 0
    assert delays and all(d == 0.0 for d in delays)


def test_one_kecamatan_through_faults(
    faulty_sandbox: tuple[Any, AgencyClient, list[float]],
) -> None:
    app, client, _ = faulty_sandbox
    data = app.state.sandbox.registry
    kecamatan = data.kecamatan_of(0)
    received = [
        r["id"]
        for page, _ in client.iter_pages("households", kecamatan=kecamatan, limit=3)
        for r in page.records
    ]
    expected = truth_ids(app, "households", kecamatan)
    assert expected and sorted(received) == sorted(expected)
    assert all(data.kecamatan_of(data_index) == kecamatan for data_index in data.indices(kecamatan))


def test_resume_after_a_crash_loses_and_repeats_nothing() -> None:
    app = sandbox_app(households=600)
    received: list[str] = []
    saved: PageCursor | None = None
    with sandbox_client(SyncASGITransport(app), "http://sandbox.test/registry", []) as client:
        for n, (page, cursor) in enumerate(client.iter_pages("households", limit=50)):
            received.extend(r["id"] for r in page.records)
            saved = cursor
            if n == 3:
                break  # the process dies after committing page 4 and its cursor
    assert saved is not None and saved.cursor is not None
    with sandbox_client(SyncASGITransport(app), "http://sandbox.test/registry", []) as client:
        for page, _ in client.iter_pages(
            saved.collection,
            updated_since=saved.updated_since,
            kecamatan=saved.kecamatan,
            limit=50,
            start_cursor=saved.cursor,
        ):
            received.extend(r["id"] for r in page.records)
    assert sorted(received) == sorted(truth_ids(app, "households"))
    assert len(received) == len(set(received))


def test_incremental_read_returns_only_the_epochs_updates() -> None:
    app = sandbox_app(households=800, faults=FaultConfig(), epoch=1)
    data = app.state.sandbox.registry
    since, _ = data.epoch_window(1)
    with sandbox_client(SyncASGITransport(app), "http://sandbox.test/registry", []) as client:
        received = [
            r["id"]
            for page, cursor in client.iter_pages("households", updated_since=since, limit=30)
            for r in page.records
        ]
    expected = [data.household_id(i) for i in data.indices() if data.household_version(i) == 1]
    assert expected and sorted(received) == sorted(expected)


def test_wrong_sandbox_token_is_an_auth_error_sent_once() -> None:
    app = sandbox_app(households=50, faults=FaultConfig())
    transport = RetryingTransport(
        SyncASGITransport(app), policy=SANDBOX_POLICY, sleep=lambda _: None
    )
    with (
        AgencyClient(
            "registry",
            "http://sandbox.test/registry",
            "not-the-token",
            settings=Settings(),
            transport=transport,
        ) as client,
        pytest.raises(AuthError) as caught,
    ):
        client.fetch_page("households")
    assert outcomes(app, "households") == {"401": 1}
    assert "not-the-token" not in str(caught.value)


@pytest.mark.slow
def test_sandbox_on_a_real_port_with_faults(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    config = SandboxConfig(registry=RegistryDataConfig(households=300), faults=FAULTY)
    delays: list[float] = []
    with (
        serve_in_thread(config) as root,
        sandbox_client(httpx.HTTPTransport(), f"{root}/registry", delays) as client,
    ):
        pages = [page for page, _ in client.iter_pages("households", limit=10)]
    received = [r["id"] for p in pages for r in p.records]
    app = sandbox_app(households=300)
    assert len(received) == len(set(received))
    assert sorted(received) == sorted(truth_ids(app, "households"))
    assert any(p.attempts > 1 for p in pages) and delays
    # Pages full of NIKs and a bearer token went over the wire; none of it reached the logs.
    retry_lines = [r.getMessage() for r in caplog.records if r.name == "cettar.http"]
    assert retry_lines
    niks = {m["nik"] for p in pages for r in p.records for m in r.get("members") or []}
    cursors = {p.next_cursor for p in pages if p.next_cursor}
    for record in caplog.records:
        message = record.getMessage()
        assert SANDBOX_TOKEN not in message
        assert not any(c in message for c in cursors)
        assert not any(isinstance(n, str) and n in message for n in niks)
