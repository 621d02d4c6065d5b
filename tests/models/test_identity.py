"""NIK / No. KK rules of docs/NIK_KK.md, masking, tokens and the pydantic types."""

from __future__ import annotations

import hashlib
import hmac
import random
import re
from datetime import date, timedelta
from typing import Literal

import pytest
from pydantic import BaseModel, ValidationError

from models.identity import (
    NIK,
    PROVINCE_CODES,
    IdCheck,
    IdFormatError,
    Issue,
    NoKK,
    check_nik,
    check_nik_kk_pair,
    check_no_kk,
    id_token,
    make_nik,
    make_no_kk,
    mask_id,
    mask_ids_in_text,
    nik_birth_date,
    nik_sex,
    normalise_id,
)
from models.wilayah import get_region_registry

TODAY = date(2025, 6, 1)
# Karang Pilang, Kota Surabaya (35.78.01); man born 1990-01-01, serial 0001.
GOOD = "3578010101900001"


def nik(ddmmyy: str, region: str = "357801", serial: str = "0001") -> str:
    return f"{region}{ddmmyy}{serial}"


def codes(check: IdCheck) -> list[str]:
    return [i.code for i in check.errors]


def warning_codes(check: IdCheck) -> list[str]:
    return [i.code for i in check.warnings]


# --- format -------------------------------------------------------------------------------


def test_province_codes() -> None:
    assert len(PROVINCE_CODES) == 38
    assert {"11", "35", "36", "96"} <= PROVINCE_CODES
    assert not {"10", "20", "37", "97", "99"} & PROVINCE_CODES


@pytest.mark.parametrize(
    "raw", ["3578 0101 0190 0001", "35.78.01-010190-0001", " 3578010101900001\t", GOOD]
)
def test_separators_are_stripped(raw: str) -> None:
    assert normalise_id(raw) == GOOD
    assert check_nik(raw, today=TODAY).value == GOOD


@pytest.mark.parametrize(
    ("raw", "code"),
    [
        (GOOD[:15], "length"),
        (GOOD + "1", "length"),
        ("", "length"),
        ("357801010190000A", "format"),
        ("NIK 3578010101900001", "format"),
        ("٣٥٧٨٠١٠١٠١٩٠٠٠٠١", "format"),  # Arabic-Indic digits
        ("３５７８０１０１０１９０００１", "format"),  # full-width digits
        ("3578/0101/9000/0001", "format"),
        ("3.5780801E+15", "scientific_notation"),
        ("3,5780801E+15", "scientific_notation"),
        ("3.57801E15", "scientific_notation"),
        ("3.57801e+15", "scientific_notation"),
    ],
)
def test_format_errors(raw: str, code: str) -> None:
    with pytest.raises(IdFormatError) as info:
        normalise_id(raw)
    assert info.value.issue.code == code
    assert isinstance(info.value, ValueError)
    result = check_nik(raw, today=TODAY)
    assert result.value is None and codes(result) == [code] and not result.ok
    assert codes(check_no_kk(raw, today=TODAY)) == [code]


def test_scientific_notation_message_explains() -> None:
    with pytest.raises(IdFormatError) as info:
        normalise_id("3.5780801E+15")
    message = info.value.issue.message
    assert "spreadsheet" in message and "float" in message and "lost" in message


@pytest.mark.parametrize(("raw", "kind"), [(3578010101900001, "int"), (3.578e15, "float")])
def test_not_text(raw: object, kind: str) -> None:
    with pytest.raises(IdFormatError) as info:
        normalise_id(raw)
    assert info.value.issue == Issue("not_text", f"NIK/No. KK must be text, got {kind}")
    assert codes(check_nik(raw)) == ["not_text"]
    assert codes(check_no_kk(None)) == ["not_text"]


# --- NIK -----------------------------------------------------------------------------------


def test_worked_examples() -> None:
    man = check_nik("3515140508680001", today=TODAY)
    assert man.ok and man.warnings == () and man.value == "3515140508680001"
    assert nik_birth_date("3515140508680001", today=TODAY) == date(1968, 8, 5)
    assert nik_sex("3515140508680001") == "L"
    woman = check_nik("3515144508680002", today=TODAY, birth_date=date(1968, 8, 5), sex="P")
    assert woman.ok and woman.warnings == ()
    assert nik_birth_date("3515144508680002", today=TODAY) == date(1968, 8, 5)
    assert nik_sex("3515144508680002") == "P"


@pytest.mark.parametrize(
    ("ddmmyy", "ok"),
    [
        ("410190", True),
        ("710190", True),  # 31 January, woman
        ("310190", True),
        ("010190", True),
        ("720190", False),
        ("400190", False),
        ("000190", False),
        ("320190", False),
        ("700490", True),  # 30 April, woman
        ("710490", False),  # 31 April does not exist
    ],
)
def test_day_and_plus_40(ddmmyy: str, ok: bool) -> None:
    result = check_nik(nik(ddmmyy), today=TODAY)
    assert result.ok is ok
    if not ok:
        assert codes(result) == ["birth_date"]


@pytest.mark.parametrize("ddmmyy", ["010090", "011390", "019990"])
def test_month_range(ddmmyy: str) -> None:
    assert codes(check_nik(nik(ddmmyy), today=TODAY)) == ["birth_date"]


def test_leap_days() -> None:
    assert nik_birth_date(nik("290200"), today=TODAY) == date(2000, 2, 29)
    assert nik_birth_date(nik("690200"), today=TODAY) == date(2000, 2, 29)
    assert nik_birth_date(nik("290296"), today=TODAY) == date(1996, 2, 29)
    assert codes(check_nik(nik("290297"), today=TODAY)) == ["birth_date"]
    assert codes(check_nik(nik("300200"), today=TODAY)) == ["birth_date"]
    # 1900 was not a leap year: with a recorded 19xx birth date, 29-02-00 is impossible.
    hinted = check_nik(nik("290200"), today=TODAY, birth_date=date(1900, 3, 1))
    assert codes(hinted) == ["birth_date"]
    with pytest.raises(ValueError, match="not a real calendar date"):
        nik_birth_date(nik("290200"), today=TODAY, birth_date_hint=date(1900, 1, 1))
    # 29 January 1900 is an ordinary day.
    assert nik_birth_date(nik("290100"), birth_date_hint=date(1900, 1, 29)) == date(1900, 1, 29)


def test_century_choice() -> None:
    assert nik_birth_date(nik("010124"), today=TODAY) == date(2024, 1, 1)
    assert nik_birth_date(nik("010625"), today=TODAY) == date(2025, 6, 1)  # today itself
    assert nik_birth_date(nik("020625"), today=TODAY) == date(1925, 6, 2)  # 2025-06-02 is ahead
    assert nik_birth_date(nik("010190"), today=TODAY) == date(1990, 1, 1)
    # A recorded birth date with the same YY decides the century.
    hint = date(1924, 1, 1)
    assert nik_birth_date(nik("010124"), today=TODAY, birth_date_hint=hint) == hint
    result = check_nik(nik("010124"), today=TODAY, birth_date=hint)
    assert result.ok and result.warnings == ()
    # A hint with another YY does not decide it, and is reported as a mismatch.
    other = date(1930, 1, 1)
    assert nik_birth_date(nik("010124"), today=TODAY, birth_date_hint=other) == date(2024, 1, 1)
    assert warning_codes(check_nik(nik("010124"), today=TODAY, birth_date=other)) == [
        "birth_date_mismatch"
    ]


def test_future_dates_rejected() -> None:
    hinted = check_nik(nik("010130"), today=TODAY, birth_date=date(2030, 1, 1))
    assert codes(hinted) == ["future_date"]
    assert codes(check_nik(nik("010695"), today=date(1990, 1, 1))) == ["future_date"]
    with pytest.raises(ValueError, match="future"):
        nik_birth_date(nik("010695"), today=date(1990, 1, 1))


def test_today_defaults_to_real_today() -> None:
    tomorrow = date.today() + timedelta(days=1)
    birth = date(date.today().year - 100, 1, 1)
    hinted = check_nik(make_nik("35.78.01", tomorrow, "L", 1), birth_date=tomorrow)
    assert codes(hinted) == ["future_date"]
    assert check_nik(make_nik("35.78.01", birth, "L", 1), birth_date=birth).ok


def test_serial_0000() -> None:
    assert codes(check_nik(nik("010190", serial="0000"), today=TODAY)) == ["serial"]
    assert check_nik(nik("010190", serial="9999"), today=TODAY).ok


def test_region_rules() -> None:
    unknown_province = check_nik(nik("010190", region="997801"), today=TODAY)
    assert codes(unknown_province) == ["province"]
    assert codes(check_nik(nik("010190", region="003578"), today=TODAY)) == ["province"]
    # 35.30 is not a Jawa Timur kabupaten/kota.
    assert codes(check_nik(nik("010190", region="353001"), today=TODAY)) == ["kabupaten"]
    # Unknown kecamatan of a known kabupaten: a warning only (old codes survive splits).
    split = check_nik(nik("010190", region="351099"), today=TODAY)
    assert split.ok and warning_codes(split) == ["kecamatan"]
    assert "35.10.99" in split.warnings[0].message
    # Other provinces cannot be checked below province level.
    jakarta = check_nik(nik("010190", region="317101"), today=TODAY)
    assert jakarta.ok and jakarta.warnings == ()
    assert check_nik(nik("010190", region="319999"), today=TODAY).ok


def test_all_errors_collected() -> None:
    result = check_nik("3530007213900000", today=TODAY)
    assert result.value == "3530007213900000"
    assert codes(result) == ["kabupaten", "birth_date", "birth_date", "serial"]
    assert codes(check_nik("9900003201000000", today=TODAY)) == ["province", "birth_date", "serial"]


def test_mismatch_warnings() -> None:
    man = "3515140508680001"
    for sex in ("P", "F", "p", "Perempuan"):
        result = check_nik(man, today=TODAY, sex=sex)
        assert result.ok and warning_codes(result) == ["sex_mismatch"]
    for sex in ("L", "M", " l "):
        assert check_nik(man, today=TODAY, sex=sex).warnings == ()
    assert check_nik(man, today=TODAY, sex="?").warnings == ()
    woman = check_nik("3515144508680002", today=TODAY, sex="L")
    assert warning_codes(woman) == ["sex_mismatch"]
    other_day = check_nik(man, today=TODAY, birth_date=date(1968, 8, 6))
    assert other_day.ok and warning_codes(other_day) == ["birth_date_mismatch"]
    both = check_nik(man, today=TODAY, birth_date=date(1970, 1, 1), sex="P")
    assert warning_codes(both) == ["birth_date_mismatch", "sex_mismatch"]


def test_nik_sex_and_date_errors() -> None:
    with pytest.raises(ValueError, match="neither"):
        nik_sex(nik("720190"))
    with pytest.raises(ValueError):
        nik_birth_date(nik("011390"))
    with pytest.raises(IdFormatError):
        nik_sex("123")


# --- No. KK --------------------------------------------------------------------------------


def test_no_kk() -> None:
    good = check_no_kk("3578011503150004", today=TODAY)
    assert good.ok and good.value == "3578011503150004"
    # No +40 rule: day 45 is not a date.
    assert codes(check_no_kk("3578014503150004", today=TODAY)) == ["issue_date"]
    assert codes(check_no_kk("3578013102150004", today=TODAY)) == ["issue_date"]
    assert codes(check_no_kk("3578011513150004", today=TODAY)) == ["issue_date"]
    assert codes(check_no_kk("3578011503150000", today=TODAY)) == ["serial"]
    assert codes(check_no_kk("3578011506990004", today=date(1999, 1, 1))) == ["future_date"]
    assert codes(check_no_kk("9978011503150004", today=TODAY)) == ["province"]
    assert codes(check_no_kk("3530011503150004", today=TODAY)) == ["kabupaten"]
    assert warning_codes(check_no_kk("3510991503150004", today=TODAY)) == ["kecamatan"]
    assert codes(check_no_kk("3530014513150000", today=TODAY)) == [
        "kabupaten",
        "issue_date",
        "serial",
    ]


def test_nik_kk_pair() -> None:
    issue = check_nik_kk_pair("3578 0101 0190 0001", GOOD)
    assert issue is not None and issue.code == "same_as_kk"
    assert GOOD not in issue.message and mask_id(GOOD) in issue.message
    assert check_nik_kk_pair(GOOD, "3578011503150004") is None
    assert check_nik_kk_pair("x", "x") is None


# --- masking and tokens --------------------------------------------------------------------


def test_mask_id() -> None:
    assert mask_id(GOOD) == "3578••••••••0001"
    assert mask_id("3578 0101 0190 0001") == "3578••••••••0001"
    assert mask_id(GOOD[:15]) == "35" + "•" * 11 + "00"
    assert mask_id(GOOD + "7") == "35" + "•" * 13 + "17"
    assert mask_id("12345") == "1•••5"
    assert mask_id("ab") == "••"
    assert mask_id("") == ""
    assert mask_id(None) == "N••e"  # type: ignore[arg-type]  # never raises


def test_mask_ids_in_text() -> None:
    text = f"nik={GOOD}, kk=3578011503150004; x{GOOD}y"
    assert mask_ids_in_text(text) == (
        "nik=3578••••••••0001, kk=3578••••••••0004; x3578••••••••0001y"
    )
    for untouched in (GOOD[:15], GOOD + "1", "id 123456789012345678 end"):
        assert mask_ids_in_text(untouched) == untouched
    # Hex digests keep their digit runs (one in 200 has 16 in a row); ids beside them do not.
    digest = "308ca31d289f470b7374995140670655"
    assert mask_ids_in_text(f"handoff {digest}: nik {GOOD}") == (
        f"handoff {digest}: nik 3578••••••••0001"
    )
    assert mask_ids_in_text(f"x{GOOD}y {digest}") == f"x3578••••••••0001y {digest}"


def test_id_token() -> None:
    key = b"k" * 32
    token = id_token(GOOD, key)
    assert re.fullmatch(r"[0-9a-f]{32}", token)
    tag = hmac.new(key, b"kecamatan:" + GOOD[:6].encode(), hashlib.sha256).hexdigest()[:4]
    assert token == tag + hmac.new(key, GOOD.encode(), hashlib.sha256).hexdigest()[:28]
    # Ids of one kecamatan share the tag (clustered indexes); other kecamatan do not.
    assert id_token("3578010101900002", key)[:4] == tag
    assert id_token("3578020101900001", key)[:4] != tag
    assert GOOD[:6] not in token
    assert id_token("3578 0101 0190 0001", key) == token
    assert id_token(GOOD, b"other key") != token
    assert id_token("3578010101900002", key) != token
    with pytest.raises(ValueError):
        id_token(GOOD, b"")
    with pytest.raises(IdFormatError):
        id_token("123", key)


def _bad_inputs(rng: random.Random, n: int) -> list[str]:
    """Random well-formed 16-digit strings, most of them breaking one or more rules."""
    out = []
    for _ in range(n):
        digits = [rng.choice("0123456789") for _ in range(16)]
        if rng.random() < 0.5:
            digits[:4] = "3578"
        if rng.random() < 0.2:
            digits[12:] = "0000"
        out.append("".join(digits))
    return out


def test_no_message_contains_the_clear_number() -> None:
    rng = random.Random(20250601)
    sixteen = re.compile(r"[0-9]{16}")
    seen_codes: set[str] = set()
    for value in _bad_inputs(rng, 600):
        checks = [
            check_nik(value, today=TODAY, birth_date=date(1990, 1, 1), sex="P"),
            check_nik(value[:8] + " " + value[8:], today=TODAY, sex="L"),
            check_no_kk(value, today=TODAY),
        ]
        pair = check_nik_kk_pair(value, value)
        issues = [i for c in checks for i in (*c.errors, *c.warnings)]
        issues += [pair] if pair else []
        for issue in issues:
            seen_codes.add(issue.code)
            assert value not in issue.message
            assert not sixteen.search(issue.message), issue
        for bad in (value[:15], value + "9", value[:10] + "x" + value[10:]):
            issue = check_nik(bad).errors[0]
            assert value[:15] not in issue.message
    assert {"province", "kabupaten", "birth_date", "serial", "same_as_kk", "sex_mismatch"} <= (
        seen_codes
    )


# --- composition helpers -------------------------------------------------------------------


def test_make_round_trip() -> None:
    rng = random.Random(7)
    kecamatan = [r.code for r in get_region_registry().kecamatan()]
    for _ in range(300):
        kec = rng.choice(kecamatan)
        birth = date(1930, 1, 1) + timedelta(days=rng.randrange(95 * 365))
        sex: Literal["L", "P"] = "L" if rng.random() < 0.5 else "P"
        serial = rng.randint(1, 9999)
        value = make_nik(kec, birth, sex, serial)
        assert len(value) == 16 and value.startswith(kec.replace(".", ""))
        result = check_nik(value, today=TODAY, birth_date=birth, sex=sex)
        assert result.ok and result.warnings == (), result
        assert nik_birth_date(value, today=TODAY, birth_date_hint=birth) == birth
        assert nik_sex(value) == sex
        issued = date(2000, 1, 1) + timedelta(days=rng.randrange(25 * 365))
        kk = make_no_kk(kec, issued, serial)
        kk_result = check_no_kk(kk, today=TODAY)
        assert kk_result.ok and kk_result.warnings == (), kk_result
    assert make_nik("35.15.14", date(1968, 8, 5), "P", 2) == "3515144508680002"
    assert make_no_kk("351514", date(2015, 3, 15), 4) == "3515141503150004"


@pytest.mark.parametrize(
    "call",
    [
        lambda: make_nik("35.78", date(1990, 1, 1), "L", 1),
        lambda: make_nik("35.78.01", date(1990, 1, 1), "L", 0),
        lambda: make_nik("35.78.01", date(1990, 1, 1), "L", 10000),
        lambda: make_nik("35.78.01", date(1990, 1, 1), "X", 1),  # type: ignore[arg-type]
        lambda: make_no_kk("35.78.01.1001", date(2015, 1, 1), 1),
    ],
)
def test_make_rejects_bad_arguments(call: object) -> None:
    with pytest.raises(ValueError):
        call()  # type: ignore[operator]


# --- pydantic ------------------------------------------------------------------------------


class _Person(BaseModel):
    nik: NIK
    no_kk: NoKK


def test_pydantic_types_accept_and_normalise() -> None:
    person = _Person(nik="3578 0101 0190 0001", no_kk="35.78.01-150315-0004")
    assert (person.nik, person.no_kk) == (GOOD, "3578011503150004")
    # Warnings (unknown kecamatan) do not fail validation.
    assert _Person(nik=nik("010190", region="351099"), no_kk="3510991503150004").nik


def test_pydantic_types_collect_errors_for_both_fields() -> None:
    with pytest.raises(ValidationError) as info:
        _Person(nik="9978013201900000", no_kk=3578011503150004)
    errors = info.value.errors()
    assert [(e["loc"], e["type"]) for e in errors] == [
        (("nik",), "nik_invalid"),
        (("no_kk",), "no_kk_invalid"),
    ]
    nik_msg = errors[0]["msg"]
    assert "9978••••••••0000" in nik_msg
    assert all(word in nik_msg for word in ("province", "day", "serial"))
    assert "9978013201900000" not in nik_msg
    assert "must be text, got int" in errors[1]["msg"]


def test_record_warnings_agree_with_check_nik() -> None:
    """The bulk-sync shortcut gives the same warnings as the full check."""
    from models.identity import record_warnings

    cases = [
        (make_nik("35.78.01", date(1985, 3, 14), "P", 7), date(1985, 3, 14), "P"),
        (make_nik("35.78.01", date(1985, 3, 14), "P", 7), date(1985, 3, 15), "P"),
        (make_nik("35.78.01", date(1985, 3, 14), "P", 7), date(1985, 3, 14), "L"),
        (make_nik("35.78.01", date(1985, 3, 14), "L", 7), date(1986, 3, 14), "P"),
        (make_nik("35.10.99", date(2001, 12, 1), "L", 7), date(2001, 12, 1), "L"),
        (make_nik("31.71.01", date(2001, 12, 1), "L", 7), date(2001, 12, 1), "L"),
    ]
    expected = [
        (),
        ("birth_date_mismatch",),
        ("sex_mismatch",),
        ("sex_mismatch", "birth_date_mismatch"),
        ("kecamatan",),
        (),
    ]
    for (nik, born, sex), want in zip(cases, expected, strict=True):
        full = check_nik(nik, birth_date=born, sex=sex)
        assert full.ok
        assert sorted(w.code for w in full.warnings) == sorted(want)
        assert sorted(record_warnings(nik, born, sex)) == sorted(want)


@pytest.mark.parametrize("control", ["\x00", "\x1b", "\x1f", "\x7f", "\x85", "\x0b"])
def test_a_control_character_in_an_id_is_a_format_error_not_a_separator(control: str) -> None:
    with pytest.raises(IdFormatError) as caught:
        normalise_id(f"3578{control}010101900001")
    assert caught.value.issue.code == "control_character"
    assert "3578" not in str(caught.value)
    # Tabs and line breaks of a copied spreadsheet cell are still layout.
    assert normalise_id("\t3578010101900001\r\n") == "3578010101900001"


def test_the_validators_look_ups_agree_with_the_checks() -> None:
    """The pydantic types' table look-ups accept exactly what the full checks find valid."""
    from models.identity import _fast_path

    rng = random.Random(35)
    kabs = sorted(r.code.replace(".", "") for r in get_region_registry().kabupaten_kota())
    values = []
    for _ in range(20_000):
        prefix = rng.choice(
            [rng.choice(kabs), f"{rng.randrange(100):02d}{rng.randrange(100):02d}", "3599", "3578"]
        )
        day = rng.choice([rng.randrange(100), 29, 30, 31, 69, 70, 71, 0, 40, 41])
        month = rng.choice([rng.randrange(100), 2, 12, 13, 0])
        yy = rng.choice([rng.randrange(100), 0, 24, 25, 26])
        serial = rng.choice(["0000", "0001", f"{rng.randrange(10_000):04d}"])
        values.append(f"{prefix}{rng.randrange(100):02d}{day:02d}{month:02d}{yy:02d}{serial}")
    values += [GOOD, "35780101019000O1", "3578 0101 0190 0001", "357801010190000", 3578010101900001]
    for nik_rule, check in ((False, check_no_kk), (True, check_nik)):
        fast = _fast_path(nik_rule)
        for value in values:
            result = check(value)
            slow = result.value == value and not result.errors
            assert fast(value) is slow, (check.__name__, value)


def test_record_warnings_agree_with_check_nik_on_many_records() -> None:
    from models.identity import record_warnings

    rng = random.Random(7)
    kecs = [r.code for r in get_region_registry().kecamatan()]
    for _ in range(5_000):
        born = date(1930, 1, 1) + timedelta(days=rng.randrange(34_000))
        sex: Literal["L", "P"] = rng.choice(["L", "P"])
        nik = make_nik(rng.choice([*kecs[:50], "35.10.99", "31.71.01"]), born, sex, 9)
        recorded = rng.choice([born, born + timedelta(days=rng.choice([1, 31, 365]))])
        said = rng.choice(["L", "P", " p ", "laki-laki", "WANITA", "x", ""])
        full = check_nik(nik, birth_date=recorded, sex=said)
        if not full.ok:
            continue
        assert sorted(record_warnings(nik, recorded, said)) == sorted(
            w.code for w in full.warnings
        ), (nik, recorded, said)


def test_the_validators_date_table_follows_the_local_day(monkeypatch: pytest.MonkeyPatch) -> None:
    from datetime import datetime

    from models import identity

    midnight = datetime(2030, 1, 1).timestamp()
    for ts, day in ((midnight - 0.5, date(2029, 12, 31)), (midnight + 0.5, date(2030, 1, 1))):
        monkeypatch.setattr(identity.time, "time", lambda ts=ts: ts)
        assert identity._valid_days_now() is identity._valid_days(day)
    monkeypatch.undo()
    assert identity._valid_days_now() is identity._valid_days(date.today())
