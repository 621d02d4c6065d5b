"""Compare the hub's handoffs with the sandbox's planted truth; read the store's figures.

Used by the demo and the end-to-end tests: the truth names people by clear NIK (sandbox data,
never logged), which is turned into the hub's keyed token here, in memory, before comparing.
"""

from __future__ import annotations

from collections import Counter
from datetime import datetime
from typing import Any

from sqlalchemy import Engine, func, select

from integrations.store.audit import verify_audit
from integrations.store.handoffs import overdue_pages
from integrations.store.tables import DELIVERY, HANDOFF, PROPOSAL
from models.checks import precision_recall
from models.handoffs import HandoffKind, HandoffState, Office, handoff_key
from models.identity import id_token
from models.wilayah import get_region_registry
from tasks.checks import SENDER as CHECK_SENDER

# Findings about a household name it by its registry id; all others by a person's token.
_BY_RECORD_ID = {HandoffKind.HOUSEHOLD_UPDATE_VERIFICATION.value}


def _subject(kind: str, subject: str, key: bytes) -> str:
    return subject if kind in _BY_RECORD_ID else id_token(subject, key)


def check_scores(engine: Engine, truth: Any, key: bytes) -> dict[str, dict[str, Any]]:
    """Per check kind: expected vs found subjects, precision, recall, exact handoff ids."""
    found_subjects: dict[str, set[str]] = {}
    found_ids: dict[str, set[str]] = {}
    with engine.connect() as conn:
        rows = conn.execute(
            select(HANDOFF.c.kind, HANDOFF.c.subject_token, HANDOFF.c.id).where(
                HANDOFF.c.sender == CHECK_SENDER
            )
        )
        for kind, subject, hid in rows:
            found_subjects.setdefault(kind, set()).add(subject)
            found_ids.setdefault(kind, set()).add(hid)
    scores: dict[str, dict[str, Any]] = {}
    for kind, check in sorted(truth.checks.items()):
        expected = {_subject(kind, s, key) for s in check.subjects}
        expected_ids = {
            handoff_key(kind, _subject(kind, f.subject, key), f.period, Office.parse(r))
            for f in check.findings
            for r in f.receivers
        }
        found = found_subjects.get(kind, set())
        precision, recall = precision_recall(found, expected)
        scores[kind] = {
            "expected": len(expected),
            "planted": len(check.planted),
            "found": len(found),
            "true_positives": len(found & expected),
            "precision": precision,
            "recall": recall,
            "handoffs_expected": len(expected_ids),
            "handoffs_found": len(found_ids.get(kind, set())),
            "handoffs_exact": expected_ids == found_ids.get(kind, set()),
        }
    return scores


def store_figures(engine: Engine, as_of: datetime) -> dict[str, Any]:
    """Handoff counts by state and kind, deliveries, proposals, the audit check, worst 5."""
    from tasks.scorecard import build_scorecard

    with engine.connect() as conn:
        states = Counter(
            {
                s: n
                for s, n in conn.execute(
                    select(HANDOFF.c.state, func.count()).group_by(HANDOFF.c.state)
                )
            }
        )
        kinds = {
            k: n
            for k, n in conn.execute(select(HANDOFF.c.kind, func.count()).group_by(HANDOFF.c.kind))
        }
        escalated = conn.execute(
            select(func.count()).where(HANDOFF.c.escalated_at.is_not(None))
        ).scalar_one()
        delivered = conn.execute(
            select(func.count()).where(HANDOFF.c.delivered_at.is_not(None))
        ).scalar_one()
        sent = conn.execute(select(func.count()).where(DELIVERY.c.status == "sent")).scalar_one()
        proposals = conn.execute(
            select(func.count()).where(PROPOSAL.c.status == "sent")
        ).scalar_one()
        # Every handoff still due for escalation on the last day must have been escalated.
        late = sum(len(rows) for rows in overdue_pages(conn, as_of))
        audit = verify_audit(conn)
    card = build_scorecard(engine, as_of)
    names = get_region_registry()
    worst = [
        {
            "code": r.code,
            "name": names.require(r.code).name,
            "backlog": r.backlog,
            "overdue": r.overdue,
            "escalations": r.escalations,
            "rank": r.rank,
        }
        for r in card.worst(5)
    ]
    open_states = (HandoffState.OPEN, HandoffState.DELIVERED, HandoffState.ACKNOWLEDGED)
    return {
        "created": sum(states.values()),
        "by_kind": dict(sorted(kinds.items())),
        "by_state": dict(sorted(states.items())),
        "delivered": delivered,
        "deliveries_sent": sent,
        "escalated": escalated,
        "resolved": states.get(HandoffState.RESOLVED, 0),
        "rejected": states.get(HandoffState.REJECTED, 0),
        "backlog": sum(states.get(s, 0) for s in (*open_states, HandoffState.ESCALATED)),
        "overdue_not_escalated": late,
        "proposals_sent": proposals,
        "audit": {"ok": audit.ok, "rows": audit.checked, "problem": audit.problem},
        "worst": worst,
    }
