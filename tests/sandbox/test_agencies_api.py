"""Contract tests of the pkh, desa, pertanian and statistik read routes (in-process HTTP)."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from datetime import datetime
from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from pydantic import BaseModel

from models.contracts.desa import BltRecipient
from models.contracts.pertanian import FarmerNeed
from models.contracts.pkh import FacilitatorReport
from models.contracts.statistik import DataRequest, DataSubmission
from models.wilayah import get_region_registry
from sandbox.app import create_app
from sandbox.config import FaultConfig, RegistryDataConfig, SandboxConfig
from sandbox.cursor import encode_cursor
from sandbox.registry_data import Position
from sandbox.transport import SyncASGITransport
from tests.sandbox.conftest import ADMIN_AUTH, REGISTRY_AUTH, auth, bad_kinds, read_agency, state_of

MakeClient = Callable[[SandboxConfig], tuple[FastAPI, httpx.Client]]

COLLECTIONS: list[tuple[str, str, type[BaseModel]]] = [
    ("pkh", "reports", FacilitatorReport),
    ("desa", "blt-recipients", BltRecipient),
    ("pertanian", "farmer-needs", FarmerNeed),
    ("statistik", "data-requests", DataRequest),
    ("statistik", "submissions", DataSubmission),
]
IDS = [f"{a}/{c}" for a, c, _ in COLLECTIONS]


@pytest.fixture(scope="module")
def coord() -> Iterator[tuple[FastAPI, httpx.Client]]:
    """A read-only 1,500-household sandbox shared by the module."""
    app = create_app(SandboxConfig(registry=RegistryDataConfig(households=1500)))
    with httpx.Client(transport=SyncASGITransport(app), base_url="http://sandbox") as client:
        yield app, client


def expected(app: FastAPI, agency: str, collection: str, kecamatan: str | None = None) -> list[Any]:
    """What the generator says a collection serves now, in serving order."""
    data = state_of(app).coordination
    if agency == "statistik":
        return [e.item.record for e in data.statistik.entries(collection, kecamatan)]
    source = {"pkh": data.reports, "desa": data.blt, "pertanian": data.farmers}[agency]
    return [item.record for item in source.all_records(kecamatan)]


def owner(record: dict[str, Any]) -> str:
    """The kecamatan a record is served under, read from the digits its id embeds."""
    digits = record["id"].split("-")[1]
    return f"{digits[:2]}.{digits[2:4]}.{digits[4:6]}"


def _keys(records: list[dict[str, Any]]) -> list[tuple[datetime, str]]:
    return [
        (datetime.fromisoformat(r["updated_at"]), r["id"]) for r in records if "updated_at" in r
    ]


@pytest.mark.parametrize(("agency", "collection", "model"), COLLECTIONS, ids=IDS)
def test_each_agency_needs_its_own_token(
    coord: tuple[FastAPI, httpx.Client], agency: str, collection: str, model: type[BaseModel]
) -> None:
    _, client = coord
    path = f"/{agency}/v1/{collection}"
    for headers in ({}, {"Authorization": "Bearer wrong"}, REGISTRY_AUTH, ADMIN_AUTH):
        response = client.get(path, headers=headers)
        assert response.status_code == 401
        assert response.json()["error"] == "unauthorized"
    assert client.get(path, headers=auth(agency), params={"limit": 1}).status_code == 200


@pytest.mark.parametrize(("agency", "collection", "model"), COLLECTIONS, ids=IDS)
def test_paging_serves_every_record_once_in_order(
    coord: tuple[FastAPI, httpx.Client], agency: str, collection: str, model: type[BaseModel]
) -> None:
    app, client = coord
    want = expected(app, agency, collection)
    assert len(want) > 40
    records = read_agency(client, agency, collection, limit=37)
    assert records == want
    ids = [r["id"] for r in records]
    assert len(set(ids)) == len(ids)
    keys = _keys(records)
    assert keys == sorted(keys)
    # One big page gives the same records.
    assert read_agency(client, agency, collection, limit=5000) == records


@pytest.mark.parametrize(("agency", "collection", "model"), COLLECTIONS, ids=IDS)
def test_served_records_validate_except_the_planted_bad_ones(
    coord: tuple[FastAPI, httpx.Client], agency: str, collection: str, model: type[BaseModel]
) -> None:
    app, _ = coord
    data = state_of(app).coordination
    if agency == "statistik":
        items = [e.item for e in data.statistik.entries(collection)]
    else:
        source = {"pkh": data.reports, "desa": data.blt, "pertanian": data.farmers}[agency]
        items = list(source.all_records())
    bad = bad_kinds(items, model).total()
    # About 1% are broken on purpose, so quarantine has something to hold.
    assert 0 < bad < 0.05 * len(items)


@pytest.mark.parametrize(("agency", "collection", "model"), COLLECTIONS, ids=IDS)
def test_updated_since_is_inclusive(
    coord: tuple[FastAPI, httpx.Client], agency: str, collection: str, model: type[BaseModel]
) -> None:
    _, client = coord
    records = read_agency(client, agency, collection, limit=5000)
    stamped = [r for r in records if "updated_at" in r]
    for pivot in (stamped[len(stamped) // 3]["updated_at"], stamped[-1]["updated_at"]):
        later = read_agency(client, agency, collection, limit=5000, updated_since=pivot)
        first = next(j for j, r in enumerate(records) if r.get("updated_at") == pivot)
        assert [r["id"] for r in later] == [r["id"] for r in records[first:]]
        assert later[0]["updated_at"] == pivot


@pytest.mark.parametrize(("agency", "collection", "model"), COLLECTIONS, ids=IDS)
def test_kecamatan_filter_selects_the_kecamatan_records(
    coord: tuple[FastAPI, httpx.Client], agency: str, collection: str, model: type[BaseModel]
) -> None:
    app, client = coord
    whole = read_agency(client, agency, collection, limit=5000)
    seen = 0
    for kec in get_region_registry().kecamatan("35.07"):
        records = read_agency(client, agency, collection, limit=3, kecamatan=kec.code)
        assert records == [r for r in whole if owner(r) == kec.code]
        assert records == expected(app, agency, collection, kec.code)
        seen += len(records)
    assert seen > 0
    code = "35.07.05"
    dotted = read_agency(client, agency, collection, kecamatan=code)
    assert read_agency(client, agency, collection, kecamatan=code.replace(".", "")) == dotted


@pytest.mark.parametrize(("agency", "collection", "model"), COLLECTIONS, ids=IDS)
def test_bad_cursor_and_bad_filters_are_refused(
    coord: tuple[FastAPI, httpx.Client], agency: str, collection: str, model: type[BaseModel]
) -> None:
    _, client = coord
    path = f"/{agency}/v1/{collection}"
    for cursor in ("garbage!", encode_cursor("households", Position(0, 1, 0))):
        response = client.get(path, params={"cursor": cursor}, headers=auth(agency))
        assert response.status_code == 400 and response.json()["error"] == "bad_cursor"
    for params in ({"kecamatan": "35.99.01"}, {"limit": "0"}, {"updated_since": "yesterday"}):
        response = client.get(path, params=params, headers=auth(agency))
        assert response.status_code == 422
        assert response.json()["fields"][0]["loc"][0] == "query"


def test_one_agency_faults_leave_the_others_alone(make_client: MakeClient) -> None:
    config = SandboxConfig(
        registry=RegistryDataConfig(households=300),
        agency_faults={"desa": FaultConfig(error_rate=1.0)},
    )
    _, client = make_client(config)
    for _ in range(5):
        assert client.get("/desa/v1/blt-recipients", headers=auth("desa")).status_code in (500, 503)
        assert client.get("/pkh/v1/reports", headers=auth("pkh")).status_code == 200
        assert client.get("/registry/v1/households", params={"limit": 1}).status_code == 200


def test_rate_limits_carry_the_agency_retry_after(make_client: MakeClient) -> None:
    config = SandboxConfig(
        registry=RegistryDataConfig(households=300),
        agency_faults={"statistik": FaultConfig(rate_limit_rate=1.0, retry_after_s=3.0)},
    )
    _, client = make_client(config)
    response = client.get("/statistik/v1/submissions", headers=auth("statistik"))
    assert response.status_code == 429 and response.headers["Retry-After"] == "3"


def test_openapi_documents_every_agency_collection(coord: tuple[FastAPI, httpx.Client]) -> None:
    _, client = coord
    doc = client.get("/openapi.json").json()
    for agency, collection, model in COLLECTIONS:
        operation = doc["paths"][f"/{agency}/v1/{collection}"]["get"]
        assert {p["name"] for p in operation["parameters"]} == {
            "updated_since",
            "cursor",
            "limit",
            "kecamatan",
        }
        ok = operation["responses"]["200"]["content"]["application/json"]["schema"]["$ref"]
        page = doc["components"]["schemas"][ok.rsplit("/", 1)[1]]
        assert page["properties"]["data"]["items"]["$ref"].endswith(f"/{model.__name__}")
        assert "Retry-After" in operation["responses"]["429"]["headers"]
    for path, model_name in (
        ("/kecamatan/v1/handoffs", "DeliveryReceipt"),
        ("/registry/v1/update-proposals", "ProposalReceipt"),
    ):
        operation = doc["paths"][path]["post"]
        assert {"200", "201", "400", "409", "422", "429"} <= set(operation["responses"])
        assert operation["responses"]["201"]["content"]["application/json"]["schema"][
            "$ref"
        ].endswith(model_name)
        assert any(p["name"] == "Idempotency-Key" for p in operation["parameters"])
        body = operation["requestBody"]["content"]["application/json"]["schema"]
        assert "$defs" not in str(body) and body["required"]
