"""Office behaviour profiles and the kecamatan of an office key."""

from __future__ import annotations

from collections import Counter

from models.wilayah import get_region_registry
from sandbox.config import InboxConfig
from sandbox.inbox import PROFILES, office_kecamatan, office_profile


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
