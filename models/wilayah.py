"""Kemendagri region codes of Jawa Timur (province 35): registry, normalisation, pydantic types."""

from __future__ import annotations

import csv
import functools
import io
import re
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from enum import StrEnum
from importlib.resources import files
from typing import Annotated

from pydantic import AfterValidator
from pydantic_core import PydanticCustomError

__all__ = [
    "KodeDesa",
    "KodeKecamatan",
    "KodeWilayah",
    "Region",
    "RegionKind",
    "RegionRegistry",
    "UnknownRegionError",
    "get_region_registry",
    "normalise_region_code",
]


class RegionKind(StrEnum):
    """Kind of administrative unit."""

    PROVINSI = "provinsi"
    KABUPATEN = "kabupaten"
    KOTA = "kota"
    KECAMATAN = "kecamatan"
    DESA = "desa"
    KELURAHAN = "kelurahan"


_LEVELS: dict[RegionKind, int] = {
    RegionKind.PROVINSI: 1,
    RegionKind.KABUPATEN: 2,
    RegionKind.KOTA: 2,
    RegionKind.KECAMATAN: 3,
    RegionKind.DESA: 4,
    RegionKind.KELURAHAN: 4,
}


@dataclass(frozen=True, slots=True)
class Region:
    """One administrative unit with its dotted Kemendagri code."""

    code: str
    name: str
    kind: RegionKind
    parent_code: str | None

    @property
    def level(self) -> int:
        """1 province, 2 kabupaten/kota, 3 kecamatan, 4 desa/kelurahan."""
        return _LEVELS[self.kind]


class UnknownRegionError(KeyError):
    """A region code that is well-formed (or not) but absent from the registry."""

    def __str__(self) -> str:
        # KeyError.__str__ would repr() the message and wrap it in quotes.
        return str(self.args[0]) if self.args else "unknown region code"


_DOTTED = re.compile(r"[0-9]{2}(?:\.[0-9]{2}(?:\.[0-9]{2}(?:\.[0-9]{4})?)?)?")
_UNDOTTED = re.compile(r"[0-9]{2}(?:[0-9]{2}(?:[0-9]{2}(?:[0-9]{4})?)?)?")
# Longest valid form is "35.78.01.1001" (13 characters).
_MAX_ECHO = 13


def normalise_region_code(value: str) -> str:
    """Return the dotted form of a region code given dotted or as 2/4/6/10 digits."""
    if not isinstance(value, str):
        raise ValueError(f"region code must be text, got {type(value).__name__}")
    text = value.strip()
    if _DOTTED.fullmatch(text):
        return text
    if _UNDOTTED.fullmatch(text):
        parts = [text[0:2], text[2:4], text[4:6], text[6:10]]
        return ".".join(p for p in parts if p)
    # Longer inputs are not echoed: a NIK pasted into a region column must not reach the logs.
    shown = repr(text) if len(text) <= _MAX_ECHO else f"of {len(text)} characters"
    raise ValueError(
        f"malformed region code {shown}: expected 2, 4, 6 or 10 ASCII digits "
        "or the dotted form 35 / 35.78 / 35.78.01 / 35.78.01.1001"
    )


def _read_csv(name: str) -> list[list[str]]:
    text = files("models").joinpath("data", "wilayah", name).read_text(encoding="utf-8")
    rows = list(csv.reader(io.StringIO(text)))
    return rows[1:]  # skip the header


class RegionRegistry:
    """In-memory index of regions by code, parent and kind."""

    def __init__(self, regions: Iterable[Region]) -> None:
        self._ordered: list[Region] = sorted(regions, key=lambda r: r.code)
        self._by_code: dict[str, Region] = {r.code: r for r in self._ordered}
        if len(self._by_code) != len(self._ordered):
            raise ValueError("duplicate region codes")
        self._children: dict[str, list[Region]] = {}
        self._by_kind: dict[RegionKind, list[Region]] = {k: [] for k in RegionKind}
        # Dotted codes sort depth-first, so appending in order keeps every list sorted.
        for region in self._ordered:
            self._by_kind[region.kind].append(region)
            if region.parent_code is not None:
                self._children.setdefault(region.parent_code, []).append(region)

    @classmethod
    def load(cls) -> RegionRegistry:
        """Build the registry from the packaged Jawa Timur CSV files."""
        # A dict lookup is several times faster than calling the enum for 8,494 rows.
        kinds = {kind.value: kind for kind in RegionKind}
        regions: list[Region] = []
        for code, parent, name in _read_csv("jatim_province.csv"):
            regions.append(Region(code, name, RegionKind.PROVINSI, parent or None))
        for code, parent, name, kind in _read_csv("jatim_regencies.csv"):
            regions.append(Region(code, name, kinds[kind], parent))
        for code, parent, name in _read_csv("jatim_districts.csv"):
            regions.append(Region(code, name, RegionKind.KECAMATAN, parent))
        for code, parent, name, kind in _read_csv("jatim_villages.csv"):
            regions.append(Region(code, name, kinds[kind], parent))
        return cls(regions)

    def get(self, code: str) -> Region | None:
        """Return the region for a dotted or undotted code, or None if unknown or malformed."""
        region = self._by_code.get(code)
        if region is not None:
            return region
        try:
            return self._by_code.get(normalise_region_code(code))
        except ValueError:
            return None

    def require(self, code: str) -> Region:
        """Return the region for a code or raise UnknownRegionError."""
        region = self.get(code)
        if region is None:
            try:
                shown = normalise_region_code(code)
            except ValueError as exc:
                raise UnknownRegionError(str(exc)) from None
            raise UnknownRegionError(f"unknown region code {shown}")
        return region

    def __contains__(self, code: object) -> bool:
        return isinstance(code, str) and self.get(code) is not None

    def __len__(self) -> int:
        return len(self._ordered)

    def __iter__(self) -> Iterator[Region]:
        return iter(self._ordered)

    def parent(self, code: str) -> Region | None:
        """Return the parent of a known region (None for a province)."""
        region = self.require(code)
        return None if region.parent_code is None else self._by_code.get(region.parent_code)

    def children(self, code: str) -> list[Region]:
        """Return the direct children of a known region, sorted by code."""
        return list(self._children.get(self.require(code).code, ()))

    def kabupaten_kota(self) -> list[Region]:
        """Return every kabupaten and kota, sorted by code."""
        return sorted(
            self._by_kind[RegionKind.KABUPATEN] + self._by_kind[RegionKind.KOTA],
            key=lambda r: r.code,
        )

    def kecamatan(self, kabupaten: str | None = None) -> list[Region]:
        """Return all kecamatan, or those of one kabupaten/kota, sorted by code."""
        if kabupaten is None:
            return list(self._by_kind[RegionKind.KECAMATAN])
        return self.children(self._require_level(kabupaten, 2, "kabupaten/kota").code)

    def villages(self, kecamatan: str | None = None) -> list[Region]:
        """Return all desa and kelurahan, or those of one kecamatan, sorted by code."""
        if kecamatan is None:
            return sorted(
                self._by_kind[RegionKind.DESA] + self._by_kind[RegionKind.KELURAHAN],
                key=lambda r: r.code,
            )
        return self.children(self._require_level(kecamatan, 3, "kecamatan").code)

    def kecamatan_of(self, code: str) -> Region | None:
        """Return the kecamatan containing a kecamatan or village code, or None."""
        return self._ancestor(code, 3)

    def kabupaten_of(self, code: str) -> Region | None:
        """Return the kabupaten/kota containing a code of level 2 or deeper, or None."""
        return self._ancestor(code, 2)

    def counts(self) -> dict[RegionKind, int]:
        """Return the number of regions of each kind."""
        return {kind: len(regions) for kind, regions in self._by_kind.items()}

    def _ancestor(self, code: str, level: int) -> Region | None:
        # Prefix lookup (same as walking parent_code) also works for a village code
        # missing from the list, e.g. one created after this data's vintage.
        dotted = normalise_region_code(code)
        parts = dotted.split(".")
        if len(parts) < level:
            return None
        return self._by_code.get(".".join(parts[:level]))

    def _require_level(self, code: str, level: int, expected: str) -> Region:
        region = self.require(code)
        if region.level != level:
            raise ValueError(f"{region.code} is a {region.kind}, expected a {expected} code")
        return region


@functools.cache
def get_region_registry() -> RegionRegistry:
    """Return the shared registry of Jawa Timur regions (loaded once)."""
    return RegionRegistry.load()


def _validated(value: str, kinds: frozenset[RegionKind] | None, expected: str) -> str:
    try:
        code = normalise_region_code(value)
    except ValueError as exc:
        raise PydanticCustomError("region_code_invalid", "{reason}", {"reason": str(exc)}) from None
    region = get_region_registry().get(code)
    if region is None:
        raise PydanticCustomError(
            "region_code_unknown", "unknown region code {code}", {"code": code}
        )
    if kinds is not None and region.kind not in kinds:
        raise PydanticCustomError(
            "region_code_kind",
            "{code} is a {kind}, expected a {expected} code",
            {"code": code, "kind": str(region.kind), "expected": expected},
        )
    return code


def _kode_wilayah(value: str) -> str:
    return _validated(value, None, "region")


def _kode_kecamatan(value: str) -> str:
    return _validated(value, frozenset({RegionKind.KECAMATAN}), "kecamatan")


def _kode_desa(value: str) -> str:
    return _validated(value, frozenset({RegionKind.DESA, RegionKind.KELURAHAN}), "desa/kelurahan")


KodeWilayah = Annotated[str, AfterValidator(_kode_wilayah)]
"""Known Jawa Timur region code of any level, normalised to the dotted form."""
KodeKecamatan = Annotated[str, AfterValidator(_kode_kecamatan)]
"""Known Jawa Timur kecamatan code, dotted (35.78.01)."""
KodeDesa = Annotated[str, AfterValidator(_kode_desa)]
"""Known Jawa Timur desa or kelurahan code, dotted (35.78.01.1001)."""
