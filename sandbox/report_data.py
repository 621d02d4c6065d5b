"""PKH facilitator reports (`GET /pkh/v1/reports`), filed about registry PKH households.

Each PKH household has one facilitator posted in its kecamatan. At known rates per
household, a facilitator files:
- a household update (changes seen: desil, address, members who left);
- "deceased" or "moved" about the pengurus (planted: still paid while enrolled);
- "deceased" about another member, who is not enrolled (near-miss);
- routine non-compliance or graduation notes (no check looks at them);
and, for families whose every enrolment was first issued suspended or ended, a "deceased"
report about the pengurus (near-miss while no enrolment is active).
"""

from __future__ import annotations

from datetime import date, timedelta
from typing import Any

from models.contracts.pkh import REPORTS
from sandbox.bad_records import Breakage, ReportBadKind, corrupt_report
from sandbox.households import Households, HouseholdView
from sandbox.names import address
from sandbox.seeding import Salted
from sandbox.source_paging import HouseholdSource, SourceRecord

__all__ = ["REPORT_PLANTS", "ReportSource"]

REPORT_PLANTS = ("household_update", "deceased", "moved", "deceased_member", "deceased_inactive")
"""What a report may be planted as; routine reports carry no plant."""

_S_PLAN, _S_INACTIVE, _S_DETAIL, _S_FACILITATOR, _S_BAD, _S_BAD_KIND, _S_BAD_HOW = range(
    0x301, 0x308
)

_NOTES = {
    "household_update": "Perubahan data keluarga hasil kunjungan rumah",
    "deceased": "Meninggal dunia; surat keterangan kematian dari desa",
    "moved": "Pindah domisili, tidak lagi tinggal bersama keluarga",
    "non_compliance": "Anak tidak hadir di sekolah lebih dari 15% hari efektif",
    "graduation": "Graduasi sejahtera mandiri: usaha keluarga berjalan",
}


class ReportSource(HouseholdSource):
    """The PKH facilitator system's reports, at most two per PKH household."""

    collection = REPORTS

    def __init__(self, households: Households) -> None:
        super().__init__(households)
        seed = households.seed
        self._plan = Salted(seed, _S_PLAN)
        self._inactive = Salted(seed, _S_INACTIVE)
        self._detail = Salted(seed, _S_DETAIL)
        self._facilitator = Salted(seed, _S_FACILITATOR)
        self._bad = Breakage(ReportBadKind, households.config.bad_rate, seed, _S_BAD, _S_BAD_KIND)
        self._bad_how = Salted(seed, _S_BAD_HOW)

    def plan(self, index: int) -> list[str]:
        """What the household's reports are about, in report order ("routine" for notes)."""
        h = self.households
        programmes = h.registry.programmes(index)
        if "PKH" not in programmes:
            return []
        cfg = h.config
        out: list[str] = []
        u = self._plan.unit1(index)
        edge = 0.0
        for plant, rate in (
            ("household_update", cfg.household_update_rate),
            ("deceased", cfg.deceased_report_rate),
            ("moved", cfg.moved_report_rate),
            ("deceased_member", cfg.deceased_member_rate),
            ("routine", cfg.routine_report_rate),
        ):
            edge += rate
            if u < edge:
                out.append(plant)
                break
        if self._inactive.unit1(index) < cfg.deceased_inactive_rate and all(
            h.registry.base_enrolment_status(index, p) != "active" for p in programmes
        ):
            out.append("deceased_inactive")
        return out

    def bad_kind(self, index: int, number: int) -> ReportBadKind | None:
        """How report `number` (1-based) of a household is broken on the wire, or None."""
        return self._bad.kind(index, number)

    def facilitator_id(self, view: HouseholdView) -> str:
        """The PKH facilitator posted in the household's kecamatan who follows it."""
        posted = self.households.config.facilitators_per_kecamatan
        n = 1 + self._facilitator.hash1(view.index) % posted
        return f"PKH-{view.kecamatan_digits}-{n:02d}"

    def records(self, index: int) -> list[SourceRecord]:
        """The household's reports in id order."""
        plans = self.plan(index)
        if not plans:
            return []
        h = self.households
        view = h.view(index)
        day = h.updated_time(index).date()
        out: list[SourceRecord] = []
        for number, plant in enumerate(plans, start=1):
            record = self._report(view, plant, number, day)
            if record is None:
                continue
            kind = self.bad_kind(index, number)
            if kind is not None:
                corrupt_report(record, kind, self._bad_how.rng(index, number))
            out.append(
                SourceRecord(
                    record,
                    None if kind is None else kind.value,
                    None if plant == "routine" else plant,
                )
            )
        return out

    def _report(
        self, view: HouseholdView, plant: str, number: int, day: date
    ) -> dict[str, Any] | None:
        draft = view.draft
        r = self._detail.rng(view.index, number)
        slot = draft.pengurus
        kind = plant
        changes: dict[str, Any] | None = None
        if plant == "deceased_member":
            others = [s for s in view.own_slots() if s != draft.pengurus]
            if not others:
                return None
            slot, kind = others[int(r.random() * len(others))], "deceased"
        elif plant == "deceased_inactive":
            kind = "deceased"
        elif plant == "routine":
            kind = "graduation" if r.random() < 0.35 else "non_compliance"
        elif plant == "household_update":
            changes = self._changes(view, r)
        member = draft.members[slot]
        return {
            "id": f"RPT-{view.desa_digits}-{view.index}-{number}",
            "kind": kind,
            "facilitator_id": self.facilitator_id(view),
            "kecamatan_code": view.kecamatan,
            "household_id": draft.id,
            "nik": member["nik"],
            "reported_on": (day - timedelta(days=int(r.random() * 21))).isoformat(),
            "changes": changes,
            "note": _NOTES[kind],
            "updated_at": self.households.updated_at(view.index),
        }

    @staticmethod
    def _changes(view: HouseholdView, r: Any) -> dict[str, Any]:
        draft = view.draft
        changes: dict[str, Any] = {}
        leavers = [
            s for s in view.own_slots() if s not in (0, draft.pengurus) and s != draft.copied_slot
        ]
        if leavers and r.random() < 0.4:
            changes["members_left"] = [draft.members[leavers[int(r.random() * len(leavers))]]["id"]]
        if r.random() < 0.4:
            changes["address"] = address(r, view.urban)
        if not changes or r.random() < 0.5:
            step = (-2, -1, 1, 2)[int(r.random() * 4)]
            desil = min(10, max(1, draft.desil + step))
            if desil == draft.desil:
                desil = min(10, max(1, draft.desil - step))
            changes["desil"] = desil
        return changes
