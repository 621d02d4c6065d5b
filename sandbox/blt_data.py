"""BLT Dana Desa recipient lists (`GET /desa/v1/blt-recipients`), derived from the registry.

Only desa households can be listed (kelurahan get no Dana Desa). A clean list names
families without PKH/BPNT; on top of that the generator plants, at known rates:
- "overlap": an enrolled family listed for the registry period (named by its pengurus,
  matched by NIK and No. KK, or by its head, matched by No. KK only);
- "other_period": an enrolled family listed for the previous quarter (near-miss);
- "inactive": a family whose every enrolment was first issued suspended or ended (near-miss
  while it stays so; the registry's later epochs may reactivate it, which the truth follows).
"""

from __future__ import annotations

from typing import Any

from models.contracts.desa import BLT_RECIPIENTS
from sandbox.bad_records import BltBadKind, Breakage, corrupt_blt
from sandbox.households import Households
from sandbox.seeding import Salted
from sandbox.source_paging import HouseholdSource, SourceRecord

__all__ = ["BLT_PLANTS", "BltSource"]

BLT_PLANTS = ("overlap", "other_period", "inactive")
"""What a BLT record may be planted as; clean records carry no plant."""

_S_PLAN, _S_INACTIVE, _S_WHO, _S_STATUS, _S_BAD, _S_BAD_KIND, _S_BAD_HOW = range(0x201, 0x208)
# Among enrolled families listed on purpose, the share named by their head (No. KK match).
_BY_HEAD = 0.3


class BltSource(HouseholdSource):
    """The village system's BLT-DD lists, one record per listed family."""

    collection = BLT_RECIPIENTS

    def __init__(self, households: Households) -> None:
        super().__init__(households)
        seed = households.seed
        self._plan = Salted(seed, _S_PLAN)
        self._inactive = Salted(seed, _S_INACTIVE)
        self._who = Salted(seed, _S_WHO)
        self._status = Salted(seed, _S_STATUS)
        self._bad = Breakage(BltBadKind, households.config.bad_rate, seed, _S_BAD, _S_BAD_KIND)
        self._bad_how = Salted(seed, _S_BAD_HOW)

    def plan(self, index: int) -> tuple[str | None, str] | None:
        """(plant, period) of the household's listing, or None if it is not listed."""
        h = self.households
        if h.urban(index):
            return None
        cfg = h.config
        programmes = h.registry.programmes(index)
        u = self._plan.unit1(index)
        if not programmes:
            return (None, h.period) if u < cfg.blt_share else None
        if u < cfg.blt_overlap_rate:
            return "overlap", h.period
        if u < cfg.blt_overlap_rate + cfg.blt_other_period_rate:
            return "other_period", h.previous_period
        if self._inactive.unit1(index) < cfg.blt_inactive_rate and all(
            h.registry.base_enrolment_status(index, p) != "active" for p in programmes
        ):
            return "inactive", h.period
        return None

    def bad_kind(self, index: int) -> BltBadKind | None:
        """How the household's BLT record is broken on the wire, or None."""
        return self._bad.kind(index)

    def records(self, index: int) -> list[SourceRecord]:
        """The household's BLT-DD record, if it is listed."""
        plan = self.plan(index)
        if plan is None:
            return []
        plant, period = plan
        h = self.households
        view = h.view(index)
        draft = view.draft
        slot = draft.pengurus
        if draft.pengurus != 0 and self._who.unit1(index) < (
            _BY_HEAD if plant == "overlap" else 0.5
        ):
            slot = 0
        member = draft.members[slot]
        status = "approved"
        if plant is None:
            # Only lists of non-enrolled families vary: no check may depend on the status.
            x = self._status.unit1(index)
            status = "proposed" if x < 0.06 else "removed" if x < 0.10 else "approved"
        record: dict[str, Any] = {
            "id": f"BLT-{view.desa_digits}-{index}-{period}",
            "desa_code": view.desa,
            "period": period,
            "nik": member["nik"],
            "no_kk": draft.no_kk,
            "name": member["name"],
            "status": status,
            "updated_at": h.updated_at(index),
        }
        kind = self.bad_kind(index)
        if kind is not None:
            corrupt_blt(record, kind, self._bad_how.rng(index), h.kelurahan_near(index))
        return [SourceRecord(record, None if kind is None else kind.value, plant)]
