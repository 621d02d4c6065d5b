"""Each kecamatan's Forkopimcam: its member roles and contact addresses, from an editable file.

The Forkopimcam (Forum Koordinasi Pimpinan di Kecamatan) is the camat, who chairs it, the
kapolsek and the danramil. The hub addresses it as the office `forkopimcam:<kecamatan>` and
mails its desk digest to the addresses of `models/data/forkopimcam.csv`, one line per
kecamatan, role and address (a role may have several lines), plus the forum's own desk
accounts. The shipped file holds role-based placeholders at the reserved `.example` domain
(RFC 2606) for every kecamatan, never a person's name: an operator replaces them with the
offices' real addresses. A placeholder is never mailed (it could only bounce), so an
unedited line changes nothing.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from enum import StrEnum
from functools import lru_cache
from pathlib import Path
from types import MappingProxyType

from pydantic import ValidationError

from models.desk import check_email
from models.handoffs import Office, OfficeKind
from models.wilayah import RegionKind, get_region_registry

__all__ = [
    "FORKOPIMCAM_FILE",
    "PLACEHOLDER_DOMAIN",
    "ForumMember",
    "ForumRole",
    "forkopimcam_contacts",
    "load_forkopimcam",
    "mail_addresses",
    "parse_forkopimcam",
    "placeholder_lines",
]

FORKOPIMCAM_FILE = Path(__file__).parent / "data" / "forkopimcam.csv"
"""The shipped, editable list of every kecamatan's Forkopimcam members and addresses."""

PLACEHOLDER_DOMAIN = "forkopimcam.example"
"""Domain of the shipped placeholders; any address under `.example` is one."""

HEADER = ("kecamatan_code", "kecamatan", "role", "email")


class ForumRole(StrEnum):
    """A member of the forum, by office (UU 23/2014 Pasal 26): never by a person's name."""

    CAMAT = "camat"
    KAPOLSEK = "kapolsek"
    DANRAMIL = "danramil"


@dataclass(frozen=True, slots=True)
class ForumMember:
    """One contact of a kecamatan's Forkopimcam: the role and where it is mailed."""

    role: ForumRole
    email: str

    @property
    def placeholder(self) -> bool:
        """True for an address at a reserved example domain, which no mail server delivers."""
        domain = self.email.rpartition("@")[2]
        return domain == "example" or domain.endswith(".example")


def _lines(text: str) -> Iterable[tuple[int, str]]:
    for number, line in enumerate(text.splitlines(), start=1):
        if line.strip() and not line.lstrip().startswith("#"):
            yield number, line


def parse_forkopimcam(text: str) -> Mapping[str, tuple[ForumMember, ...]]:
    """Members per forum office ("forkopimcam:35.78.01") of the file's text; ValueError by line.

    The `kecamatan` column is for the operator reading the file; the code decides. A file
    with any bad line is refused whole, so a typo cannot silently drop a forum's contacts.
    """
    numbered = list(_lines(text))
    if not numbered:
        raise ValueError("forkopimcam: the file has no header line")
    first_number, first = numbered[0]
    header = tuple(h.strip().lower() for h in next(csv.reader([first])))
    if header != HEADER:
        raise ValueError(f"forkopimcam line {first_number}: the header must be {','.join(HEADER)}")
    registry = get_region_registry()
    members: dict[str, list[ForumMember]] = {}
    problems: list[str] = []
    for number, line in numbered[1:]:
        cells = [c.strip() for c in next(csv.reader([line]))]
        if len(cells) != len(HEADER):
            problems.append(f"line {number}: expected {len(HEADER)} columns, got {len(cells)}")
            continue
        code, _name, role, address = cells
        try:
            try:
                office = Office(kind=OfficeKind.FORKOPIMCAM, code=code)
            except ValidationError as exc:
                raise ValueError(exc.errors()[0]["msg"].removeprefix("Value error, ")) from None
            region = registry.get(office.code)
            if region is None or region.kind is not RegionKind.KECAMATAN:
                raise ValueError(f"{office.code} is not a kecamatan of Jawa Timur")
            member = ForumMember(ForumRole(role.lower()), check_email(address))
        except ValueError as exc:
            reason = str(exc)
            if "is not a valid ForumRole" in reason:
                allowed = ", ".join(r.value for r in ForumRole)
                reason = f"unknown role {role[:20]!r} (expected {allowed})"
            problems.append(f"line {number}: {reason[:160]}")
            continue
        listed = members.setdefault(office.key, [])
        if member not in listed:
            listed.append(member)
    if problems:
        shown = "; ".join(problems[:10])
        more = f" (and {len(problems) - 10} more)" if len(problems) > 10 else ""
        raise ValueError(f"forkopimcam: {shown}{more}")
    return MappingProxyType({office: tuple(found) for office, found in sorted(members.items())})


def load_forkopimcam(path: Path) -> Mapping[str, tuple[ForumMember, ...]]:
    """Members per forum office of a file like `models/data/forkopimcam.csv`."""
    return parse_forkopimcam(path.read_text(encoding="utf-8"))


@lru_cache(maxsize=1)
def forkopimcam_contacts() -> Mapping[str, tuple[ForumMember, ...]]:
    """The shipped file's members per forum office, read once per process."""
    return load_forkopimcam(FORKOPIMCAM_FILE)


def mail_addresses(members: Iterable[ForumMember]) -> list[str]:
    """The addresses a forum's digest goes to: every member's but the placeholders, sorted."""
    return sorted({m.email for m in members if not m.placeholder})


def placeholder_lines() -> str:
    """The shipped file's text: the notes, the header and three placeholders per kecamatan."""
    notes = (
        "# Forkopimcam of every kecamatan: the camat (chair), the kapolsek and the danramil.",
        "# The hub mails each forum's desk digest (handoffs and notices to",
        "# forkopimcam:<kecamatan_code>) to these addresses and to the forum's desk accounts.",
        "#",
        "# One line per kecamatan, role and address: kecamatan_code,kecamatan,role,email",
        "#   role   camat, kapolsek or danramil; a role may have several lines",
        "#   email  an office's address, never a private one; no names of people here",
        f"# The addresses at {PLACEHOLDER_DOMAIN} are placeholders and are never mailed:",
        "# replace them with the offices' real addresses. Lines starting with # are notes.",
        "# Edit, commit and redeploy; no other step is needed.",
    )
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(HEADER)
    for kec in get_region_registry().kecamatan():
        compact = kec.code.replace(".", "")
        writer.writerows(
            (kec.code, kec.name, role.value, f"{role.value}-{compact}@{PLACEHOLDER_DOMAIN}")
            for role in ForumRole
        )
    return "\n".join(notes) + "\n" + out.getvalue()
