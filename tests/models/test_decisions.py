"""The office-decision rule on its own table of cases: no store, no Prefect."""

from __future__ import annotations

import pytest

from models.decisions import HandoffView, decide

KEC = "kecamatan:35.07.01"
KAB = "kabupaten:35.07"


def _h(state: str, office: str = KEC, origin: str = KEC) -> HandoffView:
    return HandoffView("H-1", state, office, origin)


CASES = [
    # (handoff, deciding office, decision, outcome, why)
    (None, KEC, "acknowledged", "unknown", "no such handoff"),
    (_h("delivered"), "kecamatan:35.07.02", "resolved", "illegal", "another office"),
    (_h("delivered"), KEC, "escalated", "illegal", "offices only acknowledge/resolve/reject"),
    (_h("delivered"), KEC, "open", "illegal", "not a decision"),
    (_h("open"), KEC, "acknowledged", "deferred", "delivery not on record yet"),
    (_h("open"), KEC, "resolved", "deferred", "delivery not on record yet"),
    (_h("delivered"), KEC, "acknowledged", "applied", "first answer"),
    (_h("delivered"), KEC, "resolved", "applied", "resolved without acknowledging"),
    (_h("delivered"), KEC, "rejected", "applied", "rejected with a reason"),
    (_h("acknowledged"), KEC, "acknowledged", "repeat", "the same answer twice"),
    (_h("acknowledged"), KEC, "resolved", "applied", "acknowledged, then resolved"),
    (_h("resolved"), KEC, "resolved", "repeat", "the same settlement twice"),
    (_h("resolved"), KEC, "rejected", "superseded", "settled first, answered later"),
    (_h("rejected"), KEC, "acknowledged", "superseded", "a late acknowledgement"),
    (_h("escalated", office=KAB), KEC, "resolved", "applied", "the first office still answers"),
    (_h("escalated", office=KAB), KAB, "acknowledged", "applied", "the kabupaten answers"),
    (_h("escalated", office=KAB), "kabupaten:35.09", "resolved", "illegal", "another kabupaten"),
]


@pytest.mark.parametrize(("handoff", "office", "decision", "outcome", "why"), CASES)
def test_decide(
    handoff: HandoffView | None, office: str, decision: str, outcome: str, why: str
) -> None:
    assert decide(handoff, office, decision) == outcome, why
