"""Kinds of deliberately broken records and how each one corrupts a wire record.

Every kind must make the record fail `models.contracts.registry` validation, so the hub's
quarantine counts can be checked exactly against the generator's ground truth.
"""

from __future__ import annotations

import random
from enum import StrEnum
from typing import Any

__all__ = [
    "UNKNOWN_DESA",
    "BadKind",
    "RecipientBadKind",
    "corrupt_household",
    "corrupt_recipient",
]

# Well-formed but absent from the region list: kabupaten 35.99 does not exist.
UNKNOWN_DESA = "35.99.01.2001"


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
