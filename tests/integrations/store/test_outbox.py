"""The outboxes in the store: queueing, bodies, receipts and failures of deliveries."""

from __future__ import annotations

from datetime import date, datetime, timedelta

from sqlalchemy import Engine, select

from integrations.store.handoff_queries import handoff_audit
from integrations.store.handoffs import escalate_overdue
from integrations.store.outbox import (
    SendResult,
    delivery_key,
    load_deliveries,
    pending_deliveries,
    queue_deliveries,
    record_deliveries,
)
from integrations.store.tables import DELIVERY
from models.contracts.kecamatan import HandoffDelivery as DeliveryBody
from tests.integrations.store.test_handoffs import (
    CAL,
    DESA,
    KEC,
    NIK,
    T0,
    TOKEN,
    WIB,
    deliver_all,
    one,
    overlap,
    row,
)


def test_delivery_outbox_round_trip(store: Engine) -> None:
    kec_id, desa_id = one(store, overlap())
    with store.begin() as conn:
        assert queue_deliveries(conn, T0) == 2
        assert queue_deliveries(conn, T0) == 0  # queued once per (handoff, office)
        keys = pending_deliveries(conn)
        items = load_deliveries(conn, keys)
    assert sorted(keys) == sorted([delivery_key(kec_id, KEC.key), delivery_key(desa_id, DESA.key)])
    bodies = {i.key: DeliveryBody.model_validate(i.body) for i in items}
    body = bodies[delivery_key(kec_id, KEC.key)]
    assert (body.handoff_id, body.office, body.kind) == (kec_id, KEC.key, "blt_pkh_overlap")
    assert body.escalated_from is None and body.due_date == date(2026, 3, 9)
    kec_key, desa_key = delivery_key(kec_id, KEC.key), delivery_key(desa_id, DESA.key)
    at = T0 + timedelta(minutes=5)
    with store.begin() as conn:
        counts = record_deliveries(
            conn,
            [
                SendResult(kec_key, receipt_id="RCPT-1"),
                SendResult(desa_key, error=f"kecamatan POST -> 503 about {NIK}"),
            ],
            at,
        )
    assert counts == {"sent": 1, "delivered": 1, "failed": 0, "retry": 1}
    assert row(store, kec_id).state == "delivered" and row(store, desa_id).state == "open"
    with store.connect() as conn:
        error = conn.execute(
            select(DELIVERY.c.last_error).where(DELIVERY.c.key == desa_key)
        ).scalar_one()
    assert NIK not in error and error.startswith("kecamatan POST -> 503 about 3578")
    with store.begin() as conn:
        # A replayed record of the same receipt changes nothing.
        again = record_deliveries(conn, [SendResult(kec_key, receipt_id="RCPT-1")], at)
        permanent = record_deliveries(conn, [SendResult(desa_key, error="422", permanent=True)], at)
    assert again["sent"] == 0 and permanent["failed"] == 1
    with store.connect() as conn:
        rows = {r.key: r for r in conn.execute(select(DELIVERY))}
        assert pending_deliveries(conn) == []
    assert (rows[kec_key].status, rows[kec_key].receipt_id, rows[kec_key].attempts) == (
        "sent",
        "RCPT-1",
        1,
    )
    assert (rows[desa_key].status, rows[desa_key].attempts) == ("failed", 2)


def test_escalated_handoffs_get_a_new_delivery_to_the_kabupaten(store: Engine) -> None:
    [hid] = one(store, overlap(TOKEN, KEC))
    deliver_all(store)
    with store.begin() as conn:
        assert escalate_overdue(conn, datetime(2026, 3, 10, 8, 0, tzinfo=WIB), CAL) == 1
        assert queue_deliveries(conn, T0) == 1
        [key] = pending_deliveries(conn)
        [item] = load_deliveries(conn, [key])
    assert key == delivery_key(hid, "kabupaten:35.78") != delivery_key(hid, KEC.key)
    assert item.body is not None
    assert (item.body["office"], item.body["escalated_from"]) == ("kabupaten:35.78", KEC.key)
    deliver_all(store)
    r = row(store, hid)
    assert (r.state, r.office) == ("delivered", "kabupaten:35.78")
    with store.connect() as conn:
        assert [(t["from_state"], t["to_state"]) for t in handoff_audit(conn, hid)][-2:] == [
            ("delivered", "escalated"),
            ("escalated", "delivered"),
        ]


def test_a_late_receipt_for_an_office_the_handoff_left_does_not_deliver_it(store: Engine) -> None:
    [hid] = one(store, overlap(TOKEN, KEC))
    with store.begin() as conn:
        queue_deliveries(conn, T0)
        [old] = pending_deliveries(conn)
        escalate_overdue(conn, datetime(2026, 3, 10, 8, 0, tzinfo=WIB), CAL)
        counts = record_deliveries(conn, [SendResult(old, receipt_id="R-OLD")], T0)
    assert counts["sent"] == 1 and counts["delivered"] == 0
    assert row(store, hid).state == "escalated"
