"""Cross-programme checks: hand-made inputs with known answers, near misses and invariants."""

from __future__ import annotations

import random
import re
from datetime import date
from typing import Any

import pytest

from models.checks import (
    BltRecipient,
    Enrolment,
    FacilitatorReport,
    FarmerNeed,
    Finding,
    Person,
    blt_overlaps,
    deceased_or_moved_receiving,
    farmer_conflicts,
    household_updates_to_verify,
    is_desa,
    nik_in_multiple_households,
    precision_recall,
)
from models.handoffs import HandoffKind, Office, OfficeKind, handoff_key
from models.identity import id_token, make_nik, make_no_kk

K = HandoffKind
KEY = b"k"
Q4 = "2026-Q4"
DESA = "35.78.01.2001"
DESA_B = "35.78.01.2002"
DESA_OTHER_KEC = "35.78.02.2001"
KEC = Office(kind=OfficeKind.KECAMATAN, code="35.78.01")
KEC_OTHER = Office(kind=OfficeKind.KECAMATAN, code="35.78.02")
PKH = Office(kind=OfficeKind.AGENCY, code="pkh")
CLEAR_NIK = make_nik("35.78.01", date(1985, 3, 14), "P", 9999)
SIXTEEN_DIGITS = re.compile(r"[0-9]{16}")


def nik(i: int) -> str:
    """Token of the i-th test NIK."""
    return id_token(make_nik("35.78.01", date(1985, 3, 14), "P", i), KEY)


def kk(i: int) -> str:
    """Token of the i-th test No. KK."""
    return id_token(make_no_kk("35.78.01", date(2015, 6, 1), i), KEY)


def one_off(token: str) -> str:
    """The token with its last character changed."""
    return token[:-1] + ("0" if token[-1] != "0" else "1")


def desa_office(code: str) -> Office:
    return Office(kind=OfficeKind.DESA, code=code)


def enrol(
    i: int,
    programme: str = "PKH",
    *,
    period: str = Q4,
    status: str = "active",
    desa: str = DESA,
    nik_token: str | None = None,
    kk_token: str | None = None,
    household: str | None = None,
) -> Enrolment:
    return Enrolment(
        nik_token=nik(i) if nik_token is None else nik_token,
        kk_token=kk(i) if kk_token is None else kk_token,
        programme=programme,  # type: ignore[arg-type]
        period=period,
        status=status,  # type: ignore[arg-type]
        desa_code=desa,
        household_id=household or f"HH-{i}",
    )


def blt_row(
    i: int,
    *,
    nik_token: str | None = None,
    kk_token: str | None = None,
    desa: str = DESA,
    period: str = Q4,
    record: str | None = None,
) -> BltRecipient:
    return BltRecipient(
        nik_token=nik(i) if nik_token is None else nik_token,
        kk_token=kk(i) if kk_token is None else kk_token,
        desa_code=desa,
        period=period,
        record_id=record or f"BLT-{i}",
    )


def person(i: int, household: str, desa: str = DESA, status: str = "active") -> Person:
    return Person(nik(i), household, desa, status)  # type: ignore[arg-type]


def report(
    rid: str,
    kind: str,
    i: int,
    household: str | None = None,
    *,
    kec: str = "35.78.01",
    facilitator: str = "SDM-7",
    on: date = date(2026, 10, 6),
) -> FacilitatorReport:
    return FacilitatorReport(
        report_id=rid,
        kind=kind,  # type: ignore[arg-type]
        nik_token=nik(i),
        household_id=household or f"HH-{i}",
        kecamatan_code=kec,
        facilitator_id=facilitator,
        reported_on=on,
    )


def need(
    rid: str, i: int, poktan: str, area: float, *, desa: str = DESA, season: str = "2026-MT1"
) -> FarmerNeed:
    return FarmerNeed(rid, nik(i), poktan, desa, area, season)


def assert_masked(findings: list[Finding]) -> None:
    """No evidence value carries a clear 16-digit NIK/No. KK."""
    for f in findings:
        for value in f.evidence.values():
            assert not SIXTEEN_DIGITS.search(str(value)), (f.kind, value)


# --- helpers ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("code", "expected"),
    [
        ("35.78.01.2001", True),
        ("35.78.01.3001", True),  # desa adat
        ("3578012001", True),
        ("35.78.01.1001", False),  # kelurahan: no Dana Desa
        ("35.78.01", False),
    ],
)
def test_is_desa(code: str, expected: bool) -> None:
    assert is_desa(code) is expected


def test_is_desa_rejects_malformed_codes() -> None:
    with pytest.raises(ValueError):
        is_desa("not a code")


def test_precision_recall() -> None:
    assert precision_recall(["a", "b"], ["a", "b"]) == (1.0, 1.0)
    assert precision_recall(["a", "b", "x", "y"], ["a", "b"]) == (0.5, 1.0)
    assert precision_recall(["a"], ["a", "b", "c", "d"]) == (1.0, 0.25)
    assert precision_recall([], []) == (1.0, 1.0)
    assert precision_recall([], ["a"]) == (1.0, 0.0)
    assert precision_recall(iter(["a", "a"]), ("a",)) == (1.0, 1.0)


# --- Finding ---------------------------------------------------------------------------------


def test_finding_keys_are_stable_and_distinct_per_receiver() -> None:
    f = Finding(K.BLT_PKH_OVERLAP, nik(1), Q4, (KEC, desa_office(DESA)), {"programmes": "PKH"})
    again = Finding(K.BLT_PKH_OVERLAP, nik(1), Q4, (KEC, desa_office(DESA)), {"programmes": "PKH"})
    assert f.keys == again.keys
    assert f.keys == tuple(handoff_key(K.BLT_PKH_OVERLAP, nik(1), Q4, r) for r in f.receivers)
    assert len(set(f.keys)) == 2
    assert all(re.fullmatch(r"[0-9a-f]{32}", k) for k in f.keys)
    assert f == again and hash(f) == hash(again)
    other_period = Finding(K.BLT_PKH_OVERLAP, nik(1), "2027-Q1", (KEC,))
    assert other_period.keys[0] != f.keys[0]


def test_finding_refuses_clear_ids_and_bad_receivers() -> None:
    with pytest.raises(ValueError, match="clear NIK"):
        Finding(K.BLT_PKH_OVERLAP, CLEAR_NIK, Q4, (KEC,))
    with pytest.raises(ValueError, match="evidence 'note'"):
        Finding(K.BLT_PKH_OVERLAP, nik(1), Q4, (KEC,), {"note": f"NIK {CLEAR_NIK}"})
    with pytest.raises(ValueError, match="evidence 'n'"):
        Finding(K.BLT_PKH_OVERLAP, nik(1), Q4, (KEC,), {"n": int(CLEAR_NIK)})
    with pytest.raises(ValueError, match="at least one receiver"):
        Finding(K.BLT_PKH_OVERLAP, nik(1), Q4, ())
    with pytest.raises(ValueError, match="once"):
        Finding(K.BLT_PKH_OVERLAP, nik(1), Q4, (KEC, KEC))


# --- 1. BLT-DD overlap -----------------------------------------------------------------------


def test_blt_overlap_by_nik() -> None:
    [f] = blt_overlaps([blt_row(1)], [enrol(1)], Q4)
    assert f.kind is K.BLT_PKH_OVERLAP
    assert f.subject_token == nik(1)
    assert f.period == Q4
    assert f.receivers == (KEC, desa_office(DESA))
    assert f.receivers[0].code == DESA[:8]
    assert f.evidence == {
        "programmes": "PKH",
        "matched_by": "kk,nik",
        "desa_codes": DESA,
        "blt_record_ids": "BLT-1",
    }


def test_blt_overlap_by_family_card_lists_every_programme() -> None:
    # The BLT list names the father; PKH and BPNT are paid to the mother of the same KK.
    blt = [blt_row(50, kk_token=kk(2))]
    enrolments = [enrol(2, "PKH"), enrol(2, "BPNT")]
    [f] = blt_overlaps(blt, enrolments, Q4)
    assert f.subject_token == nik(50)
    assert f.evidence["programmes"] == "BPNT,PKH"
    assert f.evidence["matched_by"] == "kk"


def test_blt_overlap_by_nik_only() -> None:
    [f] = blt_overlaps([blt_row(3, kk_token=kk(99))], [enrol(3, "BPNT")], Q4)
    assert f.evidence["matched_by"] == "nik"
    assert f.evidence["programmes"] == "BPNT"


@pytest.mark.parametrize(
    "enrolment",
    [
        enrol(1, period="2026-Q3"),
        enrol(1, status="ended"),
        enrol(1, status="suspended"),
        enrol(1, nik_token=one_off(nik(1)), kk_token=one_off(kk(1))),
        enrol(2),
    ],
    ids=["other_period", "ended", "suspended", "token_one_char_off", "other_family"],
)
def test_blt_overlap_near_misses(enrolment: Enrolment) -> None:
    assert blt_overlaps([blt_row(1)], [enrolment], Q4) == []


def test_blt_row_of_another_period_does_not_match() -> None:
    assert blt_overlaps([blt_row(1, period="2026-Q3")], [enrol(1)], Q4) == []


def test_blt_empty_family_card_tokens_do_not_match_each_other() -> None:
    blt = [blt_row(1, kk_token="")]
    assert blt_overlaps(blt, [enrol(2, kk_token="")], Q4) == []


def test_blt_overlap_reported_once_when_inputs_repeat() -> None:
    blt = [blt_row(1)] * 3
    enrolments = [enrol(1)] * 2 + [enrol(1, "BPNT")]
    [f] = blt_overlaps(blt, enrolments, Q4)
    assert f.evidence["programmes"] == "BPNT,PKH"
    assert f.evidence["blt_record_ids"] == "BLT-1"


def test_blt_overlap_in_two_desa_tells_each_desa_and_the_kecamatan_once() -> None:
    blt = [blt_row(1, desa=DESA_B, record="B-2"), blt_row(1, record="B-1")]
    [f] = blt_overlaps(blt, [enrol(1)], Q4)
    assert f.receivers == (KEC, desa_office(DESA), desa_office(DESA_B))
    assert len(set(f.keys)) == 3
    assert f.evidence["desa_codes"] == f"{DESA},{DESA_B}"
    assert f.evidence["blt_record_ids"] == "B-1,B-2"


def test_blt_overlap_accepts_undotted_desa_codes() -> None:
    [f] = blt_overlaps([blt_row(1, desa="3578012001")], [enrol(1)], Q4)
    assert f.receivers == (KEC, desa_office(DESA))


# --- 2. one NIK in several households ---------------------------------------------------------


def test_nik_in_two_households_of_one_desa() -> None:
    people = [person(1, "HH-1"), person(1, "HH-2"), person(2, "HH-1")]
    [f] = nik_in_multiple_households(people, Q4)
    assert f.kind is K.NIK_MULTIPLE_HOUSEHOLDS
    assert f.subject_token == nik(1)
    assert f.receivers == (KEC,)
    assert f.evidence == {
        "household_count": 2,
        "household_ids": "HH-1,HH-2",
        "desa_count": 1,
        "desa_codes": DESA,
    }


def test_nik_in_two_kecamatan_tells_both_once() -> None:
    people = [
        person(1, "HH-9", DESA_OTHER_KEC),
        person(1, "HH-1", DESA),
        person(1, "HH-2", DESA_B, status="moved"),  # still on the register there
    ]
    [f] = nik_in_multiple_households(people * 2, Q4)
    assert f.receivers == (KEC, KEC_OTHER)
    assert f.evidence["household_count"] == 3
    assert f.evidence["desa_codes"] == f"{DESA},{DESA_B},{DESA_OTHER_KEC}"


def test_nik_in_two_households_near_misses() -> None:
    people = [
        person(1, "HH-1"),
        person(1, "HH-1"),  # the same row synced twice
        person(2, "HH-2"),
        person(2, "HH-3", status="deceased"),  # the old household still lists the dead
        Person(one_off(nik(3)), "HH-4", DESA, "active"),
        person(3, "HH-5"),
    ]
    assert nik_in_multiple_households(people, Q4) == []


# --- 3. deceased or moved, still receiving -----------------------------------------------------


def test_deceased_by_report_still_paid_pkh() -> None:
    reports = [report("R-1", "deceased", 1)]
    [f] = deceased_or_moved_receiving(reports, [], [enrol(1)], Q4)
    assert f.kind is K.DECEASED_RECEIVING_AID
    assert f.subject_token == nik(1)
    assert f.receivers == (KEC, PKH)
    assert f.evidence == {
        "programmes": "PKH",
        "desa_codes": DESA,
        "household_ids": "HH-1",
        "sources": "report",
        "report_ids": "R-1",
    }


def test_deceased_in_registry_still_paid_bpnt_goes_to_the_kecamatan_only() -> None:
    people = [person(2, "HH-2", status="deceased")]
    [f] = deceased_or_moved_receiving([], people, [enrol(2, "BPNT")], Q4)
    assert f.kind is K.DECEASED_RECEIVING_AID
    assert f.receivers == (KEC,)
    assert f.evidence["sources"] == "registry"
    assert "report_ids" not in f.evidence


def test_moved_out_but_old_household_still_paid() -> None:
    reports = [report("R-3", "moved", 3, "HH-3")]
    [f] = deceased_or_moved_receiving(reports, [], [enrol(3, household="HH-3")], Q4)
    assert f.kind is K.MOVED_RECEIVING_AID
    assert f.receivers == (KEC, PKH)
    assert f.evidence["household_ids"] == "HH-3"


def test_moved_with_enrolment_already_in_the_new_household_is_fine() -> None:
    people = [person(4, "HH-4", status="moved"), person(4, "HH-40", DESA_B)]
    reports = [report("R-4", "moved", 4, "HH-4")]
    enrolments = [enrol(4, household="HH-40", desa=DESA_B)]
    assert deceased_or_moved_receiving(reports, people, enrolments, Q4) == []


def test_deceased_and_moved_is_reported_as_deceased_once() -> None:
    reports = [report("R-5", "deceased", 5), report("R-5", "deceased", 5)]
    people = [person(5, "HH-5", status="moved"), person(5, "HH-5", status="deceased")]
    enrolments = [enrol(5), enrol(5), enrol(5, "BPNT")]
    [f] = deceased_or_moved_receiving(reports, people, enrolments, Q4)
    assert f.kind is K.DECEASED_RECEIVING_AID
    assert f.evidence["sources"] == "registry,report"
    assert f.evidence["programmes"] == "BPNT,PKH"


@pytest.mark.parametrize(
    ("reports", "enrolments"),
    [
        ([report("R", "deceased", 1)], [enrol(1, status="ended")]),
        ([report("R", "deceased", 1)], [enrol(1, status="suspended")]),
        ([report("R", "deceased", 1)], [enrol(1, period="2026-Q3")]),
        ([report("R", "deceased", 1)], [enrol(2)]),  # report about another person
        ([report("R", "deceased", 1)], [enrol(1, nik_token=one_off(nik(1)))]),
        ([report("R", "deceased", 1)], []),  # deceased, nothing paid
        ([report("R", "moved", 1)], [enrol(1, status="ended")]),
        ([report("R", "non_compliance", 1)], [enrol(1)]),
        ([report("R", "graduation", 1)], [enrol(1)]),
        ([report("R", "household_update", 1)], [enrol(1)]),
    ],
    ids=[
        "ended",
        "suspended",
        "other_period",
        "other_person",
        "token_one_char_off",
        "no_enrolment",
        "moved_ended",
        "non_compliance",
        "graduation",
        "household_update",
    ],
)
def test_deceased_or_moved_near_misses(
    reports: list[FacilitatorReport], enrolments: list[Enrolment]
) -> None:
    assert deceased_or_moved_receiving(reports, [], enrolments, Q4) == []


def test_deceased_person_paid_in_two_kecamatan() -> None:
    people = [person(6, "HH-6", status="deceased")]
    enrolments = [enrol(6, "BPNT", desa=DESA_OTHER_KEC), enrol(6, "BPNT")]
    [f] = deceased_or_moved_receiving([], people, enrolments, Q4)
    assert f.receivers == (KEC, KEC_OTHER)


# --- 4. farmers --------------------------------------------------------------------------------


def test_farmer_in_two_poktan() -> None:
    needs = [need("E-1", 1, "PT-A", 0.5), need("E-2", 1, "PT-B", 0.5, desa=DESA_B)]
    [f] = farmer_conflicts(needs)
    assert f.kind is K.FARMER_MULTIPLE_GROUPS
    assert f.subject_token == nik(1)
    assert f.period == "2026-MT1"
    assert f.receivers == (KEC,)
    assert f.evidence == {
        "poktan_count": 2,
        "poktan_ids": "PT-A,PT-B",
        "desa_codes": f"{DESA},{DESA_B}",
        "record_ids": "E-1,E-2",
        "land_area_ha": 1.0,
    }


def test_farmer_same_poktan_twice_in_a_season_is_one_group() -> None:
    needs = [need("E-1", 1, "PT-A", 0.5), need("E-2", 1, "PT-A", 0.7)]
    assert farmer_conflicts(needs) == []


def test_farmer_two_poktan_in_different_seasons_is_fine() -> None:
    needs = [need("E-1", 1, "PT-A", 1.5), need("E-2", 1, "PT-B", 1.5, season="2026-MT2")]
    assert farmer_conflicts(needs) == []


def test_farmer_exactly_at_the_cap_is_not_over() -> None:
    needs = [need("E-1", 1, "PT-A", 1.2), need("E-2", 1, "PT-A", 0.8), need("E-3", 2, "PT-A", 2.0)]
    assert farmer_conflicts(needs) == []


def test_farmer_area_sum_is_rounded_before_the_cap() -> None:
    # Twenty plots of 0.1 ha add up to 2.0000000000000004 in floating point.
    needs = [need(f"E-{i}", 1, "PT-A", 0.1) for i in range(20)]
    assert sum(n.land_area_ha for n in needs) > 2.0
    assert farmer_conflicts(needs) == []
    [f] = farmer_conflicts([*needs, need("E-x", 1, "PT-A", 0.01)])
    assert f.evidence["land_area_ha"] == 2.01


def test_farmer_over_the_cap() -> None:
    [f] = farmer_conflicts([need("E-1", 1, "PT-A", 2.01)])
    assert f.kind is K.FARMER_OVER_LAND_CAP
    assert f.receivers == (KEC,)
    assert f.evidence["land_area_ha"] == 2.01
    assert f.evidence["cap_ha"] == 2.0


def test_farmer_record_synced_twice_counts_its_area_once() -> None:
    assert farmer_conflicts([need("E-1", 1, "PT-A", 1.5)] * 2) == []


def test_farmer_in_two_groups_and_over_the_cap_gets_both_findings() -> None:
    needs = [
        need("E-1", 1, "PT-A", 1.5),
        need("E-2", 1, "PT-B", 1.0, desa=DESA_OTHER_KEC),
        need("E-2", 1, "PT-B", 1.0, desa=DESA_OTHER_KEC),
    ]
    found = farmer_conflicts(needs)
    assert [f.kind for f in found] == [K.FARMER_MULTIPLE_GROUPS, K.FARMER_OVER_LAND_CAP]
    for f in found:
        assert f.receivers == (KEC, KEC_OTHER)
        assert f.evidence["land_area_ha"] == 2.5
    assert set(found[0].keys).isdisjoint(found[1].keys)


def test_farmer_cap_is_a_parameter() -> None:
    needs = [need("E-1", 1, "PT-A", 1.5)]
    assert farmer_conflicts(needs, cap_ha=1.5) == []
    [f] = farmer_conflicts(needs, cap_ha=1.0)
    assert f.kind is K.FARMER_OVER_LAND_CAP


# --- 5. household updates ----------------------------------------------------------------------


def test_household_update_goes_to_the_report_kecamatan() -> None:
    reports = [
        report("R-1", "household_update", 1, "HH-1", kec="35.78.02"),
        report("R-1", "household_update", 1, "HH-1", kec="35.78.02"),  # replayed page
        report("R-2", "household_update", 2, "HH-2", on=date(2026, 10, 7)),
        report("R-3", "deceased", 3, "HH-3"),
        report("R-4", "non_compliance", 4, "HH-4"),
    ]
    found = household_updates_to_verify(reports)
    assert [(f.subject_token, f.period) for f in found] == [
        ("HH-1", "2026-10-06"),
        ("HH-2", "2026-10-07"),
    ]
    first = found[0]
    assert first.kind is K.HOUSEHOLD_UPDATE_VERIFICATION
    assert first.receivers == (KEC_OTHER,)
    assert first.evidence == {"report_count": 1, "report_ids": "R-1", "facilitator_ids": "SDM-7"}


def test_household_updates_on_other_days_are_separate_handoffs() -> None:
    reports = [
        report("R-1", "household_update", 1, "HH-1"),
        report("R-2", "household_update", 1, "HH-1", on=date(2026, 11, 2)),
    ]
    a, b = household_updates_to_verify(reports)
    assert a.keys != b.keys


def test_facilitator_nik_in_evidence_is_masked() -> None:
    reports = [report("R-1", "household_update", 1, facilitator=CLEAR_NIK)]
    [f] = household_updates_to_verify(reports)
    shown = str(f.evidence["facilitator_ids"])
    assert CLEAR_NIK not in shown
    assert shown.startswith(CLEAR_NIK[:4]) and shown.endswith(CLEAR_NIK[-4:])


# --- all checks together -------------------------------------------------------------------------


Inputs = dict[str, list[Any]]


def _scenario() -> tuple[Inputs, set[str]]:
    """A small kecamatan with planted problems among clean and near-miss rows."""
    inputs: Inputs = {
        "blt": [
            blt_row(1),  # planted: PKH by NIK
            blt_row(20, kk_token=kk(2)),  # planted: BPNT by KK
            blt_row(3),  # clean: PKH ended
            blt_row(4, period="2026-Q3"),  # clean: other period
            blt_row(5, nik_token=one_off(nik(5)), kk_token=one_off(kk(5))),  # clean
            blt_row(1),  # repeat
        ],
        "enrolments": [
            enrol(1),
            enrol(2, "BPNT"),
            enrol(3, status="ended"),
            enrol(4, period="2026-Q3"),
            enrol(5),
            enrol(6),
            enrol(7, household="HH-70"),
            enrol(8, "BPNT"),
        ],
        "people": [
            person(10, "HH-10"),
            person(10, "HH-11", DESA_OTHER_KEC),  # planted: two households
            person(11, "HH-12"),
            person(11, "HH-13", status="deceased"),  # clean
            person(6, "HH-6", status="deceased"),  # planted: deceased, PKH active
            person(7, "HH-7", status="moved"),  # clean: enrolment already in HH-70
            person(9, "HH-9", status="deceased"),  # clean: no enrolment
        ],
        "reports": [
            report("R-1", "moved", 8, "HH-8"),  # planted: moved, BPNT active
            report("R-2", "household_update", 12, "HH-12"),  # planted
            report("R-2", "household_update", 12, "HH-12"),  # repeat
            report("R-3", "non_compliance", 5, "HH-5"),  # clean
        ],
        "needs": [
            need("E-1", 30, "PT-A", 0.5),
            need("E-2", 30, "PT-B", 0.5),  # planted: two groups
            need("E-3", 31, "PT-A", 2.5),  # planted: over cap
            need("E-4", 32, "PT-A", 1.0),
            need("E-5", 32, "PT-A", 1.0),  # clean: exactly 2.0
        ],
    }
    planted = {
        (K.BLT_PKH_OVERLAP, nik(1), Q4),
        (K.BLT_PKH_OVERLAP, nik(20), Q4),
        (K.NIK_MULTIPLE_HOUSEHOLDS, nik(10), Q4),
        (K.DECEASED_RECEIVING_AID, nik(6), Q4),
        (K.MOVED_RECEIVING_AID, nik(8), Q4),
        (K.HOUSEHOLD_UPDATE_VERIFICATION, "HH-12", "2026-10-06"),
        (K.FARMER_MULTIPLE_GROUPS, nik(30), "2026-MT1"),
        (K.FARMER_OVER_LAND_CAP, nik(31), "2026-MT1"),
    }
    return inputs, {_ident(k, s, p) for k, s, p in planted}


def _ident(kind: str, subject: str, period: str) -> str:
    return f"{kind}:{subject}:{period}"


def _run_all(inputs: Inputs) -> list[Finding]:
    return [
        *blt_overlaps(inputs["blt"], inputs["enrolments"], Q4),
        *nik_in_multiple_households(inputs["people"], Q4),
        *deceased_or_moved_receiving(inputs["reports"], inputs["people"], inputs["enrolments"], Q4),
        *farmer_conflicts(inputs["needs"]),
        *household_updates_to_verify(inputs["reports"]),
    ]


def test_planted_scenario_is_found_exactly() -> None:
    inputs, planted = _scenario()
    found = _run_all(inputs)
    ids = [_ident(f.kind, f.subject_token, f.period) for f in found]
    assert len(ids) == len(set(ids))  # each finding once
    assert set(ids) == planted
    assert precision_recall(ids, planted) == (1.0, 1.0)
    assert precision_recall(ids[:-1], planted) == (1.0, 7 / 8)
    keys = [k for f in found for k in f.keys]
    assert len(keys) == len(set(keys))
    assert_masked(found)


def test_output_does_not_depend_on_input_order() -> None:
    inputs, _ = _scenario()
    expected = _run_all(inputs)
    rng = random.Random(7)
    for _ in range(3):
        shuffled = {name: rng.sample(rows, len(rows)) for name, rows in inputs.items()}
        assert _run_all(shuffled) == expected


def test_evidence_never_holds_a_clear_id_even_when_ids_leak_into_inputs() -> None:
    # Record ids are free text at the source; a NIK typed into one must not travel on.
    found = [
        *blt_overlaps([blt_row(1, record=CLEAR_NIK)], [enrol(1)], Q4),
        *nik_in_multiple_households([person(1, CLEAR_NIK), person(1, "HH-2")], Q4),
        *deceased_or_moved_receiving(
            [report(CLEAR_NIK, "deceased", 1)], [], [enrol(1, household=CLEAR_NIK)], Q4
        ),
        *farmer_conflicts([need(CLEAR_NIK, 1, CLEAR_NIK + "0", 3.0)]),
        *household_updates_to_verify([report(CLEAR_NIK, "household_update", 1)]),
    ]
    assert len(found) == 5
    assert_masked(found)
