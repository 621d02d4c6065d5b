"""Admin routes added for coordination: agency faults, clock, inbox, proposals, truth."""

from __future__ import annotations

from collections.abc import Callable

import httpx
from fastapi import FastAPI

from sandbox.config import FaultConfig, RegistryDataConfig, SandboxConfig
from sandbox.truth import coordination_truth
from tests.sandbox.conftest import ADMIN_AUTH, REGISTRY_AUTH, auth, state_of

MakeClient = Callable[[SandboxConfig], tuple[FastAPI, httpx.Client]]
CONFIG = SandboxConfig(registry=RegistryDataConfig(households=300))


def test_agency_faults_are_read_set_and_dropped(make_client: MakeClient) -> None:
    app, client = make_client(CONFIG)
    assert client.get("/_admin/agency-faults", headers=ADMIN_AUTH).json() == {}
    put = client.put(
        "/_admin/faults",
        params={"agency": "pkh"},
        json={"error_rate": 1.0, "seed": 4},
        headers=ADMIN_AUTH,
    )
    assert put.status_code == 200 and put.json()["error_rate"] == 1.0
    assert client.get("/pkh/v1/reports", headers=auth("pkh")).status_code in (500, 503)
    assert client.get("/desa/v1/blt-recipients", headers=auth("desa")).status_code == 200
    got = client.get("/_admin/faults", params={"agency": "pkh"}, headers=ADMIN_AUTH).json()
    assert got["error_rate"] == 1.0 and got["seed"] == 4
    # The shared setting is untouched and still governs the other agencies.
    assert client.get("/_admin/faults", headers=ADMIN_AUTH).json()["error_rate"] == 0.0
    shared = client.get("/_admin/faults", params={"agency": "desa"}, headers=ADMIN_AUTH).json()
    assert shared == FaultConfig().model_dump()
    assert set(client.get("/_admin/agency-faults", headers=ADMIN_AUTH).json()) == {"pkh"}
    dropped = client.delete("/_admin/faults", params={"agency": "pkh"}, headers=ADMIN_AUTH)
    assert dropped.status_code == 204
    assert client.get("/pkh/v1/reports", headers=auth("pkh")).status_code == 200
    assert state_of(app).agency_faults == {}
    unknown = client.put(
        "/_admin/faults", params={"agency": "dukcapil"}, json={}, headers=ADMIN_AUTH
    )
    assert unknown.status_code == 422 and unknown.json()["fields"][0]["loc"] == ["query", "agency"]


def test_the_clock_advances_on_request(make_client: MakeClient) -> None:
    _, client = make_client(CONFIG)
    before = client.get("/_admin/clock", headers=ADMIN_AUTH).json()
    assert before["offset_days"] == 0.0 and not before["frozen"]
    after = client.post("/_admin/clock", json={"advance_days": 2.5}, headers=ADMIN_AUTH).json()
    assert after["offset_days"] == 2.5 and after["now"] > before["now"]
    for bad in ({"advance_days": -1}, {}, {"advance_days": "soon"}):
        answer = client.post("/_admin/clock", json=bad, headers=ADMIN_AUTH)
        assert answer.status_code == 422
    assert client.post("/_admin/clock", json={"advance_days": 1}).status_code == 401


def test_inbox_stats_and_reset(make_client: MakeClient) -> None:
    _, client = make_client(CONFIG)
    body = {
        "handoff_id": "ab" * 16,
        "office": "kecamatan:35.07.01",
        "kind": "nik_multiple_households",
        "subject_token": "cd" * 16,
        "period": "2026-Q4",
        "sender": "cettar-hub",
        "due_date": "2026-12-01",
    }
    headers = {**auth("kecamatan"), "Idempotency-Key": "one"}
    assert client.post("/kecamatan/v1/handoffs", json=body, headers=headers).status_code == 201
    stats = client.get("/_admin/inbox", headers=ADMIN_AUTH).json()
    assert stats["receipts"] == 1 and stats["decisions_scheduled"] in (0, 2, 4)
    assert client.delete("/_admin/inbox", headers=ADMIN_AUTH).status_code == 204
    assert client.get("/_admin/inbox", headers=ADMIN_AUTH).json()["receipts"] == 0
    assert client.get("/_admin/inbox", headers=REGISTRY_AUTH).status_code == 401


def test_coordination_truth_route(make_client: MakeClient) -> None:
    _, client = make_client(CONFIG)
    kecamatan = ["35.07.01", "35.07.02"]
    answer = client.get(
        "/_admin/truth/coordination", params={"kecamatan": kecamatan}, headers=ADMIN_AUTH
    )
    assert answer.status_code == 200
    assert answer.json() == coordination_truth(CONFIG, kecamatan).model_dump(mode="json")
    assert answer.json()["kecamatan"] == kecamatan
    refused = client.get(
        "/_admin/truth/coordination", params={"kecamatan": "35.99.01"}, headers=ADMIN_AUTH
    )
    assert refused.status_code == 422
    assert client.get("/_admin/truth/coordination", headers=auth("desa")).status_code == 401
