"""NIK and No. KK: normalisation, validation (docs/NIK_KK.md), masking and pydantic types."""

from __future__ import annotations

import functools
import hashlib
import hmac
import re
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import Annotated, Any, Literal

from pydantic import BeforeValidator
from pydantic_core import PydanticCustomError

from models.wilayah import RegionRegistry, get_region_registry, normalise_region_code

__all__ = [
    "HEX_DIGEST",
    "NIK",
    "PROVINCE_CODES",
    "IdCheck",
    "IdFormatError",
    "Issue",
    "NoKK",
    "check_nik",
    "check_nik_kk_pair",
    "check_no_kk",
    "id_token",
    "make_nik",
    "make_no_kk",
    "mask_id",
    "mask_ids_in_text",
    "nik_birth_date",
    "nik_sex",
    "normalise_id",
]

# One string keeps the 38 codes readable at a glance.
PROVINCE_CODES: frozenset[str] = frozenset(
    "11 12 13 14 15 16 17 18 19 21 31 32 33 34 35 36 51 52 53 61 62 63 64 65 "  # noqa: SIM905
    "71 72 73 74 75 76 81 82 91 92 93 94 95 96".split()
)
"""The 38 Kemendagri province codes."""

# Only Jawa Timur's regions are packaged, so deeper checks apply to this province only.
_JATIM = "35"
_FEMALE_OFFSET = 40
_BULLET = "\u2022"
_MASK8 = _BULLET * 8

_SEPARATORS = re.compile(r"[\s.\-]")
# What a spreadsheet shows after turning a 16-digit id into a float: 3.5780801E+15, 3,57E15.
_SCIENTIFIC = re.compile(r"[0-9]+(?:[.,][0-9]*)?[eE][+-]?[0-9]+")
_DIGITS16 = re.compile(r"[0-9]{16}")
# Control characters but tab and line breaks, which a spreadsheet cell copied whole brings.
_CONTROL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f]")
_ID_IN_TEXT = re.compile(r"(?<![0-9])[0-9]{16}(?![0-9])")
HEX_DIGEST = re.compile(r"(?<![0-9A-Za-z])(?=[0-9a-fA-F]*[a-fA-F])[0-9a-fA-F]{32,}(?![0-9A-Za-z])")
"""A hex digest (token, key, hash): 32+ hex characters, at least one a letter."""
# Digests first: about one 32-character digest in 200 holds a run of 16 digits by chance,
# and masking it would turn an id or token into a value no look-up finds.
_DIGEST_OR_ID = re.compile(f"(?P<digest>{HEX_DIGEST.pattern})|{_ID_IN_TEXT.pattern}")

_SEX_ALIASES: dict[str, Literal["L", "P"]] = {
    "L": "L",
    "M": "L",
    "LAKI-LAKI": "L",
    "PRIA": "L",
    "P": "P",
    "F": "P",
    "PEREMPUAN": "P",
    "WANITA": "P",
}


@dataclass(frozen=True, slots=True)
class Issue:
    """One finding of a check: a stable machine code and a masked human message."""

    code: str
    message: str


@dataclass(frozen=True)
class IdCheck:
    """Result of checking one NIK or No. KK."""

    value: str | None
    errors: tuple[Issue, ...] = ()
    warnings: tuple[Issue, ...] = ()

    @property
    def ok(self) -> bool:
        """True when there are no errors (warnings allowed)."""
        return not self.errors


class IdFormatError(ValueError):
    """The value is not 16 digits once separators are removed."""

    def __init__(self, issue: Issue) -> None:
        super().__init__(issue.message)
        self.issue = issue


def mask_id(value: str) -> str:
    """Mask an id for display: 3578••••••••0001; other values keep at most 2+2 characters."""
    text = value if isinstance(value, str) else str(value)
    compact = _SEPARATORS.sub("", text)
    if _DIGITS16.fullmatch(compact):
        return compact[:4] + _BULLET * 8 + compact[-4:]
    # Short values reveal less so that the visible part never dominates.
    n = len(text)
    keep = 2 if n >= 8 else 1 if n >= 4 else 0
    if keep == 0:
        return _BULLET * n
    return text[:keep] + _BULLET * (n - 2 * keep) + text[-keep:]


def _mask16(digits: str) -> str:
    # Hot path: `digits` is already the normalised 16-digit value.
    return digits[:4] + _MASK8 + digits[12:]


def mask_ids_in_text(text: str) -> str:
    """Replace every standalone run of exactly 16 digits in text by its mask.

    Hex digests (`HEX_DIGEST`) are left whole: their digits reveal nothing.
    """
    return _DIGEST_OR_ID.sub(
        lambda m: m.group(0) if m.group("digest") else mask_id(m.group(0)), text
    )


def normalise_id(value: object, *, label: str = "NIK/No. KK") -> str:
    """Return the 16 ASCII digits of a NIK/No. KK or raise IdFormatError."""
    if not isinstance(value, str):
        raise IdFormatError(Issue("not_text", f"{label} must be text, got {type(value).__name__}"))
    if len(value) == 16 and value.isascii() and value.isdigit():
        return value  # the common case: already 16 plain digits
    if _CONTROL.search(value):
        # str.strip() and the separator rule would drop them silently: a control character
        # (NUL included) other than layout whitespace means the value was corrupted.
        raise IdFormatError(Issue("control_character", f"{label} contains a control character"))
    stripped = value.strip()
    if _SCIENTIFIC.fullmatch(stripped.replace(" ", "")):
        raise IdFormatError(
            Issue(
                "scientific_notation",
                f"{label} is in scientific notation: a spreadsheet turned the number into a "
                "float and its last digits were lost; store the column as text and re-export",
            )
        )
    compact = _SEPARATORS.sub("", stripped)
    # isdigit() alone would accept Arabic-Indic and other non-ASCII digits.
    if not (compact.isascii() and compact.isdigit()) and compact:
        raise IdFormatError(
            Issue(
                "format",
                f"{label} must contain only digits 0-9 (spaces, dots and hyphens are ignored)",
            )
        )
    if len(compact) != 16:
        raise IdFormatError(Issue("length", f"{label} must have 16 digits, got {len(compact)}"))
    return compact


def _resolve_date(
    day: int, month: int, yy: int, today: date, hint: date | None
) -> tuple[date | None, str | None]:
    """Pick the century and build the date; return (date, None) or (None, issue code)."""
    # The century is not encoded: trust a recorded date with the same YY, else prefer 20YY
    # unless that lies in the future.
    years = [hint.year] if hint is not None and hint.year % 100 == yy else [2000 + yy, 1900 + yy]
    problem = "date"
    for year in years:
        try:
            candidate = date(year, month, day)
        except ValueError:
            continue
        if candidate <= today:
            return candidate, None
        problem = "future"
    return None, problem


@functools.lru_cache(maxsize=4)
def _digit_prefixes(reg: RegionRegistry) -> tuple[frozenset[str], frozenset[str]]:
    # Undotted kabupaten/kota (4) and kecamatan (6) codes: set look-ups on the hot path.
    kab = frozenset(r.code.replace(".", "") for r in reg.kabupaten_kota())
    kec = frozenset(r.code.replace(".", "") for r in reg.kecamatan())
    return kab, kec


def _check_start(
    value: object, label: str, registry: RegionRegistry | None
) -> tuple[str, str, list[Issue], list[Issue]]:
    """Normalise an id and apply the rules NIK and No. KK share: province, kabupaten, kecamatan.

    Returns the digits, their masked display and the errors and warnings found so far;
    raises IdFormatError when the value is not 16 digits.
    """
    digits = normalise_id(value, label=label)
    shown = f"{label} {_mask16(digits)}"
    errors: list[Issue] = []
    warnings: list[Issue] = []
    province = digits[:2]
    if province not in PROVINCE_CODES:
        errors.append(Issue("province", f"{shown}: {province} is not a province code"))
    elif province == _JATIM:
        kabs, kecs = _digit_prefixes(registry if registry is not None else get_region_registry())
        kab = f"{digits[:2]}.{digits[2:4]}"
        if digits[:4] not in kabs:
            errors.append(
                Issue("kabupaten", f"{shown}: {kab} is not a kabupaten/kota of Jawa Timur")
            )
        else:
            kec = f"{kab}.{digits[4:6]}"
            if digits[:6] not in kecs:
                # Old codes survive kecamatan splits, so this is not proof of a bad number.
                warnings.append(
                    Issue(
                        "kecamatan",
                        f"{shown}: {kec} is not in the current kecamatan list "
                        "(it may predate a split)",
                    )
                )
    return digits, shown, errors, warnings


def _check_end(digits: str, shown: str, errors: list[Issue], warnings: list[Issue]) -> IdCheck:
    """Apply the serial rule NIK and No. KK share and build the result."""
    # Serials start at 0001, so 0000 marks a made-up or truncated number.
    if digits[12:] == "0000":
        errors.append(Issue("serial", f"{shown}: serial (digits 13-16) is 0000"))
    return IdCheck(digits, tuple(errors), tuple(warnings))


def _nik_date_parts(digits: str) -> tuple[int, int, int, Literal["L", "P"] | None]:
    dd, mm, yy = int(digits[6:8]), int(digits[8:10]), int(digits[10:12])
    if 1 <= dd <= 31:
        return dd, mm, yy, "L"
    if 1 + _FEMALE_OFFSET <= dd <= 31 + _FEMALE_OFFSET:
        return dd - _FEMALE_OFFSET, mm, yy, "P"
    return dd, mm, yy, None


def check_nik(
    value: object,
    *,
    today: date | None = None,
    birth_date: date | None = None,
    sex: str | None = None,
    registry: RegionRegistry | None = None,
) -> IdCheck:
    """Check a NIK against every rule of NIK_KK.md, comparing with a recorded birth date/sex."""
    try:
        digits, shown, errors, warnings = _check_start(value, "NIK", registry)
    except IdFormatError as exc:
        return IdCheck(None, (exc.issue,))
    today = today or date.today()

    day, month, yy, nik_sex_value = _nik_date_parts(digits)
    # Birth dates are not echoed: with the mask they would reveal most of the number.
    if nik_sex_value is None:
        errors.append(
            Issue("birth_date", f"{shown}: day (digits 7-8) must be 01-31, or 41-71 for women")
        )
    if not 1 <= month <= 12:
        errors.append(Issue("birth_date", f"{shown}: month (digits 9-10) must be 01-12"))
    if nik_sex_value is not None and 1 <= month <= 12:
        born, problem = _resolve_date(day, month, yy, today, birth_date)
        if problem == "future":
            errors.append(Issue("future_date", f"{shown}: birth date is in the future"))
        elif problem is not None:
            errors.append(Issue("birth_date", f"{shown}: digits 7-12 are not a real calendar date"))
        elif birth_date is not None and born != birth_date:
            # NIKs are never reissued for a wrong date, so a mismatch is only a warning.
            warnings.append(
                Issue("birth_date_mismatch", f"{shown}: birth date differs from the record")
            )

    recorded_sex = _SEX_ALIASES.get(sex.strip().upper()) if sex is not None else None
    if recorded_sex is not None and nik_sex_value is not None and recorded_sex != nik_sex_value:
        warnings.append(Issue("sex_mismatch", f"{shown}: sex differs from the record"))

    return _check_end(digits, shown, errors, warnings)


def record_warnings(nik: str, birth_date: date, sex: str) -> tuple[str, ...]:
    """Warning codes of an already valid NIK against its record's birth date and sex.

    The cheap companion of `check_nik` for bulk syncs: digits are compared, nothing parsed.
    """
    codes: list[str] = []
    women = nik[6:8] > "40"  # day 41-71: the +40 rule
    recorded = _SEX_ALIASES.get(sex) or _SEX_ALIASES.get(sex.strip().upper())
    if recorded is not None and recorded != ("P" if women else "L"):
        codes.append("sex_mismatch")
    if (
        nik[8:12] != _MMYY[birth_date.month][birth_date.year % 100]
        or nik[6:8] != _DAYS[birth_date.day + (_FEMALE_OFFSET if women else 0)]
    ):
        codes.append("birth_date_mismatch")
    if nik[:2] == _JATIM and nik[:6] not in _digit_prefixes(get_region_registry())[1]:
        codes.append("kecamatan")
    return tuple(codes)


# Digits a NIK holds for a birth date, formatted once: DD (day, or day + 40) and MMYY.
_DAYS = tuple(f"{d:02d}" for d in range(72))
_MMYY = ((), *(tuple(f"{m:02d}{y:02d}" for y in range(100)) for m in range(1, 13)))


def check_no_kk(
    value: object, *, today: date | None = None, registry: RegionRegistry | None = None
) -> IdCheck:
    """Check a No. KK: format, region, past DDMMYY issue date (no +40), serial."""
    try:
        digits, shown, errors, warnings = _check_start(value, "No. KK", registry)
    except IdFormatError as exc:
        return IdCheck(None, (exc.issue,))
    today = today or date.today()
    day, month, yy = int(digits[6:8]), int(digits[8:10]), int(digits[10:12])
    if not (1 <= day <= 31 and 1 <= month <= 12):
        errors.append(
            Issue("issue_date", f"{shown}: digits 7-12 must be a DDMMYY date (no +40 rule)")
        )
    else:
        _, problem = _resolve_date(day, month, yy, today, None)
        if problem == "future":
            errors.append(Issue("future_date", f"{shown}: issue date is in the future"))
        elif problem is not None:
            errors.append(Issue("issue_date", f"{shown}: digits 7-12 are not a real calendar date"))
    return _check_end(digits, shown, errors, warnings)


def check_nik_kk_pair(nik: str, no_kk: str) -> Issue | None:
    """Return a "same_as_kk" error when the NIK equals the No. KK (a common column swap)."""
    try:
        a, b = normalise_id(nik), normalise_id(no_kk)
    except IdFormatError:
        return None  # format problems are reported by check_nik / check_no_kk
    if a != b:
        return None
    return Issue(
        "same_as_kk", f"NIK {mask_id(a)} equals the No. KK: the columns were probably swapped"
    )


def nik_birth_date(
    nik: str, *, today: date | None = None, birth_date_hint: date | None = None
) -> date:
    """Decode the birth date of a NIK or raise ValueError."""
    digits = normalise_id(nik, label="NIK")
    day, month, yy, sex = _nik_date_parts(digits)
    if sex is None or not 1 <= month <= 12:
        raise ValueError(f"NIK {mask_id(digits)}: digits 7-12 are not a DDMMYY birth date")
    born, problem = _resolve_date(day, month, yy, today or date.today(), birth_date_hint)
    if born is None:
        reason = "in the future" if problem == "future" else "not a real calendar date"
        raise ValueError(f"NIK {mask_id(digits)}: birth date is {reason}")
    return born


def nik_sex(nik: str) -> Literal["L", "P"]:
    """Decode the sex of a NIK from the +40 day rule or raise ValueError."""
    digits = normalise_id(nik, label="NIK")
    sex = _nik_date_parts(digits)[3]
    if sex is None:
        raise ValueError(f"NIK {mask_id(digits)}: day (digits 7-8) is neither 01-31 nor 41-71")
    return sex


@functools.lru_cache(maxsize=8)
def _keyed(key: bytes) -> hmac.HMAC:
    # Keying HMAC (and looking up SHA-256 in OpenSSL) costs more than hashing a NIK:
    # key it once and copy it per value.
    return hmac.new(key, digestmod=hashlib.sha256)


# Hex characters of a token that name its kecamatan (keyed), and of the id's own digest.
_TOKEN_REGION = 4
_TOKEN_ID = 28


@functools.lru_cache(maxsize=16_384)
def _region_tag(region: str, key: bytes) -> str:
    # Keyed like the id itself: the tag says two tokens share a kecamatan code, never which.
    mac = _keyed(key).copy()
    mac.update(b"kecamatan:" + region.encode("ascii"))
    return mac.hexdigest()[:_TOKEN_REGION]


def id_token(value: str, key: bytes) -> str:
    """Keyed pseudonym of a NIK/No. KK: 32 hex chars, a keyed kecamatan tag then its HMAC.

    Tokens of one kecamatan share their first 4 characters, so the token indexes are
    clustered by region: a sync, which reads kecamatan by kecamatan, writes a narrow range of
    each index instead of pages all over it (at 200,000 households the write phase took
    15.7 s with fully random tokens and 9.3 s with tagged ones). The tag is an HMAC of the
    id's first six digits: it reveals no digit, only that two ids share them.
    """
    if not key:
        raise ValueError("id_token needs a non-empty key")
    digits = normalise_id(value)
    mac = _keyed(key).copy()
    mac.update(digits.encode("ascii"))
    return _region_tag(digits[:6], key) + mac.hexdigest()[:_TOKEN_ID]


def _compose(kecamatan_code: str, d1: int, when: date, serial: int) -> str:
    dotted = normalise_region_code(kecamatan_code)
    if dotted.count(".") != 2:
        raise ValueError(f"{dotted} is not a kecamatan code (35.78.01)")
    if not 1 <= serial <= 9999:
        raise ValueError("serial must be 1..9999")
    return f"{dotted.replace('.', '')}{d1:02d}{when.month:02d}{when.year % 100:02d}{serial:04d}"


def make_nik(kecamatan_code: str, birth: date, sex: Literal["L", "P"], serial: int) -> str:
    """Compose a well-formed NIK (test data): region, DDMMYY with +40 for women, serial."""
    if sex not in ("L", "P"):
        raise ValueError("sex must be 'L' or 'P'")
    return _compose(
        kecamatan_code, birth.day + (_FEMALE_OFFSET if sex == "P" else 0), birth, serial
    )


def make_no_kk(kecamatan_code: str, issued: date, serial: int) -> str:
    """Compose a well-formed No. KK (test data): region, DDMMYY issue date, serial."""
    return _compose(kecamatan_code, issued.day, issued, serial)


def _issues_text(issues: tuple[Issue, ...]) -> str:
    return "; ".join(issue.message for issue in issues)


@functools.lru_cache(maxsize=4)
def _valid_prefix4(reg: RegionRegistry) -> frozenset[str]:
    # First four digits that pass the region rules (errors only; an unknown kecamatan is a
    # warning): any kabupaten digits outside Jawa Timur, the packaged ones inside it.
    outside = (p + f"{k:02d}" for p in PROVINCE_CODES if p != _JATIM for k in range(100))
    return frozenset(outside) | _digit_prefixes(reg)[0]


@functools.lru_cache(maxsize=2)
def _valid_days(today: date) -> dict[str, frozenset[str]]:
    """Days (DD) that pass the date rules on `today`, by the MMYY of digits 9-12.

    Built by the same `_resolve_date` the checks use, for every DDMMYY there is, so a look-up
    gives the checks' verdict without parsing (about 3 MB for the 1,200 MMYY).
    """
    days = [f"{dd:02d}" for dd in range(32)]
    table: dict[str, frozenset[str]] = {}
    for yy in range(100):
        for mm in range(1, 13):
            ok = [dd for dd in range(1, 32) if _resolve_date(dd, mm, yy, today, None)[1] is None]
            table[f"{mm:02d}{yy:02d}"] = frozenset(days[dd] for dd in ok)
    return table


_EMPTY: frozenset[str] = frozenset()
# [start, end) of the local day the table holds, as timestamps, and the table: reading the
# clock costs a twentieth of asking `date.today()`, the same clock, for every value.
_TODAY: list[Any] = [0.0, 0.0, {}]


def _valid_days_now() -> dict[str, frozenset[str]]:
    now = time.time()
    start, end, table = _TODAY
    if not start <= now < end:
        today = date.fromtimestamp(now)
        midnight = datetime.combine(today, datetime.min.time())
        table = _valid_days(today)
        _TODAY[:] = [midnight.timestamp(), (midnight + timedelta(days=1)).timestamp(), table]
    return table


# A woman's NIK day (41-71) to the calendar day: the +40 rule.
_WOMEN_DAY = {f"{d + _FEMALE_OFFSET:02d}": f"{d:02d}" for d in range(1, 32)}


def _fast_path(nik: bool) -> Callable[[object], bool]:
    """True when `value` is 16 digits that the NIK (or No. KK) check finds without errors.

    Table look-ups of the same rules (region prefix, date digits, serial); False means only
    "ask the check", which then builds the errors and their masked messages.
    """

    def passes(value: object) -> bool:
        if not (
            type(value) is str
            and len(value) == 16
            and value.isascii()
            and value.isdigit()
            and value[12:] != "0000"
            and value[:4] in _valid_prefix4(get_region_registry())
        ):
            return False
        day = value[6:8]
        if nik and day > "40":
            day = _WOMEN_DAY.get(day, "")
        return day in _valid_days_now().get(value[8:12], _EMPTY)

    return passes


def _validator(check: Callable[[object], IdCheck], error_type: str) -> Callable[[object], str]:
    """A pydantic validator: the normalised id, or `error_type` with the check's errors."""
    # Almost every value is valid: the look-ups settle those, the check the others.
    fast = _fast_path(nik=check is check_nik)

    # Built once per type at import, so validating a value costs no extra call.
    def validate(value: object) -> str:
        if fast(value):
            return value  # type: ignore[return-value]
        result = check(value)
        if result.value is None or result.errors:
            raise PydanticCustomError(
                error_type, "{detail}", {"detail": _issues_text(result.errors)}
            )
        return result.value

    return validate


NIK = Annotated[str, BeforeValidator(_validator(check_nik, "nik_invalid"))]
"""A valid NIK, normalised to 16 digits; warnings do not fail validation."""
NoKK = Annotated[str, BeforeValidator(_validator(check_no_kk, "no_kk_invalid"))]
"""A valid No. KK, normalised to 16 digits; warnings do not fail validation."""
