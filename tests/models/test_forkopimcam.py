"""The Forkopimcam file: every kecamatan's forum in the shipped file, bad lines refused."""

from __future__ import annotations

import pytest

from models.forkopimcam import (
    FORKOPIMCAM_FILE,
    ForumMember,
    ForumRole,
    load_forkopimcam,
    mail_addresses,
    parse_forkopimcam,
)
from models.wilayah import get_region_registry

HEADER = "kecamatan_code,kecamatan,role,email\n"


def test_the_shipped_file_lists_every_kecamatan_with_placeholders_only() -> None:
    forums = load_forkopimcam(FORKOPIMCAM_FILE)
    kecamatan = {k.code for k in get_region_registry().kecamatan()}
    assert set(forums) == {f"forkopimcam:{code}" for code in kecamatan}
    for members in forums.values():
        assert {m.role for m in members} == set(ForumRole)
        # Nothing is mailed until an operator puts the offices' real addresses in.
        assert all(m.placeholder for m in members) and mail_addresses(members) == []


def test_a_file_is_read_by_code_with_repeats_and_notes() -> None:
    forums = parse_forkopimcam(
        "# notes first\n"
        + HEADER
        + "357801,Karang Pilang,Camat,Camat@Kec-KarangPilang.surabaya.go.id\n"
        + "\n# a note between lines\n"
        + "35.78.01,,camat,camat@kec-karangpilang.surabaya.go.id\n"
        + "35.78.01,Karang Pilang,danramil,danramil-357801@forkopimcam.example\n"
    )
    members = forums["forkopimcam:35.78.01"]
    assert members == (
        ForumMember(ForumRole.CAMAT, "camat@kec-karangpilang.surabaya.go.id"),
        ForumMember(ForumRole.DANRAMIL, "danramil-357801@forkopimcam.example"),
    )
    assert mail_addresses(members) == ["camat@kec-karangpilang.surabaya.go.id"]


@pytest.mark.parametrize(
    ("line", "reason"),
    [
        ("35.78,Surabaya,camat,a@b.go.id", "not a forkopimcam code"),
        ("35.78.99,X,camat,a@b.go.id", "not a kecamatan of Jawa Timur"),
        ("35.78.01,Karang Pilang,lurah,a@b.go.id", "unknown role 'lurah'"),
        ("35.78.01,Karang Pilang,camat,bukan-surel", "not an e-mail address"),
        ("35.78.01,Karang Pilang,camat", "expected 4 columns"),
    ],
)
def test_a_bad_line_refuses_the_file_naming_its_line(line: str, reason: str) -> None:
    good = "35.78.01,Karang Pilang,camat,camat@kec-karangpilang.surabaya.go.id\n"
    with pytest.raises(ValueError, match=f"line 3: .*{reason}"):
        parse_forkopimcam(HEADER + good + line + "\n")


def test_a_file_without_its_header_is_refused() -> None:
    with pytest.raises(ValueError, match="header"):
        parse_forkopimcam("35.78.01,Karang Pilang,camat,a@b.go.id\n")
    with pytest.raises(ValueError, match="no header"):
        parse_forkopimcam("# only notes\n")
