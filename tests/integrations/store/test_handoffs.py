"""Handoffs in the store: creation, state machine, audit chain, escalation, outboxes, decisions."""

from __future__ import annotations

import json
import threading
from datetime import UTC, date, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import Engine, delete, func, select, update

from integrations.store.audit import verify_audit
from integrations.store.common import stored_utc
from integrations.store.decisions import apply_decisions, proposal_id
from integrations.store.handoff_queries import (
    get_handoff,
    handoff_audit,
    list_handoffs,
    reconciliation,
)
from integrations.store.handoffs import (
    HandoffNotFound,
    apply_submissions,
    create_handoffs,
    escalate_overdue,
    fan_out_data_requests,
    transition,
)
from integrations.store.outbox import (
    SendResult,
    delivery_key,
    load_proposals,
    pending_deliveries,
    pending_proposals,
    queue_deliveries,
    record_deliveries,
    record_proposals,
)
from integrations.store.tables import AUDIT, HANDOFF, HEAD, PROPOSAL
from models.checks import Finding
from models.contracts.registry import UpdateProposal as ProposalBody
from models.handoffs import HandoffKind, IllegalTransition, Office, handoff_key
from models.identity import id_token, make_nik
from models.tables import DataRequest, DataSubmission, FacilitatorReport, OfficeDecision
from models.workdays import JAKARTA, WorkCalendar

WIB = ZoneInfo(JAKARTA)
T0 = datetime(2026, 3, 2, 9, 0, tzinfo=WIB)  # a Monday
T0_UTC = T0.astimezone(UTC)
CAL = WorkCalendar()
KEY = b"test-key"
NIK = make_nik("35.78.01", date(1980, 5, 17), "P", 1)
TOKEN = id_token(NIK, KEY)
KEC = Office.parse("kecamatan:35.78.01")
DESA = Office.parse("desa:35.78.01.1001")
PKH = Office.parse("agency:pkh")
DECISIONS = OfficeDecision.__table__  # type: ignore[attr-defined]
REPORTS = FacilitatorReport.__table__  # type: ignore[attr-defined]
REQUESTS = DataRequest.__table__  # type: ignore[attr-defined]
SUBMISSIONS = DataSubmission.__table__  # type: ignore[attr-defined]


def overlap(subject: str = TOKEN, *receivers: Office, period: str = "2026-Q1") -> Finding:
    return Finding(
        kind=HandoffKind.BLT_PKH_OVERLAP,
        subject_token=subject,
        period=period,
        receivers=receivers or (KEC, DESA),
        evidence={"programmes": "PKH", "desa_codes": DESA.code, "blt_record_ids": "BLT-1"},
    )


def one(store: Engine, *findings: Finding, now: datetime = T0) -> list[str]:
    with store.begin() as conn:
        create_handoffs(conn, findings, sender="checks", now=now, calendar=CAL)
    return [k for f in findings for k in f.keys]


def row(store: Engine, handoff_id: str) -> Any:
    with store.connect() as conn:
        return conn.execute(select(HANDOFF).where(HANDOFF.c.id == handoff_id)).one()


def step(store: Engine, hid: str, target: str, at: datetime = T0, actor: str = "op") -> bool:
    with store.begin() as conn:
        return transition(conn, hid, target, actor=actor, reason=f"to {target}", at=at)


def chain_rows(store: Engine) -> int:
    with store.connect() as conn:
        return int(conn.execute(select(func.count()).select_from(AUDIT)).scalar_one())


def deliver_all(store: Engine, at: datetime = T0) -> list[str]:
    """Queue and record a receipt for every pending delivery."""
    with store.begin() as conn:
        queue_deliveries(conn, at)
        keys = pending_deliveries(conn)
        record_deliveries(conn, [SendResult(k, receipt_id=f"R-{k[:8]}") for k in keys], at)
    return keys


# --- creation --------------------------------------------------------------------------------


def test_create_is_idempotent_and_fills_every_column(store: Engine) -> None:
    f = overlap()
    with store.begin() as conn:
        first = create_handoffs(conn, [f, f], sender="checks", now=T0, calendar=CAL)
    with store.begin() as conn:
        again = create_handoffs(conn, [f], sender="checks", now=T0 + timedelta(days=3))
    assert (first.created, first.existing, dict(first.by_kind)) == (2, 0, {"blt_pkh_overlap": 2})
    assert (again.created, again.existing) == (0, 2)
    kec_id, desa_id = f.keys
    assert kec_id == handoff_key(HandoffKind.BLT_PKH_OVERLAP, TOKEN, "2026-Q1", KEC)
    k, d = row(store, kec_id), row(store, desa_id)
    assert (k.office, k.origin_office, k.kecamatan_code, k.kabupaten_code) == (
        "kecamatan:35.78.01",
        "kecamatan:35.78.01",
        "35.78.01",
        "35.78",
    )
    assert (d.office, d.kecamatan_code, d.kabupaten_code) == (
        "desa:35.78.01.1001",
        "35.78.01",
        "35.78",
    )
    # Five working days after Monday 2 March 2026 (no holiday that week).
    assert k.state == "open" and k.due_date == date(2026, 3, 9)
    assert k.sender == "checks" and k.subject_token == TOKEN and k.period == "2026-Q1"
    assert json.loads(k.evidence) == f.evidence
    # The replay three days later left the stored row alone.
    assert stored_utc(k.created_at) == T0.astimezone(UTC)
    assert chain_rows(store) == 2
    with store.connect() as conn:
        assert verify_audit(conn).ok


def test_agency_receivers_take_their_region_from_the_evidence(store: Engine) -> None:
    with_desa = overlap(TOKEN, PKH)
    bare = Finding(HandoffKind.BLT_PKH_OVERLAP, TOKEN, "2026-Q2", (PKH,), {"programmes": "PKH"})
    kab = Finding(
        HandoffKind.BLT_PKH_OVERLAP, TOKEN, "2026-Q3", (Office.parse("kabupaten:35.78"),), {}
    )
    ids = one(store, with_desa, bare, kab)
    regions = [(row(store, i).kecamatan_code, row(store, i).kabupaten_code) for i in ids]
    assert regions == [("35.78.01", "35.78"), ("", ""), ("", "35.78")]


def test_create_refuses_evidence_with_a_clear_nik(store: Engine) -> None:
    f = overlap()
    # Findings check their evidence when built; a later edit must still be caught.
    f.evidence["note"] = f"seen with {NIK}"
    with pytest.raises(ValueError, match="clear NIK") as info, store.begin() as conn:
        create_handoffs(conn, [f], sender="checks", now=T0)
    assert NIK not in str(info.value)
    with store.connect() as conn:
        assert conn.execute(select(func.count()).select_from(HANDOFF)).scalar_one() == 0


# --- state machine ---------------------------------------------------------------------------


def test_state_machine_through_the_store(store: Engine) -> None:
    [hid] = one(store, overlap(TOKEN, KEC))
    assert step(store, hid, "delivered", T0 + timedelta(hours=1))
    assert step(store, hid, "acknowledged", T0 + timedelta(hours=2), actor="camat")
    assert not step(store, hid, "acknowledged", T0 + timedelta(hours=3))  # a repeat
    assert step(store, hid, "resolved", T0 + timedelta(days=1), actor="camat")
    r = row(store, hid)
    assert r.state == "resolved"
    assert stored_utc(r.delivered_at) == (T0 + timedelta(hours=1)).astimezone(UTC)
    assert stored_utc(r.acknowledged_at) == (T0 + timedelta(hours=2)).astimezone(UTC)
    assert stored_utc(r.closed_at) == (T0 + timedelta(days=1)).astimezone(UTC)
    assert (r.officer, r.decision_reason) == ("camat", "to resolved")
    with store.connect() as conn:
        trail = handoff_audit(conn, hid)
    assert [(t["from_state"], t["to_state"]) for t in trail] == [
        (None, "open"),
        ("open", "delivered"),
        ("delivered", "acknowledged"),
        ("acknowledged", "resolved"),
    ]


@pytest.mark.parametrize(
    ("path", "target", "message"),
    [
        (
            [],
            "resolved",
            "cannot go from open to resolved; allowed from open: delivered, escalated",
        ),
        ([], "acknowledged", "cannot go from open to acknowledged"),
        (["delivered", "resolved"], "acknowledged", "allowed from resolved: none"),
        (["delivered", "rejected"], "resolved", "cannot go from rejected to resolved"),
        (["escalated"], "open", "cannot go from escalated to open"),
    ],
)
def test_illegal_transitions_are_refused_with_a_clear_error(
    store: Engine, path: list[str], target: str, message: str
) -> None:
    [hid] = one(store, overlap(TOKEN, KEC))
    for state in path:
        step(store, hid, state)
    before = chain_rows(store)
    with pytest.raises(IllegalTransition, match=message) as info, store.begin() as conn:
        transition(conn, hid, target, actor="op", reason="", at=T0)
    assert hid in str(info.value)
    assert row(store, hid).state == (path[-1] if path else "open")
    assert chain_rows(store) == before


def test_unknown_handoff_and_agencies_that_cannot_escalate(store: Engine) -> None:
    with pytest.raises(HandoffNotFound), store.begin() as conn:
        transition(conn, "0" * 32, "delivered", actor="op", reason="", at=T0)
    [hid] = one(store, overlap(TOKEN, PKH))
    with pytest.raises(ValueError, match="agency:pkh has no office to escalate to"):
        step(store, hid, "escalated")


def test_transition_masks_ids_in_actor_and_reason(store: Engine) -> None:
    [hid] = one(store, overlap(TOKEN, KEC))
    nip = "198005172006042001"
    with store.begin() as conn:
        transition(conn, hid, "delivered", actor="hub", reason="", at=T0)
        transition(conn, hid, "rejected", actor=nip, reason=f"NIK {NIK} salah", at=T0)
    r = row(store, hid)
    assert NIK not in r.decision_reason and nip not in r.officer
    assert NIK[:4] in r.decision_reason and r.officer.startswith("19")
    with store.connect() as conn:
        assert verify_audit(conn).ok


# --- audit chain -----------------------------------------------------------------------------


def _five_rows(store: Engine) -> None:
    [hid] = one(store, overlap(TOKEN, KEC))
    for state in ("delivered", "acknowledged", "resolved"):
        step(store, hid, state)
    one(store, overlap(TOKEN, DESA, period="2026-Q2"))
    assert chain_rows(store) == 5


def test_intact_chain_verifies_with_its_head(store: Engine) -> None:
    _five_rows(store)
    with store.connect() as conn:
        report = verify_audit(conn)
        head = conn.execute(select(HEAD)).one()
    assert report.ok and report.checked == 5
    assert (head.last_seq, head.count, head.last_hash) == (5, 5, report.last_hash)


def test_empty_store_verifies(store: Engine) -> None:
    with store.connect() as conn:
        report = verify_audit(conn)
    assert report.ok and report.checked == 0


@pytest.mark.parametrize(
    ("tamper", "bad_seq", "problem"),
    [
        (update(AUDIT).where(AUDIT.c.seq == 3).values(reason="nothing to see"), 3, "row 3 edited"),
        (update(AUDIT).where(AUDIT.c.seq == 2).values(actor="someone else"), 2, "row 2 edited"),
        (delete(AUDIT).where(AUDIT.c.seq == 3), 3, "row 3 missing"),
        (delete(AUDIT).where(AUDIT.c.seq == 5), 5, "row 5 missing"),
        (delete(AUDIT).where(AUDIT.c.seq >= 4), 4, "row 4 missing"),
    ],
    ids=["edit-reason", "edit-actor", "delete-middle", "delete-tail", "delete-two-tail"],
)
def test_tampering_is_detected(store: Engine, tamper: Any, bad_seq: int, problem: str) -> None:
    _five_rows(store)
    with store.begin() as conn:
        assert conn.execute(tamper).rowcount >= 1
    with store.connect() as conn:
        report = verify_audit(conn)
    assert not report.ok
    assert report.first_bad_seq == bad_seq
    assert report.problem is not None and problem in report.problem


def test_concurrent_writers_keep_one_chain(store: Engine) -> None:
    errors: list[BaseException] = []

    def writer(n: int) -> None:
        try:
            for i in range(8):
                token = f"{n:02d}{i:02d}" + "a" * 28
                with store.begin() as conn:
                    create_handoffs(conn, [overlap(token, KEC)], sender="checks", now=T0)
                with store.begin() as conn:
                    transition(
                        conn,
                        handoff_key(HandoffKind.BLT_PKH_OVERLAP, token, "2026-Q1", KEC),
                        "delivered",
                        actor="hub",
                        reason="",
                        at=T0,
                    )
        except BaseException as exc:  # reported below
            errors.append(exc)

    threads = [threading.Thread(target=writer, args=(n,)) for n in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    with store.connect() as conn:
        report = verify_audit(conn)
    assert report.ok and report.checked == 4 * 8 * 2


# --- escalation ------------------------------------------------------------------------------


def test_escalation_waits_for_idul_fitri_and_cuti_bersama(store: Engine) -> None:
    created = datetime(2026, 3, 16, 9, 0, tzinfo=WIB)
    kec_id, desa_id = one(store, overlap(), now=created)
    [agency_id] = one(store, overlap(TOKEN, PKH), now=created)
    # 17 March, then 25, 26, 27 and 30 March: 18-24 March are Nyepi, Idul Fitri and the
    # cuti bersama around them.
    assert row(store, kec_id).due_date == date(2026, 3, 30)
    step(store, desa_id, "delivered", created)
    step(store, desa_id, "acknowledged", created)
    for moment in (
        datetime(2026, 3, 24, 10, 0, tzinfo=WIB),  # overdue if only weekends were off
        datetime(2026, 3, 30, 23, 30, tzinfo=WIB),  # the due date itself, late evening
    ):
        with store.begin() as conn:
            assert escalate_overdue(conn, moment, CAL) == 0
    # 00:10 on 31 March in Jawa Timur is still 30 March in UTC.
    with store.begin() as conn:
        assert escalate_overdue(conn, datetime(2026, 3, 30, 17, 10, tzinfo=UTC), CAL) == 2
    for hid, origin in ((kec_id, KEC.key), (desa_id, DESA.key)):
        r = row(store, hid)
        assert (r.state, r.office, r.origin_office) == ("escalated", "kabupaten:35.78", origin)
        # 00:10 WIB on 31 March is the escalation time, kept in UTC.
        assert stored_utc(r.escalated_at) == datetime(2026, 3, 30, 17, 10, tzinfo=UTC)
    # Agency desks have no one above them; escalated handoffs are not escalated again.
    assert row(store, agency_id).state == "open"
    with store.begin() as conn:
        assert escalate_overdue(conn, datetime(2026, 5, 1, tzinfo=WIB), CAL) == 0
    with store.connect() as conn:
        trail = handoff_audit(conn, desa_id)
        assert verify_audit(conn).ok
    assert trail[-1]["from_state"] == "acknowledged" and trail[-1]["to_state"] == "escalated"
    assert "desa:35.78.01.1001 -> kabupaten:35.78" in trail[-1]["reason"]


def test_escalation_across_the_year_end(store: Engine) -> None:
    short = overlap(TOKEN, KEC, period="2025-Q4")
    verify = Finding(
        HandoffKind.HOUSEHOLD_UPDATE_VERIFICATION,
        "HH-1",
        "2025-12-18",
        (KEC,),
        {"report_ids": "R1"},
    )
    [short_id] = one(store, short, now=datetime(2025, 12, 22, 9, 0, tzinfo=WIB))
    [verify_id] = one(store, verify, now=datetime(2025, 12, 18, 9, 0, tzinfo=WIB))
    # 23, 24, 29, 30, 31 December: Christmas and its cuti bersama (25-26) are off.
    assert row(store, short_id).due_date == date(2025, 12, 31)
    # Ten working days from 18 December skip 25-26 December and 1 January: 6 January.
    assert row(store, verify_id).due_date == date(2026, 1, 6)
    with store.begin() as conn:
        assert escalate_overdue(conn, datetime(2025, 12, 31, 23, 59, tzinfo=WIB), CAL) == 0
    with store.begin() as conn:
        assert escalate_overdue(conn, datetime(2026, 1, 1, 0, 1, tzinfo=WIB), CAL) == 1
    assert row(store, short_id).state == "escalated"
    with store.begin() as conn:
        # 2 January would be past due had 25-26 December and 1 January been counted.
        assert escalate_overdue(conn, datetime(2026, 1, 6, 16, 0, tzinfo=WIB), CAL) == 0
    with store.begin() as conn:
        assert escalate_overdue(conn, datetime(2026, 1, 7, 8, 0, tzinfo=WIB), CAL) == 1
    assert row(store, verify_id).office == "kabupaten:35.78"


# --- decisions -------------------------------------------------------------------------------


def _decision(
    n: int, hid: str, office: str, decision: str, at: datetime, **kw: Any
) -> dict[str, Any]:
    return {
        "id": f"D-{n}",
        "handoff_id": hid,
        "office": office,
        "decision": decision,
        "reason": kw.get("reason", ""),
        "officer": kw.get("officer", "budi"),
        # The store keeps UTC (SQLite drops the offset).
        "decided_at": at.astimezone(UTC),
        "updated_at": at.astimezone(UTC),
        "applied_at": None,
        "outcome": "",
    }


def _outcomes(store: Engine) -> dict[str, tuple[str, bool]]:
    with store.connect() as conn:
        return {
            r.id: (r.outcome, r.applied_at is not None) for r in conn.execute(select(DECISIONS))
        }


def test_decisions_apply_in_order_with_repeats_and_illegal_ones_marked(store: Engine) -> None:
    a, b = one(store, overlap())
    [c] = one(store, overlap(TOKEN, KEC, period="2026-Q2"))
    [d] = one(store, overlap(TOKEN, KEC, period="2026-Q3"))
    deliver_all(store)
    [e] = one(store, overlap(TOKEN, KEC, period="2026-Q4"))  # created, not yet delivered
    t = T0 + timedelta(days=1)
    nip = "198005172006042001"
    rows = [
        # Inserted out of order: decided_at decides.
        _decision(
            2, a, KEC.key, "resolved", t + timedelta(hours=2), reason=f"cek {NIK}", officer=nip
        ),
        _decision(1, a, KEC.key, "acknowledged", t + timedelta(hours=1)),
        _decision(3, a, KEC.key, "resolved", t + timedelta(hours=3)),  # the office answered twice
        _decision(4, b, DESA.key, "rejected", t, reason="bukan warga"),
        _decision(5, b, DESA.key, "acknowledged", t + timedelta(hours=1)),  # after a final state
        _decision(6, c, "kecamatan:35.78.02", "resolved", t),  # not this office's handoff
        _decision(7, "f" * 32, KEC.key, "resolved", t),  # no such handoff
        _decision(8, e, KEC.key, "acknowledged", t),  # the delivery is not on record yet
        _decision(9, d, KEC.key, "escalated", t),  # offices cannot escalate
    ]
    with store.begin() as conn:
        conn.execute(DECISIONS.insert(), rows)
    with store.begin() as conn:
        counts = apply_decisions(conn, t + timedelta(days=1), CAL)
    assert counts.as_dict() == {
        "applied": 3,
        "repeat": 1,
        "superseded": 1,
        "illegal": 2,
        "unknown": 1,
        "deferred": 1,
        "proposals": 0,
        "returned": 0,
    }
    assert _outcomes(store) == {
        "D-1": ("applied", True),
        "D-2": ("applied", True),
        "D-3": ("repeat", True),
        "D-4": ("applied", True),
        "D-5": ("superseded", True),
        "D-6": ("illegal", True),
        "D-7": ("unknown", True),
        "D-8": ("", False),
        "D-9": ("illegal", True),
    }
    ra = row(store, a)
    assert ra.state == "resolved"
    assert stored_utc(ra.acknowledged_at) == (t + timedelta(hours=1)).astimezone(UTC)
    assert stored_utc(ra.closed_at) == (t + timedelta(hours=2)).astimezone(UTC)
    assert ra.decision_reason == "cek 3578\u2022\u2022\u2022\u2022\u2022\u2022\u2022\u20220001"
    assert nip not in ra.officer
    assert row(store, b).state == "rejected" and row(store, b).decision_reason == "bukan warga"
    assert row(store, c).state == "delivered" and row(store, d).state == "delivered"
    # Once the deferred handoff is delivered, its decision applies; applied ones stay applied.
    deliver_all(store)
    with store.begin() as conn:
        later = apply_decisions(conn, t + timedelta(days=2), CAL)
    assert (later.applied, later.deferred, later.repeat) == (1, 0, 0)
    assert row(store, e).state == "acknowledged"
    with store.connect() as conn:
        assert verify_audit(conn).ok


def test_decisions_from_the_origin_office_still_count_after_escalation(store: Engine) -> None:
    [hid] = one(store, overlap(TOKEN, KEC))
    deliver_all(store)
    with store.begin() as conn:
        escalate_overdue(conn, datetime(2026, 3, 10, 8, 0, tzinfo=WIB), CAL)
        conn.execute(
            DECISIONS.insert(),
            [_decision(1, hid, KEC.key, "resolved", datetime(2026, 3, 10, 9, 0, tzinfo=WIB))],
        )
        counts = apply_decisions(conn, datetime(2026, 3, 10, 10, 0, tzinfo=WIB), CAL)
    assert counts.applied == 1
    assert (row(store, hid).state, row(store, hid).office) == ("resolved", "kabupaten:35.78")


def _report(rid: str, household: str, changes: dict[str, Any] | None) -> dict[str, Any]:
    return {
        "id": rid,
        "kind": "household_update",
        "facilitator_id": "PKH-F-7",
        "kecamatan_code": "35.78.01",
        "household_id": household,
        "nik_token": TOKEN,
        "reported_on": date(2026, 3, 2),
        "changes": json.dumps(changes) if changes is not None else "",
        "note": "",
        "updated_at": T0_UTC,
        "synced_at": T0_UTC,
    }


def test_household_update_verification_outcomes(store: Engine) -> None:
    def verification(household: str, reports: str) -> Finding:
        return Finding(
            HandoffKind.HOUSEHOLD_UPDATE_VERIFICATION,
            household,
            "2026-03-02",
            (KEC,),
            {"report_count": 2, "report_ids": reports, "facilitator_ids": "PKH-F-7"},
        )

    with store.begin() as conn:
        conn.execute(
            REPORTS.insert(),
            [
                _report("R-1", "HH-1", {"address": "Jl. Baru 1", "desil": 3, "members_left": []}),
                _report("R-2", "HH-1", {"address": None, "desil": None, "members_left": ["M-9"]}),
                _report("R-3", "HH-2", {"desil": 2}),
                # Nothing would change: no proposal.
                _report("R-5", "HH-1", {"address": None, "desil": None, "members_left": []}),
            ],
        )
    [approved] = one(store, verification("HH-1", "R-1,R-2,R-404,R-5"))
    [rejected] = one(store, verification("HH-2", "R-3"))
    deliver_all(store)
    t = T0 + timedelta(days=2)
    with store.begin() as conn:
        conn.execute(
            DECISIONS.insert(),
            [
                _decision(1, approved, KEC.key, "resolved", t, officer="sekcam"),
                _decision(2, rejected, KEC.key, "rejected", t, reason=f"alamat salah {NIK}"),
            ],
        )
    with store.begin() as conn:
        counts = apply_decisions(conn, t, CAL)
        again = apply_decisions(conn, t, CAL)
    assert (counts.applied, counts.proposals, counts.returned) == (2, 2, 1)
    assert (again.applied, again.proposals, again.returned) == (0, 0, 0)
    with store.connect() as conn:
        ids = pending_proposals(conn)
        items = load_proposals(conn, ids)
        back = list_handoffs(conn, kind="household_update_rejected")
    assert sorted(ids) == sorted([proposal_id(approved, "R-1"), proposal_id(approved, "R-2")])
    bodies = [ProposalBody.model_validate(i.body) for i in items]
    assert {(b.report_id, b.household_id, b.verified_by) for b in bodies} == {
        ("R-1", "HH-1", KEC.key),
        ("R-2", "HH-1", KEC.key),
    }
    assert [b.changes.members_left for b in bodies if b.report_id == "R-2"] == [["M-9"]]
    [returned] = back
    assert (returned["office"], returned["sender"], returned["kecamatan_code"]) == (
        "agency:pkh",
        KEC.key,
        "35.78.01",
    )
    with store.connect() as conn:
        shown = get_handoff(conn, returned["id"])
    assert shown is not None
    evidence = shown["evidence"]
    assert evidence["verification_handoff_id"] == rejected
    assert evidence["facilitator_ids"] == "PKH-F-7" and evidence["report_ids"] == "R-3"
    assert evidence["reason"].startswith("alamat salah ") and NIK not in evidence["reason"]
    # Proposals go out like deliveries: a receipt marks them sent, a 422 marks them failed.
    with store.begin() as conn:
        res = record_proposals(
            conn,
            [
                SendResult(ids[0], receipt_id="REG-1"),
                SendResult(ids[1], error="422", permanent=True),
            ],
            t,
        )
        assert pending_proposals(conn) == []
        statuses = dict(conn.execute(select(PROPOSAL.c.id, PROPOSAL.c.status)).all())
    assert res == {"sent": 1, "failed": 1, "retry": 0}
    assert statuses == {ids[0]: "sent", ids[1]: "failed"}


# --- data requests ---------------------------------------------------------------------------


def test_data_requests_fan_out_and_submissions_resolve(store: Engine) -> None:
    desas = ["35.78.01.1001", "35.78.01.1002", "35.78.01.1003"]
    with store.begin() as conn:
        conn.execute(
            REQUESTS.insert(),
            [
                {
                    "id": "DR-1",
                    "kecamatan_code": "35.78.01",
                    "ksk_id": "198005172006042001",
                    "title": "Pendataan UMKM",
                    "desa_codes": ",".join(desas),
                    "requested_on": date(2026, 3, 2),
                    "due_date": date(2026, 3, 13),
                    "updated_at": T0_UTC,
                    "synced_at": T0_UTC,
                }
            ],
        )
    with store.begin() as conn:
        assert fan_out_data_requests(conn, T0) == 3
        assert fan_out_data_requests(conn, T0) == 0
        made = list_handoffs(conn, kind="data_request")
    assert sorted(h["office"] for h in made) == [f"desa:{c}" for c in desas]
    assert {(h["due_date"], h["sender"], h["subject_token"], h["period"]) for h in made} == {
        (date(2026, 3, 13), "statistik", "DR-1", "DR-1")
    }
    ids = {h["office"]: h["id"] for h in made}
    with store.connect() as conn:
        first = get_handoff(conn, ids["desa:35.78.01.1001"])
    assert first is not None and first["source_ref"] == "DR-1"
    assert "198005172006042001" not in json.dumps(first, default=str)
    # Two delivered, one still open when the submissions arrive.
    with store.begin() as conn:
        queue_deliveries(conn, T0)
        keys = [delivery_key(ids[f"desa:{c}"], f"desa:{c}") for c in desas[:2]]
        record_deliveries(conn, [SendResult(k, receipt_id="R") for k in keys], T0)
        at = datetime(2026, 3, 5, 3, 0, tzinfo=UTC)
        conn.execute(
            SUBMISSIONS.insert(),
            [
                {
                    "id": f"S-{i}",
                    "request_id": "DR-1",
                    "desa_code": c,
                    "submitted_at": at,
                    "updated_at": at,
                    "synced_at": at,
                }
                for i, c in enumerate([desas[0], desas[0], desas[2]])
            ],
        )
    with store.begin() as conn:
        assert apply_submissions(conn, at) == 1
        assert apply_submissions(conn, at) == 0
    states = {o: row(store, i).state for o, i in ids.items()}
    assert states == {
        "desa:35.78.01.1001": "resolved",
        "desa:35.78.01.1002": "delivered",
        "desa:35.78.01.1003": "open",
    }
    with store.connect() as conn:
        trail = handoff_audit(conn, ids["desa:35.78.01.1001"])
    assert trail[-1]["actor"] == "desa:35.78.01.1001" and "S-0" in trail[-1]["reason"]


# --- reconciliation and listing --------------------------------------------------------------


def test_reconciliation_per_office(store: Engine) -> None:
    a, b = one(store, overlap())
    [c] = one(store, overlap(TOKEN, KEC, period="2026-Q2"))
    [d] = one(store, overlap(TOKEN, KEC, period="2026-Q3"))
    [e] = one(store, overlap(TOKEN, KEC, period="2026-Q4"))
    deliver_all(store)
    step(store, a, "acknowledged")
    step(store, c, "resolved")
    step(store, d, "rejected")
    step(store, b, "acknowledged")
    with store.connect() as conn:
        counts = {o.office: o.as_dict() for o in reconciliation(conn)}
    assert counts == {
        KEC.key: {"office": KEC.key, "sent": 4, "accepted": 2, "rejected": 1, "pending": 1},
        DESA.key: {"office": DESA.key, "sent": 1, "accepted": 1, "rejected": 0, "pending": 0},
    }
    assert row(store, e).state == "delivered"


def test_list_filters(store: Engine) -> None:
    a, b = one(store, overlap())
    [c] = one(store, overlap(TOKEN, Office.parse("kecamatan:35.78.02"), period="2026-Q2"))
    step(store, a, "delivered")
    with store.connect() as conn:
        by_office = {h["id"] for h in list_handoffs(conn, office="kecamatan:357801")}
        by_state = {h["id"] for h in list_handoffs(conn, state="open")}
        by_kec = {h["id"] for h in list_handoffs(conn, kecamatan="35.78.02")}
        limited = list_handoffs(conn, limit=1)
        with pytest.raises(ValueError):
            list_handoffs(conn, state="lost")
    assert (by_office, by_state, by_kec) == ({a}, {b, c}, {c})
    assert len(limited) == 1
