"""One state machine, two channels: desk-only, inbox-only and both, delivered exactly once."""

from __future__ import annotations

import threading
from collections import Counter
from collections.abc import Mapping
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import Engine, select

from desk.app import create_app
from desk.config import DeskConfig
from integrations.store.audit import AUDIT, verify_audit
from integrations.store.decisions import apply_decisions
from integrations.store.desk_accounts import add_account
from integrations.store.engine import make_engine, upgrade
from integrations.store.handoffs import create_handoffs
from integrations.store.outbox import queue_deliveries
from integrations.store.tables import DECISION, DELIVERY, HANDOFF
from models.checks import Finding
from models.desk import Channel, OfficeChannels
from models.handoffs import HandoffKind, Office
from models.identity import id_token, make_nik
from models.workdays import WorkCalendar
from tasks.handoffs import outbox_batches, send_batch
from tests.desk.conftest import PASSWORD, csrf_of, sign_in

CAL = WorkCalendar()
T0 = datetime(2026, 11, 3, 1, 0, tzinfo=UTC)
DESK_ONLY = "kecamatan:35.78.01"
BOTH = "kecamatan:35.78.02"
INBOX_ONLY = "kecamatan:35.78.03"
CHANNELS = OfficeChannels.parse({"35.78.01": "desk", BOTH: "both", "35.07": "desk"})


class FakeInbox:
    """An inbox keeping the first receipt per idempotency key."""

    def __init__(self) -> None:
        self.posts: Counter[str] = Counter()
        self.offices: Counter[str] = Counter()
        self.receipts: dict[str, dict[str, Any]] = {}
        self._lock = threading.Lock()

    def post_idempotent(self, collection: str, body: Mapping[str, Any], key: str) -> dict[str, Any]:
        with self._lock:
            self.posts[key] += 1
            if key not in self.receipts:
                self.offices[str(body["office"])] += 1
                self.receipts[key] = {
                    "receipt_id": f"RCPT-{len(self.receipts) + 1}",
                    "handoff_id": body["handoff_id"],
                    "office": body["office"],
                    "received_at": "2026-11-03T09:00:00+07:00",
                }
            return self.receipts[key]


def test_the_channel_rule_takes_the_most_specific_key() -> None:
    assert CHANNELS.of(DESK_ONLY) is Channel.DESK
    assert CHANNELS.of("desa:35.78.01.1001") is Channel.DESK
    assert CHANNELS.of(BOTH) is Channel.BOTH
    assert CHANNELS.of("desa:35.78.02.1001") is Channel.INBOX
    assert CHANNELS.of(INBOX_ONLY) is Channel.INBOX
    assert CHANNELS.of("kabupaten:35.07") is Channel.DESK
    assert CHANNELS.of("kabupaten:35.78") is Channel.INBOX
    assert CHANNELS.of("agency:pkh") is Channel.INBOX
    narrower = OfficeChannels.parse({"35": "desk", "35.78": "inbox", "kecamatan:35.78.05": "both"})
    assert narrower.of("kecamatan:35.01.01") is Channel.DESK
    assert narrower.of("kecamatan:35.78.04") is Channel.INBOX
    assert narrower.of("kecamatan:35.78.05") is Channel.BOTH
    assert OfficeChannels.parse({"programme:pkh": "both"}).of("agency:pkh") is Channel.BOTH
    assert not OfficeChannels.parse({}).configured and CHANNELS.configured
    for bad in ({"35.78": "fax"}, {"99.99": "desk"}, {"kecamatan:35.7": "desk"}, {"x": "desk"}):
        with pytest.raises(ValueError, match="CETTAR_DESK_OFFICES"):
            OfficeChannels.parse(bad)


def _findings() -> list[Finding]:
    out = []
    for i, office in enumerate((DESK_ONLY, BOTH, INBOX_ONLY, "desa:35.78.01.1001")):
        nik = make_nik(office.split(":")[1][:8], date(1980, 1, 1 + i), "L", i + 1)
        out.append(
            Finding(
                HandoffKind.BLT_PKH_OVERLAP,
                id_token(nik, b"k"),
                "2026-Q4",
                (Office.parse(office),),
                {"programmes": "PKH"},
            )
        )
    return out


@pytest.fixture
def store(tmp_path: Path) -> Engine:
    engine = make_engine(f"sqlite:///{tmp_path / 'store.db'}")
    upgrade(engine)
    with engine.begin() as conn:
        create_handoffs(conn, _findings(), sender="checks", now=T0, calendar=CAL)
    return engine


def _dispatch(store: Engine, inbox: FakeInbox, at: datetime) -> dict[str, int]:
    """Queue and send every pending delivery as a dispatch run does."""
    with store.begin() as conn:
        queue_deliveries(conn, at)
    total: Counter[str] = Counter()
    for keys in outbox_batches(store, "deliveries"):
        total.update(send_batch(store, inbox, "deliveries", keys, as_of=at, channels=CHANNELS))
    return dict(total)


def _states(store: Engine) -> dict[str, str]:
    with store.connect() as conn:
        return dict(conn.execute(select(HANDOFF.c.office, HANDOFF.c.state)).tuples().all())


def test_desk_offices_are_delivered_once_without_an_inbox_post(store: Engine) -> None:
    inbox = FakeInbox()
    counts = _dispatch(store, inbox, T0 + timedelta(hours=1))
    assert counts == {"sent": 4, "delivered": 4, "desk": 2, "failed": 0, "retry": 0}
    # Only the inbox and both offices were posted to, each once.
    assert inbox.offices == {BOTH: 1, INBOX_ONLY: 1}
    assert set(_states(store).values()) == {"delivered"}
    with store.connect() as conn:
        receipts = dict(conn.execute(select(DELIVERY.c.office, DELIVERY.c.receipt_id)).all())
        reasons = conn.execute(select(AUDIT.c.reason).where(AUDIT.c.to_state == "delivered")).all()
        assert verify_audit(conn).ok
    assert str(receipts[DESK_ONLY]).startswith("desk:")
    assert str(receipts["desa:35.78.01.1001"]).startswith("desk:")
    assert str(receipts[BOTH]).startswith("RCPT-")
    assert len(reasons) == 4
    # Reruns change nothing: no new delivery, post or audit row.
    for _ in range(2):
        again = _dispatch(store, inbox, T0 + timedelta(hours=2))
        assert again == {}
    assert sum(inbox.posts.values()) == 2
    with store.connect() as conn:
        assert len(conn.execute(select(DELIVERY.c.key)).all()) == 4
        assert verify_audit(conn).ok


def _inbox_decision(conn: Any, did: str, hid: str, decision: str, at: datetime) -> None:
    """An answer from the office's own system, as the decisions sync stores it."""
    conn.execute(
        DECISION.insert().values(
            id=did,
            handoff_id=hid,
            office=BOTH,
            decision=decision,
            reason="dari sistem kantor",
            officer="operator",
            decided_at=at,
            updated_at=at,
            applied_at=None,
            outcome="",
        )
    )


def test_an_office_on_both_channels_the_first_decision_applies(store: Engine) -> None:
    _dispatch(store, FakeInbox(), T0 + timedelta(hours=1))
    with store.connect() as conn:
        ids = dict(conn.execute(select(HANDOFF.c.office, HANDOFF.c.id)).tuples().all())
    hid = ids[BOTH]
    officer = "kec.wonokromo@surabaya.go.id"
    with store.begin() as conn:
        add_account(conn, officer, BOTH, "officer", T0, password=PASSWORD)
    now = [T0 + timedelta(hours=3)]
    app = create_app(store, DeskConfig(secret_key="s"), calendar=CAL, clock=lambda: now[0])
    with TestClient(app, base_url="http://desk.test", follow_redirects=False) as client:
        assert sign_in(client, officer).status_code == 303
        page = client.get(f"/handoffs/{hid}")
        assert 'value="resolve"' in page.text
        # Meanwhile the office's system resolved it too; the sync stored that answer, not yet
        # applied. The desk's answer applies both in the order they were made.
        with store.begin() as conn:
            _inbox_decision(conn, "inbox-1", hid, "resolved", T0 + timedelta(hours=2))
        done = client.post(
            f"/handoffs/{hid}/decision",
            data={"action": "resolve", "reason": "", "csrf_token": csrf_of(page.text)},
        )
        assert done.headers["location"].endswith("done=repeat")
        # Settled: the desk offers nothing more.
        assert "/decision" not in client.get(f"/handoffs/{hid}").text
    with store.begin() as conn:
        # A later inbox answer that differs changes nothing either.
        _inbox_decision(conn, "inbox-2", hid, "rejected", T0 + timedelta(hours=4))
        counts = apply_decisions(conn, T0 + timedelta(hours=5))
        outcomes = Counter(
            (str(r.officer).split(":")[0], r.outcome)
            for r in conn.execute(
                select(DECISION.c.officer, DECISION.c.outcome).where(DECISION.c.handoff_id == hid)
            )
        )
        trail = conn.execute(
            select(AUDIT.c.to_state, AUDIT.c.actor).where(
                AUDIT.c.reason.startswith(f"handoff {hid}")
            )
        ).all()
        assert verify_audit(conn).ok
    assert counts.superseded == 1
    assert outcomes == {
        ("operator", "applied"): 1,
        ("desk", "repeat"): 1,
        ("operator", "superseded"): 1,
    }
    assert _states(store)[BOTH] == "resolved"
    # The desk's unapplied answer is on the chain with its user.
    assert [(s, a) for s, a in trail] == [("repeat", f"desk:{officer}")]
