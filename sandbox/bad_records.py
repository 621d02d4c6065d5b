"""Kinds of deliberately broken records and how each one corrupts a wire record.

Every kind must make the record fail its agency's contract (`models.contracts.*`), so the
hub's quarantine counts can be checked exactly against the generator's ground truth.
"""

from __future__ import annotations

import random
from datetime import date, timedelta
from enum import StrEnum
from typing import Any

__all__ = [
    "UNKNOWN_DESA",
    "UNKNOWN_KECAMATAN",
    "BadKind",
    "BltBadKind",
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


def corrupt_household(record: dict[str, Any], kind: BadKind, r: random.Random) -> None:
    """Break a household wire record in place according to `kind`."""
    members: list[dict[str, Any]] = record["members"]
    victim = members[r.randrange(len(members))]
    if kind is BadKind.NIK_BAD_DATE:
        victim["nik"] = _bad_date_nik(victim["nik"], r)
    elif kind is BadKind.NIK_SERIAL_ZERO:
        victim["nik"] = victim["nik"][:12] + "0000"
    elif kind is BadKind.NIK_UNKNOWN_PROVINCE:
        victim["nik"] = "99" + victim["nik"][2:]
    elif kind is BadKind.NIK_SCIENTIFIC:
        victim["nik"] = _scientific(victim["nik"], r)
    elif kind is BadKind.UNKNOWN_REGION:
        record["desa_code"] = UNKNOWN_DESA
    elif kind is BadKind.IMPOSSIBLE_DATE:
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
    elif kind is BadKind.MISSING_FIELD:
        del record["updated_at"]


def corrupt_recipient(record: dict[str, Any], kind: RecipientBadKind, r: random.Random) -> None:
    """Break a recipient wire record in place according to `kind`."""
    if kind is RecipientBadKind.NIK_BAD_DATE:
        record["nik_pengurus"] = _bad_date_nik(record["nik_pengurus"], r)
    elif kind is RecipientBadKind.NIK_SERIAL_ZERO:
        record["nik_pengurus"] = record["nik_pengurus"][:12] + "0000"
    elif kind is RecipientBadKind.NIK_SCIENTIFIC:
        record["nik_pengurus"] = _scientific(record["nik_pengurus"], r)
    elif kind is RecipientBadKind.UNKNOWN_REGION:
        record["desa_code"] = UNKNOWN_DESA
    elif kind is RecipientBadKind.BAD_PERIOD:
        record["period"] = "Q4-2026"
    elif kind is RecipientBadKind.MISSING_FIELD:
        del record["updated_at"]


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
    if kind is BltBadKind.NIK_BAD_DATE:
        record["nik"] = _bad_date_nik(record["nik"], r)
    elif kind is BltBadKind.NIK_SERIAL_ZERO:
        record["nik"] = record["nik"][:12] + "0000"
    elif kind is BltBadKind.NIK_SCIENTIFIC:
        record["nik"] = _scientific(record["nik"], r)
    elif kind is BltBadKind.KELURAHAN:
        # Kelurahan get no Dana Desa: a BLT-DD list there is wrong however well-formed.
        record["desa_code"] = kelurahan
    elif kind is BltBadKind.UNKNOWN_REGION:
        record["desa_code"] = UNKNOWN_DESA
    elif kind is BltBadKind.BAD_PERIOD:
        record["period"] = "Q4/2026"
    elif kind is BltBadKind.NIK_EQUALS_KK:
        record["nik"] = record["no_kk"]
    elif kind is BltBadKind.MISSING_FIELD:
        del record["updated_at"]


def corrupt_report(record: dict[str, Any], kind: ReportBadKind, r: random.Random) -> None:
    """Break a facilitator report wire record in place according to `kind`."""
    if kind is ReportBadKind.NIK_BAD_DATE:
        record["nik"] = _bad_date_nik(record["nik"], r)
    elif kind is ReportBadKind.NIK_SERIAL_ZERO:
        record["nik"] = record["nik"][:12] + "0000"
    elif kind is ReportBadKind.UNKNOWN_REGION:
        record["kecamatan_code"] = UNKNOWN_KECAMATAN
    elif kind is ReportBadKind.FUTURE_REPORT:
        # Filed "after" the record was last written: a date typed into the future.
        day = date.fromisoformat(record["updated_at"][:10])
        record["reported_on"] = (day + timedelta(days=1 + int(r.random() * 30))).isoformat()
    elif kind is ReportBadKind.UPDATE_WITHOUT_CHANGES:
        record["kind"] = "household_update"
        record["changes"] = None if r.random() < 0.5 else {"members_left": []}
    elif kind is ReportBadKind.CHANGES_ON_OTHER_KIND:
        record["kind"] = "deceased" if record["kind"] == "household_update" else record["kind"]
        record["changes"] = {"desil": 1 + int(r.random() * 10)}
    elif kind is ReportBadKind.MISSING_FIELD:
        del record["updated_at"]


def corrupt_farmer_need(record: dict[str, Any], kind: FarmerBadKind, r: random.Random) -> None:
    """Break an e-RDKK wire record in place according to `kind`."""
    if kind is FarmerBadKind.NIK_BAD_DATE:
        record["nik"] = _bad_date_nik(record["nik"], r)
    elif kind is FarmerBadKind.NIK_SERIAL_ZERO:
        record["nik"] = record["nik"][:12] + "0000"
    elif kind is FarmerBadKind.NIK_SCIENTIFIC:
        record["nik"] = _scientific(record["nik"], r)
    elif kind is FarmerBadKind.ZERO_LAND_AREA:
        record["land_area_ha"] = 0.0
    elif kind is FarmerBadKind.IMPLAUSIBLE_LAND_AREA:
        # Square metres typed into the hectare column.
        record["land_area_ha"] = round(record["land_area_ha"] * 10_000, 1)
    elif kind is FarmerBadKind.UNKNOWN_REGION:
        record["desa_code"] = UNKNOWN_DESA
    elif kind is FarmerBadKind.BAD_SEASON:
        record["season"] = record["season"][:5] + "MT4"
    elif kind is FarmerBadKind.MISSING_FIELD:
        del record["updated_at"]


def corrupt_request(
    record: dict[str, Any], kind: RequestBadKind, r: random.Random, foreign_desa: str
) -> None:
    """Break a data request in place; `foreign_desa` is a desa of another kecamatan."""
    codes: list[str] = record["desa_codes"]
    if kind is RequestBadKind.DUE_BEFORE_REQUEST:
        requested = date.fromisoformat(record["requested_on"])
        record["due_date"] = (requested - timedelta(days=1 + int(r.random() * 10))).isoformat()
    elif kind is RequestBadKind.DESA_OUTSIDE_KECAMATAN:
        codes.append(foreign_desa)
    elif kind is RequestBadKind.DUPLICATE_DESA:
        codes.append(codes[int(r.random() * len(codes))])
    elif kind is RequestBadKind.UNKNOWN_REGION:
        record["kecamatan_code"] = UNKNOWN_KECAMATAN
    elif kind is RequestBadKind.MISSING_FIELD:
        del record["updated_at"]


def corrupt_submission(record: dict[str, Any], kind: SubmissionBadKind, r: random.Random) -> None:
    """Break a data submission in place according to `kind`."""
    if kind is SubmissionBadKind.UNKNOWN_REGION:
        record["desa_code"] = UNKNOWN_DESA
    elif kind is SubmissionBadKind.NAIVE_TIMESTAMP:
        # A local time without its offset: ambiguous, so the contract refuses it.
        record["submitted_at"] = record["submitted_at"][:19]
    elif kind is SubmissionBadKind.MISSING_FIELD:
        del record["updated_at"]
