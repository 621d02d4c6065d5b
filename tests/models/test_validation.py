"""Batch validation: good records pass, each bad one is rejected with every reason, masked."""

from __future__ import annotations

import re

from models.contracts.pkh import FacilitatorReport
from models.contracts.registry import Household, Recipient
from models.validation import conflict_rejection, validate_batch
from tests.factories import household, member, recipient
from tests.models.test_sources import report

CLEAR_ID = re.compile(r"(?<!\d)\d{16}(?!\d)")


def test_good_records_pass_and_bad_ones_do_not_block_them() -> None:
    bad_nik = household(2, members=[member(21, nik="3578019913850021")])
    records = [household(1), bad_nik, household(3)]
    batch = validate_batch(records, Household)
    assert [h.id for h in batch.valid] == ["HH-1", "HH-3"]
    assert len(batch.rejected) == 1
    rej = batch.rejected[0]
    assert rej.record_id == "HH-2"
    assert rej.reason_codes == ["members.nik:nik_invalid"]
    assert rej.payload is bad_nik


def test_every_reason_of_a_record_is_kept() -> None:
    rec = household(
        4,
        desa_code="35.99.01.2001",
        desil="tinggi",
        members=[member(41, name="x" * 500, birth_date="2023-02-30")],
    )
    batch = validate_batch([rec], Household)
    codes = batch.rejected[0].reason_codes
    assert "desa_code:region_code_unknown" in codes
    assert "desil:int_type" in codes
    assert "members.name:string_too_long" in codes
    assert any(c.startswith("members.birth_date:") for c in codes)


def test_cross_field_errors_nik_equals_kk_and_duplicates() -> None:
    m = member(51)
    # a man's NIK has a plain DDMMYY date, so it is also a well-formed No. KK
    same_as_kk = household(5, members=[member(52, sex="L")])
    same_as_kk["no_kk"] = same_as_kk["members"][0]["nik"]
    dup = household(6, members=[m, {**m, "id": "M-99"}])
    batch = validate_batch([same_as_kk, dup], Household)
    assert len(batch.rejected) == 2
    assert [r.reason_codes for r in batch.rejected] == [["value_error"], ["value_error"]]
    assert "swapped" in batch.rejected[0].reasons[0].message
    assert "twice" in batch.rejected[1].reasons[0].message


def test_reasons_never_carry_a_clear_nik_or_kk() -> None:
    recs = [
        household(7, members=[member(71, nik="3578015513850000")]),
        household(8, no_kk="9978010101150008"),
        household(9, members=[member(91, nik=3578015513850091)]),
        household(10, members=[member(101, nik="3.5780155E+15")]),
        recipient(11, nik_pengurus="3578016613850011"),
    ]
    rejected = (
        validate_batch(recs[:4], Household).rejected + validate_batch(recs[4:], Recipient).rejected
    )
    assert len(rejected) == 5
    for rej in rejected:
        for reason in rej.reasons:
            assert not CLEAR_ID.search(reason.message), reason.message


def test_missing_and_wrong_shapes_are_quarantined_not_raised() -> None:
    no_ts = household(12)
    del no_ts["updated_at"]
    batch = validate_batch([no_ts, "not a record", None, household(13, members="x")], Household)
    assert len(batch.valid) == 0
    assert len(batch.rejected) == 4
    assert batch.rejected[0].reason_codes == ["updated_at:missing"]
    assert batch.rejected[1].record_id is None
    assert batch.reason_counts()["updated_at:missing"] == 1


def test_payload_hash_is_stable_for_equal_payloads() -> None:
    a = validate_batch([household(14, desil=11)], Household).rejected[0]
    b = validate_batch([household(14, desil=11)], Household).rejected[0]
    assert a.payload_hash == b.payload_hash


def test_a_key_the_record_wrote_never_reaches_a_reason_key() -> None:
    markup = "`<img src=x onerror=alert(1)>` **3578015513850021**"
    rec = report(kind="household_update", changes={"address": "Jl. Baru", markup: 1})
    (rej,) = validate_batch([rec], FacilitatorReport).rejected
    assert rej.reason_codes == ["changes.*:extra_forbidden"]
    assert all(markup not in r.loc for r in rej.reasons)


def test_a_conflicting_duplicate_is_rejected_with_its_own_reason() -> None:
    rec = household(15)
    rej = conflict_rejection(rec)
    assert rej.record_id == "HH-15" and rej.payload is rec
    assert rej.reason_codes == ["id:duplicate_conflict"]
    assert conflict_rejection({"id": "HH-\x00"}).record_id is None
