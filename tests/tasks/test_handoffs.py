"""Outbox sending: failure classes, batches, exactly-once delivery under faults and crashes."""

from __future__ import annotations

import json
import threading
from collections import Counter
from collections.abc import Iterator, Mapping, Sequence
from datetime import UTC, date, datetime, timedelta
from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from sqlalchemy import Engine, select

from integrations.agencies.client import AgencyClient
from integrations.agencies.errors import AgencyError, Conflict, ServerError, Unprocessable
from integrations.settings import Settings
from integrations.store.audit import verify_audit
from integrations.store.decisions import apply_decisions
from integrations.store.handoffs import create_handoffs
from integrations.store.outbox import (
    OutboxItem,
    SendResult,
    pending_deliveries,
    pending_proposals,
    queue_deliveries,
)
from integrations.store.tables import DELIVERY, HANDOFF
from models.checks import Finding
from models.handoffs import HandoffKind, Office
from models.identity import id_token, make_nik
from models.tables import FacilitatorReport, OfficeDecision
from sandbox.app import create_app
from sandbox.config import DEFAULT_ADMIN_TOKEN, FaultConfig, RegistryDataConfig, SandboxConfig
from sandbox.transport import SyncASGITransport
from tasks import handoffs as tasks
from tasks.handoffs import outbox_batches, post_items, send_batch

T0 = datetime(2026, 3, 2, 2, 0, tzinfo=UTC)
NIK = make_nik("35.78.01", date(1990, 2, 3), "L", 5)
URL = "http://sandbox/kecamatan/v1/handoffs"


def _receipt(body: Mapping[str, Any], n: int) -> dict[str, Any]:
    return {
        "receipt_id": f"RCPT-{n}",
        "handoff_id": body["handoff_id"],
        "office": body["office"],
        "received_at": "2026-03-02T09:00:00+07:00",
    }


class FakeInbox:
    """An inbox that keeps the first receipt per key and can fail chosen keys."""

    def __init__(self, fail: Mapping[str, Exception] | None = None) -> None:
        self.fail = dict(fail or {})
        self.receipts: dict[str, dict[str, Any]] = {}
        self.posts: Counter[str] = Counter()
        self._lock = threading.Lock()

    def post_idempotent(self, collection: str, body: Mapping[str, Any], key: str) -> dict[str, Any]:
        assert collection == "handoffs"
        with self._lock:
            self.posts[key] += 1
            if key in self.fail:
                raise self.fail[key]
            if key not in self.receipts:
                self.receipts[key] = _receipt(body, len(self.receipts) + 1)
            return self.receipts[key]


def _item(key: str, office: str = "kecamatan:35.78.01") -> OutboxItem:
    return OutboxItem(key, {"handoff_id": "a" * 32, "office": office, "kind": "x"})


def test_post_items_turns_every_failure_into_a_result() -> None:
    class Poster:
        def post_idempotent(
            self, collection: str, body: Mapping[str, Any], key: str
        ) -> dict[str, Any]:
            answers: dict[str, Any] = {
                "ok": _receipt(body, 1),
                "conflict": Conflict("kecamatan", "POST", URL, 409),
                "invalid": Unprocessable("kecamatan", "POST", URL, 422),
                "down": ServerError("kecamatan", "POST", URL, 503, attempts=6),
                "bug": RuntimeError(f"boom {NIK}"),
                "other": {**_receipt(body, 2), "office": "kecamatan:35.78.02"},
                "garbage": {"receipt": "?"},
            }
            answer = answers[key]
            if isinstance(answer, Exception):
                raise answer
            return dict(answer)

    keys = ["ok", "conflict", "invalid", "down", "bug", "other", "garbage"]
    items = [_item(k) for k in keys] + [OutboxItem("unbuildable", None, "invalid body: office")]
    results = post_items(Poster(), "handoffs", items, tasks._delivery_receipt, workers=4)
    by_key = {r.key: r for r in results}
    assert [r.key for r in results] == [*keys, "unbuildable"]
    assert by_key["ok"] == SendResult("ok", receipt_id="RCPT-1")
    assert by_key["conflict"].permanent and "409" in by_key["conflict"].error
    assert by_key["invalid"].permanent and "422" in by_key["invalid"].error
    assert not by_key["down"].permanent and "503 after 6 attempts" in by_key["down"].error
    assert not by_key["bug"].permanent and by_key["bug"].error.endswith("RuntimeError")
    assert NIK not in by_key["bug"].error
    assert (
        by_key["other"].receipt_id is None and "another handoff or office" in by_key["other"].error
    )
    assert by_key["garbage"].receipt_id is None and "invalid receipt" in by_key["garbage"].error
    assert by_key["unbuildable"] == SendResult(
        "unbuildable", error="invalid body: office", permanent=True
    )


class FakeBatchInbox(FakeInbox):
    """A FakeInbox that also takes batches: each item as its single POST, or a whole failure."""

    def __init__(
        self,
        fail: Mapping[str, Exception] | None = None,
        fail_batch: Exception | None = None,
    ) -> None:
        super().__init__(fail)
        self.fail_batch = fail_batch
        self.batches: list[list[str]] = []

    def post_batch(
        self, collection: str, items: Sequence[tuple[str, Mapping[str, Any]]]
    ) -> list[dict[str, Any] | AgencyError]:
        assert collection == "handoff-batches"
        self.batches.append([k for k, _ in items])
        if self.fail_batch is not None:
            raise self.fail_batch
        out: list[dict[str, Any] | AgencyError] = []
        for key, body in items:
            try:
                out.append(self.post_idempotent("handoffs", body, key))
            except AgencyError as exc:
                out.append(exc)
        return out


def test_batches_map_each_item_to_the_result_of_its_single_post() -> None:
    inbox = FakeBatchInbox(
        {
            "conflict": Conflict("kecamatan", "POST", URL, 409, reason="batch item"),
            "invalid": Unprocessable("kecamatan", "POST", URL, 422),
            "down": ServerError("kecamatan", "POST", URL, 503),
        }
    )
    keys = ["ok-1", "conflict", "unbuildable", "invalid", "down", "ok-2", "other", "ok-3"]
    items = [
        OutboxItem("unbuildable", None, "invalid body: office")
        if k == "unbuildable"
        else _item(k, "kecamatan:35.78.02" if k == "other" else "kecamatan:35.78.01")
        for k in keys
    ]

    def receipt_of(item: OutboxItem, answer: Mapping[str, Any]) -> str:
        if item.key == "other":
            raise ValueError("the receipt names another handoff or office")
        return tasks._delivery_receipt(item, answer)

    results = tasks.post_batches(
        inbox, "handoff-batches", "handoffs", items, receipt_of, size=3, workers=2
    )
    assert [r.key for r in results] == keys
    by_key = {r.key: r for r in results}
    # Seven buildable items in requests of 3: 3 + 3 + 1, never the unbuildable one.
    assert sorted(len(b) for b in inbox.batches) == [1, 3, 3]
    assert "unbuildable" not in {k for b in inbox.batches for k in b}
    assert [by_key[k].receipt_id is not None for k in ("ok-1", "ok-2", "ok-3")] == [True] * 3
    assert by_key["conflict"].permanent and "409" in by_key["conflict"].error
    assert by_key["invalid"].permanent and "422" in by_key["invalid"].error
    assert not by_key["down"].permanent and "503" in by_key["down"].error
    assert not by_key["other"].permanent and "another handoff" in by_key["other"].error
    assert by_key["unbuildable"] == SendResult(
        "unbuildable", error="invalid body: office", permanent=True
    )


def test_a_batch_request_failing_whole_counts_for_each_item() -> None:
    items = [_item(f"k{n}") for n in range(5)]
    down = FakeBatchInbox(fail_batch=ServerError("kecamatan", "POST", URL, 503, attempts=6))
    results = tasks.post_batches(
        down, "handoff-batches", "handoffs", items, tasks._delivery_receipt, size=2
    )
    assert [r.key for r in results] == [i.key for i in items]
    assert all(not r.permanent and "503 after 6 attempts" in r.error for r in results)
    bug = FakeBatchInbox(fail_batch=RuntimeError(f"boom {NIK}"))
    [result] = tasks.post_batches(
        bug, "handoff-batches", "handoffs", items[:1], tasks._delivery_receipt, size=2
    )
    assert result.error.endswith("RuntimeError") and NIK not in result.error
    # Refused as a whole (422): each item is posted on its own, so only the bad one fails.
    refused = FakeBatchInbox(
        {"k1": Unprocessable("kecamatan", "POST", URL, 422)},
        fail_batch=Unprocessable("kecamatan", "POST", URL, 422),
    )
    results = tasks.post_batches(
        refused, "handoff-batches", "handoffs", items, tasks._delivery_receipt, size=5
    )
    assert [r.permanent for r in results] == [False, True, False, False, False]
    assert [r.receipt_id is not None for r in results] == [True, False, True, True, True]
    assert refused.posts == {f"k{n}": 1 for n in range(5)}
    with pytest.raises(ValueError, match="size"):
        tasks.post_batches(
            refused, "handoff-batches", "handoffs", items, tasks._delivery_receipt, size=0
        )


def test_send_batch_posts_batches_by_the_request_size_and_singly_at_1(store: Engine) -> None:
    keys = _seed(store, 12)
    inbox = FakeBatchInbox()
    counts = send_batch(store, inbox, "deliveries", keys[:7], as_of=T0, request_size=3)
    assert counts == {"sent": 7, "delivered": 7, "failed": 0, "retry": 0}
    assert sorted(len(b) for b in inbox.batches) == [1, 3, 3]
    # Size 1: the old path, one POST per handoff, no batch.
    single = send_batch(store, inbox, "deliveries", keys[7:], as_of=T0, request_size=1)
    assert single == {"sent": 5, "delivered": 5, "failed": 0, "retry": 0}
    assert len(inbox.batches) == 3 and set(inbox.posts.values()) == {1}
    # The store's default (CETTAR_INBOX_BATCH_SIZE, 100): the replayed batch changes nothing.
    assert send_batch(store, inbox, "deliveries", keys, as_of=T0)["sent"] == 0
    assert len(inbox.receipts) == 12


def _findings(n: int) -> list[Finding]:
    kec = Office.parse("kecamatan:35.78.01")
    return [
        Finding(
            HandoffKind.BLT_PKH_OVERLAP,
            id_token(make_nik("35.78.01", date(1980, 1, 1), "L", i + 1), b"k"),
            "2026-Q1",
            (kec,),
            {"programmes": "PKH"},
        )
        for i in range(n)
    ]


def _seed(store: Engine, n: int) -> list[str]:
    with store.begin() as conn:
        create_handoffs(conn, _findings(n), sender="checks", now=T0)
        queue_deliveries(conn, T0)
    return [k for batch in outbox_batches(store, "deliveries", batch_size=7) for k in batch]


def test_batches_cover_every_pending_row_once(store: Engine) -> None:
    keys = _seed(store, 30)
    batches = outbox_batches(store, "deliveries", batch_size=7)
    assert [len(b) for b in batches] == [7, 7, 7, 7, 2]
    assert sorted(keys) == sorted(k for b in batches for k in b) and len(set(keys)) == 30
    assert outbox_batches(store, "proposals") == []
    with pytest.raises(ValueError):
        outbox_batches(store, "deliveries", batch_size=0)


def test_failed_posts_stay_pending_and_never_fail_the_batch(store: Engine) -> None:
    keys = _seed(store, 6)
    down, bad = keys[0], keys[1]
    inbox = FakeInbox(
        {
            down: ServerError("kecamatan", "POST", URL, 503, attempts=6),
            bad: Unprocessable("kecamatan", "POST", URL, 422),
        }
    )
    counts = send_batch(store, inbox, "deliveries", keys, as_of=T0)
    assert counts == {"sent": 4, "delivered": 4, "failed": 1, "retry": 1}
    with store.connect() as conn:
        status = dict(conn.execute(select(DELIVERY.c.key, DELIVERY.c.status)).all())
        assert pending_deliveries(conn) == [down]
    assert status[bad] == "failed" and status[down] == "pending"
    # The outage ends: the next run delivers the rest; nothing is posted twice.
    del inbox.fail[down]
    again = send_batch(store, inbox, "deliveries", pending_deliveries_of(store), as_of=T0)
    assert again == {"sent": 1, "delivered": 1, "failed": 0, "retry": 0}
    assert inbox.posts[down] == 2 and all(inbox.posts[k] == 1 for k in keys if k not in (down,))
    with store.connect() as conn:
        states = Counter(conn.execute(select(HANDOFF.c.state)).scalars())
        assert verify_audit(conn).ok
    assert states == {"delivered": 5, "open": 1}


def pending_deliveries_of(store: Engine) -> list[str]:
    with store.connect() as conn:
        return pending_deliveries(conn)


def test_a_crash_between_post_and_record_is_repaired_by_the_next_run(
    store: Engine, monkeypatch: pytest.MonkeyPatch
) -> None:
    keys = _seed(store, 5)
    inbox = FakeInbox()
    real = tasks.outbox.record_deliveries

    def crash(*_args: Any, **_kwargs: Any) -> dict[str, int]:
        raise RuntimeError("killed after the POSTs")

    monkeypatch.setattr(tasks.outbox, "record_deliveries", crash)
    with pytest.raises(RuntimeError, match="killed"):
        send_batch(store, inbox, "deliveries", keys, as_of=T0)
    monkeypatch.setattr(tasks.outbox, "record_deliveries", real)
    # Nothing was recorded: every row is still pending and is posted again.
    assert sorted(pending_deliveries_of(store)) == sorted(keys)
    counts = send_batch(store, inbox, "deliveries", pending_deliveries_of(store), as_of=T0)
    assert counts["sent"] == 5 and counts["delivered"] == 5
    # Each key reached the inbox twice and got one receipt: the office sees it once.
    assert set(inbox.posts.values()) == {2} and len(inbox.receipts) == 5
    with store.connect() as conn:
        receipts = dict(conn.execute(select(DELIVERY.c.key, DELIVERY.c.receipt_id)).all())
    assert receipts == {k: inbox.receipts[k]["receipt_id"] for k in keys}


# --- against the sandbox inbox, in process ---------------------------------------------------

FAULTS = FaultConfig(
    error_rate=0.10, rate_limit_rate=0.05, drop_rate=0.05, retry_after_s=0.0, seed=11
)
FAST = Settings(http_backoff_base_s=0.001, http_backoff_max_s=0.01, http_max_attempts=6)


@pytest.fixture
def inbox_app() -> Iterator[tuple[FastAPI, httpx.Client]]:
    """A small sandbox whose office inbox fails 10% 5xx, 5% 429 and 5% dropped connections."""
    app = create_app(
        SandboxConfig(
            registry=RegistryDataConfig(households=50), agency_faults={"kecamatan": FAULTS}
        )
    )
    with httpx.Client(
        transport=SyncASGITransport(app),
        base_url="http://sandbox",
        headers={"Authorization": f"Bearer {DEFAULT_ADMIN_TOKEN}"},
    ) as admin:
        yield app, admin


def _client(app: FastAPI) -> AgencyClient:
    return AgencyClient(
        "kecamatan",
        "http://sandbox/kecamatan",
        "sandbox-kecamatan-token",
        settings=FAST,
        transport=SyncASGITransport(app),
    )


def _receiving(n: int) -> list[Finding]:
    """n findings for a kecamatan and a desa each: 2n deliveries."""
    kec, desa = Office.parse("kecamatan:35.78.01"), Office.parse("desa:35.78.01.1001")
    return [
        Finding(HandoffKind.BLT_PKH_OVERLAP, f"{i:04d}" + "b" * 28, "2026-Q1", (kec, desa), {})
        for i in range(n)
    ]


def _drain(
    store: Engine, client: AgencyClient, runs: int = 5, request_size: int | None = None
) -> Counter[str]:
    """Run the outbox until nothing is pending (as the daily dispatch would, run after run)."""
    total: Counter[str] = Counter()
    for _ in range(runs):
        batches = outbox_batches(store, "deliveries", batch_size=50)
        if not batches:
            break
        for keys in batches:
            total.update(
                send_batch(
                    store,
                    client,
                    "deliveries",
                    keys,
                    as_of=T0,
                    workers=4,
                    request_size=request_size,
                )
            )
    return total


@pytest.mark.parametrize(
    ("request_size", "route"),
    [(1, "POST /kecamatan/v1/handoffs"), (2, "POST /kecamatan/v1/handoff-batches")],
)
def test_every_handoff_reaches_the_inbox_exactly_once_under_faults(
    store: Engine, inbox_app: tuple[FastAPI, httpx.Client], request_size: int, route: str
) -> None:
    app, admin = inbox_app
    with store.begin() as conn:
        create_handoffs(conn, _receiving(60), sender="checks", now=T0)
        assert queue_deliveries(conn, T0) == 120
    with _client(app) as client:
        totals = _drain(store, client, request_size=request_size)
    stats = admin.get("/_admin/inbox").json()
    assert totals["sent"] == 120 and totals["delivered"] == 120 and totals["failed"] == 0
    assert stats["receipts"] == 120 and stats["pairs"] == 120
    assert stats["pairs_seen_more_than_once"] == 0 and stats["conflicts"] == 0
    # The faults really hit the writes, some after the inbox had stored the delivery: those
    # keys were sent again and answered with the first receipt.
    requests = admin.get("/_admin/stats").json()["requests"]
    # Every delivery went the one way: one POST each, or batches of `request_size`.
    assert [r for r in requests if "handoff" in r] == [route]
    posts = requests[route]
    assert stats["faulted_after_commit"] > 0 and stats["replays"] > 0 and posts["200"] > 0
    if request_size == 1:
        assert posts["201"] + stats["faulted_after_commit"] >= 120
    else:
        # Each answered batch (200) carried its items' receipts: at least the 60 batches.
        assert posts["200"] * request_size + stats["faulted_after_commit"] >= 120
    assert (
        posts["429"] > 0 and posts["dropped"] > 0 and posts.get("500", 0) + posts.get("503", 0) > 0
    )
    with store.connect() as conn:
        receipts = dict(conn.execute(select(DELIVERY.c.key, DELIVERY.c.receipt_id)).all())
        states = Counter(conn.execute(select(HANDOFF.c.state)).scalars())
        assert pending_deliveries(conn) == [] and verify_audit(conn).ok
    assert set(receipts) == set(stats["per_key"]) and None not in receipts.values()
    assert len(set(receipts.values())) == 120
    assert states == {"delivered": 120}


def test_a_crash_after_the_posts_does_not_make_an_office_see_a_handoff_twice(
    store: Engine, inbox_app: tuple[FastAPI, httpx.Client], monkeypatch: pytest.MonkeyPatch
) -> None:
    app, admin = inbox_app
    with store.begin() as conn:
        create_handoffs(conn, _receiving(20), sender="checks", now=T0)
        queue_deliveries(conn, T0)
    real = tasks.outbox.record_deliveries
    calls = Counter[str]()

    def crash_once(*args: Any, **kwargs: Any) -> dict[str, int]:
        calls["record"] += 1
        if calls["record"] == 1:
            raise RuntimeError("process killed between the POSTs and their record")
        return real(*args, **kwargs)

    monkeypatch.setattr(tasks.outbox, "record_deliveries", crash_once)
    with _client(app) as client:
        keys = pending_deliveries_of(store)
        with pytest.raises(RuntimeError, match="killed"):
            # In batch requests of 8 (the default size holds all 40 in one).
            send_batch(store, client, "deliveries", keys, as_of=T0, request_size=8)
        before = admin.get("/_admin/inbox").json()
        assert before["receipts"] >= 35  # nearly all got through before the crash
        assert sorted(pending_deliveries_of(store)) == sorted(keys)
        totals = _drain(store, client)
    stats = admin.get("/_admin/inbox").json()
    assert totals["sent"] == 40 and totals["delivered"] == 40
    assert stats["receipts"] == 40 and stats["pairs_seen_more_than_once"] == 0
    # Every key that got through before the crash was posted again and answered by replay.
    assert all(stats["per_key"][k] >= 2 for k, n in before["per_key"].items() if n >= 1)
    with store.connect() as conn:
        assert Counter(conn.execute(select(HANDOFF.c.state)).scalars()) == {"delivered": 40}
        assert verify_audit(conn).ok


def test_approved_household_updates_reach_the_registry_once(
    store: Engine, inbox_app: tuple[FastAPI, httpx.Client]
) -> None:
    app, admin = inbox_app
    kec = Office.parse("kecamatan:35.78.01")
    changes = {"address": "Jl. Kenanga 3", "desil": None, "members_left": []}
    reports = [
        {
            "id": f"R-{i}",
            "kind": "household_update",
            "facilitator_id": "PKH-F-1",
            "kecamatan_code": "35.78.01",
            "household_id": f"HH-{i}",
            "nik_token": "d" * 32,
            "reported_on": date(2026, 3, 2),
            "changes": json.dumps(changes),
            "note": "",
            "updated_at": T0,
            "synced_at": T0,
        }
        for i in range(3)
    ]
    findings = [
        Finding(
            HandoffKind.HOUSEHOLD_UPDATE_VERIFICATION,
            f"HH-{i}",
            "2026-03-02",
            (kec,),
            {"report_count": 1, "report_ids": f"R-{i}", "facilitator_ids": "PKH-F-1"},
        )
        for i in range(3)
    ]
    with store.begin() as conn:
        conn.execute(FacilitatorReport.__table__.insert(), reports)  # type: ignore[attr-defined]
        create_handoffs(conn, findings, sender="checks", now=T0)
        queue_deliveries(conn, T0)
    with _client(app) as client:
        _drain(store, client)
    decided = T0 + timedelta(days=1)
    decisions = [
        {
            "id": f"D-{i}",
            "handoff_id": f.keys[0],
            "office": kec.key,
            "decision": decision,
            "reason": "alamat tidak ditemukan" if decision == "rejected" else "",
            "officer": "sekcam",
            "decided_at": decided,
            "updated_at": decided,
            "applied_at": None,
            "outcome": "",
        }
        for i, (f, decision) in enumerate(
            zip(findings, ["resolved", "resolved", "rejected"], strict=True)
        )
    ]
    with store.begin() as conn:
        conn.execute(OfficeDecision.__table__.insert(), decisions)  # type: ignore[attr-defined]
        counts = apply_decisions(conn, decided)
        assert queue_deliveries(conn, decided) == 1  # the rejection, back to the PKH desk
    assert (counts.applied, counts.proposals, counts.returned) == (3, 2, 1)
    registry = AgencyClient(
        "registry",
        "http://sandbox/registry",
        "sandbox-registry-token",
        settings=FAST,
        transport=SyncASGITransport(app),
    )
    with registry, _client(app) as inbox_client:
        [keys] = outbox_batches(store, "proposals")
        sent = send_batch(store, registry, "proposals", keys, as_of=decided)
        assert sent == {"sent": 2, "failed": 0, "retry": 0}
        assert _drain(store, inbox_client)["delivered"] == 1
    proposals = admin.get("/_admin/proposals").json()
    assert proposals["received"] == 2 and proposals["conflicts"] == 0
    assert {p["proposal"]["household_id"] for p in proposals["proposals"]} == {"HH-0", "HH-1"}
    assert all(
        p["proposal"]["changes"]["address"] == "Jl. Kenanga 3" for p in proposals["proposals"]
    )
    with store.connect() as conn:
        assert pending_proposals(conn) == []
        offices = {
            r.office: r.state for r in conn.execute(select(HANDOFF.c.office, HANDOFF.c.state))
        }
    assert offices["agency:pkh"] == "delivered"
    stats = admin.get("/_admin/inbox").json()
    assert stats["receipts"] == 4 and stats["pairs_seen_more_than_once"] == 0
