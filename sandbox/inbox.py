"""The office inbox: handoff deliveries (idempotent) and the offices' decisions coming back.

Every delivery the inbox records gets a receipt and, from the receiving office's behaviour
profile, a schedule of decisions:
- prompt: acknowledged on the next working day, then resolved or rejected (a seeded share
  rejects) on a working day no later than the due date;
- late: acknowledged one to three working days after the due date, decided one to three
  working days after that;
- never: no decision;
- twice: like prompt, but each decision is published twice under two ids, the copy up to
  an hour and a half later.
Kabupaten offices (escalations) are always prompt. Data requests are settled by the desa's
submission to the statistics office, so their deliveries are only ever acknowledged.

A decision is served once its `updated_at` (>= `decided_at`) has passed on the sandbox
clock. Decisions are ordered by (updated_at, id); ids `DEC-<receipt seq>-<n>` are
fixed-width, so `Position(ms, seq, n)` is that order.
"""

from __future__ import annotations

import hashlib
import threading
from collections import Counter, defaultdict
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from typing import Any

from models.contracts.kecamatan import HandoffDelivery
from models.handoffs import HandoffKind
from models.wilayah import normalise_region_code
from models.workdays import WorkCalendar, default_calendar
from sandbox.clock import SandboxClock
from sandbox.config import WIB, InboxConfig
from sandbox.idempotency import Accepted, Conflict, IdempotencyLog
from sandbox.names import person_name
from sandbox.registry_data import Position
from sandbox.seeding import Salted
from sandbox.source_paging import KeyedEntry, SourceRecord, epoch_ms, keyed_pages

__all__ = ["PROFILES", "Inbox", "office_kecamatan", "office_profile"]

PROFILES = ("prompt", "late", "never", "twice")
"""Behaviour profiles of receiving offices."""

_S_PROFILE, _S_DECISION, _S_OFFICER = 0x601, 0x602, 0x603
_TITLES = {
    "kecamatan": "Kasi Kesra Kecamatan",
    "desa": "Kasi Pelayanan Desa",
    "kabupaten": "Kabid Linjamsos Dinsos",
    "agency": "Koordinator Program",
}
_RESOLVED = (
    "Sudah diverifikasi di lapangan dan ditindaklanjuti",
    "Data diperbaiki sesuai hasil verifikasi lapangan",
    "Penerima dikeluarkan dari daftar; berita acara terlampir",
)
_REJECTED = (
    "Hasil verifikasi lapangan: data sudah benar",
    "Dokumen pendukung tidak lengkap; mohon dilengkapi",
    "Bukan kewenangan kantor ini; diteruskan ke dinas terkait",
)


_UNIX = datetime(1970, 1, 1, tzinfo=UTC)
_MS = timedelta(milliseconds=1)


def _office_hash(office: str) -> int:
    return int.from_bytes(hashlib.sha256(office.encode()).digest()[:8], "big")


def office_profile(seed: int, config: InboxConfig, office: str) -> str:
    """The behaviour profile of an office key (kabupaten offices are always prompt)."""
    if office.startswith("kabupaten:"):
        return "prompt"
    u = Salted(seed, _S_PROFILE).unit1(_office_hash(office))
    edge = 0.0
    shares = config.shares()
    for name, share in shares.items():
        edge += share
        if u < edge:
            return name
    # Rounding can leave u just above the last edge: it belongs to the last used profile.
    return [name for name, share in shares.items() if share > 0][-1]


def office_kecamatan(office: str) -> str | None:
    """The kecamatan (dotted) of a kecamatan or desa office key, else None."""
    kind, _, code = office.partition(":")
    if kind not in ("kecamatan", "desa"):
        return None
    try:
        dotted = normalise_region_code(code)
    except ValueError:
        return None
    return dotted[:8] if dotted.count(".") >= 2 else None


def _wire(when: datetime) -> str:
    return when.astimezone(WIB).isoformat(timespec="milliseconds")


_PLANNING_HORIZON = timedelta(days=366)


def _at(day: date, hour: int, minute: int) -> datetime:
    return datetime.combine(day, time(hour, 0), WIB) + timedelta(minutes=minute)


@dataclass(frozen=True, slots=True)
class _Decision:
    entry: KeyedEntry
    kecamatan: str | None


def _position(decision: _Decision) -> Position:
    return decision.entry.position


class Inbox:
    """Deliveries received, their receipts and the decisions they lead to."""

    def __init__(
        self,
        seed: int,
        config: InboxConfig,
        clock: SandboxClock,
        calendar: WorkCalendar | None = None,
    ) -> None:
        self.seed = seed
        self.config = config
        self.clock = clock
        self.calendar = calendar if calendar is not None else default_calendar()
        self.log = IdempotencyLog()
        self._lock = threading.Lock()
        # Appended as scheduled and sorted when next read: inserting each decision in its
        # place moved the whole list behind it, a cost growing with the square of the
        # deliveries (an inbox holding a province's handoffs spent most of its CPU there).
        self._decisions: list[_Decision] = []
        self._sorted = True
        self._decision = Salted(seed, _S_DECISION)
        self._officer = Salted(seed, _S_OFFICER)
        # Pages serve the visible decisions only: the default of `decisions`.
        self.page = keyed_pages(self.decisions)

    def profile(self, office: str) -> str:
        """The behaviour profile of an office."""
        return office_profile(self.seed, self.config, office)

    def officer(self, office: str) -> str:
        """The officer who answers for an office."""
        r = self._officer.rng(_office_hash(office))
        kind = office.partition(":")[0]
        name = person_name(r, r.random() < 0.5)
        return f"{_TITLES.get(kind, 'Petugas')} {name}"[:60]

    def deliver(self, key: str, delivery: HandoffDelivery) -> Accepted | Conflict:
        """Record a delivery under its idempotency key; a new key gets a receipt and decisions."""
        body = delivery.model_dump(mode="json")

        def create(seq: int) -> dict[str, Any]:
            received = self.clock.now()
            receipt = {
                "receipt_id": f"RCP-{seq:08d}",
                "handoff_id": delivery.handoff_id,
                "office": delivery.office,
                "received_at": _wire(received),
            }
            self._schedule(seq, delivery, received)
            return receipt

        return self.log.submit(key, body, create)

    def _schedule(self, seq: int, delivery: HandoffDelivery, received: datetime) -> None:
        profile = self.profile(delivery.office)
        if profile == "never":
            return
        cal = self.calendar
        r = self._decision.rng(_office_hash(f"{delivery.handoff_id}|{delivery.office}"))
        day = received.astimezone(WIB).date()
        # Offices plan at most a year ahead: any due date is valid on the wire, but one in a
        # far year must neither overflow the calendar nor walk it day by day.
        due = min(delivery.due_date, day + _PLANNING_HORIZON)
        if profile == "late":
            ack_day = cal.add_workdays(max(due, day), 1 + int(r.random() * 3))
            final_day = cal.add_workdays(ack_day, 1 + int(r.random() * 3))
        else:
            ack_day = cal.next_workday(day)
            room = cal.workdays_between(ack_day, due) if due >= ack_day else 0
            final_day = cal.add_workdays(ack_day, int(r.random() * (room + 1)))
        ack_at = _at(ack_day, 8, int(r.random() * 120))
        final_at = _at(final_day, 10, int(r.random() * 360))
        rejected = r.random() < self.config.reject_share
        plan: list[tuple[str, str, datetime]] = [("acknowledged", "", ack_at)]
        if delivery.kind != HandoffKind.DATA_REQUEST.value:
            reasons = _REJECTED if rejected else _RESOLVED
            reason = reasons[int(r.random() * len(reasons))]
            plan.append(("rejected" if rejected else "resolved", reason, final_at))
        copies = 2 if profile == "twice" else 1
        officer = self.officer(delivery.office)
        kecamatan = office_kecamatan(delivery.office)
        made: list[_Decision] = []
        for copy in range(copies):
            for step, (decision, reason, decided) in enumerate(plan, start=1):
                n = step + copy * len(plan)
                updated = decided + timedelta(minutes=(1 + int(r.random() * 90)) * copy)
                record = {
                    "id": f"DEC-{seq:08d}-{n}",
                    "handoff_id": delivery.handoff_id,
                    "office": delivery.office,
                    "decision": decision,
                    "reason": reason,
                    "officer": officer,
                    "decided_at": _wire(decided),
                    "updated_at": _wire(updated),
                }
                entry = KeyedEntry(Position(epoch_ms(updated), seq, n), SourceRecord(record))
                made.append(_Decision(entry, kecamatan))
        with self._lock:
            self._decisions.extend(made)
            self._sorted = False

    def decisions(
        self, kecamatan: str | None = None, visible_only: bool = True
    ) -> list[KeyedEntry]:
        """Decisions (of a kecamatan's offices) in serving order; by default only visible ones."""
        # Rounded down: a decision stamped later in the current millisecond is not due yet.
        limit = (self.clock.now() - _UNIX) // _MS
        with self._lock:
            if not self._sorted:
                # Stable and run-aware: a sorted list with a new tail sorts in about linear time.
                self._decisions.sort(key=_position)
                self._sorted = True
            items = list(self._decisions)
        return [
            d.entry
            for d in items
            if (not visible_only or d.entry.position.segment <= limit)
            and (kecamatan is None or d.kecamatan == kecamatan)
        ]

    def stats(self) -> dict[str, Any]:
        """Receipts per key, (handoff, office) pairs delivered under several keys, totals."""
        entries = self.log.entries()
        pairs: defaultdict[tuple[str, str], list[str]] = defaultdict(list)
        profiles: Counter[str] = Counter()
        for e in entries:
            pairs[e.result["handoff_id"], e.result["office"]].append(e.key)
        for _, office in pairs:
            profiles[self.profile(office)] += 1
        repeated = [
            {"handoff_id": h, "office": o, "keys": len(keys)}
            for (h, o), keys in sorted(pairs.items())
            if len(keys) > 1
        ]
        decisions = self.decisions(visible_only=False)
        visible = self.decisions()
        return {
            "now": _wire(self.clock.now()),
            "receipts": len(entries),
            "posts": sum(e.posts for e in entries),
            "replays": sum(e.posts - 1 for e in entries),
            "conflicts": sum(e.conflicts for e in entries),
            "faulted_after_commit": sum(e.faulted_after_commit for e in entries),
            "pairs": len(pairs),
            "keys_per_pair": dict(sorted(Counter(len(k) for k in pairs.values()).items())),
            "pairs_seen_more_than_once": len(repeated),
            "repeated_pairs": repeated,
            "per_key": {e.key: e.posts for e in entries},
            "pairs_by_profile": dict(sorted(profiles.items())),
            "decisions_scheduled": len(decisions),
            "decisions_visible": len(visible),
            "decisions_by_kind": dict(
                sorted(Counter(str(d.item.record["decision"]) for d in visible).items())
            ),
        }

    def reset(self) -> None:
        """Forget every delivery and decision."""
        self.log.reset()
        with self._lock:
            self._decisions.clear()
            self._sorted = True
