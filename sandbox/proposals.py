"""The registry's write side: verified household changes sent back as update proposals.

Proposals are idempotent on their `Idempotency-Key`. They are recorded and counted, not
applied: the synthetic registry stays a pure function of its seed and epoch.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from models.contracts.registry import UpdateProposal
from sandbox.clock import SandboxClock
from sandbox.config import WIB
from sandbox.idempotency import Accepted, Conflict, IdempotencyLog

__all__ = ["ProposalBox"]


class ProposalBox:
    """Update proposals received by the registry, with their receipts."""

    def __init__(self, clock: SandboxClock, known_household: Callable[[str], bool]) -> None:
        self.clock = clock
        self.known_household = known_household
        self.log = IdempotencyLog()

    def submit(self, key: str, proposal: UpdateProposal) -> Accepted | Conflict:
        """Record a proposal under its key; a proposal for an unknown household is queued."""
        body = proposal.model_dump(mode="json")

        def create(seq: int) -> dict[str, Any]:
            known = self.known_household(proposal.household_id)
            return {
                "receipt_id": f"PRP-{seq:08d}",
                "proposal_id": proposal.id,
                "status": "accepted" if known else "queued",
                "received_at": self.clock.now().astimezone(WIB).isoformat(timespec="milliseconds"),
            }

        return self.log.submit(key, body, create)

    def stats(self) -> dict[str, Any]:
        """Proposals received: counts and every proposal with its receipt and post count."""
        entries = self.log.entries()
        return {
            "received": len(entries),
            "posts": sum(e.posts for e in entries),
            "replays": sum(e.posts - 1 for e in entries),
            "conflicts": sum(e.conflicts for e in entries),
            "faulted_after_commit": sum(e.faulted_after_commit for e in entries),
            "proposals": [
                {"key": e.key, "posts": e.posts, "receipt": e.result, "proposal": e.body}
                for e in entries
            ],
        }
