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
- a desa, a programme or a Forkopimcam sees and acts on its own handoffs only; the
  kecamatan and kabupaten/kota a Forkopimcam belongs to read its handoffs too (its notices
  are about their area) but do not answer them;
- a viewer only reads; an officer or an admin acts; the province's admin manages accounts.

"Its own" is what the office-decision rule (`models.decisions.decide`) accepts: the office
that holds the handoff now, or the office it was first for. The desk asks `can_act` before
it offers a form, and the decision it records then goes through `decide` like any other.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import date
from enum import StrEnum
from types import MappingProxyType

from pydantic import ValidationError

from models.handoffs import FINAL_STATES, HandoffState, Office, OfficeKind
from models.wilayah import get_region_registry, normalise_region_code

__all__ = [
    "ACTIONS",
    "DESK_RECEIPT_PREFIX",
    "EMAIL_MAX",
    "MISROUTED_PREFIX",
    "PROVINCE_CODE",
    "Account",
    "Channel",
    "DeskAction",
    "DeskOffice",
    "DigestItem",
    "EscalationDigest",
    "HandoffAccess",
    "OfficeChannels",
    "OfficeDigest",
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
    "digest_mail",
    "escalation_mail",
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
    # The camat, kapolsek and danramil of one kecamatan, addressed by the kecamatan's code.
    FORKOPIMCAM = "forkopimcam"


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
        OfficeLevel.FORKOPIMCAM: OfficeKind.FORKOPIMCAM,
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
    """A desk office: "province:35", "kabupaten:35.78", "kecamatan:35.78.01", "programme:pkh",
    "forkopimcam:35.78.01"."""

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


# Office kinds that lie in a region, so the region's kecamatan and kabupaten/kota read them.
_REGIONAL = (OfficeKind.KECAMATAN, OfficeKind.DESA, OfficeKind.KABUPATEN, OfficeKind.FORKOPIMCAM)


def _region_of(office_key: str) -> str:
    """The region code of a regional office key (a Forkopimcam's is its kecamatan's); else ""."""
    kind, _, code = office_key.partition(":")
    if kind in _REGIONAL:
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


# --- channels --------------------------------------------------------------------------------


class Channel(StrEnum):
    """How an office receives its handoffs and answers them."""

    INBOX = "inbox"  # the office's own system, through the inbox API
    DESK = "desk"  # the hub's desk only: nothing is posted to the inbox
    BOTH = "both"  # posted to the inbox and shown on the desk; the first answer applies


DESK_RECEIPT_PREFIX = "desk:"
"""Start of the receipt of a delivery made on the desk (no inbox receipt exists for it)."""


@dataclass(frozen=True, slots=True)
class OfficeChannels:
    """Which channel each office uses: `CETTAR_DESK_OFFICES`, read by one rule.

    Keys are a handoff office ("kecamatan:35.78.01", "desa:35.78.01.1001", "agency:pkh") or a
    region code ("35.78", "35" for the whole province) that stands for every kecamatan, desa
    and kabupaten office in it. The most specific key wins: an office's own key, then the
    longest region containing it. An office no key names stays on the inbox, except a
    Forkopimcam: the forum runs no inbox API, so it is a desk office unless its own key
    ("forkopimcam:35.78.01") says otherwise; region keys do not move it.
    """

    offices: Mapping[str, Channel]
    regions: Mapping[str, Channel]

    @classmethod
    def parse(cls, mapping: Mapping[str, str]) -> OfficeChannels:
        """The rule of a `{key: "desk" | "both" | "inbox"}` mapping; ValueError naming a bad one."""
        offices: dict[str, Channel] = {}
        regions: dict[str, Channel] = {}
        allowed = ", ".join(c.value for c in Channel)
        for raw_key, raw_channel in mapping.items():
            key = str(raw_key).strip()
            try:
                channel = Channel(str(raw_channel).strip().lower())
            except ValueError:
                raise ValueError(
                    f"CETTAR_DESK_OFFICES: {key[:40]!r}: unknown channel "
                    f"{str(raw_channel)[:20]!r} (expected {allowed})"
                ) from None
            if ":" in key:
                # The desk's own spelling of a programme office is the handoffs' agency.
                kind, _, code = key.partition(":")
                if kind == OfficeLevel.PROGRAMME.value:
                    key = f"{OfficeKind.AGENCY.value}:{code}"
                try:
                    offices[Office.parse(key).key] = channel
                except ValueError as exc:
                    raise ValueError(f"CETTAR_DESK_OFFICES: {key[:40]!r}: {exc}") from None
                continue
            try:
                code = normalise_region_code(key)
            except ValueError as exc:
                raise ValueError(f"CETTAR_DESK_OFFICES: {key[:40]!r}: {exc}") from None
            if code != PROVINCE_CODE and code not in get_region_registry():
                raise ValueError(f"CETTAR_DESK_OFFICES: {code} is not a region of Jawa Timur")
            regions[code] = channel
        return cls(MappingProxyType(offices), MappingProxyType(regions))

    def of(self, office_key: str) -> Channel:
        """The channel of a handoff office ("kecamatan:35.78.01")."""
        own = self.offices.get(office_key)
        if own is not None:
            return own
        if office_key.startswith(f"{OfficeKind.FORKOPIMCAM.value}:"):
            # Nothing could take an inbox POST for it: a region's "inbox" or "both" must not
            # leave its notices undeliverable.
            return Channel.DESK
        region = _region_of(office_key)
        while region:
            found = self.regions.get(region)
            if found is not None:
                return found
            region = region.rpartition(".")[0]
        return Channel.INBOX

    def on_desk(self, office_key: str) -> bool:
        """True when the office sees its handoffs on the desk (desk or both)."""
        return self.of(office_key) is not Channel.INBOX

    def posts_to_inbox(self, office_key: str) -> bool:
        """True when the office's handoffs are posted to the inbox API (inbox or both)."""
        return self.of(office_key) is not Channel.DESK

    @property
    def configured(self) -> bool:
        """True when some office is on the desk at all."""
        return any(c is not Channel.INBOX for c in (*self.offices.values(), *self.regions.values()))


# --- daily digests ---------------------------------------------------------------------------

DIGEST_ITEMS = 10
"""Handoffs linked one by one in a digest at most; the counts cover the rest."""


@dataclass(frozen=True, slots=True)
class DigestItem:
    """One handoff a digest links to: its id, kind, due date and kecamatan (no person)."""

    handoff_id: str
    kind: str
    due_date: date
    kecamatan_code: str = ""


@dataclass(frozen=True, slots=True)
class OfficeDigest:
    """An office's day: handoffs new since yesterday, due soon, overdue, and still open."""

    office: str
    day: date
    new: int
    due_soon: int
    overdue: int
    open: int
    items: tuple[DigestItem, ...] = ()

    @property
    def worth_sending(self) -> bool:
        """True when there is something to act on (no mail about nothing)."""
        return bool(self.new or self.due_soon or self.overdue)


@dataclass(frozen=True, slots=True)
class EscalationDigest:
    """A kabupaten/kota's escalations: open, new since yesterday, overdue, per kecamatan."""

    office: str
    day: date
    escalated: int
    new: int
    overdue: int
    per_kecamatan: tuple[tuple[str, int], ...] = ()
    items: tuple[DigestItem, ...] = field(default=())

    @property
    def worth_sending(self) -> bool:
        """True when escalations wait on the kabupaten/kota."""
        return bool(self.escalated)


def _region_name(code: str) -> str:
    region = get_region_registry().get(code) if code else None
    return region.name if region else code


def office_name(office_key: str) -> str:
    """ "Kecamatan Karang Pilang (35.78.01)" for a handoff office key."""
    kind, _, code = office_key.partition(":")
    if kind == OfficeKind.AGENCY:
        return f"Program {code.upper()}"
    title = {
        "kecamatan": "Kecamatan",
        "desa": "Desa/Kelurahan",
        "kabupaten": "",
        "forkopimcam": "Forkopimcam",
    }.get(kind, kind)
    return " ".join(p for p in (title, _region_name(code), f"({code})") if p)


def _link(base: str, path: str) -> str:
    return f"{base.rstrip('/')}{path}"


def _item_lines(base: str, items: tuple[DigestItem, ...]) -> list[str]:
    return [
        f"- {i.kind}, tenggat {i.due_date.isoformat()}"
        + (f", kecamatan {i.kecamatan_code}" if i.kecamatan_code else "")
        + f": {_link(base, f'/handoffs/{i.handoff_id}')}"
        for i in items
    ]


_FOOTER = (
    "",
    "Surel ini dikirim otomatis oleh CETTAR Hub sekali sehari. Data pribadi (nama, NIK, "
    "No. KK) hanya tampil di meja kantor setelah masuk.",
)


def digest_mail(digest: OfficeDigest, desk_url: str) -> tuple[str, str]:
    """Subject and plain-text body of an office's daily digest: counts and links, no person."""
    name = office_name(digest.office)
    subject = (
        f"CETTAR Hub {digest.day.isoformat()}: {digest.new} baru, {digest.due_soon} segera "
        f"jatuh tempo, {digest.overdue} terlambat · {name}"
    )
    lines = [
        f"Ringkasan harian serah terima untuk {name}, {digest.day.isoformat()}.",
        "",
        f"Baru sejak kemarin:          {digest.new}",
        f"Jatuh tempo 2 hari kerja:    {digest.due_soon}",
        f"Terlambat:                   {digest.overdue}",
        f"Semua yang masih terbuka:    {digest.open}",
        "",
        f"Yang terbuka: {_link(desk_url, '/handoffs?status=open')}",
        f"Yang terlambat: {_link(desk_url, '/handoffs?status=overdue')}",
    ]
    if digest.items:
        lines += ["", "Paling mendesak:", *_item_lines(desk_url, digest.items)]
    return subject, "\n".join([*lines, *_FOOTER]) + "\n"


def escalation_mail(digest: EscalationDigest, desk_url: str) -> tuple[str, str]:
    """Subject and plain-text body of a kabupaten/kota's daily escalation digest."""
    name = office_name(digest.office)
    subject = (
        f"CETTAR Hub {digest.day.isoformat()}: {digest.escalated} eskalasi "
        f"({digest.new} baru) · {name}"
    )
    lines = [
        f"Ringkasan harian eskalasi untuk {name}, {digest.day.isoformat()}.",
        "",
        f"Eskalasi yang masih terbuka: {digest.escalated}",
        f"Baru sejak kemarin:          {digest.new}",
        f"Terlambat:                   {digest.overdue}",
        "",
        f"Eskalasi: {_link(desk_url, '/handoffs?status=escalated')}",
        f"Ringkasan per kecamatan: {_link(desk_url, '/summary')}",
    ]
    if digest.per_kecamatan:
        lines += ["", "Per kecamatan:"]
        lines += [
            f"- {_region_name(code)} ({code}): {n}" for code, n in digest.per_kecamatan if code
        ]
    if digest.items:
        lines += ["", "Paling lama:", *_item_lines(desk_url, digest.items)]
    return subject, "\n".join([*lines, *_FOOTER]) + "\n"
