"""Stateless seeded hashing: every synthetic value is a pure function of (seed, salt, index)."""

from __future__ import annotations

import math
import random

__all__ = ["Salted", "mix", "unit"]

_MASK = (1 << 64) - 1
_GOLDEN = 0x9E3779B97F4A7C15
_TWO_POW_53 = float(1 << 53)


def _splitmix(x: int) -> int:
    x = (x + _GOLDEN) & _MASK
    x = ((x ^ (x >> 30)) * 0xBF58476D1CE4E5B9) & _MASK
    x = ((x ^ (x >> 27)) * 0x94D049BB133111EB) & _MASK
    return x ^ (x >> 31)


def mix(*parts: int) -> int:
    """Hash integers into one well-spread 64-bit value (order matters)."""
    h = 0
    for part in parts:
        h = _splitmix(h ^ (part & _MASK))
    return h


def unit(*parts: int) -> float:
    """A uniform float in [0, 1) determined by the parts."""
    return (mix(*parts) >> 11) / _TWO_POW_53


class Salted:
    """A hash family with its leading parts (seed, salt) folded in once.

    ``Salted(a, b).hash(c)`` equals ``mix(a, b, c)``; hot loops save the repeated prefix work.
    """

    __slots__ = ("prefix",)

    def __init__(self, *parts: int) -> None:
        self.prefix = mix(*parts)

    def hash(self, *parts: int) -> int:
        """The 64-bit hash of the prefix followed by the parts."""
        h = self.prefix
        for part in parts:
            h = _splitmix(h ^ (part & _MASK))
        return h

    def hash1(self, part: int) -> int:
        """The hash of the prefix and one non-negative part (the hot path)."""
        return _splitmix(self.prefix ^ part)

    def unit1(self, part: int) -> float:
        """A uniform float in [0, 1) for one non-negative part."""
        return (_splitmix(self.prefix ^ part) >> 11) / _TWO_POW_53

    def unit(self, *parts: int) -> float:
        """A uniform float in [0, 1) for the parts."""
        return (self.hash(*parts) >> 11) / _TWO_POW_53

    def rng(self, *parts: int) -> random.Random:
        """A private random stream for the parts."""
        return random.Random(self.hash(*parts))

    def geometric(self, p: float, *parts: int) -> int | None:
        """Trials up to and including the first success (>= 1), or None when p is 0."""
        if p <= 0.0:
            return None
        if p >= 1.0:
            return 1
        # 1 - u lies in (0, 1], so the logarithm is finite.
        u = 1.0 - self.unit(*parts)
        return 1 + int(math.log(u) / math.log1p(-p))
