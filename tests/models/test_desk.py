"""The desk's access rules on a full matrix: every role and office level against every handoff."""

from __future__ import annotations

import pytest

from models.decisions import DECISION_TARGETS, HandoffView, decide
from models.desk import (
    ACTIONS,
    MISROUTED_PREFIX,
    Account,
    Channel,
    DeskAction,
    DeskOffice,
    HandoffAccess,
    OfficeChannels,
    OfficeLevel,
    Role,
    actions_for,
    can_act,
    can_manage_accounts,
    can_reveal,
    can_see,
    check_email,
    check_password,
    decision_of,
    office_name,
)


def _h(office: str, origin: str | None = None, state: str = "delivered") -> HandoffAccess:
    origin = origin or office
    region = next(
        (o.partition(":")[2] for o in (origin, office) if not o.startswith("agency:")), ""
    )
    kec = region[:8] if region.count(".") >= 2 else ""
    kab = region[:5] if region else "35.78"
    return HandoffAccess(office, origin, kec, kab, state)


# The account of each level lives in Kota Surabaya (35.78), kecamatan Karang Pilang (35.78.01).
OFFICES = {
    OfficeLevel.PROVINCE: "province:35",
    OfficeLevel.KABUPATEN: "kabupaten:35.78",
    OfficeLevel.KECAMATAN: "kecamatan:35.78.01",
    OfficeLevel.DESA: "desa:35.78.01.1001",
    OfficeLevel.PROGRAMME: "programme:pkh",
    OfficeLevel.FORKOPIMCAM: "forkopimcam:35.78.01",
}

HANDOFFS = {
    # the account's kecamatan, and a desa of it
    "own_kecamatan": _h("kecamatan:35.78.01"),
    "own_desa": _h("desa:35.78.01.1001"),
    # another desa of the same kecamatan
    "other_desa_same_kecamatan": _h("desa:35.78.01.1002"),
    # another kecamatan (and one of its desa) of the same kabupaten
    "other_kecamatan_same_kabupaten": _h("kecamatan:35.78.02"),
    "desa_of_other_kecamatan_same_kabupaten": _h("desa:35.78.02.1001"),
    # a kecamatan of another kabupaten
    "other_kabupaten": _h("kecamatan:35.07.01"),
    # the account's kecamatan's handoff, escalated to its kabupaten, and another one
    "escalated_to_own_kabupaten": _h("kabupaten:35.78", "kecamatan:35.78.01", "escalated"),
    "escalated_from_other_kecamatan": _h("kabupaten:35.78", "kecamatan:35.78.02", "escalated"),
    "escalated_to_other_kabupaten": _h("kabupaten:35.07", "kecamatan:35.07.01", "escalated"),
    # programmes' desks
    "own_programme": _h("agency:pkh"),
    "other_programme": _h("agency:registry"),
    # Forkopimcam notices: the account's kecamatan's forum, a neighbour's, another kabupaten's
    "own_forkopimcam": _h("forkopimcam:35.78.01"),
    "other_forkopimcam_same_kabupaten": _h("forkopimcam:35.78.02"),
    "forkopimcam_of_other_kabupaten": _h("forkopimcam:35.07.01"),
}

_NONE = {name: (False, False) for name in HANDOFFS}

# (see, act) of an officer for each (level, handoff); a viewer sees the same and acts on none.
T, F = True, False
EXPECTED: dict[OfficeLevel, dict[str, tuple[bool, bool]]] = {
    OfficeLevel.PROVINCE: {
        # sees everything, holds nothing
        name: (T, F)
        for name in HANDOFFS
    },
    OfficeLevel.KABUPATEN: {
        "own_kecamatan": (T, F),
        "own_desa": (T, F),
        "other_desa_same_kecamatan": (T, F),
        "other_kecamatan_same_kabupaten": (T, F),
        "desa_of_other_kecamatan_same_kabupaten": (T, F),
        "other_kabupaten": (F, F),
        "escalated_to_own_kabupaten": (T, T),
        "escalated_from_other_kecamatan": (T, T),
        "escalated_to_other_kabupaten": (F, F),
        "own_programme": (F, F),
        "other_programme": (F, F),
        # its kecamatan's forums are read, never answered: the forum answers for itself
        "own_forkopimcam": (T, F),
        "other_forkopimcam_same_kabupaten": (T, F),
        "forkopimcam_of_other_kabupaten": (F, F),
    },
    OfficeLevel.KECAMATAN: {
        "own_kecamatan": (T, T),
        "own_desa": (T, F),
        "other_desa_same_kecamatan": (T, F),
        "other_kecamatan_same_kabupaten": (F, F),
        "desa_of_other_kecamatan_same_kabupaten": (F, F),
        "other_kabupaten": (F, F),
        # still its own: the decision rule accepts the office it was first for
        "escalated_to_own_kabupaten": (T, T),
        "escalated_from_other_kecamatan": (F, F),
        "escalated_to_other_kabupaten": (F, F),
        "own_programme": (F, F),
        "other_programme": (F, F),
        # the camat's officers read their own forum's notices
        "own_forkopimcam": (T, F),
        "other_forkopimcam_same_kabupaten": (F, F),
        "forkopimcam_of_other_kabupaten": (F, F),
    },
    OfficeLevel.DESA: {
        "own_kecamatan": (F, F),
        "own_desa": (T, T),
        "other_desa_same_kecamatan": (F, F),
        "other_kecamatan_same_kabupaten": (F, F),
        "desa_of_other_kecamatan_same_kabupaten": (F, F),
        "other_kabupaten": (F, F),
        "escalated_to_own_kabupaten": (F, F),
        "escalated_from_other_kecamatan": (F, F),
        "escalated_to_other_kabupaten": (F, F),
        "own_programme": (F, F),
        "other_programme": (F, F),
        "own_forkopimcam": (F, F),
        "other_forkopimcam_same_kabupaten": (F, F),
        "forkopimcam_of_other_kabupaten": (F, F),
    },
    OfficeLevel.PROGRAMME: {
        "own_kecamatan": (F, F),
        "own_desa": (F, F),
        "other_desa_same_kecamatan": (F, F),
        "other_kecamatan_same_kabupaten": (F, F),
        "desa_of_other_kecamatan_same_kabupaten": (F, F),
        "other_kabupaten": (F, F),
        "escalated_to_own_kabupaten": (F, F),
        "escalated_from_other_kecamatan": (F, F),
        "escalated_to_other_kabupaten": (F, F),
        "own_programme": (T, T),
        "other_programme": (F, F),
        "own_forkopimcam": (F, F),
        "other_forkopimcam_same_kabupaten": (F, F),
        "forkopimcam_of_other_kabupaten": (F, F),
    },
    # its own notices only: not the kecamatan's handoffs, not another forum's
    OfficeLevel.FORKOPIMCAM: {**_NONE, "own_forkopimcam": (T, T)},
}

CELLS = [(role, level, name) for role in Role for level in OfficeLevel for name in HANDOFFS]


def test_the_matrix_names_every_handoff_for_every_level() -> None:
    for level in OfficeLevel:
        assert set(EXPECTED[level]) == set(HANDOFFS), level


@pytest.mark.parametrize(("role", "level", "name"), CELLS)
def test_access_matrix(role: Role, level: OfficeLevel, name: str) -> None:
    account = Account("petugas@example.go.id", DeskOffice.parse(OFFICES[level]), role)
    handoff = HANDOFFS[name]
    see, act = EXPECTED[level][name]
    if role is Role.VIEWER:
        act = False
    assert can_see(account, handoff) is see, f"{role} {level} sees {name}"
    assert can_act(account, handoff) is act, f"{role} {level} acts on {name}"
    assert can_reveal(account, handoff) is act, f"{role} {level} reveals {name}"
    assert bool(actions_for(account, handoff)) is act
    # The desk never offers what the decision rule would refuse from this office.
    office = account.office.handoff_office
    if act and office is not None:
        view = HandoffView("H", handoff.state, handoff.office, handoff.origin_office)
        assert decide(view, office, "acknowledged") == "applied"


@pytest.mark.parametrize("level", list(OfficeLevel))
@pytest.mark.parametrize("name", list(HANDOFFS))
def test_a_disabled_account_sees_and_does_nothing(level: OfficeLevel, name: str) -> None:
    account = Account("x@example.go.id", DeskOffice.parse(OFFICES[level]), Role.ADMIN, False)
    assert not can_see(account, HANDOFFS[name])
    assert not can_act(account, HANDOFFS[name])


@pytest.mark.parametrize("role", list(Role))
@pytest.mark.parametrize("level", list(OfficeLevel))
def test_only_the_province_admin_manages_accounts(role: Role, level: OfficeLevel) -> None:
    account = Account("x@example.go.id", DeskOffice.parse(OFFICES[level]), role)
    expected = role is Role.ADMIN and level is OfficeLevel.PROVINCE
    assert can_manage_accounts(account) is expected
    assert not can_manage_accounts(Account(account.email, account.office, role, active=False))


KEC_OFFICER = Account("k@example.go.id", DeskOffice.parse("kecamatan:35.78.01"), Role.OFFICER)


@pytest.mark.parametrize(
    ("state", "offered"),
    [
        ("open", ()),
        ("delivered", ("acknowledge", "resolve", "reject", "return")),
        ("acknowledged", ("resolve", "reject", "return")),
        ("escalated", ("acknowledge", "resolve", "reject", "return")),
        ("resolved", ()),
        ("rejected", ()),
    ],
)
def test_actions_offered_follow_the_state(state: str, offered: tuple[str, ...]) -> None:
    handoff = _h("kecamatan:35.78.01", state=state)
    assert tuple(a.value for a in actions_for(KEC_OFFICER, handoff)) == offered


def test_every_action_records_an_office_decision() -> None:
    assert set(ACTIONS.values()) <= DECISION_TARGETS
    assert decision_of("resolve", "  sudah   dicek ") == ("resolved", "sudah dicek")
    assert decision_of(DeskAction.ACKNOWLEDGE, "") == ("acknowledged", "")
    assert decision_of("return", "bukan wilayah kami") == (
        "rejected",
        MISROUTED_PREFIX + "bukan wilayah kami",
    )
    for action in ("reject", "return"):
        with pytest.raises(ValueError, match="alasan wajib"):
            decision_of(action, "   ")
    with pytest.raises(ValueError):
        decision_of("escalate", "x")


@pytest.mark.parametrize(
    ("key", "level", "code", "handoff_office"),
    [
        ("province:35", "province", "35", None),
        ("kabupaten:3578", "kabupaten", "35.78", "kabupaten:35.78"),
        ("kecamatan:35.78.01", "kecamatan", "35.78.01", "kecamatan:35.78.01"),
        ("desa:3578011001", "desa", "35.78.01.1001", "desa:35.78.01.1001"),
        ("programme:PKH", "programme", "pkh", "agency:pkh"),
        ("agency:pkh", "programme", "pkh", "agency:pkh"),
        ("forkopimcam:357801", "forkopimcam", "35.78.01", "forkopimcam:35.78.01"),
    ],
)
def test_desk_offices_parse(key: str, level: str, code: str, handoff_office: str | None) -> None:
    office = DeskOffice.parse(key)
    assert (office.level, office.code, office.handoff_office) == (level, code, handoff_office)
    assert DeskOffice.parse(office.key) == office


@pytest.mark.parametrize(
    "key",
    [
        "",
        "35.78.99",
        "35.7",
        "province:36",
        "kecamatan:35.78",
        "planet:35",
        "programme:P K H",
        "forkopimcam:35.78",
        "forkopimcam:35.78.99",
    ],
)
def test_bad_offices_are_refused(key: str) -> None:
    with pytest.raises(ValueError):
        DeskOffice.parse(key)


def test_a_forkopimcam_is_a_desk_office_unless_its_own_key_says_otherwise() -> None:
    forum, other = "forkopimcam:35.78.01", "forkopimcam:35.07.01"
    assert OfficeChannels.parse({}).of(forum) is Channel.DESK
    # Region keys move the region's offices, not its forums, which could take no inbox POST.
    regions = OfficeChannels.parse({"35": "inbox", "35.78": "both", "kecamatan:35.78.01": "inbox"})
    assert regions.of(forum) is Channel.DESK and regions.of("kecamatan:35.78.02") is Channel.BOTH
    assert regions.on_desk(forum) and not regions.posts_to_inbox(forum)
    own = OfficeChannels.parse({"forkopimcam:357801": "both", "forkopimcam:35.07.01": "inbox"})
    assert own.of(forum) is Channel.BOTH and own.posts_to_inbox(forum)
    assert own.of(other) is Channel.INBOX and not own.on_desk(other)
    with pytest.raises(ValueError, match="CETTAR_DESK_OFFICES"):
        OfficeChannels.parse({"forkopimcam:35.78": "desk"})


def test_a_forkopimcam_digest_names_its_kecamatan() -> None:
    assert office_name("forkopimcam:35.78.01") == "Forkopimcam Karang Pilang (35.78.01)"


def test_emails_and_passwords() -> None:
    assert check_email(" Camat.KarangPilang@Surabaya.go.id ") == "camat.karangpilang@surabaya.go.id"
    for bad in ("no-at-sign", "a@b", "x" * 50 + "@example.go.id", "a b@example.go.id"):
        with pytest.raises(ValueError):
            check_email(bad)
    assert check_password("kenanga-merah-12") == "kenanga-merah-12"
    for bad in ("short", "1234567890123", "k@example.go.id"):
        with pytest.raises(ValueError):
            check_password(bad, "k@example.go.id")
