"""The coordination truth is exact: the hub's pure checks on the served records find it all.

The oracle reads every collection over HTTP, keeps what passes the contracts (what the hub
would store), tokenises NIKs and No. KK with an HMAC key as the hub does, and runs
`models.checks`. Its findings must equal the truth's, receivers included.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator
from typing import Any, TypeVar

import httpx
import pytest
from fastapi import FastAPI
from pydantic import BaseModel, ValidationError

from models import checks
from models.contracts.desa import BltRecipient
from models.contracts.pertanian import FarmerNeed
from models.contracts.pkh import FacilitatorReport
from models.contracts.registry import Household, Recipient
from models.contracts.statistik import DataRequest, DataSubmission
from models.handoffs import HandoffKind
from models.identity import id_token
from models.wilayah import get_region_registry
from sandbox.app import create_app
from sandbox.config import CoordinationConfig, RegistryDataConfig, SandboxConfig
from sandbox.inbox import office_profile
from sandbox.transport import SyncASGITransport
from sandbox.truth import CoordinationTruth, coordination_truth
from tests.sandbox.conftest import read_agency

KEY = b"truth-test-key"
M = TypeVar("M", bound=BaseModel)
Found = set[tuple[str, str, str, tuple[str, ...]]]

# Many plants, so every kind and every near-miss occurs in a small province.
BOOSTED = CoordinationConfig(
    duplicate_nik_rate=0.06,
    duplicate_deceased_rate=0.04,
    blt_overlap_rate=0.08,
    blt_other_period_rate=0.05,
    blt_inactive_rate=1.0,
    deceased_report_rate=0.06,
    moved_report_rate=0.06,
    deceased_member_rate=0.06,
    deceased_inactive_rate=1.0,
    farmer_two_groups_rate=0.06,
    farmer_over_cap_rate=0.06,
    farmer_exact_cap_rate=0.05,
    farmer_cross_season_rate=0.05,
    bad_rate=0.03,
)
NEAR_MISS_KINDS = (
    HandoffKind.BLT_PKH_OVERLAP,
    HandoffKind.NIK_MULTIPLE_HOUSEHOLDS,
    HandoffKind.DECEASED_RECEIVING_AID,
    HandoffKind.FARMER_MULTIPLE_GROUPS,
    HandoffKind.FARMER_OVER_LAND_CAP,
)


def _tok(value: str) -> str:
    return id_token(value, KEY)


def _valid(model: type[M], records: list[dict[str, Any]]) -> list[M]:
    out: list[M] = []
    for record in records:
        try:
            out.append(model.model_validate(record))
        except ValidationError:
            continue
    return out


def oracle(client: httpx.Client, period: str) -> Found:
    """Findings of `models.checks` on the valid records the sandbox serves."""
    households = _valid(Household, read_agency(client, "registry", "households", limit=5000))
    recipients = _valid(Recipient, read_agency(client, "registry", "recipients", limit=5000))
    blt = _valid(BltRecipient, read_agency(client, "desa", "blt-recipients", limit=5000))
    reports = _valid(FacilitatorReport, read_agency(client, "pkh", "reports", limit=5000))
    needs = _valid(FarmerNeed, read_agency(client, "pertanian", "farmer-needs", limit=5000))
    enrolments = [
        checks.Enrolment(
            _tok(r.nik_pengurus),
            _tok(r.no_kk),
            r.programme,
            r.period,
            r.status,
            r.desa_code,
            r.household_id,
        )
        for r in recipients
    ]
    people = [
        checks.Person(_tok(m.nik), h.id, h.desa_code, m.status)
        for h in households
        for m in h.members
    ]
    lists = [
        checks.BltRecipient(_tok(b.nik), _tok(b.no_kk), b.desa_code, b.period, b.id) for b in blt
    ]
    filed = [
        checks.FacilitatorReport(
            r.id,
            r.kind,
            _tok(r.nik),
            r.household_id,
            r.kecamatan_code,
            r.facilitator_id,
            r.reported_on,
        )
        for r in reports
    ]
    lines = [
        checks.FarmerNeed(n.id, _tok(n.nik), n.poktan_id, n.desa_code, n.land_area_ha, n.season)
        for n in needs
    ]
    findings = (
        checks.blt_overlaps(lists, enrolments, period)
        + checks.nik_in_multiple_households(people, period)
        + checks.deceased_or_moved_receiving(filed, people, enrolments, period)
        + checks.farmer_conflicts(lines)
        + checks.household_updates_to_verify(filed)
    )
    return {
        (f.kind.value, f.subject_token, f.period, tuple(o.key for o in f.receivers))
        for f in findings
    }


def expected(truth: CoordinationTruth) -> Found:
    """The truth's findings with NIKs turned into the hub's tokens."""
    out: Found = set()
    for kind, check in truth.checks.items():
        for f in check.findings:
            by_household = kind == HandoffKind.HOUSEHOLD_UPDATE_VERIFICATION.value
            subject = f.subject if by_household else _tok(f.subject)
            out.add((kind, subject, f.period, tuple(f.receivers)))
    return out


Boosted = tuple[FastAPI, httpx.Client, SandboxConfig, CoordinationTruth]


@pytest.fixture(scope="module")
def boosted() -> Iterator[Boosted]:
    """A 1,500-household sandbox with boosted plants and its truth, shared by the module."""
    config = SandboxConfig(
        registry=RegistryDataConfig(households=1500, seed=8), coordination=BOOSTED
    )
    app = create_app(config)
    with httpx.Client(transport=SyncASGITransport(app), base_url="http://sandbox") as client:
        yield app, client, config, coordination_truth(config)


def test_truth_equals_what_the_checks_find_on_the_served_records(
    boosted: Boosted,
) -> None:
    _, client, _, truth = boosted
    found = oracle(client, truth.period)
    assert found == expected(truth)
    kinds = Counter(kind for kind, *_ in found)
    assert set(kinds) == {k.value for k in HandoffKind} - {
        HandoffKind.HOUSEHOLD_UPDATE_REJECTED.value,
        HandoffKind.DATA_REQUEST.value,
        HandoffKind.HEALTH_RED_ZONE.value,
        HandoffKind.HEALTH_RED_ZONE_NOTICE.value,
    }
    for kind in NEAR_MISS_KINDS:
        check = truth.checks[kind.value]
        assert check.planted and check.near_misses, kind
        assert not set(check.near_misses) & set(check.subjects)
        assert set(check.planted) <= set(check.subjects)
        assert set(check.planted) | set(check.accidental) == set(check.subjects)


def test_truth_stays_exact_after_registry_epochs() -> None:
    # Later epochs suspend enrolments and mark people deceased or moved: the truth follows.
    config = SandboxConfig(registry=RegistryDataConfig(households=900, seed=3, epoch=3))
    app = create_app(config)
    with httpx.Client(transport=SyncASGITransport(app), base_url="http://sandbox") as client:
        truth = coordination_truth(config)
        assert truth.epoch == 3
        assert oracle(client, truth.period) == expected(truth)
        moved = truth.checks[HandoffKind.MOVED_RECEIVING_AID.value]
        assert truth.checks[HandoffKind.DECEASED_RECEIVING_AID.value].accidental and moved.subjects


def test_near_misses_are_the_designed_look_alikes(
    boosted: Boosted,
) -> None:
    app, _, _, truth = boosted
    data = app.state.sandbox.coordination
    blt_by_nik = {i.record["nik"]: i for i in data.blt.all_records() if i.bad is None}
    periods = Counter(
        blt_by_nik[n].record["period"] for n in truth.checks["blt_pkh_overlap"].near_misses
    )
    assert periods[truth.period] > 0 and periods["2026-Q3"] > 0
    lines: dict[str, list[dict[str, Any]]] = {}
    for item in data.farmers.all_records():
        if item.bad is None:
            lines.setdefault(item.record["nik"], []).append(item.record)
    for nik in truth.checks["farmer_over_land_cap"].near_misses:
        by_season = Counter[str]()
        for r in lines[nik]:
            by_season[r["season"]] += round(r["land_area_ha"] * 100)
        assert max(by_season.values()) <= 200
    exact = [
        n
        for n in truth.checks["farmer_over_land_cap"].near_misses
        if any(
            sum(r["land_area_ha"] for r in lines[n] if r["season"] == s) == 2.0
            for s in {r["season"] for r in lines[n]}
        )
    ]
    assert exact
    switched = 0
    for nik in truth.checks["farmer_multiple_groups"].near_misses:
        groups: dict[str, set[str]] = {}
        for r in lines[nik]:
            groups.setdefault(r["season"], set()).add(r["poktan_id"])
        # One poktan per season, but not always the same one.
        assert all(len(g) == 1 for g in groups.values()), groups
        switched += len(set.union(*groups.values())) > 1
    assert switched > 0


def test_the_truth_of_some_kecamatan_is_the_union_of_theirs(
    boosted: Boosted,
) -> None:
    _, _, config, province = boosted
    kecamatan = [k.code for k in get_region_registry().kecamatan("35.07")]
    together = coordination_truth(config, kecamatan)
    assert together.kecamatan == kecamatan
    union: Found = set()
    requests = 0
    for code in kecamatan:
        one = coordination_truth(config, [code.replace(".", "")])
        union |= expected(one)
        requests += one.data_requests.requests
    assert union == expected(together) and union
    assert requests == together.data_requests.requests
    mine = {f for f in expected(province) if any(r.startswith("kecamatan:35.07.") for r in f[3])}
    assert mine == union
    with pytest.raises(ValueError, match="unknown kecamatan"):
        coordination_truth(config, ["35.99.01"])


def test_source_counts_match_what_is_served(
    boosted: Boosted,
) -> None:
    _, client, _, truth = boosted
    models: dict[str, type[BaseModel]] = {
        "pkh/reports": FacilitatorReport,
        "desa/blt-recipients": BltRecipient,
        "pertanian/farmer-needs": FarmerNeed,
        "statistik/data-requests": DataRequest,
        "statistik/submissions": DataSubmission,
    }
    for name, model in models.items():
        agency, collection = name.split("/")
        records = read_agency(client, agency, collection, limit=5000)
        counts = truth.sources[name]
        assert counts.records == len(records)
        assert counts.valid == len(_valid(model, records))
        assert counts.invalid == sum(counts.invalid_by_kind.values()) > 0
    blt = truth.sources["desa/blt-recipients"].valid_by_plant
    assert set(blt) == {"overlap", "other_period", "inactive"}
    reports = truth.sources["pkh/reports"].valid_by_plant
    assert reports["household_update"] == len(
        truth.checks["household_update_verification"].record_ids
    )


def test_data_request_fan_out_matches_the_served_requests(
    boosted: Boosted,
) -> None:
    _, client, _, all_truth = boosted
    truth = all_truth.data_requests
    requests = _valid(DataRequest, read_agency(client, "statistik", "data-requests", limit=5000))
    raw = read_agency(client, "statistik", "submissions", limit=5000)
    valid = {s.id: s for s in _valid(DataSubmission, raw)}
    served = {(r["request_id"], r["id"].split("-")[1]): r["id"] for r in raw}
    outcome = Counter[str]()
    for request in requests:
        for desa in request.desa_codes:
            key = (request.id, desa.replace(".", ""))
            if key not in served:
                outcome["never"] += 1
            elif served[key] not in valid:
                outcome["invalid"] += 1
            else:
                submitted = valid[served[key]].submitted_at.date()
                outcome["on_time" if submitted <= request.due_date else "late"] += 1
    assert truth.valid_requests == len(requests) < truth.requests
    assert truth.desa_handoffs == sum(len(r.desa_codes) for r in requests)
    assert (truth.on_time, truth.late, truth.never, truth.invalid_submissions) == (
        outcome["on_time"],
        outcome["late"],
        outcome["never"],
        outcome["invalid"],
    )
    assert truth.on_time > truth.late > 0 and truth.never > 0


def test_office_profiles_in_the_truth(
    boosted: Boosted,
) -> None:
    _, _, config, _ = boosted
    offices = coordination_truth(config, ["35.07.01", "35.78.01"]).offices
    assert offices.shares == config.coordination.inbox.shares()
    assert sum(offices.counts.values()) == len(offices.profiles)
    assert offices.profiles["kabupaten:35.07"] == offices.profiles["kabupaten:35.78"] == "prompt"
    assert "kecamatan:35.07.01" in offices.profiles and "agency:pkh" in offices.profiles
    seed = config.registry.seed
    for office, profile in offices.profiles.items():
        assert office_profile(seed, config.coordination.inbox, office) == profile
    desa = [o for o in offices.profiles if o.startswith("desa:")]
    assert len(desa) == len(get_region_registry().villages("35.07.01")) + len(
        get_region_registry().villages("35.78.01")
    )


def test_truth_holds_no_findings_for_empty_rates() -> None:
    quiet = CoordinationConfig(
        duplicate_nik_rate=0.0,
        duplicate_deceased_rate=0.0,
        blt_overlap_rate=0.0,
        blt_other_period_rate=0.0,
        blt_inactive_rate=0.0,
        household_update_rate=0.0,
        deceased_report_rate=0.0,
        moved_report_rate=0.0,
        deceased_member_rate=0.0,
        deceased_inactive_rate=0.0,
        farmer_two_groups_rate=0.0,
        farmer_over_cap_rate=0.0,
        farmer_exact_cap_rate=0.0,
        farmer_cross_season_rate=0.0,
    )
    config = SandboxConfig(registry=RegistryDataConfig(households=800), coordination=quiet)
    truth = coordination_truth(config)
    for kind in (
        "blt_pkh_overlap",
        "nik_multiple_households",
        "farmer_multiple_groups",
        "farmer_over_land_cap",
        "household_update_verification",
    ):
        assert truth.checks[kind].findings == [], kind
    # Deaths and moves the registry itself records still count, as the check sees them.
    assert (
        truth.checks["deceased_receiving_aid"].accidental
        == truth.checks["deceased_receiving_aid"].subjects
    )
    assert truth.sources["desa/blt-recipients"].records > 0
