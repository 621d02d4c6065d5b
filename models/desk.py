"""The office desk's accounts and who may see or act on which handoff: pure rules, no store.

An account is bound to one desk office (the province, a kabupaten/kota, a kecamatan, a desa
or a programme such as PKH) and has one role. The rules:

- a disabled account sees and does nothing;
- the province sees every handoff and acts on none (it holds none: misrouted handoffs come
  back to it as rejections it re-routes);
- a kabupaten/kota sees the handoffs of its own kecamatan and desa and those it holds, and
  acts on the handoffs escalated to it;
- a kecamatan sees its own handoffs (also once escalated) and those of its desa, and acts on
  its own;
- a desa or a programme sees and acts on its own handoffs only;
- a viewer only reads; an officer or an admin acts; the province's admin manages accounts.

"Its own" is what the office-decision rule (`models.decisions.decide`) accepts: the office
that holds the handoff now, or the office it was first for. The desk asks `can_act` before
it offers a form, and the decision it records then goes through `decide` like any other.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from enum import StrEnum
from types import MappingProxyType

from pydantic import ValidationError

from models.handoffs import FINAL_STATES, HandoffState, Office, OfficeKind
from models.wilayah import get_region_registry, normalise_region_code

__all__ = [
    "ACTIONS",
    "EMAIL_MAX",
    "MISROUTED_PREFIX",
    "PROVINCE_CODE",
    "Account",
    "DeskAction",
    "DeskOffice",
    "HandoffAccess",
    "OfficeLevel",
    "Role",
    "actions_for",
    "can_act",
    "can_manage_accounts",
    "can_reveal",
    "can_see",
    "check_email",
    "check_password",
    "decision_of",
    "parse_role",
]

PROVINCE_CODE = "35"
"""Jawa Timur: the one province the desk serves."""

EMAIL_MAX = 54
"""Longest e-mail of an account: `desk:<email>` must fit the audit chain's 60-character actor."""

MISROUTED_PREFIX = "salah alamat: "
"""Start of the reason of a handoff returned to the province as misrouted."""

PASSWORD_MIN = 10
_EMAIL = re.compile(r"[A-Za-z0-9._%+-]+@[A-Za-z0-9-]+(\.[A-Za-z0-9-]+)+")
_PROGRAMME = re.compile(r"[a-z][a-z0-9_-]{0,39}")


class OfficeLevel(StrEnum):
    """The level of the office an account is bound to."""

    PROVINCE = "province"
    KABUPATEN = "kabupaten"
    KECAMATAN = "kecamatan"
    DESA = "desa"
    PROGRAMME = "programme"


class Role(StrEnum):
    """What an account may do within its office's area."""

    VIEWER = "viewer"
    OFFICER = "officer"
    ADMIN = "admin"


# The handoffs' office kind for each regional desk level (a programme is an agency office).
_HANDOFF_KIND: Mapping[OfficeLevel, OfficeKind] = MappingProxyType(
    {
        OfficeLevel.KABUPATEN: OfficeKind.KABUPATEN,
        OfficeLevel.KECAMATAN: OfficeKind.KECAMATAN,
        OfficeLevel.DESA: OfficeKind.DESA,
        OfficeLevel.PROGRAMME: OfficeKind.AGENCY,
    }
)


def _level_of_code(code: str) -> str:
    """The level a bare office code names: 35, 35.78, 35.78.01, 35.78.01.1001 or pkh."""
    text = code.strip()
    if not text[:1].isdigit():
        return OfficeLevel.PROGRAMME.value
    levels = (OfficeLevel.PROVINCE, OfficeLevel.KABUPATEN, OfficeLevel.KECAMATAN, OfficeLevel.DESA)
    return levels[normalise_region_code(text).count(".")].value


@dataclass(frozen=True, slots=True)
class DeskOffice:
    """A desk office: "province:35", "kabupaten:35.78", "kecamatan:35.78.01", "programme:pkh"."""

    level: OfficeLevel
    code: str

    @classmethod
    def parse(cls, key: str) -> DeskOffice:
        """Parse "level:code" ("agency:pkh" too) or a bare code ("35.78.01", "pkh")."""
        level_text, sep, code = str(key).strip().partition(":")
        if not sep:
            level_text, code = _level_of_code(level_text), level_text
        if level_text == OfficeKind.AGENCY.value:
            level_text = OfficeLevel.PROGRAMME.value
        try:
            level = OfficeLevel(level_text)
        except ValueError:
            allowed = ", ".join(v.value for v in OfficeLevel)
            raise ValueError(f"unknown office level {level_text[:20]!r} ({allowed})") from None
        code = code.strip()
        if level is OfficeLevel.PROVINCE:
            if code != PROVINCE_CODE:
                raise ValueError(f"the province office is province:{PROVINCE_CODE}")
            return cls(level, code)
        if level is OfficeLevel.PROGRAMME:
            code = code.lower()
            if not _PROGRAMME.fullmatch(code):
                raise ValueError("a programme code is a lowercase name such as pkh")
            return cls(level, code)
        # The handoffs' own office type checks and dots the region code.
        try:
            dotted = Office(kind=_HANDOFF_KIND[level], code=code).code
        except ValidationError as exc:
            raise ValueError(exc.errors()[0]["msg"].removeprefix("Value error, ")) from None
        if dotted not in get_region_registry():
            # Accounts are made in bulk from a file: a typo must not make an office of nobody.
            raise ValueError(f"{dotted} is not a region of Jawa Timur")
        return cls(level, dotted)

    @property
    def key(self) -> str:
        """Stable text form "level:code", stored with the account."""
        return f"{self.level}:{self.code}"

    @property
    def handoff_office(self) -> str | None:
        """How handoffs address this office ("agency:pkh"); None for the province."""
        kind = _HANDOFF_KIND.get(self.level)
        return None if kind is None else f"{kind}:{self.code}"

    def __str__(self) -> str:
        return self.key


@dataclass(frozen=True, slots=True)
class Account:
    """What the rules need of a desk account."""

    email: str
    office: DeskOffice
    role: Role
    active: bool = True


@dataclass(frozen=True, slots=True)
class HandoffAccess:
    """What the rules need of a handoff: who holds it, who it was first for, its regions."""

    office: str
    origin_office: str
    kecamatan_code: str
    kabupaten_code: str
    state: str


def _region_of(office_key: str) -> str:
    """The region code of a kecamatan, desa or kabupaten office key; "" for anything else."""
    kind, _, code = office_key.partition(":")
    if kind in (OfficeKind.KECAMATAN, OfficeKind.DESA, OfficeKind.KABUPATEN):
        return code
    return ""


def _in_area(office_key: str, area: str) -> bool:
    """True when the office lies in the region `area` (itself or below it)."""
    region = _region_of(office_key)
    return bool(region) and (region == area or region.startswith(f"{area}."))


def can_see(account: Account, handoff: HandoffAccess) -> bool:
    """True when the account may read the handoff (the desk answers 404 otherwise)."""
    if not account.active:
        return False
    office = account.office
    if office.level is OfficeLevel.PROVINCE:
        return True
    holders = (handoff.office, handoff.origin_office)
    if office.level in (OfficeLevel.KABUPATEN, OfficeLevel.KECAMATAN):
        # Its own kecamatan and desa, and what it holds: by the offices, not by the
        # handoff's counted region, so an agency's handoff about the area stays the agency's.
        return any(_in_area(h, office.code) for h in holders)
    return office.handoff_office in holders


def can_act(account: Account, handoff: HandoffAccess) -> bool:
    """True when the account may answer the handoff: an officer or admin of its own office."""
    if account.role is Role.VIEWER or not can_see(account, handoff):
        return False
    mine = account.office.handoff_office
    if mine is None:
        return False
    if account.office.level is OfficeLevel.KABUPATEN:
        # The kabupaten answers what was escalated to it, not its kecamatan's daily work.
        return handoff.office == mine
    return mine in (handoff.office, handoff.origin_office)


def can_reveal(account: Account, handoff: HandoffAccess) -> bool:
    """True when the account may see the person's full NIK/No. KK: an officer of the office."""
    return can_act(account, handoff)


def can_manage_accounts(account: Account) -> bool:
    """True for the province's admins, who add, disable and reset accounts."""
    return (
        account.active
        and account.role is Role.ADMIN
        and account.office.level is OfficeLevel.PROVINCE
    )


class DeskAction(StrEnum):
    """What an officer may do with a handoff on the desk."""

    ACKNOWLEDGE = "acknowledge"
    RESOLVE = "resolve"
    REJECT = "reject"
    RETURN = "return"  # misrouted: back to the province with the reason


ACTIONS: Mapping[DeskAction, HandoffState] = MappingProxyType(
    {
        DeskAction.ACKNOWLEDGE: HandoffState.ACKNOWLEDGED,
        DeskAction.RESOLVE: HandoffState.RESOLVED,
        DeskAction.REJECT: HandoffState.REJECTED,
        # No state of its own: the office rejects it as not its own, and the province, which
        # sees every rejection with this reason, re-routes the finding.
        DeskAction.RETURN: HandoffState.REJECTED,
    }
)
"""The office decision each desk action records (all of them in `DECISION_TARGETS`)."""

_NEEDS_REASON = frozenset({DeskAction.REJECT, DeskAction.RETURN})


def actions_for(account: Account, handoff: HandoffAccess) -> tuple[DeskAction, ...]:
    """The actions the desk offers this account on this handoff, in display order."""
    if not can_act(account, handoff):
        return ()
    state = handoff.state
    if state in FINAL_STATES or state == HandoffState.OPEN:
        # Settled, or not delivered yet (the decision rule would defer it).
        return ()
    shown: list[DeskAction] = [a for a in DeskAction if a is not DeskAction.ACKNOWLEDGE]
    if state != HandoffState.ACKNOWLEDGED:
        shown.insert(0, DeskAction.ACKNOWLEDGE)
    return tuple(shown)


def decision_of(action: DeskAction | str, reason: str) -> tuple[HandoffState, str]:
    """The decision and stored reason of a desk action; ValueError when a reason is missing."""
    act = DeskAction(action)
    text = " ".join(str(reason).split())
    if act in _NEEDS_REASON and not text:
        raise ValueError("alasan wajib diisi")
    if act is DeskAction.RETURN:
        text = MISROUTED_PREFIX + text
    return ACTIONS[act], text


def parse_role(role: str) -> Role:
    """The role named by `role` (any case); ValueError naming the roles otherwise."""
    try:
        return Role(str(role).strip().lower())
    except ValueError:
        allowed = ", ".join(r.value for r in Role)
        raise ValueError(f"unknown role {str(role)[:20]!r} (expected {allowed})") from None


def check_email(email: str) -> str:
    """The account's e-mail, lower-cased; ValueError when it is not one or too long."""
    value = str(email).strip().lower()
    if not _EMAIL.fullmatch(value) or len(value) > EMAIL_MAX:
        raise ValueError(f"not an e-mail address of at most {EMAIL_MAX} characters")
    return value


def check_password(password: str, email: str = "") -> str:
    """A new password as given; ValueError (in Bahasa Indonesia) when it is too weak."""
    if len(password) < PASSWORD_MIN:
        raise ValueError(f"kata sandi minimal {PASSWORD_MIN} karakter")
    if email and password.lower() == email.lower():
        raise ValueError("kata sandi tidak boleh sama dengan e-mail")
    if password.isdigit():
        raise ValueError("kata sandi tidak boleh hanya angka")
    return password
