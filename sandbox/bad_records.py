"""Kinds of deliberately broken records and how each one corrupts a wire record.

Every kind must make the record fail its agency's contract (`models.contracts.*`), so the
hub's quarantine counts can be checked exactly against the generator's ground truth.
"""

from __future__ import annotations

import random
from collections.abc import Callable
from datetime import date, timedelta
from enum import StrEnum
from typing import Any, Generic, TypeVar

from sandbox.seeding import Salted

__all__ = [
    "UNKNOWN_DESA",
    "UNKNOWN_KECAMATAN",
    "BadKind",
    "BltBadKind",
    "Breakage",
    "FarmerBadKind",
    "RecipientBadKind",
    "ReportBadKind",
    "RequestBadKind",
    "SubmissionBadKind",
    "corrupt_blt",
    "corrupt_farmer_need",
    "corrupt_household",
    "corrupt_recipient",
    "corrupt_report",
    "corrupt_request",
    "corrupt_submission",
]

# Well-formed but absent from the region list: kabupaten 35.99 does not exist.
UNKNOWN_DESA = "35.99.01.2001"
UNKNOWN_KECAMATAN = "35.99.01"

K = TypeVar("K", bound=StrEnum)


class Breakage(Generic[K]):
    """Which records of one kind are broken, and how: pure functions of (seed, salts, key)."""

    __slots__ = ("_kind", "_kinds", "_rate", "_whether")

    def __init__(
        self, kinds: type[K], rate: float, seed: int, whether_salt: int, kind_salt: int
    ) -> None:
        self._kinds = tuple(kinds)
        self._rate = rate
        self._whether = Salted(seed, whether_salt)
        self._kind = Salted(seed, kind_salt)

    def kind(self, *key: int) -> K | None:
        """How the record with this (non-negative) key is broken, or None if it is valid."""
        if self._whether.unit(*key) >= self._rate:
            return None
        return self._kinds[self._kind.hash(*key) % len(self._kinds)]


class BadKind(StrEnum):
    """Ways a served household record is broken."""

    NIK_BAD_DATE = "nik_bad_date"
    NIK_SERIAL_ZERO = "nik_serial_zero"
    NIK_UNKNOWN_PROVINCE = "nik_unknown_province"
    NIK_SCIENTIFIC = "nik_scientific"
    UNKNOWN_REGION = "unknown_region"
    IMPOSSIBLE_DATE = "impossible_date"
    WRONG_TYPE = "wrong_type"
    OVERSIZE_STRING = "oversize_string"
    DUPLICATE_NIK = "duplicate_nik"
    NIK_EQUALS_KK = "nik_equals_kk"
    MISSING_FIELD = "missing_field"


class RecipientBadKind(StrEnum):
    """Ways a served recipient record is broken."""

    NIK_BAD_DATE = "nik_bad_date"
    NIK_SERIAL_ZERO = "nik_serial_zero"
    NIK_SCIENTIFIC = "nik_scientific"
    UNKNOWN_REGION = "unknown_region"
    BAD_PERIOD = "bad_period"
    MISSING_FIELD = "missing_field"


def _bad_date_nik(nik: str, r: random.Random) -> str:
    # Day 35 is invalid for both sexes (men 01-31, women 41-71); month 13 never exists.
    if r.random() < 0.5:
        return nik[:6] + "35" + nik[8:]
    return nik[:8] + "13" + nik[10:]


def _scientific(nik: str, r: random.Random) -> Any:
    # The two shapes a spreadsheet round-trip produces: a bare number, or its E-notation text.
    if r.random() < 0.5:
        return int(nik)
    return f"{float(nik):.7E}"


def _serial_zero(nik: str, r: random.Random) -> str:
    return nik[:12] + "0000"


def _unknown_province(nik: str, r: random.Random) -> str:
    return "99" + nik[2:]


# Keyed by kind value: every kind enum that offers one of these spells it the same, so one
# table breaks the NIK field of any record kind.
_NIK_CORRUPTIONS: dict[str, Callable[[str, random.Random], Any]] = {
    "nik_bad_date": _bad_date_nik,
    "nik_serial_zero": _serial_zero,
    "nik_unknown_province": _unknown_province,
    "nik_scientific": _scientific,
}


def _corrupt_nik(holder: dict[str, Any], field: str, kind: StrEnum, r: random.Random) -> bool:
    # True if `kind` is a NIK corruption, now applied to holder[field].
    corruption = _NIK_CORRUPTIONS.get(kind.value)
    if corruption is None:
        return False
    holder[field] = corruption(holder[field], r)
    return True


# The unknown code of each level a record's region field may name.
_UNKNOWN_CODES = {"desa_code": UNKNOWN_DESA, "kecamatan_code": UNKNOWN_KECAMATAN}


def _corrupt_envelope(record: dict[str, Any], kind: StrEnum, region_field: str) -> bool:
    # True if `kind` is one every record kind offers (unknown region, missing field), now applied.
    if kind.value == "unknown_region":
        record[region_field] = _UNKNOWN_CODES[region_field]
    elif kind.value == "missing_field":
        del record["updated_at"]
    else:
        return False
    return True


def corrupt_household(record: dict[str, Any], kind: BadKind, r: random.Random) -> None:
    """Break a household wire record in place according to `kind`."""
    members: list[dict[str, Any]] = record["members"]
    victim = members[r.randrange(len(members))]
    if _corrupt_nik(victim, "nik", kind, r) or _corrupt_envelope(record, kind, "desa_code"):
        return
    if kind is BadKind.IMPOSSIBLE_DATE:
        victim["birth_date"] = "2023-02-30"
    elif kind is BadKind.WRONG_TYPE:
        if r.random() < 0.5:
            record["desil"] = "tinggi"
        else:
            record["members"] = {m["id"]: m for m in members}
    elif kind is BadKind.OVERSIZE_STRING:
        victim["name"] = (victim["name"] + " ") * (500 // (len(victim["name"]) + 1) + 1)
        victim["name"] = victim["name"][:500]
    elif kind is BadKind.DUPLICATE_NIK:
        if len(members) == 1:
            twin = dict(members[0])
            twin["id"] = f"{record['id']}-{len(members) + 1}"
            twin["relationship"] = "lainnya"
            members.append(twin)
        else:
            members[1]["nik"] = members[0]["nik"]
    elif kind is BadKind.NIK_EQUALS_KK:
        # The KK number is well-formed as a NIK too, so only the cross-field rule catches it.
        victim["nik"] = record["no_kk"]


def corrupt_recipient(record: dict[str, Any], kind: RecipientBadKind, r: random.Random) -> None:
    """Break a recipient wire record in place according to `kind`."""
    if _corrupt_nik(record, "nik_pengurus", kind, r) or _corrupt_envelope(
        record, kind, "desa_code"
    ):
        return
    if kind is RecipientBadKind.BAD_PERIOD:
        record["period"] = "Q4-2026"


class BltBadKind(StrEnum):
    """Ways a served BLT-DD recipient record is broken."""

    NIK_BAD_DATE = "nik_bad_date"
    NIK_SERIAL_ZERO = "nik_serial_zero"
    NIK_SCIENTIFIC = "nik_scientific"
    KELURAHAN = "kelurahan"
    UNKNOWN_REGION = "unknown_region"
    BAD_PERIOD = "bad_period"
    NIK_EQUALS_KK = "nik_equals_kk"
    MISSING_FIELD = "missing_field"


class ReportBadKind(StrEnum):
    """Ways a served facilitator report is broken."""

    NIK_BAD_DATE = "nik_bad_date"
    NIK_SERIAL_ZERO = "nik_serial_zero"
    UNKNOWN_REGION = "unknown_region"
    FUTURE_REPORT = "future_report"
    UPDATE_WITHOUT_CHANGES = "update_without_changes"
    CHANGES_ON_OTHER_KIND = "changes_on_other_kind"
    MISSING_FIELD = "missing_field"


class FarmerBadKind(StrEnum):
    """Ways a served e-RDKK farmer need is broken."""

    NIK_BAD_DATE = "nik_bad_date"
    NIK_SERIAL_ZERO = "nik_serial_zero"
    NIK_SCIENTIFIC = "nik_scientific"
    ZERO_LAND_AREA = "zero_land_area"
    IMPLAUSIBLE_LAND_AREA = "implausible_land_area"
    UNKNOWN_REGION = "unknown_region"
    BAD_SEASON = "bad_season"
    MISSING_FIELD = "missing_field"


class RequestBadKind(StrEnum):
    """Ways a served statistics data request is broken."""

    DUE_BEFORE_REQUEST = "due_before_request"
    DESA_OUTSIDE_KECAMATAN = "desa_outside_kecamatan"
    DUPLICATE_DESA = "duplicate_desa"
    UNKNOWN_REGION = "unknown_region"
    MISSING_FIELD = "missing_field"


class SubmissionBadKind(StrEnum):
    """Ways a served data submission is broken."""

    UNKNOWN_REGION = "unknown_region"
    NAIVE_TIMESTAMP = "naive_timestamp"
    MISSING_FIELD = "missing_field"


def corrupt_blt(record: dict[str, Any], kind: BltBadKind, r: random.Random, kelurahan: str) -> None:
    """Break a BLT-DD wire record in place; `kelurahan` is a kelurahan code to move it to."""
    if _corrupt_nik(record, "nik", kind, r) or _corrupt_envelope(record, kind, "desa_code"):
        return
    if kind is BltBadKind.KELURAHAN:
        # Kelurahan get no Dana Desa: a BLT-DD list there is wrong however well-formed.
        record["desa_code"] = kelurahan
    elif kind is BltBadKind.BAD_PERIOD:
        record["period"] = "Q4/2026"
    elif kind is BltBadKind.NIK_EQUALS_KK:
        record["nik"] = record["no_kk"]


def corrupt_report(record: dict[str, Any], kind: ReportBadKind, r: random.Random) -> None:
    """Break a facilitator report wire record in place according to `kind`."""
    if _corrupt_nik(record, "nik", kind, r) or _corrupt_envelope(record, kind, "kecamatan_code"):
        return
    if kind is ReportBadKind.FUTURE_REPORT:
        # Filed "after" the record was last written: a date typed into the future.
        day = date.fromisoformat(record["updated_at"][:10])
        record["reported_on"] = (day + timedelta(days=1 + int(r.random() * 30))).isoformat()
    elif kind is ReportBadKind.UPDATE_WITHOUT_CHANGES:
        record["kind"] = "household_update"
        record["changes"] = None if r.random() < 0.5 else {"members_left": []}
    elif kind is ReportBadKind.CHANGES_ON_OTHER_KIND:
        record["kind"] = "deceased" if record["kind"] == "household_update" else record["kind"]
        record["changes"] = {"desil": 1 + int(r.random() * 10)}


def corrupt_farmer_need(record: dict[str, Any], kind: FarmerBadKind, r: random.Random) -> None:
    """Break an e-RDKK wire record in place according to `kind`."""
    if _corrupt_nik(record, "nik", kind, r) or _corrupt_envelope(record, kind, "desa_code"):
        return
    if kind is FarmerBadKind.ZERO_LAND_AREA:
        record["land_area_ha"] = 0.0
    elif kind is FarmerBadKind.IMPLAUSIBLE_LAND_AREA:
        # Square metres typed into the hectare column.
        record["land_area_ha"] = round(record["land_area_ha"] * 10_000, 1)
    elif kind is FarmerBadKind.BAD_SEASON:
        record["season"] = record["season"][:5] + "MT4"


def corrupt_request(
    record: dict[str, Any], kind: RequestBadKind, r: random.Random, foreign_desa: str
) -> None:
    """Break a data request in place; `foreign_desa` is a desa of another kecamatan."""
    if _corrupt_envelope(record, kind, "kecamatan_code"):
        return
    codes: list[str] = record["desa_codes"]
    if kind is RequestBadKind.DUE_BEFORE_REQUEST:
        requested = date.fromisoformat(record["requested_on"])
        record["due_date"] = (requested - timedelta(days=1 + int(r.random() * 10))).isoformat()
    elif kind is RequestBadKind.DESA_OUTSIDE_KECAMATAN:
        codes.append(foreign_desa)
    elif kind is RequestBadKind.DUPLICATE_DESA:
        codes.append(codes[int(r.random() * len(codes))])


def corrupt_submission(record: dict[str, Any], kind: SubmissionBadKind, r: random.Random) -> None:
    """Break a data submission in place according to `kind`."""
    if _corrupt_envelope(record, kind, "desa_code"):
        return
    if kind is SubmissionBadKind.NAIVE_TIMESTAMP:
        # A local time without its offset: ambiguous, so the contract refuses it.
        record["submitted_at"] = record["submitted_at"][:19]
