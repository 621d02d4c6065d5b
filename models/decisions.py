"""What an office's decision does to its handoff: a pure rule beside the state machine.

The store loads each decision with its handoff's current state, asks `decide`, then applies
and audits what it says. The rule, in order:

- no handoff with that id: **unknown**;
- the decision comes from another office than the one holding the handoff (or the one it
  was first for), or is not acknowledge/resolve/reject: **illegal**;
- the handoff is still open (its delivery is not on record yet): **deferred**, kept for
  the next run;
- the handoff is settled and the decision says something else: **superseded** (kept, but
  it changes nothing: a submission, the kabupaten or the office's own earlier answer came
  first);
- the state machine refuses the move: **illegal**;
- the handoff is already in the decided state: **repeat**;
- otherwise: **applied**.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from models.handoffs import FINAL_STATES, HandoffState, IllegalTransition, plan_transition

__all__ = ["DECISION_TARGETS", "HandoffView", "Outcome", "decide"]

DECISION_TARGETS = frozenset(
    {HandoffState.ACKNOWLEDGED, HandoffState.RESOLVED, HandoffState.REJECTED}
)
"""The states an office's decision may move a handoff to."""


Outcome = Literal["applied", "repeat", "superseded", "illegal", "unknown", "deferred"]
"""What became of one office decision (stored as the decision's `outcome`)."""


@dataclass(frozen=True, slots=True)
class HandoffView:
    """What the rule needs of a handoff: its id, current state, holder and first receiver."""

    id: str
    state: str
    office: str
    origin_office: str


def decide(handoff: HandoffView | None, office: str, decision: str) -> Outcome:
    """The outcome of `office` deciding `decision` on `handoff` (None: no such handoff)."""
    if handoff is None:
        return "unknown"
    if office not in (handoff.office, handoff.origin_office) or decision not in DECISION_TARGETS:
        return "illegal"
    current = handoff.state
    if current == HandoffState.OPEN:
        return "deferred"
    if current in FINAL_STATES and decision != current:
        return "superseded"
    try:
        changed = plan_transition(current, decision, handoff_id=handoff.id)
    except (IllegalTransition, ValueError):
        return "illegal"
    return "applied" if changed else "repeat"
