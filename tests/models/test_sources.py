"""Preparing pages of the coordination sources: rows by token only, every reason for rejects."""

from __future__ import annotations

import json
import pickle
import re
from datetime import UTC, date, datetime, timedelta
from typing import Any

import pytest

from models.identity import id_token, make_nik, make_no_kk
from models.sources import (
    CATALOGUE,
    SOURCES,
    WriteRule,
    prepare_page,
    prepare_page_body,
    source_spec,
)
from tests.factories import household, member, recipient

KEY = b"test-pii-key"
NOW = datetime(2026, 11, 27, 3, 0, tzinfo=UTC)
NIK = make_nik("35.07.01", date(1984, 5, 9), "P", 17)
MALE_NIK = make_nik("35.07.01", date(1984, 5, 9), "L", 18)
NO_KK = make_no_kk("35.07.01", date(2012, 2, 3), 5)
SIXTEEN_DIGITS = re.compile(r"(?<![0-9])[0-9]{16}(?![0-9])")


def report(**over: Any) -> dict[str, Any]:
    rec: dict[str, Any] = {
        "id": "RPT-1",
        "kind": "deceased",
        "facilitator_id": "PDP-35.07.01-01",
        "kecamatan_code": "35.07.01",
        "household_id": "HH-1",
        "nik": NIK,
        "reported_on": "2026-11-20",
        "note": "",
        "updated_at": "2026-11-21T09:00:00+07:00",
    }
    rec.update(over)
    return rec


def blt(**over: Any) -> dict[str, Any]:
    rec: dict[str, Any] = {
        "id": "BLT-1",
        "desa_code": "35.07.01.2001",
        "period": "2026-Q4",
        "nik": NIK,
        "no_kk": NO_KK,
        "name": "Siti Aminah",
        "status": "approved",
        "updated_at": "2026-10-02T08:00:00+07:00",
    }
    rec.update(over)
    return rec


def farmer(**over: Any) -> dict[str, Any]:
    rec: dict[str, Any] = {
        "id": "RDKK-1",
        "nik": NIK,
        "name": "Pak Tani",
        "poktan_id": "POKTAN-7",
        "desa_code": "35.07.01.2002",
        "land_area_ha": 1.25,
        "commodity": "padi",
        "season": "2026-MT1",
        "urea_kg": 250.0,
        "npk_kg": 100.0,
        "updated_at": "2026-09-01T08:00:00+07:00",
    }
    rec.update(over)
    return rec


def surveillance(**over: Any) -> dict[str, Any]:
    rec: dict[str, Any] = {
        "id": "SRV-3507012001-2026W44-1",
        "puskesmas_id": "PKM-350701",
        "desa_code": "35.07.01.2001",
        "week": "2026-W44",
        "condition": "dbd",
        "new_cases": 12,
        "tests": 40,
        "deaths": 0,
        "updated_at": "2026-11-02T07:00:00+07:00",
    }
    rec.update(over)
    return rec


def data_request(**over: Any) -> dict[str, Any]:
    rec: dict[str, Any] = {
        "id": "REQ-1",
        "kecamatan_code": "35.07.01",
        "ksk_id": "KSK-35.07.01",
        "title": "Pendataan potensi desa",
        "desa_codes": ["35.07.01.2001", "35.07.01.2002"],
        "requested_on": "2026-11-02",
        "due_date": "2026-11-16",
        "updated_at": "2026-11-02T08:00:00+07:00",
    }
    rec.update(over)
    return rec


def submission(**over: Any) -> dict[str, Any]:
    rec: dict[str, Any] = {
        "id": "SUB-1",
        "request_id": "REQ-1",
        "desa_code": "35.07.01.2001",
        "submitted_at": "2026-11-10T10:00:00+07:00",
        "updated_at": "2026-11-10T10:00:00+07:00",
    }
    rec.update(over)
    return rec


def decision(**over: Any) -> dict[str, Any]:
    rec: dict[str, Any] = {
        "id": "DEC-1",
        "handoff_id": "0123456789abcdef0123456789abcdef",
        "office": "kecamatan:35.07.01",
        "decision": "acknowledged",
        "reason": "",
        "officer": "Camat Kepanjen",
        "decided_at": "2026-11-03T09:00:00+07:00",
        "updated_at": "2026-11-03T09:00:00+07:00",
    }
    rec.update(over)
    return rec


def _no_clear_ids(rows: list[dict[str, Any]]) -> None:
    text = json.dumps(rows, default=str)
    assert not SIXTEEN_DIGITS.search(text), text


def test_the_catalogue_declares_every_synced_source_once() -> None:
    assert tuple(spec.name for spec in SOURCES) == (
        "registry.households",
        "registry.recipients",
        "pkh.reports",
        "desa.blt-recipients",
        "pertanian.farmer-needs",
        "statistik.data-requests",
        "statistik.submissions",
        "puskesmas.surveillance",
        "kecamatan.decisions",
    )
    assert list(CATALOGUE) == [spec.name for spec in SOURCES]
    assert source_spec("pkh.reports").collection == "reports"
    assert [s.name for s in SOURCES if s.write is WriteRule.INSERT_ONLY] == ["kecamatan.decisions"]
    assert [s.name for s in SOURCES if not s.partitioned] == ["kecamatan.decisions"]
    assert [s.name for s in SOURCES if s.children is not None] == ["registry.households"]
    page = prepare_page("registry.households", [household(1)], KEY, NOW)
    assert [r["id"] for r in page.rows] == ["HH-1"] and len(page.children) == 1
    with pytest.raises(ValueError, match=r"does not sync 'pkh\.visits'"):
        prepare_page("pkh.visits", [], KEY, NOW)


def test_report_row_holds_a_token_and_masked_note() -> None:
    page = prepare_page("pkh.reports", [report(note=f"ahli waris NIK {NIK} lapor")], KEY, NOW)
    assert page.rejected == []
    (row,) = page.rows
    assert row["nik_token"] == id_token(NIK, KEY)
    assert row["kecamatan_code"] == "35.07.01"
    assert row["reported_on"] == date(2026, 11, 20)
    assert row["changes"] == ""
    assert NIK not in row["note"] and NIK[:4] in row["note"] and "lapor" in row["note"]
    assert row["updated_at"] == datetime(2026, 11, 21, 2, 0, tzinfo=UTC)
    assert row["synced_at"] == NOW
    assert page.high == row["updated_at"]
    _no_clear_ids(page.rows)


def test_household_update_changes_are_stored_as_json() -> None:
    changes = {"address": "Jl. Melati 3", "desil": 3, "members_left": ["M-12"]}
    page = prepare_page("pkh.reports", [report(kind="household_update", changes=changes)], KEY, NOW)
    (row,) = page.rows
    assert json.loads(row["changes"]) == changes
    only_desil = prepare_page(
        "pkh.reports", [report(kind="household_update", changes={"desil": 4})], KEY, NOW
    ).rows[0]
    assert json.loads(only_desil["changes"]) == {"address": None, "desil": 4, "members_left": []}


def test_blt_row_tokens_and_region() -> None:
    page = prepare_page("desa.blt-recipients", [blt()], KEY, NOW)
    (row,) = page.rows
    assert row["nik_token"] == id_token(NIK, KEY)
    assert row["kk_token"] == id_token(NO_KK, KEY)
    assert row["nik_token"] != row["kk_token"]
    assert (row["desa_code"], row["kecamatan_code"], row["period"]) == (
        "35.07.01.2001",
        "35.07.01",
        "2026-Q4",
    )
    assert "name" not in row and "nik" not in row and "no_kk" not in row
    _no_clear_ids(page.rows)


def test_farmer_need_row() -> None:
    page = prepare_page("pertanian.farmer-needs", [farmer(desa_code="3507012002")], KEY, NOW)
    (row,) = page.rows
    assert row["desa_code"] == "35.07.01.2002" and row["kecamatan_code"] == "35.07.01"
    assert row["nik_token"] == id_token(NIK, KEY)
    assert (row["land_area_ha"], row["season"], row["urea_kg"]) == (1.25, "2026-MT1", 250.0)
    _no_clear_ids(page.rows)


def test_statistik_rows() -> None:
    (req,) = prepare_page("statistik.data-requests", [data_request()], KEY, NOW).rows
    assert req["desa_codes"] == "35.07.01.2001,35.07.01.2002"
    assert (req["requested_on"], req["due_date"]) == (date(2026, 11, 2), date(2026, 11, 16))
    (sub,) = prepare_page("statistik.submissions", [submission()], KEY, NOW).rows
    assert sub["request_id"] == "REQ-1"
    assert sub["submitted_at"] == datetime(2026, 11, 10, 3, 0, tzinfo=UTC)
    # SQLite keeps the wall time and drops the offset: the store must get UTC.
    assert sub["submitted_at"].utcoffset() == timedelta(0)


def test_decision_rows_start_unapplied() -> None:
    page = prepare_page(
        "kecamatan.decisions", [decision(decision="rejected", reason=f"bukan {NIK}")], KEY, NOW
    )
    (row,) = page.rows
    assert row["applied_at"] is None and row["outcome"] == ""
    assert row["decision"] == "rejected" and row["office"] == "kecamatan:35.07.01"
    assert NIK not in row["reason"]
    assert row["decided_at"] == datetime(2026, 11, 3, 2, 0, tzinfo=UTC)
    assert row["decided_at"].utcoffset() == timedelta(0)
    _no_clear_ids(page.rows)


@pytest.mark.parametrize(
    ("source", "record", "reasons"),
    [
        (
            "desa.blt-recipients",
            blt(desa_code="35.78.01.1001"),
            ["desa_code:kelurahan_no_dana_desa"],
        ),
        ("desa.blt-recipients", blt(desa_code="35.07.01.2999"), ["desa_code:region_code_unknown"]),
        # A man's NIK (no +40 day) is also a well-formed No. KK: only the cross-field rule sees it.
        ("desa.blt-recipients", blt(nik=MALE_NIK, no_kk=MALE_NIK), ["nik:nik_equals_no_kk"]),
        ("desa.blt-recipients", blt(nik="3.5070149E+15"), ["nik:nik_invalid"]),
        ("desa.blt-recipients", blt(period="2026-Q5"), ["period:string_pattern_mismatch"]),
        ("pkh.reports", report(kind="household_update"), ["changes:changes_missing"]),
        ("pkh.reports", report(changes={"desil": 2}), ["changes:changes_unexpected"]),
        ("pkh.reports", report(reported_on="2026-12-01"), ["reported_on:date_in_future"]),
        ("pkh.reports", report(kind="visit"), ["kind:literal_error"]),
        (
            "pkh.reports",
            report(kecamatan_code="35.07.01.2001"),
            ["kecamatan_code:region_code_kind"],
        ),
        ("pertanian.farmer-needs", farmer(land_area_ha=0), ["land_area_ha:greater_than"]),
        ("pertanian.farmer-needs", farmer(season="2026-MT4"), ["season:string_pattern_mismatch"]),
        (
            "statistik.data-requests",
            data_request(desa_codes=["35.07.02.2001"]),
            ["desa_codes:desa_outside_kecamatan"],
        ),
        (
            "statistik.data-requests",
            data_request(desa_codes=["35.07.01.2001", "35.07.01.2001"]),
            ["desa_codes:desa_listed_twice"],
        ),
        (
            "statistik.data-requests",
            data_request(due_date="2026-11-01"),
            ["due_date:due_before_request"],
        ),
        (
            "statistik.submissions",
            submission(desa_code="35.99.01.2001"),
            ["desa_code:region_code_unknown"],
        ),
        ("kecamatan.decisions", decision(decision="maybe"), ["decision:literal_error"]),
        ("kecamatan.decisions", decision(handoff_id="H-1"), ["handoff_id:string_pattern_mismatch"]),
    ],
)
def test_each_invalid_kind_is_rejected_with_a_clear_reason(
    source: str, record: dict[str, Any], reasons: list[str]
) -> None:
    good = {
        "desa.blt-recipients": blt,
        "pkh.reports": report,
        "pertanian.farmer-needs": farmer,
        "statistik.data-requests": data_request,
        "statistik.submissions": submission,
        "kecamatan.decisions": decision,
    }[source](id="OK-1")
    page = prepare_page(source, [good, record], KEY, NOW)
    # The bad record never blocks the good one.
    assert [r["id"] for r in page.rows] == ["OK-1"]
    (rejected,) = page.rejected
    assert rejected.reason_codes == reasons
    assert rejected.payload == record
    assert rejected.record_id == record["id"]
    assert page.fetched == 2
    assert page.reason_counts() == dict.fromkeys(reasons, 1)
    for reason in rejected.reasons:
        assert reason.message and not reason.message.startswith("Value error")
        assert NIK not in reason.message and NO_KK not in reason.message


def test_every_field_reason_is_kept_and_masked() -> None:
    bad_nik = NIK[:6] + "990000" + NIK[12:]  # no such day or month
    page = prepare_page(
        "desa.blt-recipients",
        [blt(nik=bad_nik, desa_code="35.07.01.2999", status="paid")],
        KEY,
        NOW,
    )
    (rejected,) = page.rejected
    assert rejected.reason_codes == [
        "desa_code:region_code_unknown",
        "nik:nik_invalid",
        "status:literal_error",
    ]
    messages = " ".join(r.message for r in rejected.reasons)
    assert bad_nik not in messages and bad_nik[:4] + "\u2022" * 8 in messages
    assert page.rows == [] and page.high is None


def test_page_high_water_mark_is_the_newest_valid_record() -> None:
    page = prepare_page(
        "pertanian.farmer-needs",
        [
            farmer(id="A", updated_at="2026-09-01T08:00:00+07:00"),
            farmer(id="B", updated_at="2026-09-03T08:00:00+07:00"),
            farmer(id="C", land_area_ha=-1, updated_at="2026-12-31T08:00:00+07:00"),
        ],
        KEY,
        NOW,
    )
    assert page.high == datetime(2026, 9, 3, 1, 0, tzinfo=UTC)
    assert len(page.rejected) == 1


def test_prepared_pages_cross_process_boundaries() -> None:
    assert pickle.loads(pickle.dumps(prepare_page)) is prepare_page
    for spec in SOURCES:
        assert pickle.loads(pickle.dumps(spec.rows)) is spec.rows
    page = prepare_page("pkh.reports", [report(), report(id="X", nik="123")], KEY, NOW)
    again = pickle.loads(pickle.dumps(page))
    assert again.rows == page.rows and again.rejected == page.rejected


def test_a_page_body_is_prepared_as_its_decoded_records() -> None:
    # What a worker process receives: the body as served, a lone surrogate and a record that
    # is not an object included; it must come out as the records the parent decoded.
    records: list[Any] = [report(), report(id="RPT-2", note="rumah kosong")]
    records += [report(id="X", nik="123"), "not an object", report(id="S", note="a\ud800")]
    body = json.dumps({"data": records, "next_cursor": None}).encode()
    from_body = prepare_page_body("pkh.reports", body, KEY, NOW)
    direct = prepare_page("pkh.reports", records, KEY, NOW)
    assert from_body.rows == direct.rows and len(direct.rows) == 2
    assert from_body.rejected == direct.rejected and len(direct.rejected) == 3
    assert from_body.warnings == direct.warnings
    assert pickle.loads(pickle.dumps(prepare_page_body)) is prepare_page_body


# --- registry households and recipients ------------------------------------------------------


def test_households_become_household_and_member_rows() -> None:
    good = household(1, members=[member(11), member(12, sex="L", birth_date="1990-01-01")])
    bad = household(2, desil=42)
    page = prepare_page("registry.households", [good, bad], KEY, NOW)
    assert page.fetched == 2
    assert [r["id"] for r in page.rows] == ["HH-1"]
    row = page.rows[0]
    assert row["kecamatan_code"] == "35.78.01" and row["kabupaten_code"] == "35.78"
    assert row["kk_token"] == id_token(good["no_kk"], KEY)
    assert row["updated_at"] == datetime(2026, 1, 5, 1, 0, tzinfo=UTC)  # 08:00 WIB
    assert [m["household_id"] for m in page.children] == ["HH-1", "HH-1"]
    assert all(m["updated_at"] == row["updated_at"] for m in page.children)
    # member 12's record says born 1990-01-01 but its NIK encodes 1985-03-14: a warning only
    assert page.warnings == {"members.nik:birth_date_mismatch": 1}
    assert page.high == row["updated_at"]
    assert page.reason_counts() == {"desil:less_than_equal": 1}


def test_recipient_rows_carry_tokens_not_clear_ids() -> None:
    rec = recipient(3)
    page = prepare_page("registry.recipients", [rec], KEY, NOW)
    (row,) = page.rows
    assert row["nik_token"] == id_token(rec["nik_pengurus"], KEY)
    assert rec["nik_pengurus"] not in row.values()
    assert rec["no_kk"] not in row.values()


def test_prepared_registry_pages_survive_pickling_for_worker_processes() -> None:
    page = prepare_page("registry.households", [household(4), household(5, desil="x")], KEY, NOW)
    again = pickle.loads(pickle.dumps(page))
    assert again.rows == page.rows and again.children == page.children
    assert again.reason_counts() == page.reason_counts()


def test_records_that_are_not_objects_are_quarantined_beside_good_ones() -> None:
    good = household(1)
    page = prepare_page("registry.households", [good, "3578014508900001", 7, None], KEY, NOW)
    assert [r["id"] for r in page.rows] == ["HH-1"]
    assert page.fetched == 4
    assert page.reason_counts() == {"model_type": 3}
    # Kept whole for replay, but the reason never echoes the value.
    assert [r.payload_json for r in page.rejected] == ['"3578014508900001"', "7", "null"]
    assert all("3578" not in r.reasons[0].message for r in page.rejected)


# --- puskesmas surveillance ------------------------------------------------------------------


def test_surveillance_reports_become_aggregate_rows() -> None:
    page = prepare_page("puskesmas.surveillance", [surveillance()], KEY, NOW)
    assert page.rows == [
        {
            "id": "SRV-3507012001-2026W44-1",
            "puskesmas_id": "PKM-350701",
            "desa_code": "35.07.01.2001",
            "kecamatan_code": "35.07.01",
            "week": "2026-W44",
            "condition": "dbd",
            "new_cases": 12,
            "tests": 40,
            "deaths": 0,
            "updated_at": datetime(2026, 11, 2, 0, 0, tzinfo=UTC),
            "synced_at": NOW,
        }
    ]


@pytest.mark.parametrize(
    ("over", "code"),
    [
        ({"week": "2026-W54"}, "week:value_error"),
        ({"week": "2026-44"}, "week:string_pattern_mismatch"),
        ({"condition": "influenza"}, "condition:literal_error"),
        ({"new_cases": -1}, "new_cases:greater_than_equal"),
        ({"deaths": "0"}, "deaths:int_type"),
        ({"desa_code": "35.99.99.9999"}, "desa_code:region_code_unknown"),
        # Aggregates only: a record naming a patient is refused, not stored.
        ({"patient_name": "Pasien"}, "patient_name:extra_forbidden"),
        ({"nik": NIK}, "nik:extra_forbidden"),
    ],
)
def test_surveillance_reports_are_refused_with_their_reason(
    over: dict[str, Any], code: str
) -> None:
    page = prepare_page("puskesmas.surveillance", [surveillance(**over)], KEY, NOW)
    assert page.rows == [] and page.rejected[0].reason_codes == [code]
