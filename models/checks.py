"""Cross-programme checks: pure functions from synced rows (tokens only) to findings.

Each check groups its inputs once with dicts and sets (O(n)), returns findings in a
deterministic order and reports each subject once however often its inputs repeat.
People are named only by keyed tokens (`id_token`); evidence holds programme names,
region codes, record ids, counts and areas, with any NIK-like digit run masked.
"""

from __future__ import annotations

import functools
from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import date

from models.contracts.pkh import ReportKind
from models.contracts.registry import EnrolmentStatus, MemberStatus, Programme
from models.handoffs import HandoffKind, Office, OfficeKind, handoff_key, has_clear_id
from models.identity import mask_id, mask_ids_in_text
from models.wilayah import normalise_region_code

__all__ = [
    "DEFAULT_LAND_CAP_HA",
    "BltRecipient",
    "Enrolment",
    "Evidence",
    "FacilitatorReport",
    "FarmerNeed",
    "Finding",
    "Person",
    "ReportKind",
    "blt_overlaps",
    "deceased_or_moved_receiving",
    "farmer_conflicts",
    "household_updates_to_verify",
    "is_desa",
    "nik_in_multiple_households",
    "precision_recall",
]


Evidence = dict[str, str | int | float]
"""Masked or token-only facts behind a finding."""

DEFAULT_LAND_CAP_HA = 2.0
"""e-RDKK land-area ceiling for subsidised fertiliser, per farmer and season."""

# Areas arrive with a few decimals; rounding the sum keeps 1.2 + 0.8 from landing above 2.0.
_AREA_DECIMALS = 6
_PKH_AGENCY = "pkh"


# --- inputs ----------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Enrolment:
    """A PKH/BPNT enrolment of a household, paid to its pengurus, in one period."""

    nik_token: str
    kk_token: str
    programme: Programme
    period: str
    status: EnrolmentStatus
    desa_code: str
    household_id: str


@dataclass(frozen=True, slots=True)
class BltRecipient:
    """A KPM on a desa's BLT Dana Desa list for one period."""

    nik_token: str
    kk_token: str
    desa_code: str
    period: str
    record_id: str


@dataclass(frozen=True, slots=True)
class Person:
    """A registry household member and the life status the registry holds."""

    nik_token: str
    household_id: str
    desa_code: str
    status: MemberStatus


@dataclass(frozen=True, slots=True)
class FacilitatorReport:
    """A PKH facilitator's report about a person or household."""

    report_id: str
    kind: ReportKind
    nik_token: str
    household_id: str
    kecamatan_code: str
    facilitator_id: str
    reported_on: date


@dataclass(frozen=True, slots=True)
class FarmerNeed:
    """One e-RDKK line: a farmer's fertiliser need in a poktan for a season."""

    record_id: str
    nik_token: str
    poktan_id: str
    desa_code: str
    land_area_ha: float
    season: str


# --- output ----------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Finding:
    """Something offices must act on: kind, subject token, period, receivers and evidence."""

    kind: HandoffKind
    subject_token: str
    period: str
    receivers: tuple[Office, ...]
    # A dict cannot be hashed; findings hash on the other fields and compare on all.
    evidence: Evidence = field(default_factory=dict, hash=False)

    def __post_init__(self) -> None:
        if not self.receivers:
            raise ValueError("a finding needs at least one receiver")
        if len(set(self.receivers)) != len(self.receivers):
            raise ValueError("a finding lists each receiver once")
        # Findings become handoffs that offices read and keep: no clear NIK/No. KK may travel.
        if has_clear_id(self.subject_token):
            raise ValueError("subject_token looks like a clear NIK/No. KK: pass its id_token()")
        for name, value in self.evidence.items():
            if has_clear_id(str(value)):
                raise ValueError(f"evidence {name!r} holds a clear NIK/No. KK: mask it first")

    @property
    def keys(self) -> tuple[str, ...]:
        """One idempotency key per receiver, in receiver order."""
        return tuple(
            handoff_key(self.kind, self.subject_token, self.period, r) for r in self.receivers
        )


# --- helpers ---------------------------------------------------------------------------------


def is_desa(code: str) -> bool:
    """True for a desa or desa adat code (unit 2xxx/3xxx); False for kelurahan and others."""
    # Kelurahan (1xxx) get no Dana Desa, so BLT-DD rows there are rejected at validation;
    # the checks below assume that has happened and do not filter them again.
    dotted = normalise_region_code(code)
    parts = dotted.split(".")
    return len(parts) == 4 and parts[3][:1] in ("2", "3")


def precision_recall(found: Iterable[str], planted: Iterable[str]) -> tuple[float, float]:
    """Precision and recall of found keys against planted ones (1.0 when a side is empty)."""
    got, want = set(found), set(planted)
    hits = len(got & want)
    precision = hits / len(got) if got else 1.0
    recall = hits / len(want) if want else 1.0
    return precision, recall


@functools.lru_cache(maxsize=8192)
def _office(kind: OfficeKind, code: str) -> Office:
    # Offices are immutable and validated on creation: build each one once per process.
    return Office(kind=kind, code=code)


@functools.lru_cache(maxsize=65536)
def _desa(code: str) -> str:
    return normalise_region_code(code)


def _kecamatan_of(desa_code: str) -> str:
    return _desa(desa_code)[:8]


def _kecamatan_offices(desa_codes: Iterable[str]) -> tuple[Office, ...]:
    kecs = sorted({_kecamatan_of(c) for c in desa_codes})
    return tuple(_office(OfficeKind.KECAMATAN, k) for k in kecs)


def _safe(text: str) -> str:
    """Evidence text with NIK/No. KK-like digit runs masked."""
    if not has_clear_id(text):
        return text
    masked = mask_ids_in_text(text)
    # Runs longer than 16 digits are not ids mask_ids_in_text knows: hide the whole value.
    return masked if not has_clear_id(masked) else mask_id(masked)


def _join(values: Iterable[str]) -> str:
    return _safe(",".join(sorted(set(values))))


# --- checks ----------------------------------------------------------------------------------


def blt_overlaps(
    blt: Iterable[BltRecipient], enrolments: Iterable[Enrolment], period: str
) -> list[Finding]:
    """BLT-DD recipients whose family (NIK or No. KK) has an active PKH/BPNT enrolment."""
    by_nik: dict[str, set[str]] = defaultdict(set)
    by_kk: dict[str, set[str]] = defaultdict(set)
    for e in enrolments:
        if e.period != period or e.status != "active":
            continue
        # Empty tokens would make every row without a No. KK match every other one.
        if e.nik_token:
            by_nik[e.nik_token].add(e.programme)
        if e.kk_token:
            by_kk[e.kk_token].add(e.programme)

    programmes: dict[str, set[str]] = defaultdict(set)
    matched_by: dict[str, set[str]] = defaultdict(set)
    desas: dict[str, set[str]] = defaultdict(set)
    records: dict[str, set[str]] = defaultdict(set)
    for r in blt:
        if r.period != period or not r.nik_token:
            continue
        # The KPM is the family: the BLT name may be another member than PKH's pengurus.
        via_nik = by_nik.get(r.nik_token)
        via_kk = by_kk.get(r.kk_token) if r.kk_token else None
        if not via_nik and not via_kk:
            continue
        subject = r.nik_token
        if via_nik:
            programmes[subject] |= via_nik
            matched_by[subject].add("nik")
        if via_kk:
            programmes[subject] |= via_kk
            matched_by[subject].add("kk")
        desas[subject].add(_desa(r.desa_code))
        records[subject].add(r.record_id)

    findings: list[Finding] = []
    for subject in sorted(programmes):
        receivers: list[Office] = []
        for code in sorted(desas[subject]):
            kec = _office(OfficeKind.KECAMATAN, code[:8])
            if kec not in receivers:
                receivers.append(kec)
            receivers.append(_office(OfficeKind.DESA, code))
        findings.append(
            Finding(
                kind=HandoffKind.BLT_PKH_OVERLAP,
                subject_token=subject,
                period=period,
                receivers=tuple(receivers),
                evidence={
                    "programmes": _join(programmes[subject]),
                    "matched_by": _join(matched_by[subject]),
                    "desa_codes": _join(desas[subject]),
                    "blt_record_ids": _join(records[subject]),
                },
            )
        )
    return findings


def nik_in_multiple_households(people: Iterable[Person], period: str) -> list[Finding]:
    """One NIK in two or more households or desa among living registry members."""
    households: dict[str, set[str]] = defaultdict(set)
    desas: dict[str, set[str]] = defaultdict(set)
    for p in people:
        # A deceased member not yet removed is another problem, reported by its own check.
        if p.status == "deceased" or not p.nik_token:
            continue
        households[p.nik_token].add(p.household_id)
        desas[p.nik_token].add(_desa(p.desa_code))

    findings: list[Finding] = []
    for token in sorted(households):
        hh, ds = households[token], desas[token]
        if len(hh) < 2 and len(ds) < 2:
            continue
        findings.append(
            Finding(
                kind=HandoffKind.NIK_MULTIPLE_HOUSEHOLDS,
                subject_token=token,
                period=period,
                receivers=_kecamatan_offices(ds),
                evidence={
                    "household_count": len(hh),
                    "household_ids": _join(hh),
                    "desa_count": len(ds),
                    "desa_codes": _join(ds),
                },
            )
        )
    return findings


def deceased_or_moved_receiving(
    reports: Iterable[FacilitatorReport],
    people: Iterable[Person],
    enrolments: Iterable[Enrolment],
    period: str,
) -> list[Finding]:
    """Pengurus reported deceased or moved out who still hold an active enrolment."""
    deceased: dict[str, set[str]] = defaultdict(set)  # token -> sources
    # Moving is about a household: the enrolment of the household moved out of is wrong,
    # one already moved to the new household is not.
    moved: dict[tuple[str, str], set[str]] = defaultdict(set)
    dead_reports: dict[str, set[str]] = defaultdict(set)
    moved_reports: dict[tuple[str, str], set[str]] = defaultdict(set)
    for rep in reports:
        if not rep.nik_token:
            continue
        if rep.kind == "deceased":
            deceased[rep.nik_token].add("report")
            dead_reports[rep.nik_token].add(rep.report_id)
        elif rep.kind == "moved":
            moved[rep.nik_token, rep.household_id].add("report")
            moved_reports[rep.nik_token, rep.household_id].add(rep.report_id)
    for p in people:
        if not p.nik_token:
            continue
        if p.status == "deceased":
            deceased[p.nik_token].add("registry")
        elif p.status == "moved":
            moved[p.nik_token, p.household_id].add("registry")

    # (kind, token) -> what the finding lists
    programmes: dict[tuple[HandoffKind, str], set[str]] = defaultdict(set)
    desas: dict[tuple[HandoffKind, str], set[str]] = defaultdict(set)
    households: dict[tuple[HandoffKind, str], set[str]] = defaultdict(set)
    sources: dict[tuple[HandoffKind, str], set[str]] = defaultdict(set)
    report_ids: dict[tuple[HandoffKind, str], set[str]] = defaultdict(set)
    for e in enrolments:
        if e.period != period or e.status != "active" or not e.nik_token:
            continue
        # Death outranks a move: someone both dead and moved is reported as deceased only.
        if e.nik_token in deceased:
            group = (HandoffKind.DECEASED_RECEIVING_AID, e.nik_token)
            found = deceased[e.nik_token]
            report_ids[group] |= dead_reports.get(e.nik_token, set())
        elif (e.nik_token, e.household_id) in moved:
            group = (HandoffKind.MOVED_RECEIVING_AID, e.nik_token)
            found = moved[e.nik_token, e.household_id]
            report_ids[group] |= moved_reports.get((e.nik_token, e.household_id), set())
        else:
            continue
        programmes[group].add(e.programme)
        desas[group].add(_desa(e.desa_code))
        households[group].add(e.household_id)
        sources[group] |= found

    findings: list[Finding] = []
    for group in sorted(programmes):
        kind, token = group
        receivers = _kecamatan_offices(desas[group])
        # PKH payments are stopped by the programme itself, not only by the kecamatan.
        if "PKH" in programmes[group]:
            receivers += (_office(OfficeKind.AGENCY, _PKH_AGENCY),)
        evidence: Evidence = {
            "programmes": _join(programmes[group]),
            "desa_codes": _join(desas[group]),
            "household_ids": _join(households[group]),
            "sources": _join(sources[group]),
        }
        if report_ids[group]:
            evidence["report_ids"] = _join(report_ids[group])
        findings.append(
            Finding(
                kind=kind,
                subject_token=token,
                period=period,
                receivers=receivers,
                evidence=evidence,
            )
        )
    return findings


def farmer_conflicts(
    needs: Iterable[FarmerNeed], cap_ha: float = DEFAULT_LAND_CAP_HA
) -> list[Finding]:
    """Farmers in two or more poktan, or over the land cap, within one season."""
    poktans: dict[tuple[str, str], set[str]] = defaultdict(set)
    areas: dict[tuple[str, str], dict[str, float]] = defaultdict(dict)
    desas: dict[tuple[str, str], set[str]] = defaultdict(set)
    for n in needs:
        if not n.nik_token:
            continue
        group = (n.season, n.nik_token)
        poktans[group].add(n.poktan_id)
        # A record synced twice is one plot, not two: count each record id once.
        areas[group].setdefault(n.record_id, n.land_area_ha)
        desas[group].add(_desa(n.desa_code))

    findings: list[Finding] = []
    for group in sorted(poktans):
        season, token = group
        pk, ds, plots = poktans[group], desas[group], areas[group]
        total = round(sum(plots.values()), _AREA_DECIMALS)
        receivers = _kecamatan_offices(ds)
        base: Evidence = {
            "poktan_count": len(pk),
            "poktan_ids": _join(pk),
            "desa_codes": _join(ds),
            "record_ids": _join(plots),
            "land_area_ha": total,
        }
        if len(pk) >= 2:
            findings.append(
                Finding(HandoffKind.FARMER_MULTIPLE_GROUPS, token, season, receivers, dict(base))
            )
        if total > cap_ha:
            findings.append(
                Finding(
                    HandoffKind.FARMER_OVER_LAND_CAP,
                    token,
                    season,
                    receivers,
                    {**base, "cap_ha": cap_ha},
                )
            )
    return findings


def household_updates_to_verify(reports: Iterable[FacilitatorReport]) -> list[Finding]:
    """Facilitator household updates for the kecamatan to verify, per household and day."""
    # The period is the report day, so a later update is a new handoff rather than a
    # replay of one the kecamatan may already have settled.
    report_ids: dict[tuple[str, date], set[str]] = defaultdict(set)
    facilitators: dict[tuple[str, date], set[str]] = defaultdict(set)
    kecamatans: dict[tuple[str, date], set[str]] = defaultdict(set)
    for rep in reports:
        if rep.kind != "household_update" or not rep.household_id:
            continue
        group = (rep.household_id, rep.reported_on)
        report_ids[group].add(rep.report_id)
        facilitators[group].add(rep.facilitator_id)
        kecamatans[group].add(rep.kecamatan_code)

    findings: list[Finding] = []
    for group in sorted(report_ids):
        household_id, day = group
        offices = {_office(OfficeKind.KECAMATAN, k) for k in kecamatans[group]}
        findings.append(
            Finding(
                kind=HandoffKind.HOUSEHOLD_UPDATE_VERIFICATION,
                subject_token=household_id,
                period=day.isoformat(),
                receivers=tuple(sorted(offices, key=lambda o: o.code)),
                evidence={
                    "report_count": len(report_ids[group]),
                    "report_ids": _join(report_ids[group]),
                    "facilitator_ids": _join(facilitators[group]),
                },
            )
        )
    return findings
