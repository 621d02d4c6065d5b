"""Ground truth of the coordination data: what a correct checker must find, and the counts.

The truth is computed by brute force over what the sandbox serves (valid records only, at
the current epoch), following the semantics of `models.checks`, so conflicts that arise by
accident are counted like planted ones. Everything planted stays inside one kecamatan
(duplicate NIKs copy a person of the kecamatan's previous household; every other record
belongs to its household's desa), so the truth of several kecamatan is the union of theirs.

NIKs appear in clear here: this is the sandbox's admin view of its own synthetic people.
"""

from __future__ import annotations

from collections import Counter, defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import date
from typing import Any

from pydantic import BaseModel, Field

from models.handoffs import HandoffKind
from models.wilayah import normalise_region_code
from sandbox.coordination_data import CoordinationData
from sandbox.inbox import PROFILES, office_profile
from sandbox.source_paging import SourceRecord

__all__ = [
    "CheckTruth",
    "CoordinationTruth",
    "FanOutTruth",
    "OfficeTruth",
    "SourceTruth",
    "TruthFinding",
    "compute_truth",
]

LAND_CAP_HA = 2.0
_AREA_DECIMALS = 6
_PKH_AGENCY = "agency:pkh"


class TruthFinding(BaseModel):
    """One finding a correct checker produces: subject, period and receiving offices."""

    subject: str
    period: str
    receivers: list[str]


class CheckTruth(BaseModel):
    """Exact expectation for one check kind.

    `subjects` is what a correct checker finds on the valid records (NIKs, or household ids
    for household updates); `planted` the part the generator put there on purpose and
    `accidental` the rest; `near_misses` look-alikes it must not flag.
    """

    kind: str
    findings: list[TruthFinding] = Field(default_factory=list)
    subjects: list[str] = Field(default_factory=list)
    planted: list[str] = Field(default_factory=list)
    accidental: list[str] = Field(default_factory=list)
    near_misses: list[str] = Field(default_factory=list)
    # Source records behind the findings, where the check names them (household updates).
    record_ids: list[str] = Field(default_factory=list)


class SourceTruth(BaseModel):
    """Records one collection serves: valid, invalid by kind, and valid ones by plant."""

    records: int = 0
    valid: int = 0
    invalid: int = 0
    invalid_by_kind: dict[str, int] = Field(default_factory=dict)
    valid_by_plant: dict[str, int] = Field(default_factory=dict)


class FanOutTruth(BaseModel):
    """Statistics requests and how the addressed desa answer (valid requests only)."""

    requests: int = 0
    valid_requests: int = 0
    desa_handoffs: int = 0
    on_time: int = 0
    late: int = 0
    never: int = 0
    # The desa answered, but its submission is invalid (quarantined by the hub).
    invalid_submissions: int = 0


class OfficeTruth(BaseModel):
    """Behaviour profiles of the offices in scope (kecamatan, desa, kabupaten, agency)."""

    shares: dict[str, float]
    counts: dict[str, int]
    profiles: dict[str, str]


class CoordinationTruth(BaseModel):
    """Everything the coordination sandbox planted, for the whole province or some kecamatan."""

    epoch: int
    period: str
    kecamatan: list[str] | None
    checks: dict[str, CheckTruth]
    sources: dict[str, SourceTruth]
    data_requests: FanOutTruth
    offices: OfficeTruth


@dataclass(slots=True)
class _Scope:
    """The valid records of the scope, in the shapes the checks read."""

    people: list[tuple[str, str, str, str]] = field(default_factory=list)  # nik, hh, desa, st
    enrolments: list[dict[str, Any]] = field(default_factory=list)
    copies: list[tuple[str, str]] = field(default_factory=list)  # nik, base status of copy
    blt: list[SourceRecord] = field(default_factory=list)
    reports: list[SourceRecord] = field(default_factory=list)
    farmers: list[SourceRecord] = field(default_factory=list)


def _kec_office(desa: str) -> str:
    return f"kecamatan:{desa[:8]}"


def _kec_offices(desas: Iterable[str]) -> list[str]:
    return [f"kecamatan:{k}" for k in sorted({d[:8] for d in desas})]


def _count(source: SourceTruth, item: SourceRecord) -> None:
    source.records += 1
    if item.bad is None:
        source.valid += 1
        if item.plant is not None:
            source.valid_by_plant[item.plant] = source.valid_by_plant.get(item.plant, 0) + 1
    else:
        source.invalid += 1
        source.invalid_by_kind[item.bad] = source.invalid_by_kind.get(item.bad, 0) + 1


def _check(
    kind: HandoffKind,
    findings: dict[tuple[str, str], list[str]],
    intended: set[str],
    looks_alike: set[str],
) -> CheckTruth:
    subjects = sorted({s for s, _ in findings})
    found = set(subjects)
    return CheckTruth(
        kind=kind.value,
        findings=[
            TruthFinding(subject=s, period=p, receivers=r) for (s, p), r in sorted(findings.items())
        ],
        subjects=subjects,
        planted=sorted(intended & found),
        accidental=sorted(found - intended),
        near_misses=sorted((looks_alike | intended) - found),
    )


def _blt(scope: _Scope, period: str) -> CheckTruth:
    active = [e for e in scope.enrolments if e["period"] == period and e["status"] == "active"]
    by_nik = {e["nik_pengurus"] for e in active}
    by_kk = {e["no_kk"] for e in active}
    desas: defaultdict[str, set[str]] = defaultdict(set)
    intended: set[str] = set()
    looks_alike: set[str] = set()
    for item in scope.blt:
        r = item.record
        if item.plant == "overlap":
            intended.add(r["nik"])
        elif item.plant is not None:
            looks_alike.add(r["nik"])
        if r["period"] == period and (r["nik"] in by_nik or r["no_kk"] in by_kk):
            desas[r["nik"]].add(r["desa_code"])
    findings: dict[tuple[str, str], list[str]] = {}
    for subject, codes in desas.items():
        receivers: list[str] = []
        for code in sorted(codes):
            if _kec_office(code) not in receivers:
                receivers.append(_kec_office(code))
            receivers.append(f"desa:{code}")
        findings[subject, period] = receivers
    return _check(HandoffKind.BLT_PKH_OVERLAP, findings, intended, looks_alike)


def _duplicates(scope: _Scope, period: str) -> CheckTruth:
    households: defaultdict[str, set[str]] = defaultdict(set)
    desas: defaultdict[str, set[str]] = defaultdict(set)
    for nik, household, desa, status in scope.people:
        if status != "deceased":
            households[nik].add(household)
            desas[nik].add(desa)
    findings = {
        (nik, period): _kec_offices(desas[nik])
        for nik in households
        if len(households[nik]) > 1 or len(desas[nik]) > 1
    }
    intended = {nik for nik, status in scope.copies if status == "active"}
    looks_alike = {nik for nik, status in scope.copies if status != "active"}
    return _check(HandoffKind.NIK_MULTIPLE_HOUSEHOLDS, findings, intended, looks_alike)


def _receiving(scope: _Scope, period: str) -> tuple[CheckTruth, CheckTruth]:
    deceased: set[str] = set()
    moved: set[tuple[str, str]] = set()
    intended: dict[HandoffKind, set[str]] = {
        HandoffKind.DECEASED_RECEIVING_AID: set(),
        HandoffKind.MOVED_RECEIVING_AID: set(),
    }
    looks_alike: set[str] = set()
    for item in scope.reports:
        r = item.record
        if r["kind"] == "deceased":
            deceased.add(r["nik"])
        elif r["kind"] == "moved":
            moved.add((r["nik"], r["household_id"]))
        if item.plant == "deceased":
            intended[HandoffKind.DECEASED_RECEIVING_AID].add(r["nik"])
        elif item.plant == "moved":
            intended[HandoffKind.MOVED_RECEIVING_AID].add(r["nik"])
        elif item.plant in ("deceased_member", "deceased_inactive"):
            looks_alike.add(r["nik"])
    for nik, household, _, status in scope.people:
        if status == "deceased":
            deceased.add(nik)
        elif status == "moved":
            moved.add((nik, household))
    desas: defaultdict[tuple[HandoffKind, str], set[str]] = defaultdict(set)
    programmes: defaultdict[tuple[HandoffKind, str], set[str]] = defaultdict(set)
    for e in scope.enrolments:
        if e["period"] != period or e["status"] != "active":
            continue
        nik = e["nik_pengurus"]
        # Death outranks a move, as in the check.
        if nik in deceased:
            group = (HandoffKind.DECEASED_RECEIVING_AID, nik)
        elif (nik, e["household_id"]) in moved:
            group = (HandoffKind.MOVED_RECEIVING_AID, nik)
        else:
            continue
        desas[group].add(e["desa_code"])
        programmes[group].add(e["programme"])
    out: list[CheckTruth] = []
    for kind in (HandoffKind.DECEASED_RECEIVING_AID, HandoffKind.MOVED_RECEIVING_AID):
        findings: dict[tuple[str, str], list[str]] = {}
        for (k, nik), codes in desas.items():
            if k is kind:
                receivers = _kec_offices(codes)
                if "PKH" in programmes[k, nik]:
                    receivers.append(_PKH_AGENCY)
                findings[nik, period] = receivers
        alike = looks_alike if kind is HandoffKind.DECEASED_RECEIVING_AID else set()
        out.append(_check(kind, findings, intended[kind], alike))
    return out[0], out[1]


def _farmers(scope: _Scope) -> tuple[CheckTruth, CheckTruth]:
    poktans: defaultdict[tuple[str, str], set[str]] = defaultdict(set)
    areas: defaultdict[tuple[str, str], dict[str, float]] = defaultdict(dict)
    desas: defaultdict[tuple[str, str], set[str]] = defaultdict(set)
    plants: defaultdict[str, set[str]] = defaultdict(set)
    for item in scope.farmers:
        r = item.record
        group = (r["nik"], r["season"])
        poktans[group].add(r["poktan_id"])
        areas[group].setdefault(r["id"], float(r["land_area_ha"]))
        desas[group].add(r["desa_code"])
        if item.plant is not None:
            plants[item.plant].add(r["nik"])
    groups: dict[tuple[str, str], list[str]] = {}
    over: dict[tuple[str, str], list[str]] = {}
    for group, pk in poktans.items():
        if len(pk) > 1:
            groups[group] = _kec_offices(desas[group])
        if round(sum(areas[group].values()), _AREA_DECIMALS) > LAND_CAP_HA:
            over[group] = _kec_offices(desas[group])
    return (
        _check(
            HandoffKind.FARMER_MULTIPLE_GROUPS,
            groups,
            plants["two_groups"],
            plants["cross_season"],
        ),
        _check(HandoffKind.FARMER_OVER_LAND_CAP, over, plants["over_cap"], plants["exact_cap"]),
    )


def _household_updates(scope: _Scope) -> CheckTruth:
    report_ids: defaultdict[tuple[str, str], list[str]] = defaultdict(list)
    offices: defaultdict[tuple[str, str], set[str]] = defaultdict(set)
    for item in scope.reports:
        r = item.record
        if r["kind"] != "household_update":
            continue
        group = (r["household_id"], date.fromisoformat(r["reported_on"]).isoformat())
        report_ids[group].append(r["id"])
        offices[group].add(f"kecamatan:{r['kecamatan_code']}")
    findings = {group: sorted(codes) for group, codes in offices.items()}
    intended = {
        item.record["household_id"] for item in scope.reports if item.plant == "household_update"
    }
    truth = _check(HandoffKind.HOUSEHOLD_UPDATE_VERIFICATION, findings, intended, set())
    truth.record_ids = sorted(i for ids in report_ids.values() for i in ids)
    return truth


def _kecamatan_codes(data: CoordinationData, kecamatan: Sequence[str] | None) -> list[str]:
    known = [k.code for k in data.registry.layout.kecamatan]
    if kecamatan is None:
        return known
    codes = sorted({normalise_region_code(k) for k in kecamatan})
    unknown = sorted(set(codes) - set(known))
    if unknown:
        raise ValueError(f"unknown kecamatan: {', '.join(unknown[:5])}")
    return codes


def _registry_scope(data: CoordinationData, kecamatan: str, scope: _Scope) -> None:
    registry = data.registry
    for index in registry.indices(kecamatan):
        household = registry.household(index)
        if registry.bad_kind(index) is None:
            hid, desa = household["id"], household["desa_code"]
            scope.people.extend((m["nik"], hid, desa, m["status"]) for m in household["members"])
        for record in registry.recipients(index):
            if registry.recipient_bad_kind(index, record["programme"]) is None:
                scope.enrolments.append(record)
        draft = registry.draft(index)
        if draft.copied_slot is not None:
            copy = draft.members[draft.copied_slot]
            scope.copies.append((copy["nik"], copy["status"]))


def compute_truth(
    data: CoordinationData, kecamatan: Sequence[str] | None = None
) -> CoordinationTruth:
    """The exact coordination truth of `data` at its registry's current epoch."""
    codes = _kecamatan_codes(data, kecamatan)
    scope = _Scope()
    names = {
        "pkh/reports": data.reports,
        "desa/blt-recipients": data.blt,
        "pertanian/farmer-needs": data.farmers,
    }
    sources = {name: SourceTruth() for name in (*names, "statistik/data-requests")}
    sources["statistik/submissions"] = SourceTruth()
    fan_out = FanOutTruth()
    targets = {"pkh/reports": scope.reports, "desa/blt-recipients": scope.blt}
    targets["pertanian/farmer-needs"] = scope.farmers
    for code in codes:
        _registry_scope(data, code, scope)
        for name, source in names.items():
            for item in source.all_records(code):
                _count(sources[name], item)
                if item.bad is None:
                    targets[name].append(item)
        for request in data.statistik.requests(data.statistik.number(code)):
            _count(sources["statistik/data-requests"], request.item)
            fan_out.requests += 1
            valid = request.item.bad is None
            if valid:
                fan_out.valid_requests += 1
                fan_out.desa_handoffs += len(request.answers)
            for answer in request.answers:
                if answer.submission is not None:
                    _count(sources["statistik/submissions"], answer.submission)
                if not valid:
                    continue
                if answer.submission is None:
                    fan_out.never += 1
                elif answer.submission.bad is not None:
                    fan_out.invalid_submissions += 1
                elif answer.outcome == "on_time":
                    fan_out.on_time += 1
                else:
                    fan_out.late += 1

    period = data.households.period
    deceased, moved = _receiving(scope, period)
    multiple_groups, over_cap = _farmers(scope)
    checks = [
        _blt(scope, period),
        _duplicates(scope, period),
        deceased,
        moved,
        multiple_groups,
        over_cap,
        _household_updates(scope),
    ]
    return CoordinationTruth(
        epoch=data.registry.epoch,
        period=period,
        kecamatan=None if kecamatan is None else codes,
        checks={c.kind: c for c in checks},
        sources=sources,
        data_requests=fan_out,
        offices=_offices(data, codes),
    )


def _offices(data: CoordinationData, codes: list[str]) -> OfficeTruth:
    seed, inbox = data.registry.seed, data.config.inbox
    layout = data.registry.layout
    wanted = set(codes)
    keys = [f"kecamatan:{c}" for c in codes]
    keys += [f"desa:{v.code}" for v in layout.villages if v.code[:8] in wanted]
    keys += sorted({f"kabupaten:{c[:5]}" for c in codes})
    keys.append(_PKH_AGENCY)
    profiles = {key: office_profile(seed, inbox, key) for key in keys}
    counts = Counter(profiles.values())
    return OfficeTruth(
        shares=inbox.shares(),
        counts={p: counts.get(p, 0) for p in PROFILES},
        profiles=dict(sorted(profiles.items())),
    )
