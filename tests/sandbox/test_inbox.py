"""Office behaviour profiles, the kecamatan of an office key, the order decisions are served in."""

from __future__ import annotations

from collections import Counter
from datetime import UTC, date, datetime, timedelta

from models.contracts.kecamatan import HandoffDelivery
from models.wilayah import get_region_registry
from sandbox.clock import SandboxClock
from sandbox.config import InboxConfig
from sandbox.inbox import PROFILES, Inbox, office_kecamatan, office_profile


def test_profiles_come_at_the_configured_shares() -> None:
    offices = [f"desa:{v.code}" for v in get_region_registry().villages()]
    config = InboxConfig()
    counts = Counter(office_profile(35, config, o) for o in offices)
    assert set(counts) == set(PROFILES)
    for name, share in config.shares().items():
        # 8,494 offices: the standard deviation of each share is below half a point.
        assert abs(counts[name] / len(offices) - share) < 0.02, (name, counts)


def test_profiles_are_seeded_and_configurable() -> None:
    offices = [f"kecamatan:{k.code}" for k in get_region_registry().kecamatan()]
    config = InboxConfig()
    first = [office_profile(35, config, o) for o in offices]
    assert first == [office_profile(35, config, o) for o in offices]
    assert first != [office_profile(36, config, o) for o in offices]
    never = InboxConfig(prompt=0.0, late=0.0, never=1.0, twice=0.0)
    assert {office_profile(35, never, o) for o in offices} == {"never"}
    # Escalations reach the kabupaten, which always answers promptly.
    assert office_profile(35, never, "kabupaten:35.07") == "prompt"


def test_office_kecamatan() -> None:
    assert office_kecamatan("kecamatan:35.07.01") == "35.07.01"
    assert office_kecamatan("kecamatan:350701") == "35.07.01"
    assert office_kecamatan("desa:35.07.01.2001") == "35.07.01"
    assert office_kecamatan("kabupaten:35.07") is None
    assert office_kecamatan("agency:pkh") is None
    assert office_kecamatan("desa:not-a-code") is None


def test_decisions_are_served_in_position_order_whatever_order_they_were_scheduled_in() -> None:
    # Later deliveries with nearer due dates schedule decisions before earlier ones; reads
    # between the deliveries see each time every decision so far, in serving order.
    inbox = Inbox(35, InboxConfig(), SandboxClock(datetime(2026, 11, 2, 9, tzinfo=UTC)))
    seen = 0
    for n in range(300):
        due = date(2026, 11, 9) + timedelta(days=(n * 37) % 60)
        inbox.deliver(f"key-{n}", _delivery(n, due))
        if n % 50 == 49:
            listed = [e.position for e in inbox.decisions(visible_only=False)]
            assert listed == sorted(listed)
            assert len(listed) > seen
            seen = len(listed)
    assert seen == len({e.position for e in inbox.decisions(visible_only=False)})


def _delivery(n: int, due: date) -> HandoffDelivery:
    return HandoffDelivery(
        handoff_id=f"{n:032x}",
        office=f"kecamatan:35.07.{n % 20 + 1:02d}",
        kind="blt_pkh_overlap",
        subject_token=f"{n + 7:032x}",
        period="2026-Q4",
        sender="cettar-hub",
        due_date=due,
    )
