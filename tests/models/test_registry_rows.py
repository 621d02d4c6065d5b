"""Page preparation: rows, keyed tokens instead of clear IDs in enrolments, warnings, rejects."""

from __future__ import annotations

import pickle
from datetime import UTC, datetime

from models.identity import id_token
from models.registry_rows import prepare_households, prepare_page, prepare_recipients
from tests.factories import household, member, recipient

KEY = b"test-key"
NOW = datetime(2026, 11, 27, tzinfo=UTC)


def test_households_become_household_and_member_rows() -> None:
    good = household(1, members=[member(11), member(12, sex="L", birth_date="1990-01-01")])
    bad = household(2, desil=42)
    page = prepare_households([good, bad], KEY, NOW)
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
    page = prepare_recipients([rec], KEY, NOW)
    (row,) = page.rows
    assert row["nik_token"] == id_token(rec["nik_pengurus"], KEY)
    assert rec["nik_pengurus"] not in row.values()
    assert rec["no_kk"] not in row.values()


def test_prepared_pages_survive_pickling_for_worker_processes() -> None:
    page = prepare_page("households", [household(4), household(5, desil="x")], KEY, NOW)
    again = pickle.loads(pickle.dumps(page))
    assert again.rows == page.rows and again.children == page.children
    assert again.reason_counts() == page.reason_counts()


def test_records_that_are_not_objects_are_quarantined_beside_good_ones() -> None:
    good = household(1)
    page = prepare_households([good, "3578014508900001", 7, None], KEY, NOW)
    assert [r["id"] for r in page.rows] == ["HH-1"]
    assert page.fetched == 4
    assert page.reason_counts() == {"model_type": 3}
    # Kept whole for replay, but the reason never echoes the value.
    assert [r.payload_json for r in page.rejected] == ['"3578014508900001"', "7", "null"]
    assert all("3578" not in r.reasons[0].message for r in page.rejected)
