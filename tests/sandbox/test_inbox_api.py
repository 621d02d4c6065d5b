"""The office inbox over HTTP: idempotent deliveries under faults, decisions, the clock."""

from __future__ import annotations

import json
from collections import Counter, defaultdict
from collections.abc import Callable
from datetime import date, datetime
from typing import Any

import httpx
import pytest
from fastapi import FastAPI

from models.contracts.kecamatan import OfficeDecision
from models.wilayah import get_region_registry
from models.workdays import default_calendar
from sandbox.config import (
    WIB,
    CoordinationConfig,
    FaultConfig,
    InboxConfig,
    RegistryDataConfig,
    SandboxConfig,
)
from sandbox.inbox import PROFILES, office_kecamatan
from tests.sandbox.conftest import ADMIN_AUTH, auth, read_agency, state_of

MakeClient = Callable[[SandboxConfig], tuple[FastAPI, httpx.Client]]
URL = "/kecamatan/v1/handoffs"
INBOX = auth("kecamatan")
# A Monday morning: the sandbox clock starts here and moves only when advanced.
ORIGIN = datetime(2026, 11, 2, 9, 0, tzinfo=WIB)
DATA = RegistryDataConfig(households=200)


def _config(inbox: InboxConfig | None = None, faults: FaultConfig | None = None) -> SandboxConfig:
    coordination = CoordinationConfig(clock_origin=ORIGIN, inbox=inbox or InboxConfig())
    agency_faults = {} if faults is None else {"kecamatan": faults}
    return SandboxConfig(registry=DATA, coordination=coordination, agency_faults=agency_faults)


def delivery(n: int, office: str = "kecamatan:35.07.01", **changes: Any) -> dict[str, Any]:
    """A valid delivery body; `n` makes the handoff id."""
    body: dict[str, Any] = {
        "handoff_id": f"{n:032x}",
        "office": office,
        "kind": "blt_pkh_overlap",
        "subject_token": f"{n + 7:032x}",
        "period": "2026-Q4",
        "sender": "cettar-hub",
        "due_date": "2026-11-09",
        "evidence": {"programmes": "BPNT,PKH", "desa_codes": "35.07.01.2001"},
    }
    body.update(changes)
    return body


def post(client: httpx.Client, body: Any, key: str | None, **kwargs: Any) -> httpx.Response:
    headers = dict(INBOX)
    if key is not None:
        headers["Idempotency-Key"] = key
    return client.post(URL, json=body, headers=headers, **kwargs)


def inbox_stats(client: httpx.Client) -> dict[str, Any]:
    return client.get("/_admin/inbox", headers=ADMIN_AUTH).json()


def test_first_delivery_is_201_and_a_replay_returns_the_same_receipt(
    make_client: MakeClient,
) -> None:
    _, client = make_client(_config())
    first = post(client, delivery(1), "key-1")
    assert first.status_code == 201
    receipt = first.json()
    assert receipt["handoff_id"] == f"{1:032x}" and receipt["office"] == "kecamatan:35.07.01"
    assert datetime.fromisoformat(receipt["received_at"]) == ORIGIN
    # Same body, other key order and spacing: still the same write.
    shuffled = json.dumps(dict(reversed(list(delivery(1).items()))), indent=2)
    for _ in range(2):
        again = client.post(
            URL,
            content=shuffled,
            headers={**INBOX, "Idempotency-Key": "key-1", "Content-Type": "application/json"},
        )
        assert again.status_code == 200 and again.json() == receipt
    second = post(client, delivery(2), "key-2")
    assert second.status_code == 201 and second.json()["receipt_id"] != receipt["receipt_id"]
    stats = inbox_stats(client)
    assert stats["per_key"] == {"key-1": 3, "key-2": 1}
    assert stats["receipts"] == 2 and stats["replays"] == 2
    assert stats["pairs_seen_more_than_once"] == 0


def test_conflicts_missing_keys_and_invalid_bodies(make_client: MakeClient) -> None:
    _, client = make_client(_config())
    assert post(client, delivery(1), "k").status_code == 201
    conflict = post(client, delivery(1, period="2026-Q3"), "k")
    assert conflict.status_code == 409 and conflict.json()["error"] == "idempotency_conflict"
    missing = post(client, delivery(2), None)
    assert missing.status_code == 400 and missing.json()["error"] == "idempotency_key_required"
    malformed = post(client, delivery(2), "two words")
    assert malformed.status_code == 400 and malformed.json()["error"] == "bad_idempotency_key"
    invalid = post(client, delivery(2, office="kantor camat", due_date="soon"), "k2")
    assert invalid.status_code == 422
    body = invalid.json()
    assert body["error"] == "validation_error"
    assert {tuple(f["loc"]) for f in body["fields"]} == {("body", "office"), ("body", "due_date")}
    extra = post(client, delivery(2, nik="3507014101900001"), "k3")
    assert extra.status_code == 422
    assert "3507014101900001" not in extra.text
    not_json = client.post(URL, content=b"{nope", headers={**INBOX, "Idempotency-Key": "k4"})
    assert not_json.status_code == 422 and not_json.json()["fields"][0]["type"] == "json_invalid"
    stats = inbox_stats(client)
    assert stats["receipts"] == 1 and stats["conflicts"] == 1
    assert client.post(URL, json=delivery(3), headers={"Idempotency-Key": "x"}).status_code == 401


def test_a_dropped_answer_after_the_write_is_recovered_by_the_retry(
    make_client: MakeClient,
) -> None:
    _, client = make_client(_config(faults=FaultConfig(drop_rate=1.0)))
    with pytest.raises(httpx.RemoteProtocolError):
        post(client, delivery(1), "key-1")
    stats = inbox_stats(client)
    assert stats["receipts"] == 1 and stats["faulted_after_commit"] == 1
    client.put("/_admin/faults", params={"agency": "kecamatan"}, json={}, headers=ADMIN_AUTH)
    retry = post(client, delivery(1), "key-1")
    assert retry.status_code == 200
    assert retry.json()["receipt_id"] == "RCP-00000001"


def test_a_cut_answer_after_the_write_is_recovered_by_the_retry(make_client: MakeClient) -> None:
    _, client = make_client(_config(faults=FaultConfig(truncate_rate=1.0)))
    cut = post(client, delivery(1), "key-1")
    assert cut.status_code == 201
    with pytest.raises(json.JSONDecodeError):
        cut.json()
    client.delete("/_admin/faults", params={"agency": "kecamatan"}, headers=ADMIN_AUTH)
    assert post(client, delivery(1), "key-1").json()["receipt_id"] == "RCP-00000001"


def test_server_errors_strike_before_or_after_the_write(make_client: MakeClient) -> None:
    _, client = make_client(_config(faults=FaultConfig(error_rate=1.0)))
    for n in range(40):
        assert post(client, delivery(n), f"key-{n}").status_code in (500, 503)
    recorded = inbox_stats(client)
    # Roughly half were recorded before the error: 20 expected, sd 3.2.
    assert 8 <= recorded["receipts"] <= 32
    assert recorded["faulted_after_commit"] == recorded["receipts"]
    client.put("/_admin/faults", params={"agency": "kecamatan"}, json={}, headers=ADMIN_AUTH)
    statuses = Counter(post(client, delivery(n), f"key-{n}").status_code for n in range(40))
    assert statuses == {200: recorded["receipts"], 201: 40 - recorded["receipts"]}
    assert inbox_stats(client)["receipts"] == 40


def test_every_delivery_lands_once_under_inbox_faults(make_client: MakeClient) -> None:
    faults = FaultConfig(error_rate=0.10, rate_limit_rate=0.05, drop_rate=0.05, seed=3)
    app, client = make_client(_config(faults=faults))
    receipts: dict[str, dict[str, Any]] = {}
    attempts = 0
    for n in range(80):
        while True:
            attempts += 1
            try:
                response = post(client, delivery(n), f"d-{n}")
            except httpx.RemoteProtocolError:
                continue
            if response.status_code in (200, 201):
                receipts[f"d-{n}"] = response.json()
                break
            assert response.status_code in (429, 500, 503)
    assert attempts > 85
    stats = inbox_stats(client)
    assert stats["receipts"] == 80 and stats["pairs"] == 80
    assert stats["pairs_seen_more_than_once"] == 0 and stats["repeated_pairs"] == []
    assert stats["faulted_after_commit"] > 0
    log = state_of(app).inbox.log
    assert {e.key: e.result for e in log.entries()} == receipts
    # The registry kept its own (absent) faults.
    assert client.get("/registry/v1/households", params={"limit": 1}).status_code == 200


def test_the_same_handoff_under_two_keys_is_counted(make_client: MakeClient) -> None:
    _, client = make_client(_config())
    assert post(client, delivery(5), "first").status_code == 201
    assert post(client, delivery(5), "second").status_code == 201
    stats = inbox_stats(client)
    assert stats["pairs"] == 1 and stats["pairs_seen_more_than_once"] == 1
    assert stats["repeated_pairs"] == [
        {"handoff_id": f"{5:032x}", "office": "kecamatan:35.07.01", "keys": 2}
    ]


def _offices() -> list[str]:
    regions = get_region_registry()
    kecs = regions.kecamatan("35.07")
    offices = [f"kecamatan:{k.code}" for k in kecs]
    offices += [f"desa:{v.code}" for k in kecs[:6] for v in regions.villages(k.code)]
    return [*offices, "kabupaten:35.07", "kabupaten:35.78", "agency:pkh"]


def test_decisions_follow_each_office_profile_and_wait_for_the_clock(
    make_client: MakeClient,
) -> None:
    app, client = make_client(_config())
    inbox = state_of(app).inbox
    cal = default_calendar()
    offices = _offices()
    due = cal.add_workdays(ORIGIN.date(), 5)
    for n, office in enumerate(offices):
        response = post(client, delivery(n, office=office, due_date=due.isoformat()), f"k{n}")
        assert response.status_code == 201
    assert read_agency(client, "kecamatan", "decisions") == []

    seen: list[dict[str, Any]] = []
    for step in range(12):
        client.post("/_admin/clock", json={"advance_days": 2}, headers=ADMIN_AUTH)
        now = datetime.fromisoformat(client.get("/_admin/clock", headers=ADMIN_AUTH).json()["now"])
        visible = read_agency(client, "kecamatan", "decisions", limit=25)
        assert all(datetime.fromisoformat(d["updated_at"]) <= now for d in visible)
        assert visible[: len(seen)] == seen, step
        seen = visible
    by_office: defaultdict[str, list[dict[str, Any]]] = defaultdict(list)
    for d in seen:
        OfficeDecision.model_validate(d)
        by_office[d["office"]].append(d)

    profiles = Counter(inbox.profile(o) for o in offices)
    assert all(profiles[p] > 0 for p in PROFILES), profiles
    for office in offices:
        mine = by_office[office]
        profile = inbox.profile(office)
        if office.startswith("kabupaten:"):
            assert profile == "prompt"
        if profile == "never":
            assert mine == []
            continue
        copies = 2 if profile == "twice" else 1
        assert len(mine) == 2 * copies
        assert len({d["id"] for d in mine}) == len(mine)
        content = Counter(
            tuple(sorted((k, v) for k, v in d.items() if k not in ("id", "updated_at")))
            for d in mine
        )
        assert set(content.values()) == {copies}
        ack = next(d for d in mine if d["decision"] == "acknowledged")
        final = next(d for d in mine if d["decision"] != "acknowledged")
        acked = datetime.fromisoformat(ack["decided_at"])
        decided = datetime.fromisoformat(final["decided_at"])
        assert final["decision"] in ("resolved", "rejected") and final["reason"]
        assert acked < decided
        if profile == "late":
            assert acked.date() > due
        else:
            assert acked.date() == cal.next_workday(ORIGIN.date())
            assert decided.date() <= due
        assert cal.is_workday(acked.date()) and cal.is_workday(decided.date())


def test_data_requests_are_only_acknowledged(make_client: MakeClient) -> None:
    inbox = InboxConfig(prompt=1.0, late=0.0, never=0.0, twice=0.0)
    _, client = make_client(_config(inbox=inbox))
    body = delivery(9, office="desa:35.07.01.2001", kind="data_request", period="DR-350701-1")
    assert post(client, body, "dr").status_code == 201
    client.post("/_admin/clock", json={"advance_days": 30}, headers=ADMIN_AUTH)
    decisions = read_agency(client, "kecamatan", "decisions")
    assert [d["decision"] for d in decisions] == ["acknowledged"]


def test_reject_share_and_kecamatan_filter(make_client: MakeClient) -> None:
    inbox = InboxConfig(prompt=1.0, late=0.0, never=0.0, twice=0.0, reject_share=0.3)
    _, client = make_client(_config(inbox=inbox))
    offices = _offices()
    for n in range(300):
        office = offices[n % len(offices)]
        assert post(client, delivery(n, office=office), f"k{n}").status_code == 201
    client.post("/_admin/clock", json={"advance_days": 20}, headers=ADMIN_AUTH)
    everything = read_agency(client, "kecamatan", "decisions", limit=5000)
    finals = Counter(d["decision"] for d in everything if d["decision"] != "acknowledged")
    assert finals.total() == 300
    assert 60 <= finals["rejected"] <= 120  # 90 expected, sd 7.9
    whole = set()
    for kec in ("35.07.01", "35.07.02", "35.07.03"):
        mine = read_agency(client, "kecamatan", "decisions", limit=9, kecamatan=kec)
        assert mine and all(office_kecamatan(d["office"]) == kec for d in mine)
        assert mine == [d for d in everything if office_kecamatan(d["office"]) == kec]
        whole |= {d["id"] for d in mine}
    assert not any(d["id"] in whole for d in everything if d["office"].startswith("kabupaten"))
    pivot = everything[len(everything) // 2]["updated_at"]
    later = read_agency(client, "kecamatan", "decisions", limit=50, updated_since=pivot)
    first = next(j for j, d in enumerate(everything) if d["updated_at"] == pivot)
    assert later == everything[first:]


def test_decisions_come_from_the_received_time(make_client: MakeClient) -> None:
    inbox = InboxConfig(prompt=1.0, late=0.0, never=0.0, twice=0.0)
    _, client = make_client(_config(inbox=inbox))
    client.post("/_admin/clock", json={"advance_days": 4}, headers=ADMIN_AUTH)  # Friday
    receipt = post(client, delivery(1, due_date="2026-11-20"), "k").json()
    received = datetime.fromisoformat(receipt["received_at"])
    assert received.date() == date(2026, 11, 6)
    client.post("/_admin/clock", json={"advance_days": 20}, headers=ADMIN_AUTH)
    ack = read_agency(client, "kecamatan", "decisions")[0]
    # Received on a Friday: acknowledged on Monday.
    assert datetime.fromisoformat(ack["decided_at"]).date() == date(2026, 11, 9)


# --- batches: many deliveries per request, each under its own key ---------------------------

BATCH_URL = "/kecamatan/v1/handoff-batches"


def post_batch(client: httpx.Client, items: list[tuple[str, dict[str, Any]]]) -> httpx.Response:
    """POST (key, body) items as one batch."""
    body = {"items": [{"idempotency_key": k, "body": b} for k, b in items]}
    return client.post(BATCH_URL, json=body, headers=INBOX)


def test_a_batch_answers_new_replayed_and_conflicting_items_in_order(
    make_client: MakeClient,
) -> None:
    _, client = make_client(_config())
    first = post(client, delivery(1), "k1").json()
    answer = post_batch(
        client,
        [
            ("k2", delivery(2)),  # new
            ("k1", delivery(1)),  # sent singly before: replayed
            ("k1", delivery(1, period="2026-Q3")),  # the key with another body
            ("k3", delivery(3)),  # new
            ("k2", delivery(2)),  # repeated within the batch: a replay of the first item
        ],
    )
    assert answer.status_code == 200
    results = answer.json()["results"]
    assert [(r["idempotency_key"], r["status"]) for r in results] == [
        ("k2", 201),
        ("k1", 200),
        ("k1", 409),
        ("k3", 201),
        ("k2", 200),
    ]
    assert results[1]["receipt"] == first
    assert results[2]["error"]["error"] == "idempotency_conflict" and "receipt" not in results[2]
    assert results[4]["receipt"] == results[0]["receipt"]
    assert results[3]["receipt"]["handoff_id"] == f"{3:032x}"
    # Replaying the whole batch: every item answered with its first receipt, nothing new.
    again = post_batch(client, [("k2", delivery(2)), ("k3", delivery(3))]).json()["results"]
    assert [r["receipt"] for r in again] == [results[0]["receipt"], results[3]["receipt"]]
    assert {r["status"] for r in again} == {200}
    stats = inbox_stats(client)
    assert stats["receipts"] == stats["pairs"] == 3
    assert stats["per_key"] == {"k1": 2, "k2": 3, "k3": 2}
    assert stats["conflicts"] == 1 and stats["pairs_seen_more_than_once"] == 0


def test_a_handoff_sent_singly_and_in_a_batch_is_received_once(make_client: MakeClient) -> None:
    _, client = make_client(_config())
    # Single, then batch.
    single = post(client, delivery(1), "a").json()
    [batched] = post_batch(client, [("a", delivery(1))]).json()["results"]
    assert (batched["status"], batched["receipt"]) == (200, single)
    # Batch, then single.
    [first] = post_batch(client, [("b", delivery(2))]).json()["results"]
    later = post(client, delivery(2), "b")
    assert first["status"] == 201 and later.status_code == 200
    assert later.json() == first["receipt"]
    # The same key with another body conflicts across the two routes as within one.
    assert post(client, delivery(2, period="2026-Q1"), "a").status_code == 409
    [clash] = post_batch(client, [("b", delivery(1))]).json()["results"]
    assert clash["status"] == 409
    stats = inbox_stats(client)
    assert stats["receipts"] == stats["pairs"] == 2 and stats["replays"] == 2
    assert stats["conflicts"] == 2 and stats["pairs_seen_more_than_once"] == 0


def test_an_invalid_or_oversized_batch_is_refused_whole(make_client: MakeClient) -> None:
    _, client = make_client(_config())
    bad = post_batch(
        client,
        [("k1", delivery(1)), ("k2", delivery(2, office="kantor camat")), ("k3", delivery(3))],
    )
    assert bad.status_code == 422
    assert [f["loc"] for f in bad.json()["fields"]] == [["body", "items", 1, "body", "office"]]
    nik = post_batch(client, [("k4", delivery(4, nik="3507014101900001"))])
    assert nik.status_code == 422 and "3507014101900001" not in nik.text
    bad_key = post_batch(client, [("two words", delivery(5))])
    assert bad_key.status_code == 422
    assert bad_key.json()["fields"][0]["loc"] == ["body", "items", 0, "idempotency_key"]
    assert post_batch(client, []).status_code == 422
    too_many = post_batch(client, [(f"k{n}", delivery(n)) for n in range(501)])
    assert too_many.status_code == 422
    assert post_batch(client, [(f"k{n}", delivery(n)) for n in range(500)]).status_code == 200
    not_json = client.post(BATCH_URL, content=b"[nope", headers=INBOX)
    assert not_json.status_code == 422
    stats = inbox_stats(client)
    # Only the batch of 500 was recorded: nothing of a refused batch.
    assert stats["receipts"] == 500 and stats["conflicts"] == 0
    unauthorised = client.post(BATCH_URL, json={"items": [{"idempotency_key": "x", "body": {}}]})
    assert unauthorised.status_code == 401


def test_a_lost_answer_to_a_batch_then_the_same_batch_again_gives_the_same_receipts(
    make_client: MakeClient,
) -> None:
    _, client = make_client(_config(faults=FaultConfig(drop_rate=1.0)))
    items = [(f"k{n}", delivery(n)) for n in range(5)]
    with pytest.raises(httpx.RemoteProtocolError):
        post_batch(client, items)
    stats = inbox_stats(client)
    # The batch was recorded, its answer lost: every item counts one answer faulted.
    assert stats["receipts"] == 5 and stats["faulted_after_commit"] == 5
    client.put("/_admin/faults", params={"agency": "kecamatan"}, json={}, headers=ADMIN_AUTH)
    results = post_batch(client, items).json()["results"]
    assert [r["status"] for r in results] == [200] * 5
    assert [r["receipt"]["receipt_id"] for r in results] == [f"RCP-{n:08d}" for n in range(1, 6)]
    assert inbox_stats(client)["receipts"] == 5


def test_faults_strike_a_batch_as_a_whole(make_client: MakeClient) -> None:
    _, client = make_client(_config(faults=FaultConfig(error_rate=1.0)))
    recorded = 0
    for n in range(20):
        response = post_batch(client, [(f"k{n}-{i}", delivery(10 * n + i)) for i in range(3)])
        assert response.status_code in (500, 503)
        now = inbox_stats(client)["receipts"]
        # Before the write (nothing of the batch) or after it (all of it).
        assert now - recorded in (0, 3)
        recorded = now
    assert 0 < recorded < 60
    client.put(
        "/_admin/faults",
        params={"agency": "kecamatan"},
        json={"rate_limit_rate": 1.0},
        headers=ADMIN_AUTH,
    )
    limited = post_batch(client, [("x", delivery(99))])
    assert limited.status_code == 429 and "retry-after" in limited.headers
    assert inbox_stats(client)["receipts"] == recorded
