"""Contract tests of the registry agency over HTTP (in-process, sync transport)."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from typing import Any

import httpx
import pytest
from fastapi import FastAPI

from models.wilayah import get_region_registry
from sandbox.config import FaultConfig, RegistryDataConfig, SandboxConfig
from sandbox.cursor import encode_cursor
from sandbox.registry_data import Position, index_of_household_id
from sandbox.transport import SyncASGITransport
from tests.sandbox.conftest import ADMIN_AUTH, read_all, state_of

MakeClient = Callable[[SandboxConfig], tuple[FastAPI, httpx.Client]]
HOUSEHOLDS_URL = "/registry/v1/households"


def _ids(records: list[dict[str, Any]]) -> list[str]:
    return [r["id"] for r in records]


def _keys(records: list[dict[str, Any]]) -> list[tuple[datetime, str]]:
    return [
        (datetime.fromisoformat(r["updated_at"]), r["id"]) for r in records if "updated_at" in r
    ]


@pytest.mark.parametrize(
    "headers",
    [{}, {"Authorization": "Bearer wrong"}, {"Authorization": "Basic abc"}, ADMIN_AUTH],
)
def test_registry_routes_need_the_registry_token(
    small: tuple[FastAPI, httpx.Client], headers: dict[str, str]
) -> None:
    app, _ = small
    with httpx.Client(transport=SyncASGITransport(app), base_url="http://sandbox") as bare:
        for path in (HOUSEHOLDS_URL, "/registry/v1/recipients"):
            response = bare.get(path, headers=headers)
            assert response.status_code == 401
            assert response.json()["error"] == "unauthorized"


def test_admin_routes_need_the_admin_token(small: tuple[FastAPI, httpx.Client]) -> None:
    _, client = small
    assert client.get("/_admin/stats").status_code == 401
    assert client.get("/_admin/stats", headers=ADMIN_AUTH).status_code == 200


@pytest.mark.parametrize("limit", [13, 333, 5000])
def test_paging_serves_every_household_exactly_once(
    small: tuple[FastAPI, httpx.Client], limit: int
) -> None:
    app, client = small
    data = state_of(app).registry
    records = read_all(client, "households", limit=limit)
    assert len(records) == 2000
    assert sorted(_ids(records)) == sorted(data.household_id(i) for i in range(2000))
    keys = _keys(records)
    assert keys == sorted(keys)
    # What is served is exactly the generator's current record.
    for record in records[:: limit // 3 + 1]:
        assert record == data.household(index_of_household_id(record["id"]))


def test_pages_have_the_requested_size_and_the_last_cursor_is_null(
    small: tuple[FastAPI, httpx.Client],
) -> None:
    _, client = small
    first = client.get(HOUSEHOLDS_URL, params={"limit": 1500}).json()
    assert len(first["data"]) == 1500 and isinstance(first["next_cursor"], str)
    second = client.get(
        HOUSEHOLDS_URL, params={"limit": 1500, "cursor": first["next_cursor"]}
    ).json()
    assert len(second["data"]) == 500 and second["next_cursor"] is None
    exact = client.get(HOUSEHOLDS_URL, params={"limit": 2000}).json()
    assert len(exact["data"]) == 2000 and exact["next_cursor"] is None
    default = client.get(HOUSEHOLDS_URL).json()
    assert len(default["data"]) == 500


def test_kecamatan_filter_pages_cover_each_kecamatan(small: tuple[FastAPI, httpx.Client]) -> None:
    app, client = small
    data = state_of(app).registry
    kecamatan = get_region_registry().kecamatan("35.07")  # Kabupaten Malang, 33 kecamatan
    total = 0
    for kec in kecamatan:
        for collection in ("households", "recipients"):
            records = read_all(client, collection, limit=2, kecamatan=kec.code)
            keys = _keys(records)
            assert keys == sorted(keys)
            if collection == "households":
                expected = [data.household_id(i) for i in data.indices(kec.code)]
                assert sorted(_ids(records)) == sorted(expected)
                total += len(records)
            else:
                expected = [r["id"] for i in data.indices(kec.code) for r in data.recipients(i)]
                assert sorted(_ids(records)) == sorted(expected)
    assert total > 50
    # Undotted codes are accepted and mean the same kecamatan.
    dotted = read_all(client, "households", kecamatan=kecamatan[0].code)
    undotted = read_all(client, "households", kecamatan=kecamatan[0].code.replace(".", ""))
    assert dotted == undotted


def test_recipients_paging_serves_every_enrolment_once(small: tuple[FastAPI, httpx.Client]) -> None:
    app, client = small
    data = state_of(app).registry
    records = read_all(client, "recipients", limit=250)
    expected = [r["id"] for i in range(2000) for r in data.recipients(i)]
    assert sorted(_ids(records)) == sorted(expected)
    assert len(set(_ids(records))) == len(records)
    keys = _keys(records)
    assert keys == sorted(keys)


def test_bad_cursor_is_400(small: tuple[FastAPI, httpx.Client]) -> None:
    _, client = small
    other_collection = encode_cursor("recipients", Position(0, 10, 0))
    for cursor in ("garbage!", "eyJ2IjoyfQ", "", "households.01.0.0", other_collection):
        response = client.get(HOUSEHOLDS_URL, params={"cursor": cursor})
        assert response.status_code == 400, cursor
        body = response.json()
        assert body["error"] == "bad_cursor" and body["detail"]


def test_a_cursor_resumes_any_filter_of_its_collection(small: tuple[FastAPI, httpx.Client]) -> None:
    _, client = small
    kec = "35.07.01"
    whole = read_all(client, "households", kecamatan=kec)
    assert len(whole) > 2
    # The position of the third record of the kecamatan, taken from an unfiltered read.
    first = client.get(HOUSEHOLDS_URL, params={"kecamatan": kec, "limit": 2}).json()
    assert first["next_cursor"].startswith("households.")
    rest = read_all(client, "households", cursor=first["next_cursor"], kecamatan=kec)
    assert first["data"] + rest == whole
    unfiltered = client.get(HOUSEHOLDS_URL, params={"cursor": first["next_cursor"], "limit": 1})
    assert unfiltered.status_code == 200


@pytest.mark.parametrize("limit", ["0", "5001", "-3", "many"])
def test_bad_limit_is_422_with_field_errors(
    small: tuple[FastAPI, httpx.Client], limit: str
) -> None:
    _, client = small
    response = client.get(HOUSEHOLDS_URL, params={"limit": limit})
    assert response.status_code == 422
    body = response.json()
    assert body["error"] == "validation_error"
    assert body["fields"][0]["loc"] == ["query", "limit"]


@pytest.mark.parametrize(
    ("params", "field"),
    [
        ({"kecamatan": "35.99.01"}, "kecamatan"),
        ({"kecamatan": "35.07"}, "kecamatan"),
        ({"kecamatan": "abc"}, "kecamatan"),
        ({"updated_since": "2026-01-01T00:00:00"}, "updated_since"),
        ({"updated_since": "yesterday"}, "updated_since"),
    ],
)
def test_bad_filters_are_422_with_field_errors(
    small: tuple[FastAPI, httpx.Client], params: dict[str, str], field: str
) -> None:
    _, client = small
    response = client.get(HOUSEHOLDS_URL, params=params)
    assert response.status_code == 422
    fields = response.json()["fields"]
    assert fields and fields[0]["loc"] == ["query", field]
    assert fields[0]["msg"] and fields[0]["type"]


def test_updated_since_is_inclusive(small: tuple[FastAPI, httpx.Client]) -> None:
    _, client = small
    records = read_all(client, "households", limit=5000)
    stamped = [r for r in records if "updated_at" in r]
    pivot = stamped[1200]["updated_at"]
    later = read_all(client, "households", limit=5000, updated_since=pivot)
    assert later[0]["id"] == stamped[1200]["id"]
    first = next(j for j, r in enumerate(records) if r.get("updated_at") == pivot)
    assert _ids(later) == _ids(records[first:])


def test_incremental_reads_after_epochs_serve_only_current_versions(
    make_client: MakeClient,
) -> None:
    app, client = make_client(SandboxConfig(registry=RegistryDataConfig(households=2000)))
    data = state_of(app).registry
    first = read_all(client, "households", limit=1000)
    watermark = max(r["updated_at"] for r in first if "updated_at" in r)

    answer = client.post("/_admin/epoch", json={"epoch": 1}, headers=ADMIN_AUTH)
    assert answer.status_code == 200 and answer.json()["epoch"] == 1
    window1 = datetime.fromisoformat(answer.json()["window_start"])
    delta = read_all(client, "households", limit=300, updated_since=watermark)
    updated = {data.household_id(i) for i in range(2020) if data.household_version(i) == 1}
    at_watermark = {r["id"] for r in first if r.get("updated_at") == watermark}
    assert set(_ids(delta)) == updated | at_watermark
    assert 60 < len(updated) < 180  # ~5% re-issued plus 20 new households
    assert len(_ids(delta)) == len(set(_ids(delta)))

    assert client.post("/_admin/tick", headers=ADMIN_AUTH).json()["epoch"] == 2
    since_epoch1 = read_all(client, "households", limit=300, updated_since=window1.isoformat())
    current = {data.household_id(i) for i in range(2040) if data.household_version(i) >= 1}
    assert set(_ids(since_epoch1)) == current
    for record in since_epoch1:
        index = index_of_household_id(record["id"])
        assert record == data.household(index)
        if "updated_at" in record:
            assert datetime.fromisoformat(record["updated_at"]) >= window1
    # Both updates of a household re-issued in epochs 1 and 2 collapse into the current one.
    twice = [i for i in range(2000) if data.household_update_epochs(i) == [1, 2]]
    served = {r["id"]: r for r in since_epoch1}
    for i in twice:
        start2, _ = data.epoch_window(2)
        record = served[data.household_id(i)]
        if "updated_at" in record:
            assert datetime.fromisoformat(record["updated_at"]) >= start2

    everything = read_all(client, "households", limit=5000)
    assert len(everything) == 2040 == len(set(_ids(everything)))
    truth = client.get("/_admin/truth", headers=ADMIN_AUTH).json()["registry"]
    assert truth["households"] == 2040
    assert truth["households_issued_this_epoch"] == sum(
        1 for i in range(2040) if data.household_version(i) == 2
    )


def test_recipient_updates_are_incremental_too(make_client: MakeClient) -> None:
    app, client = make_client(
        SandboxConfig(registry=RegistryDataConfig(households=1500, epoch=1, bad_rate=0.0))
    )
    data = state_of(app).registry
    start, _ = data.epoch_window(1)
    delta = read_all(client, "recipients", limit=100, updated_since=start.isoformat())
    expected = {
        r["id"]: r
        for i in range(data.households_count())
        if data.recipient_version(i) == 1
        for r in data.recipients(i)
    }
    assert {r["id"]: r for r in delta} == expected
    assert expected


def test_paging_continues_across_an_epoch_change(make_client: MakeClient) -> None:
    app, client = make_client(SandboxConfig(registry=RegistryDataConfig(households=2000)))
    seen: list[str] = []
    params: dict[str, Any] = {"limit": 400}
    for page_number in range(100):
        page = client.get(HOUSEHOLDS_URL, params=params).json()
        seen.extend(_ids(page["data"]))
        if page["next_cursor"] is None:
            break
        params["cursor"] = page["next_cursor"]
        if page_number == 1:
            client.post("/_admin/tick", headers=ADMIN_AUTH)
    data = state_of(app).registry
    # Keyset paging: nothing is skipped; a record re-issued mid-pass is met again later.
    assert set(seen) == {data.household_id(i) for i in range(2020)}


def test_admin_epoch_bounds_and_stats(make_client: MakeClient) -> None:
    _, client = make_client(
        SandboxConfig(registry=RegistryDataConfig(households=300, max_epochs=3))
    )
    too_far = client.post("/_admin/epoch", json={"epoch": 4}, headers=ADMIN_AUTH)
    assert too_far.status_code == 422 and too_far.json()["fields"][0]["loc"] == ["body", "epoch"]
    assert client.post("/_admin/epoch", json={"epoch": -1}, headers=ADMIN_AUTH).status_code == 422
    assert client.get("/_admin/epoch", headers=ADMIN_AUTH).json()["epoch"] == 0
    client.delete("/_admin/stats", headers=ADMIN_AUTH)
    client.get(HOUSEHOLDS_URL, params={"limit": 10})
    client.get(HOUSEHOLDS_URL, params={"limit": 0})
    client.get("/registry/v1/recipients")
    client.get("/registry/v1/nowhere")
    stats = client.get("/_admin/stats", headers=ADMIN_AUTH).json()["requests"]
    assert stats["GET /registry/v1/households"] == {"200": 1, "422": 1}
    assert stats["GET /registry/v1/recipients"] == {"200": 1}
    assert stats["GET <unmatched>"] == {"404": 1}


def test_truth_endpoint_matches_the_generator(small: tuple[FastAPI, httpx.Client]) -> None:
    app, client = small
    data = state_of(app).registry
    kec = data.kecamatan_of(0)
    body = client.get("/_admin/truth", params={"kecamatan": kec}, headers=ADMIN_AUTH).json()
    assert body["kecamatan"] == kec and body["registry"] == data.truth(kec)
    province = client.get("/_admin/truth", headers=ADMIN_AUTH).json()["registry"]
    assert province["households"] == 2000
    assert province["recipients"] == len(read_all(client, "recipients", limit=5000))
    bad = client.get("/_admin/truth", params={"kecamatan": "35.99.01"}, headers=ADMIN_AUTH)
    assert bad.status_code == 422


def test_openapi_documents_the_contract(small: tuple[FastAPI, httpx.Client]) -> None:
    _, client = small
    doc = client.get("/openapi.json").json()
    for collection, model in (("households", "Household"), ("recipients", "Recipient")):
        operation = doc["paths"][f"/registry/v1/{collection}"]["get"]
        names = {p["name"] for p in operation["parameters"]}
        assert names == {"updated_since", "cursor", "limit", "kecamatan"}
        ok = operation["responses"]["200"]["content"]["application/json"]["schema"]["$ref"]
        page = doc["components"]["schemas"][ok.rsplit("/", 1)[1]]
        assert page["properties"]["data"]["items"]["$ref"].endswith(f"/{model}")
        for status in ("400", "401", "422", "429", "503"):
            assert status in operation["responses"]
        assert "Retry-After" in operation["responses"]["429"]["headers"]
    # Test control is described apart from the agencies' contract.
    assert not any(path.startswith("/_admin") for path in doc["paths"])
    admin = client.get("/_admin/openapi.json").json()
    assert {
        "/_admin/faults",
        "/_admin/epoch",
        "/_admin/tick",
        "/_admin/stats",
        "/_admin/truth",
    } <= set(admin["paths"])


def _proposal(household_id: str, **changes: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "id": f"UP-{household_id}",
        "household_id": household_id,
        "changes": {"desil": 3, "members_left": [f"{household_id}-3"]},
        "report_id": "RPT-3507012001-5-1",
        "handoff_id": "ab" * 16,
        "verified_by": "kecamatan:35.07.01",
        "verified_at": "2026-11-20T10:00:00+07:00",
    }
    body.update(changes)
    return body


def test_update_proposals_are_idempotent(make_client: MakeClient) -> None:
    app, client = make_client(SandboxConfig(registry=RegistryDataConfig(households=300)))
    known = state_of(app).registry.household_id(7)
    url = "/registry/v1/update-proposals"
    first = client.post(url, json=_proposal(known), headers={"Idempotency-Key": "p1"})
    assert first.status_code == 201
    receipt = first.json()
    assert receipt["status"] == "accepted" and receipt["proposal_id"] == f"UP-{known}"
    replay = client.post(url, json=_proposal(known), headers={"Idempotency-Key": "p1"})
    assert replay.status_code == 200 and replay.json() == receipt
    other = client.post(
        url, json=_proposal(known, report_id="X"), headers={"Idempotency-Key": "p1"}
    )
    assert other.status_code == 409
    unknown = client.post(
        url, json=_proposal("HH-3507012001-999999"), headers={"Idempotency-Key": "p2"}
    )
    assert unknown.status_code == 201 and unknown.json()["status"] == "queued"
    assert client.post(url, json=_proposal(known)).status_code == 400
    invalid = client.post(
        url,
        json=_proposal(known, verified_by="desa:35.07.01.2001"),
        headers={"Idempotency-Key": "p3"},
    )
    assert invalid.status_code == 422
    assert invalid.json()["fields"][0]["loc"] == ["body", "verified_by"]
    no_token = client.post(
        url, json=_proposal(known), headers={"Idempotency-Key": "p1", "Authorization": ""}
    )
    assert no_token.status_code == 401
    listed = client.get("/_admin/proposals", headers=ADMIN_AUTH).json()
    assert listed["received"] == 2 and listed["posts"] == 3 and listed["conflicts"] == 1
    first_listed = listed["proposals"][0]
    assert (first_listed["key"], first_listed["posts"], first_listed["receipt"]) == (
        "p1",
        2,
        receipt,
    )
    assert first_listed["proposal"]["changes"]["members_left"] == [f"{known}-3"]


def test_update_proposals_survive_a_drop_after_the_write(make_client: MakeClient) -> None:
    config = SandboxConfig(
        registry=RegistryDataConfig(households=300),
        agency_faults={"registry": FaultConfig(drop_rate=1.0)},
    )
    app, client = make_client(config)
    body = _proposal(state_of(app).registry.household_id(3))
    with pytest.raises(httpx.RemoteProtocolError):
        client.post("/registry/v1/update-proposals", json=body, headers={"Idempotency-Key": "k"})
    client.delete("/_admin/faults", params={"agency": "registry"}, headers=ADMIN_AUTH)
    retry = client.post(
        "/registry/v1/update-proposals", json=body, headers={"Idempotency-Key": "k"}
    )
    assert retry.status_code == 200 and retry.json()["receipt_id"] == "PRP-00000001"
    assert client.get("/_admin/proposals", headers=ADMIN_AUTH).json()["faulted_after_commit"] == 1
