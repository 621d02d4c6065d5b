"""The agency client: settings per agency, paged reads, idempotent writes and their errors."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, date, datetime
from typing import Any

import httpx
import pytest

from integrations.agencies.client import (
    READ_COLLECTIONS,
    WRITE_COLLECTIONS,
    AgencyClient,
)
from integrations.agencies.errors import (
    AuthError,
    Conflict,
    ContractViolation,
    ServerError,
    Unprocessable,
)
from integrations.agencies.http import RetryingTransport, RetryPolicy
from integrations.settings import AGENCIES, Settings
from models.wilayah import get_region_registry
from sandbox.app import create_app
from sandbox.config import DEFAULT_ADMIN_TOKEN, FaultConfig, RegistryDataConfig, SandboxConfig
from sandbox.transport import SyncASGITransport
from sandbox.truth import coordination_truth

NO_WAIT = RetryPolicy(max_attempts=6, backoff_base_s=0.0, backoff_max_s=0.0)
TOKEN = "agency-test-token"
RECEIPT = {
    "receipt_id": "RCPT-1",
    "handoff_id": "0123456789abcdef",
    "office": "kecamatan:35.07.01",
    "received_at": "2026-11-27T10:00:00+07:00",
}


def _client(
    agency: str, handler: Callable[[httpx.Request], httpx.Response], **settings: Any
) -> AgencyClient:
    transport = RetryingTransport(
        httpx.MockTransport(handler), policy=NO_WAIT, agency=agency, sleep=lambda _: None
    )
    return AgencyClient(
        agency,
        f"https://{agency}.test/{agency}",
        TOKEN,
        settings=Settings(**settings),
        transport=transport,
    )


# --- settings ---------------------------------------------------------------------------------


def test_every_agency_has_a_configured_endpoint() -> None:
    s = Settings()
    for agency in AGENCIES:
        url, token = s.agency_endpoint(agency)
        assert url == f"http://127.0.0.1:8765/{agency}"
        assert token == f"sandbox-{agency}-token"
    assert set(AGENCIES) == {
        "registry",
        "pkh",
        "desa",
        "pertanian",
        "kecamatan",
        "statistik",
        "puskesmas",
    }
    with pytest.raises(ValueError, match="unknown agency 'bpjs'"):
        s.agency_endpoint("bpjs")


def test_endpoints_come_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CETTAR_DESA_URL", "https://desa.example/api")
    monkeypatch.setenv("CETTAR_DESA_TOKEN", "desa-secret-1")
    monkeypatch.setenv("CETTAR_PII_KEY", "client-test-pii-key")
    s = Settings()
    assert s.agency_endpoint("desa") == ("https://desa.example/api", "desa-secret-1")
    # The token stays a secret in the settings' own repr.
    assert "desa-secret-1" not in repr(s)


# --- reads ------------------------------------------------------------------------------------


def _paging(total: int, seen: list[httpx.Request]) -> Callable[[httpx.Request], httpx.Response]:
    records = [{"id": f"B{i:03d}"} for i in range(total)]

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        if request.headers.get("authorization") != f"Bearer {TOKEN}":
            return httpx.Response(401, json={"error": "unauthorised"})
        limit = int(request.url.params["limit"])
        start = int(request.url.params.get("cursor", "0"))
        end = min(start + limit, total)
        return httpx.Response(
            200, json={"data": records[start:end], "next_cursor": str(end) if end < total else None}
        )

    return handler


def test_pages_any_agency_collection() -> None:
    seen: list[httpx.Request] = []
    since = datetime(2026, 11, 1, tzinfo=UTC)
    with _client("desa", _paging(7, seen)) as client:
        pages = list(
            client.iter_pages("blt-recipients", updated_since=since, kecamatan="35.07.01", limit=3)
        )
    assert [len(p.records) for p, _ in pages] == [3, 3, 1]
    assert [c.cursor for _, c in pages] == ["3", "6", None]
    assert seen[0].url.path == "/desa/v1/blt-recipients"
    assert dict(seen[1].url.params) == {
        "limit": "3",
        "updated_since": "2026-11-01T00:00:00Z",
        "kecamatan": "35.07.01",
        "cursor": "3",
    }


def test_collections_are_allowed_per_agency() -> None:
    assert READ_COLLECTIONS["pkh"] == ("reports",)
    assert READ_COLLECTIONS["statistik"] == ("data-requests", "submissions")
    assert READ_COLLECTIONS["kecamatan"] == ("decisions",)
    assert WRITE_COLLECTIONS == {"registry": ("update-proposals",), "kecamatan": ("handoffs",)}
    seen: list[httpx.Request] = []
    with _client("pkh", _paging(1, seen)) as client:
        with pytest.raises(ValueError, match="unknown pkh collection 'households'"):
            client.fetch_page("households")
        with pytest.raises(ValueError, match="accepts no writes"):
            client.post_idempotent("reports", {}, "k-1")
    assert seen == []
    with pytest.raises(ValueError, match="unknown agency"):
        AgencyClient("bpjs", "https://x.test", TOKEN, settings=Settings())


def test_for_agency_uses_the_configured_url_and_token() -> None:
    seen: list[httpx.Request] = []
    settings = Settings(
        statistik_url="https://bps.test/statistik", statistik_token=TOKEN, pii_key="test-key"
    )
    with AgencyClient.for_agency(
        "statistik", settings, transport=httpx.MockTransport(_paging(2, seen))
    ) as client:
        assert client.agency == "statistik"
        assert len(client.fetch_page("submissions").records) == 2
    assert str(seen[0].url) == "https://bps.test/statistik/v1/submissions?limit=1000"
    assert repr(client) == "AgencyClient('statistik', 'https://bps.test/statistik/')"


def test_the_registry_client_reads_the_catalogue_collections_and_writes_proposals() -> None:
    client = AgencyClient("registry", "https://r.test/registry", TOKEN, settings=Settings())
    assert client.collections == ("households", "recipients")
    assert client.write_collections == ("update-proposals",)
    assert repr(client) == "AgencyClient('registry', 'https://r.test/registry/')"
    client.close()


def test_a_wrong_token_is_an_auth_error_sent_once() -> None:
    seen: list[httpx.Request] = []
    transport = RetryingTransport(
        httpx.MockTransport(_paging(1, seen)), policy=NO_WAIT, sleep=lambda _: None
    )
    with (
        AgencyClient(
            "pertanian", "https://p.test", "not-it-9", settings=Settings(), transport=transport
        ) as client,
        pytest.raises(AuthError) as caught,
    ):
        client.fetch_page("farmer-needs")
    assert len(seen) == 1
    assert "not-it-9" not in str(caught.value)
    assert str(caught.value).startswith("pertanian GET /v1/farmer-needs?limit=1000 -> 401")


# --- idempotent writes ----------------------------------------------------------------------


class Inbox:
    """A scripted inbox: records each request, answers from a script, then with receipts."""

    def __init__(self, *script: httpx.Response | Exception) -> None:
        self.script = list(script)
        self.requests: list[httpx.Request] = []

    def __call__(self, request: httpx.Request) -> httpx.Response:
        self.requests.append(request)
        if self.script:
            answer = self.script.pop(0)
            if isinstance(answer, Exception):
                raise answer
            return answer
        return httpx.Response(201, json=RECEIPT)


BODY = {"handoff_id": "0123456789abcdef", "due_date": date(2026, 12, 4), "evidence": {"n": 2}}


def test_post_sends_the_key_and_body_and_returns_the_receipt() -> None:
    inbox = Inbox()
    with _client("kecamatan", inbox) as client:
        receipt = client.post_idempotent("handoffs", BODY, "dlv-0001")
    assert receipt == RECEIPT
    (request,) = inbox.requests
    assert request.method == "POST"
    assert request.url.path == "/kecamatan/v1/handoffs"
    assert request.headers["idempotency-key"] == "dlv-0001"
    assert request.headers["authorization"] == f"Bearer {TOKEN}"
    assert request.headers["content-type"] == "application/json"
    assert httpx.Response(200, content=request.content).json() == {
        "handoff_id": "0123456789abcdef",
        "due_date": "2026-12-04",
        "evidence": {"n": 2},
    }


def test_transient_failures_are_retried_with_the_same_key() -> None:
    inbox = Inbox(
        httpx.Response(503, json={"error": "unavailable"}),
        httpx.ReadError("connection dropped after the request was sent"),
        httpx.Response(429, headers={"Retry-After": "0"}, json={"error": "slow_down"}),
    )
    with _client("kecamatan", inbox) as client:
        assert client.post_idempotent("handoffs", BODY, "dlv-0002") == RECEIPT
    assert len(inbox.requests) == 4
    assert {r.headers["idempotency-key"] for r in inbox.requests} == {"dlv-0002"}
    assert len({r.content for r in inbox.requests}) == 1


def test_persistent_5xx_surfaces_as_a_server_error() -> None:
    inbox = Inbox(*[httpx.Response(500, json={"error": "boom"}) for _ in range(6)])
    with _client("kecamatan", inbox) as client, pytest.raises(ServerError) as caught:
        client.post_idempotent("handoffs", BODY, "dlv-0003")
    assert caught.value.retryable and caught.value.attempts == 6
    assert len(inbox.requests) == 6


def test_conflict_and_unprocessable_are_mapped_and_not_retried() -> None:
    inbox = Inbox(
        httpx.Response(409, json={"error": "idempotency_conflict"}),
        httpx.Response(
            422,
            json={
                "error": "invalid",
                "fields": [{"loc": ["body", "office"], "msg": "bad 3507014905840017", "type": "x"}],
            },
        ),
    )
    with _client("kecamatan", inbox) as client:
        with pytest.raises(Conflict) as conflict:
            client.post_idempotent("handoffs", BODY, "dlv-0004")
        with pytest.raises(Unprocessable) as invalid:
            client.post_idempotent("handoffs", BODY, "dlv-0005")
    assert len(inbox.requests) == 2
    assert not conflict.value.retryable and conflict.value.code == "idempotency_conflict"
    assert [f.loc for f in invalid.value.fields] == [["body", "office"]]
    assert "3507014905840017" not in str(invalid.value)
    assert "3507014905840017" not in invalid.value.fields[0].msg


def test_a_receipt_that_is_not_an_object_is_a_contract_violation() -> None:
    inbox = Inbox(httpx.Response(201, json=["not", "a", "receipt"]))
    with _client("registry", inbox) as client, pytest.raises(ContractViolation, match="receipt"):
        client.post_idempotent("update-proposals", {"id": "P-1"}, "P-1")


@pytest.mark.parametrize("key", ["", "has space", "x" * 201, "kunci-é"])
def test_bad_idempotency_keys_fail_before_any_request(key: str) -> None:
    inbox = Inbox()
    with _client("kecamatan", inbox) as client, pytest.raises(ValueError, match="key"):
        client.post_idempotent("handoffs", BODY, key)
    assert inbox.requests == []


# --- generic behaviour against the sandbox registry, in process ------------------------------


def test_generic_client_reads_the_sandbox_registry_through_faults() -> None:
    faults = FaultConfig(
        error_rate=0.1, rate_limit_rate=0.05, retry_after_s=0.0, drop_rate=0.05, seed=3
    )
    app = create_app(SandboxConfig(registry=RegistryDataConfig(households=300), faults=faults))
    transport = RetryingTransport(
        SyncASGITransport(app),
        policy=RetryPolicy(max_attempts=10, backoff_base_s=0.0, backoff_max_s=0.0),
        agency="registry",
        sleep=lambda _: None,
    )
    with AgencyClient.for_agency("registry", Settings(), transport=transport) as client:
        pages = [p for p, _ in client.iter_pages("households", limit=20)]
    received = [r["id"] for p in pages for r in p.records]
    data = app.state.sandbox.registry
    assert sorted(received) == sorted(data.household_id(i) for i in data.indices())
    assert len(received) == len(set(received))
    assert any(p.attempts > 1 for p in pages)


# --- every agency of the sandbox, in process ------------------------------------------------

SANDBOX_DATA = RegistryDataConfig(seed=7, households=1500)
FAULTY = FaultConfig(
    error_rate=0.10,
    rate_limit_rate=0.05,
    retry_after_s=0.0,
    drop_rate=0.05,
    truncate_rate=0.03,
    seed=5,
)
# Ten attempts: with a 23 % fault rate a request fails them all about once in 2.4 million.
PATIENT = RetryPolicy(max_attempts=10, backoff_base_s=0.0, backoff_max_s=0.0)
KABUPATEN = "35.15"  # Sidoarjo: records of every source in the seeded sample


def _sandbox(**config: Any) -> Any:
    return create_app(SandboxConfig(registry=SANDBOX_DATA, **config))


def _sandbox_client(app: Any, agency: str, token: str | None = None) -> AgencyClient:
    transport = RetryingTransport(
        SyncASGITransport(app), policy=PATIENT, agency=agency, sleep=lambda _: None
    )
    url, default_token = Settings().agency_endpoint(agency)
    return AgencyClient(
        agency,
        url.replace("http://127.0.0.1:8765", "http://sandbox.test"),
        token or default_token,
        settings=Settings(),
        transport=transport,
    )


def _admin(app: Any) -> httpx.Client:
    return httpx.Client(
        transport=SyncASGITransport(app),
        base_url="http://sandbox.test",
        headers={"Authorization": f"Bearer {DEFAULT_ADMIN_TOKEN}"},
    )


@pytest.mark.parametrize(
    ("agency", "collection"),
    [
        ("pkh", "reports"),
        ("desa", "blt-recipients"),
        ("pertanian", "farmer-needs"),
        ("statistik", "data-requests"),
        ("statistik", "submissions"),
    ],
)
def test_every_source_arrives_exactly_once_through_faults(agency: str, collection: str) -> None:
    app = _sandbox(faults=FAULTY)
    kecamatan = [k.code for k in get_region_registry().kecamatan(KABUPATEN)]
    truth = coordination_truth(SandboxConfig(registry=SANDBOX_DATA), kecamatan)
    received: list[str] = []
    attempts = 0
    with _sandbox_client(app, agency) as client:
        for kec in kecamatan:
            for page, _ in client.iter_pages(collection, kecamatan=kec, limit=5):
                received.extend(r["id"] for r in page.records)
                attempts += page.attempts - 1
    expected = truth.sources[f"{agency}/{collection}"].records
    assert expected > 0
    assert len(received) == len(set(received)) == expected
    assert attempts > 0, "the faults must have been met"


def test_the_inbox_is_read_whole_and_wrong_tokens_are_refused() -> None:
    app = _sandbox()
    with _sandbox_client(app, "kecamatan") as client:
        page = client.fetch_page("decisions")
    assert page.records == [] and page.next_cursor is None
    for agency in ("pkh", "desa", "pertanian", "statistik", "kecamatan"):
        with (
            _sandbox_client(app, agency, token=f"sandbox-{agency}-wrong") as client,
            pytest.raises(AuthError) as caught,
        ):
            client.fetch_page(client.collections[0])
        assert f"sandbox-{agency}-wrong" not in str(caught.value)
    requests = _admin(app).get("/_admin/stats").json()["requests"]
    # Each wrong token was sent once (401 is not retried); the inbox read once with each token.
    assert requests["GET /pkh/v1/reports"] == {"401": 1}
    assert requests["GET /desa/v1/blt-recipients"] == {"401": 1}
    assert requests["GET /pertanian/v1/farmer-needs"] == {"401": 1}
    assert requests["GET /statistik/v1/data-requests"] == {"401": 1}
    assert requests["GET /kecamatan/v1/decisions"] == {"200": 1, "401": 1}


def _delivery(i: int, **over: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "handoff_id": f"{i:032x}",
        "office": "kecamatan:35.15.01",
        "kind": "blt_pkh_overlap",
        "subject_token": f"{i + 10_000:032x}",
        "period": "2026-Q4",
        "sender": "cettar-hub",
        "due_date": date(2026, 12, 11),
        "evidence": {"programmes": "PKH", "nik": "3515••••••••0001"},
    }
    body.update(over)
    return body


def test_every_delivery_lands_once_under_inbox_faults() -> None:
    inbox_faults = FaultConfig(
        error_rate=0.10, rate_limit_rate=0.05, retry_after_s=0.0, drop_rate=0.05, seed=9
    )
    app = _sandbox(agency_faults={"kecamatan": inbox_faults})
    receipts: dict[str, dict[str, Any]] = {}
    with _sandbox_client(app, "kecamatan") as client:
        for i in range(60):
            receipts[f"dlv-{i:04d}"] = client.post_idempotent(
                "handoffs", _delivery(i), f"dlv-{i:04d}"
            )
        # A retry of the whole delivery (say, after a crash before the receipt was recorded)
        # gets the first receipt back.
        assert client.post_idempotent("handoffs", _delivery(7), "dlv-0007") == receipts["dlv-0007"]
    inbox = _admin(app).get("/_admin/inbox").json()
    assert inbox["receipts"] == 60
    assert inbox["pairs_seen_more_than_once"] == 0
    # Some requests were answered with a fault after the delivery was recorded: the retry
    # with the same key replayed it instead of delivering twice.
    assert inbox["faulted_after_commit"] > 0 and inbox["replays"] > 0
    assert len({r["receipt_id"] for r in receipts.values()}) == 60
    assert all(r["handoff_id"] == f"{int(k[4:]):032x}" for k, r in receipts.items())


def test_write_conflicts_and_invalid_bodies_map_to_errors() -> None:
    app = _sandbox()
    with _sandbox_client(app, "kecamatan") as client:
        client.post_idempotent("handoffs", _delivery(1), "dlv-1")
        with pytest.raises(Conflict):
            client.post_idempotent("handoffs", _delivery(1, period="2026-Q3"), "dlv-1")
        with pytest.raises(Unprocessable) as invalid:
            client.post_idempotent("handoffs", _delivery(2, office="rt:35.15.01.2001"), "dlv-2")
    assert any("office" in [str(p) for p in f.loc] for f in invalid.value.fields)
    inbox = _admin(app).get("/_admin/inbox").json()
    assert (inbox["receipts"], inbox["conflicts"]) == (1, 1)


def test_update_proposals_are_idempotent() -> None:
    app = _sandbox(agency_faults={"registry": FAULTY})
    proposal = {
        "id": "UP-1",
        "household_id": "HH-1",
        "changes": {"desil": 3},
        "report_id": "RPT-1",
        "handoff_id": f"{1:032x}",
        "verified_by": "kecamatan:35.15.01",
        "verified_at": datetime(2026, 11, 20, 9, 0, tzinfo=UTC),
    }
    with _sandbox_client(app, "registry") as client:
        first = client.post_idempotent("update-proposals", proposal, "UP-1")
        assert client.post_idempotent("update-proposals", proposal, "UP-1") == first
        with pytest.raises(Conflict):
            client.post_idempotent(
                "update-proposals", {**proposal, "changes": {"desil": 4}}, "UP-1"
            )
    assert first["proposal_id"] == "UP-1"
    assert _admin(app).get("/_admin/proposals").json()["received"] == 1


# --- batches of keyed writes ------------------------------------------------------------------


def _batch_answer(request: httpx.Request) -> httpx.Response:
    """Each item of a batch request answered with a receipt naming its handoff."""
    items = httpx.Response(200, content=request.content).json()["items"]
    results = [
        {
            "idempotency_key": item["idempotency_key"],
            "status": 201,
            "receipt": {**RECEIPT, "handoff_id": item["body"]["handoff_id"]},
        }
        for item in items
    ]
    return httpx.Response(200, json={"results": results})


class BatchInbox(Inbox):
    """A scripted inbox whose answers past the script are per-item receipts."""

    def __call__(self, request: httpx.Request) -> httpx.Response:
        if self.script:
            return super().__call__(request)
        self.requests.append(request)
        return _batch_answer(request)


def test_a_batch_is_sent_as_one_request_and_retried_whole_honouring_retry_after() -> None:
    waits: list[float] = []
    inbox = BatchInbox(
        httpx.Response(503, json={"error": "unavailable"}),
        httpx.ReadError("connection dropped after the request was sent"),
        httpx.Response(429, headers={"Retry-After": "7"}, json={"error": "slow_down"}),
    )
    transport = RetryingTransport(
        httpx.MockTransport(inbox), policy=NO_WAIT, agency="kecamatan", sleep=waits.append
    )
    items = [(f"dlv-{n}", {**BODY, "handoff_id": f"{n:016x}"}) for n in range(3)]
    with AgencyClient(
        "kecamatan", "https://kecamatan.test/kecamatan", TOKEN, transport=transport
    ) as client:
        answers = client.post_batch("handoff-batches", items)
    assert [a["handoff_id"] for a in answers if isinstance(a, dict)] == [
        f"{n:016x}" for n in range(3)
    ]
    assert len(inbox.requests) == 4 and waits[-1] == 7.0
    assert {r.url.path for r in inbox.requests} == {"/kecamatan/v1/handoff-batches"}
    assert len({r.content for r in inbox.requests}) == 1
    assert "idempotency-key" not in inbox.requests[0].headers
    sent = httpx.Response(200, content=inbox.requests[0].content).json()
    assert [i["idempotency_key"] for i in sent["items"]] == ["dlv-0", "dlv-1", "dlv-2"]
    assert sent["items"][0]["body"]["due_date"] == "2026-12-04"


def test_batch_items_refused_on_their_own_come_back_as_errors() -> None:
    def answer(request: httpx.Request) -> httpx.Response:
        results = [
            {"idempotency_key": "a", "status": 200, "receipt": RECEIPT},
            {"idempotency_key": "b", "status": 409, "error": {"error": "idempotency_conflict"}},
            {
                "idempotency_key": "c",
                "status": 422,
                "error": {
                    "error": "validation_error",
                    "fields": [{"loc": ["body", "office"], "msg": "3507014905840017", "type": "x"}],
                },
            },
            {"idempotency_key": "d", "status": 503, "error": {"error": "unavailable"}},
        ]
        return httpx.Response(200, json={"results": results})

    with _client("kecamatan", answer) as client:
        a, b, c, d = client.post_batch("handoff-batches", [(k, BODY) for k in "abcd"])
    assert a == RECEIPT
    assert isinstance(b, Conflict) and b.code == "idempotency_conflict" and not b.retryable
    assert isinstance(c, Unprocessable) and [f.loc for f in c.fields] == [["body", "office"]]
    assert "3507014905840017" not in str(c) and isinstance(d, ServerError)


@pytest.mark.parametrize(
    "results",
    [
        [{"idempotency_key": "b", "status": 201, "receipt": RECEIPT}],  # another key
        [],  # too few
        [{"idempotency_key": "a", "status": 201, "receipt": RECEIPT}] * 2,  # too many
        None,
    ],
)
def test_a_batch_answer_that_does_not_match_the_items_is_a_contract_violation(
    results: Any,
) -> None:
    body = {"results": results} if results is not None else ["no"]
    with (
        _client("kecamatan", lambda _: httpx.Response(200, json=body)) as client,
        pytest.raises(ContractViolation, match="batch"),
    ):
        client.post_batch("handoff-batches", [("a", BODY)])


def test_batches_are_checked_before_any_request() -> None:
    inbox = BatchInbox()
    with _client("kecamatan", inbox) as client:
        with pytest.raises(ValueError, match="no batches"):
            client.post_batch("handoffs", [("a", BODY)])
        with pytest.raises(ValueError, match="1 to 500"):
            client.post_batch("handoff-batches", [])
        with pytest.raises(ValueError, match="1 to 500"):
            client.post_batch("handoff-batches", [(f"k{n}", BODY) for n in range(501)])
        with pytest.raises(ValueError, match="key"):
            client.post_batch("handoff-batches", [("has space", BODY)])
    with _client("registry", inbox) as client, pytest.raises(ValueError, match="no batches"):
        client.post_batch("update-proposals", [("a", BODY)])
    assert inbox.requests == []


def test_batches_land_once_in_the_sandbox_inbox_under_faults() -> None:
    inbox_faults = FaultConfig(
        error_rate=0.2, rate_limit_rate=0.1, retry_after_s=0.0, drop_rate=0.1, seed=9
    )
    app = _sandbox(agency_faults={"kecamatan": inbox_faults})
    receipts: dict[str, Any] = {}
    with _sandbox_client(app, "kecamatan") as client:
        for start in range(0, 60, 6):
            items = [(f"dlv-{i:04d}", _delivery(i)) for i in range(start, start + 6)]
            for (key, _), answer in zip(
                items, client.post_batch("handoff-batches", items), strict=True
            ):
                assert isinstance(answer, dict)
                receipts[key] = answer
        # Sent again singly (say, with a batch size of 1 after a crash): the first receipts.
        assert client.post_idempotent("handoffs", _delivery(7), "dlv-0007") == receipts["dlv-0007"]
    inbox = _admin(app).get("/_admin/inbox").json()
    assert inbox["receipts"] == inbox["pairs"] == 60
    assert inbox["pairs_seen_more_than_once"] == 0
    assert inbox["faulted_after_commit"] > 0 and inbox["replays"] > 0
    assert len({r["receipt_id"] for r in receipts.values()}) == 60
    assert all(r["handoff_id"] == f"{int(k[4:]):032x}" for k, r in receipts.items())
