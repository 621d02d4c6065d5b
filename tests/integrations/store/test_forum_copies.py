"""An overdue red-zone handoff escalated from a kecamatan is copied to its Forkopimcam, once."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import Engine, select

from integrations.store.audit import verify_audit
from integrations.store.decisions import apply_decisions
from integrations.store.handoffs import create_handoffs, escalate_overdue
from integrations.store.outbox import (
    SendResult,
    pending_deliveries,
    queue_deliveries,
    record_deliveries,
)
from integrations.store.tables import HANDOFF
from models.checks import Finding
from models.handoffs import HandoffKind, Office, handoff_key
from models.tables import OfficeDecision
from models.workdays import JAKARTA, WorkCalendar

WIB = ZoneInfo(JAKARTA)
T0 = datetime(2026, 3, 2, 9, 0, tzinfo=WIB)  # a Monday; the red zone's handoffs are due Tuesday
LATE = T0 + timedelta(days=3)  # Thursday: overdue
CAL = WorkCalendar()
KEC = Office.parse("kecamatan:35.78.01")
FORUM = Office.parse("forkopimcam:35.78.01")
DECISIONS = OfficeDecision.__table__  # type: ignore[attr-defined]
EVIDENCE = {"kecamatan_code": "35.78.01", "condition": "dbd", "week": "2026-W09", "new_cases": 52}


def _red(area: str, receiver: Office, kind: HandoffKind = HandoffKind.HEALTH_RED_ZONE) -> Finding:
    return Finding(kind, area, "dbd:2026-W09", (receiver,), {**EVIDENCE, "area_code": area})


def _deliver(store: Engine, at: datetime) -> None:
    with store.begin() as conn:
        queue_deliveries(conn, at)
        keys = pending_deliveries(conn)
        record_deliveries(conn, [SendResult(k, receipt_id=f"desk:{k}") for k in keys], at)


def _rows(store: Engine) -> dict[str, Any]:
    with store.connect() as conn:
        return {r.id: r for r in conn.execute(select(HANDOFF))}


def test_an_escalated_red_zone_handoff_is_copied_to_the_forum_once(store: Engine) -> None:
    desa = Office.parse("desa:35.78.01.1001")
    other = Office.parse("kecamatan:35.78.02")
    findings = [
        _red("35.78.01", KEC),
        _red("35.78.01", FORUM, HandoffKind.HEALTH_RED_ZONE_NOTICE),
        _red("35.78.01.1001", desa),  # a desa has no forum: escalated, not copied
        Finding(HandoffKind.BLT_PKH_OVERLAP, "a" * 64, "2026-Q1", (other,), {}),  # not urgent
    ]
    with store.begin() as conn:
        create_handoffs(conn, findings, sender="puskesmas", now=T0, calendar=CAL)
    _deliver(store, T0)
    red = handoff_key(HandoffKind.HEALTH_RED_ZONE, "35.78.01", "dbd:2026-W09", KEC)
    notice = handoff_key(HandoffKind.HEALTH_RED_ZONE_NOTICE, "35.78.01", "dbd:2026-W09", FORUM)
    copy = handoff_key(HandoffKind.HEALTH_RED_ZONE_NOTICE, "35.78.01", "dbd:2026-W09/esk", FORUM)
    before = set(_rows(store))

    with store.begin() as conn:
        assert escalate_overdue(conn, LATE, CAL) == 2  # the overlap is not due yet
    rows = _rows(store)
    assert set(rows) - before == {copy}
    made = rows[copy]
    assert (made.kind, made.office, made.origin_office, made.state) == (
        "health_red_zone_notice",
        "forkopimcam:35.78.01",
        "forkopimcam:35.78.01",
        "open",
    )
    assert (made.kecamatan_code, made.kabupaten_code, made.source_ref) == ("35.78.01", "35.78", red)
    assert made.sender == "hub" and made.due_date > LATE.date()
    evidence = json.loads(made.evidence)
    assert evidence["copy_of"] == red and evidence["escalated_to"] == "kabupaten:35.78"
    assert evidence["new_cases"] == 52 and evidence["overdue_since"] == "2026-03-03"
    # The entry notice is left as it was: the copy is a new notice, not a second delivery.
    assert rows[notice].state == "delivered" and rows[red].state == "escalated"

    # Reruns and later escalation passes add nothing.
    with store.begin() as conn:
        assert escalate_overdue(conn, LATE + timedelta(hours=2), CAL) == 0
        assert escalate_overdue(conn, LATE + timedelta(days=7), CAL) == 1  # the overlap now
    assert set(_rows(store)) - before == {copy}

    # The copy is delivered like any handoff and the forum acknowledges it like any office.
    _deliver(store, LATE)
    with store.begin() as conn:
        conn.execute(
            DECISIONS.insert(),
            [
                {
                    "id": "D-forum",
                    "handoff_id": copy,
                    "office": FORUM.key,
                    "decision": "acknowledged",
                    "reason": "",
                    "officer": "sekretariat",
                    "decided_at": (LATE + timedelta(hours=1)).astimezone(UTC),
                    "updated_at": (LATE + timedelta(hours=1)).astimezone(UTC),
                    "applied_at": None,
                    "outcome": "",
                }
            ],
        )
        assert apply_decisions(conn, LATE + timedelta(hours=2), CAL).applied == 1
    assert _rows(store)[copy].state == "acknowledged"
    with store.connect() as conn:
        assert verify_audit(conn).ok
