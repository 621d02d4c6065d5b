"""The region scope of a run: the whole province, or some kabupaten/kota and/or kecamatan.

One type for every flow, the CLI and the deployment forms (the Prefect UI renders it as a
form). A run for a scope touches only the data of its regions and the findings that involve
them: a finding that spans two regions (one NIK in two desa) still goes to both offices.
"""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field, field_validator

from models.wilayah import KodeKecamatan, KodeWilayah, get_region_registry

__all__ = ["WHOLE_PROVINCE", "RegionScope"]


class RegionScope(BaseModel):
    """Regions a run covers: the whole province (default), some kabupaten/kota or kecamatan."""

    model_config = ConfigDict(frozen=True)

    kabupaten: list[KodeWilayah] = Field(
        default_factory=list, description="Kabupaten/kota codes like 35.78; empty = all."
    )
    kecamatan: list[KodeKecamatan] = Field(
        default_factory=list, description="Kecamatan codes like 35.78.01 (added to kabupaten)."
    )

    @field_validator("kabupaten")
    @classmethod
    def _kabupaten_level(cls, codes: list[str]) -> list[str]:
        for code in codes:
            if code.count(".") != 1:
                raise ValueError(f"{code} is not a kabupaten/kota code (expected e.g. 35.78)")
        return codes

    @property
    def is_province(self) -> bool:
        """True when no region is named: the whole province."""
        return not self.kabupaten and not self.kecamatan

    def label(self) -> str:
        """Short human label for run names and artifacts."""
        if self.is_province:
            return "province"
        parts = [*self.kabupaten, *self.kecamatan]
        return ",".join(parts[:3]) + (f" +{len(parts) - 3}" if len(parts) > 3 else "")

    def covers_kecamatan(self, code: str) -> bool:
        """True when the kecamatan `code` (35.78.01) lies in the scope."""
        return self.is_province or code in self.kecamatan or code[:5] in self.kabupaten

    def partitions(self) -> dict[str, list[str]]:
        """The scope's kecamatan codes grouped by kabupaten/kota: one sync task per group."""
        reg = get_region_registry()
        groups: dict[str, set[str]] = {}
        if self.is_province:
            for kab in reg.kabupaten_kota():
                groups[kab.code] = {k.code for k in reg.kecamatan(kab.code)}
        for kab_code in self.kabupaten:
            if reg.require(kab_code).level != 2:
                raise ValueError(f"{kab_code} is not a kabupaten/kota code")
            groups.setdefault(kab_code, set()).update(k.code for k in reg.kecamatan(kab_code))
        for kec in self.kecamatan:
            groups.setdefault(kec[:5], set()).add(kec)
        return {kab: sorted(kecs) for kab, kecs in sorted(groups.items())}


WHOLE_PROVINCE = RegionScope()
"""The default scope: every kabupaten/kota and kecamatan of Jawa Timur."""
