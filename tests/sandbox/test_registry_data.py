"""The synthetic registry generator: spread, validity, ground truth, NIK rules, scale."""

from __future__ import annotations

import tracemalloc
from collections import Counter
from datetime import UTC, date, datetime, timedelta
from typing import Any

import pytest
from pydantic import ValidationError

from models.contracts.registry import Household, Recipient
from models.identity import check_nik, check_no_kk
from models.wilayah import get_region_registry
from sandbox.bad_records import BadKind, RecipientBadKind
from sandbox.config import RegistryDataConfig
from sandbox.registry_data import HOUSEHOLDS, RECIPIENTS, RegistryData, index_of_household_id
from sandbox.timeline import Timeline
from sandbox.truth import registry_truth


@pytest.fixture(scope="module")
def rich() -> RegistryData:
    """3,000 households with many bad records, so every bad kind occurs."""
    return RegistryData(RegistryDataConfig(households=3000, bad_rate=0.1))


def _errors(model: type[Household] | type[Recipient], record: dict[str, Any]) -> list[Any] | None:
    try:
        model.model_validate(record)
    except ValidationError as exc:
        return list(exc.errors())
    return None


def test_households_span_the_province_even_when_few() -> None:
    for n, at_least in ((700, 30), (2000, 30)):
        data = RegistryData(RegistryDataConfig(households=n))
        kab = {data.desa_of(i)[:5] for i in range(n)}
        kec = {data.kecamatan_of(i) for i in range(n)}
        assert len(kab) >= at_least, (n, len(kab))
        assert len(kec) > 300
    data = RegistryData(RegistryDataConfig(households=20_000))
    assert len({data.kecamatan_of(i) for i in range(20_000)}) == 666
    assert len({data.desa_of(i) for i in range(20_000)}) > 7000


def test_generation_is_deterministic_and_seeded() -> None:
    a = RegistryData(RegistryDataConfig(households=300))
    b = RegistryData(RegistryDataConfig(households=300))
    c = RegistryData(RegistryDataConfig(households=300, seed=36))
    assert [a.household(i) for i in range(50)] == [b.household(i) for i in range(50)]
    assert [a.household(i) for i in range(50)] != [c.household(i) for i in range(50)]


def test_kecamatan_indices_partition_the_households() -> None:
    data = RegistryData(RegistryDataConfig(households=3000, epoch=2))
    seen: list[int] = []
    for kec in get_region_registry().kecamatan():
        indices = list(data.indices(kec.code))
        assert indices == sorted(indices)
        assert all(data.kecamatan_of(i) == kec.code for i in indices)
        assert len(indices) == data.households_count(kec.code)
        seen.extend(indices)
    assert sorted(seen) == list(range(data.households_count()))


def test_household_shape_and_composition(rich: RegistryData) -> None:
    sizes: Counter[int] = Counter()
    relationships: Counter[str] = Counter()
    status: Counter[str] = Counter()
    for i in range(rich.households_count()):
        if rich.bad_kind(i) is not None:
            continue
        hh = rich.household(i)
        assert hh["id"] == f"HH-{hh['desa_code'].replace('.', '')}-{i}"
        assert index_of_household_id(hh["id"]) == i
        assert 1 <= hh["desil"] <= 10
        sizes[len(hh["members"])] += 1
        assert hh["members"][0]["relationship"] == "kepala"
        relationships.update(m["relationship"] for m in hh["members"])
        status.update(m["status"] for m in hh["members"])
    people = sum(n * k for n, k in sizes.items())
    assert set(sizes) <= set(range(1, 8))
    assert 2.7 < people / sizes.total() < 3.5
    assert {"kepala", "pasangan", "anak", "lainnya"} <= set(relationships)
    assert 0.003 < status["deceased"] / people < 0.02
    assert 0.003 < status["moved"] / people < 0.03


def test_every_bad_household_fails_the_contract_and_every_good_one_passes(
    rich: RegistryData,
) -> None:
    kinds: Counter[str] = Counter()
    where = {
        BadKind.NIK_BAD_DATE: "nik",
        BadKind.NIK_SERIAL_ZERO: "nik",
        BadKind.NIK_UNKNOWN_PROVINCE: "nik",
        BadKind.NIK_SCIENTIFIC: "nik",
        BadKind.UNKNOWN_REGION: "desa_code",
        BadKind.IMPOSSIBLE_DATE: "birth_date",
        BadKind.OVERSIZE_STRING: "name",
        BadKind.MISSING_FIELD: "updated_at",
    }
    for i in range(rich.households_count()):
        record = rich.household(i)
        errors = _errors(Household, record)
        kind = rich.bad_kind(i)
        if kind is None:
            assert errors is None, (i, errors)
            continue
        assert errors, (i, kind)
        kinds[kind] += 1
        locs = {str(part) for e in errors for part in e["loc"]}
        messages = " ".join(e["msg"] for e in errors)
        if kind in where:
            assert where[kind] in locs, (kind, errors)
        elif kind is BadKind.WRONG_TYPE:
            assert locs & {"desil", "members"}, errors
        elif kind is BadKind.DUPLICATE_NIK:
            assert "twice" in messages
        elif kind is BadKind.NIK_EQUALS_KK:
            assert "No. KK" in messages
    assert set(kinds) == set(BadKind)
    assert 0.08 < kinds.total() / rich.households_count() < 0.12


def test_every_bad_recipient_fails_the_contract_and_every_good_one_passes(
    rich: RegistryData,
) -> None:
    kinds: Counter[str] = Counter()
    programmes: Counter[str] = Counter()
    households = rich.households_count()
    for i in range(households):
        for record in rich.recipients(i):
            programmes[record["programme"]] += 1
            kind = rich.recipient_bad_kind(i, record["programme"])
            errors = _errors(Recipient, record)
            assert (errors is None) == (kind is None), (i, kind, errors)
            if kind is not None:
                kinds[kind] += 1
            assert record["id"] == f"{record['household_id']}-{record['programme']}"
            assert record["period"] == "2026-Q4" or kind is RecipientBadKind.BAD_PERIOD
    assert set(kinds) == set(RecipientBadKind)
    assert 0.20 < programmes["PKH"] / households < 0.30
    assert 0.35 < programmes["BPNT"] / households < 0.45


def test_pengurus_is_the_mother_or_the_head(rich: RegistryData) -> None:
    checked = 0
    for i in range(1000):
        recs = rich.recipients(i)
        if not recs or rich.bad_kind(i) is not None:
            continue
        members = rich.household(i)["members"]
        by_nik = {m["nik"]: m for m in members}
        for rec in recs:
            if rich.recipient_bad_kind(i, rec["programme"]) is not None:
                continue
            pengurus = by_nik[rec["nik_pengurus"]]
            assert pengurus["relationship"] in ("kepala", "pasangan")
            if any(m["relationship"] == "pasangan" and m["sex"] == "P" for m in members):
                assert pengurus["sex"] == "P"
            assert rec["no_kk"] == rich.household(i)["no_kk"]
            checked += 1
    assert checked > 300


def _good_members(data: RegistryData, indices: Any) -> list[tuple[dict[str, Any], str]]:
    out: list[tuple[dict[str, Any], str]] = []
    for i in indices:
        if data.bad_kind(i) is None:
            hh = data.household(i)
            out.extend((m, hh["no_kk"]) for m in hh["members"])
    return out


def test_good_niks_agree_with_birth_date_sex_and_region(rich: RegistryData) -> None:
    kecamatan_codes = {k.code.replace(".", "") for k in get_region_registry().kecamatan()}
    own = 0
    members = _good_members(rich, range(2000))
    for member, no_kk in members:
        born = date.fromisoformat(member["birth_date"])
        check = check_nik(member["nik"], birth_date=born, sex=member["sex"])
        assert check.ok and not check.warnings, (check.errors, check.warnings)
        assert member["nik"][:6] in kecamatan_codes
        assert member["nik"] != no_kk
        assert check_no_kk(no_kk).ok
        if member["nik"][:6] == member["id"][3:9]:
            own += 1
    # About 10% were first registered in another kecamatan.
    assert 0.84 < own / len(members) < 0.95
    niks = [m["nik"] for m, _ in members]
    assert len(set(niks)) == len(niks)


def test_niks_stay_unique_in_a_crowded_kecamatan_at_scale() -> None:
    # At a million households the largest kecamatan needs more than 9,999 serials, so the
    # birth-date residue classes must keep NIKs apart; its partner sends people in too.
    data = RegistryData(RegistryDataConfig(households=1_000_000, bad_rate=0.0))
    layout = data.layout
    biggest = max(layout.patterns, key=lambda p: len(p.residues))
    source = next(n for n in range(len(layout.kecamatan)) if layout.partner(n) == biggest.number)
    indices = list(data.indices(biggest.code)) + list(data.indices(layout.kecamatan[source].code))
    members = _good_members(data, indices)
    assert data.households_count(biggest.code) * 7 > 9999
    niks = [m["nik"] for m, _ in members]
    assert len(set(niks)) == len(niks)
    prefix = biggest.code.replace(".", "")
    registered_here = [n for n in niks if n.startswith(prefix)]
    # Serials repeat within the kecamatan, yet every NIK is distinct.
    assert len({n[12:] for n in registered_here}) < len(registered_here) - 500
    for member, _ in members[:2000]:
        born = date.fromisoformat(member["birth_date"])
        assert check_nik(member["nik"], birth_date=born, sex=member["sex"]).ok


def test_updates_change_fields_and_move_the_timestamp() -> None:
    data = RegistryData(RegistryDataConfig(households=2000, bad_rate=0.0, epoch=3))
    start, end = data.epoch_window(3)
    updated = [i for i in range(2000) if 3 in data.household_update_epochs(i)]
    assert 50 < len(updated) < 160
    changed = 0
    for i in updated:
        before, after = data.household(i, epoch=2), data.household(i, epoch=3)
        assert start <= datetime.fromisoformat(after["updated_at"]) < end
        assert datetime.fromisoformat(before["updated_at"]) < start
        assert after["id"] == before["id"] and after["no_kk"] == before["no_kk"]
        assert [m["nik"] for m in after["members"]] == [m["nik"] for m in before["members"]]
        changed += after != {**before, "updated_at": after["updated_at"]}
    assert changed == len(updated)
    # Epoch 3 also adds 1% new households.
    assert data.households_count() == 2060
    assert data.household_version(2059) == 3


def test_truth_counts_match_the_records() -> None:
    data = RegistryData(RegistryDataConfig(households=800, epoch=1))
    truth = data.truth()
    assert truth["households"] == 808
    assert truth["members"] == sum(len(data.household(i)["members"]) for i in range(808))
    assert truth["valid_households"] + truth["bad_households"] == 808
    assert truth["bad_households"] == sum(truth["bad_households_by_kind"].values())
    assert truth["bad_households"] == sum(data.bad_kind(i) is not None for i in range(808))
    assert truth["bad_recipients"] == sum(truth["bad_recipients_by_kind"].values())
    assert truth == registry_truth(RegistryDataConfig(households=800, epoch=1))
    assert truth["recipients"] == sum(len(data.recipients(i)) for i in range(808))
    kec = data.kecamatan_of(5)
    assert data.truth(kec)["households"] == data.households_count(kec)


def test_page_order_and_seek_match_the_generator() -> None:
    data = RegistryData(RegistryDataConfig(households=600, epoch=2, bad_rate=0.0))
    for collection in (HOUSEHOLDS, RECIPIENTS):
        records, nxt = data.pages(collection)(limit=100_000)
        assert nxt is None
        keys = [(datetime.fromisoformat(r["updated_at"]), r["id"]) for r in records]
        assert keys == sorted(keys)
        assert len(set(keys)) == len(keys)
        for k in (1, len(records) // 3, len(records) - 1):
            later, _ = data.pages(collection)(since=keys[k][0], limit=100_000)
            first = next(j for j, key in enumerate(keys) if key[0] >= keys[k][0])
            assert later == records[first:]


def test_one_kecamatan_at_jatim_scale_is_cheap() -> None:
    data = RegistryData(RegistryDataConfig(households=6_500_000, epoch=2))
    records, nxt = data.pages(HOUSEHOLDS)(kecamatan="35.78.01", limit=5000)
    assert nxt is None
    assert len(records) == data.households_count("35.78.01") > 2000
    # Nothing is kept per household: a fresh generator plus a page stays small.
    tracemalloc.start()
    try:
        other = RegistryData(RegistryDataConfig(households=6_500_000, epoch=2))
        other.pages(HOUSEHOLDS)(kecamatan="35.07.01", limit=300)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert peak < 50 * 1024 * 1024


def test_timestamp_text_matches_datetime_formatting() -> None:
    for base in (RegistryDataConfig().base_time, datetime(2026, 3, 1, 12, 30, tzinfo=UTC)):
        timeline = Timeline(RegistryDataConfig(households=10, base_time=base))
        for ms in (-1, 0, 999, 123_456_789, -987_654_321, 86_400_000 * 400 + 3_723_004):
            expected = (base + timedelta(milliseconds=ms)).isoformat(timespec="milliseconds")
            assert timeline.format_ms(ms) == expected
            assert datetime.fromisoformat(expected) == timeline.to_datetime(ms)


def test_planted_duplicates_copy_a_person_of_the_previous_household() -> None:
    config = RegistryDataConfig(households=1500)
    plain = RegistryData(config)
    data = RegistryData(config, duplicate_nik_rate=0.3, duplicate_deceased_rate=0.1)
    copies = Counter[str]()
    for i in range(1500):
        draft = data.draft(i)
        before = plain.household(i)
        after = data.household(i)
        # Only the copied member changes; counts, ids, KK and enrolments stay as they were.
        assert [m["id"] for m in draft.members] == [m["id"] for m in plain.draft(i).members]
        assert draft.no_kk == plain.draft(i).no_kk
        assert data.recipients(i) == plain.recipients(i)
        assert (_errors(Household, after) is None) == (data.bad_kind(i) is None)
        if draft.copied_slot is None:
            assert after == before
            continue
        slot, source = draft.copied_slot, draft.copied_from
        assert source is not None and source < i
        assert slot == len(draft.members) - 1 and slot not in (0, draft.pengurus)
        pattern = data.pattern(data.kecamatan_of(i))
        assert pattern.index_at(pattern.position(i) - 1) == source
        copy = draft.members[slot]
        origin = plain.draft(source)
        person = next(m for m in origin.members if m["nik"] == copy["nik"])
        assert origin.members.index(person) != origin.pengurus
        for field in ("name", "sex", "birth_date"):
            assert copy[field] == person[field]
        assert copy["relationship"] == "lainnya"
        copies[copy["status"]] += 1
    assert copies["active"] > 40 and copies["deceased"] > 10
    # Every count but the life status of the copied people stays as it was.
    status = "valid_members_by_status"
    planted, original = data.truth(), plain.truth()
    assert planted.pop(status) != original.pop(status)
    assert planted == original
