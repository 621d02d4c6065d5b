"""Where each synthetic household lives: a stride permutation of index onto the 8,494 villages.

Household ``i`` lives in village ``(i * stride + offset) mod V``. The stride is close to
``V / golden ratio``, so even a few hundred consecutive indices land all over the province.
The households of one village are then the arithmetic progression ``i ≡ r_v (mod V)``, and
those of one kecamatan are the union of its villages' progressions: a pattern that repeats
every ``V`` indices. Counting, seeking and enumerating a kecamatan are therefore O(log m)
arithmetic, with nothing stored per household.
"""

from __future__ import annotations

import bisect
import functools
import math
from collections.abc import Iterator
from dataclasses import dataclass

from models.wilayah import Region, RegionKind, RegionRegistry, get_region_registry
from sandbox.seeding import mix

__all__ = ["KecamatanPattern", "Layout", "layout_for"]

_INV_GOLDEN = (math.sqrt(5.0) - 1.0) / 2.0


@dataclass(frozen=True, slots=True)
class KecamatanPattern:
    """The sorted residues (mod V) of one kecamatan's households."""

    number: int
    code: str
    residues: tuple[int, ...]
    modulus: int

    def position(self, index: int) -> int:
        """How many of this kecamatan's households have an index below `index`."""
        q, r = divmod(index, self.modulus)
        return q * len(self.residues) + bisect.bisect_left(self.residues, r)

    def index_at(self, position: int) -> int:
        """The household index at a position of this kecamatan's ascending list."""
        q, j = divmod(position, len(self.residues))
        return q * self.modulus + self.residues[j]

    def indices(self, start: int, stop: int) -> Iterator[int]:
        """This kecamatan's household indices in [start, stop), ascending."""
        m = len(self.residues)
        q, j = divmod(self.position(start), m)
        base = q * self.modulus
        residues = self.residues
        while True:
            index = base + residues[j]
            if index >= stop:
                return
            yield index
            j += 1
            if j == m:
                j = 0
                base += self.modulus

    def count(self, households: int) -> int:
        """Households of this kecamatan among the first `households` indices."""
        return self.position(households)


class Layout:
    """Maps household indices to villages and kecamatan, and kecamatan to index patterns."""

    def __init__(self, seed: int, registry: RegionRegistry | None = None) -> None:
        reg = registry if registry is not None else get_region_registry()
        self.villages: list[Region] = reg.villages()
        self.kecamatan: list[Region] = reg.kecamatan()
        v = len(self.villages)
        self.modulus = v
        stride = max(1, round(v * _INV_GOLDEN))
        while math.gcd(stride, v) != 1:
            stride += 1
        self._stride = stride
        self._offset = mix(seed, 0x1A) % v
        inverse = pow(stride, -1, v)
        kec_number = {k.code: n for n, k in enumerate(self.kecamatan)}
        self.village_kecamatan: list[int] = [kec_number[str(r.parent_code)] for r in self.villages]
        self.village_digits: list[str] = [r.code.replace(".", "") for r in self.villages]
        self.village_urban: list[bool] = [r.kind is RegionKind.KELURAHAN for r in self.villages]
        residues: list[list[int]] = [[] for _ in self.kecamatan]
        for number, kec in enumerate(self.village_kecamatan):
            residues[kec].append(((number - self._offset) * inverse) % v)
        self.patterns: list[KecamatanPattern] = [
            KecamatanPattern(n, k.code, tuple(sorted(residues[n])), v)
            for n, k in enumerate(self.kecamatan)
        ]
        self.pattern_by_code: dict[str, KecamatanPattern] = {p.code: p for p in self.patterns}
        # Members registered elsewhere (and KKs issued elsewhere) all go to one partner
        # kecamatan per source, which keeps their NIK serials collision-free by construction.
        shift = 1 + mix(seed, 0x2B) % (len(self.kecamatan) - 1)
        self._partner_shift = shift

    def village_of(self, index: int) -> int:
        """Number (position in the sorted village list) of a household's village."""
        return (index * self._stride + self._offset) % self.modulus

    def kecamatan_of(self, index: int) -> int:
        """Number of a household's kecamatan."""
        return self.village_kecamatan[self.village_of(index)]

    def partner(self, kecamatan: int) -> int:
        """The other kecamatan where some of this kecamatan's people were first registered."""
        return (kecamatan + self._partner_shift) % len(self.kecamatan)

    def max_kecamatan_households(self, households: int) -> int:
        """The largest kecamatan's household count among the first `households` indices."""
        return max(p.count(households) for p in self.patterns)


@functools.lru_cache(maxsize=8)
def _shared_layout(seed: int) -> Layout:
    return Layout(seed)


def layout_for(seed: int, registry: RegionRegistry | None = None) -> Layout:
    """The layout of a seed; the one over the packaged regions is built once and shared."""
    # A layout is read-only after construction, so generators with the same seed share it.
    return _shared_layout(seed) if registry is None else Layout(seed, registry)
