"""Synthetic social registry (DTKS/DTSEN) of Jawa Timur, generated on demand from (seed, index).

Nothing is stored per household: a record is rebuilt from its index whenever it is served,
so a province of 6.5 million households costs no more memory than one of 700. Bad records
and updates are pure functions of the index too, which makes the ground truth exact.

NIK uniqueness without a global counter: a person's serial is ``q mod 9999 + 1`` where q
numbers the people first registered in one kecamatan, and the birth date is nudged back a few
days so that ``date mod J`` encodes the rest of q. Two people with the same kecamatan, birth
date and serial are then the same person. The same trick numbers the KKs of a kecamatan.
"""

from __future__ import annotations

import bisect
import random
from collections import Counter
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from datetime import date, datetime
from functools import partial
from typing import Any, Literal

from models.contracts.registry import HOUSEHOLDS, RECIPIENTS
from models.identity import make_nik, make_no_kk
from models.wilayah import RegionRegistry
from sandbox.bad_records import (
    BadKind,
    Breakage,
    RecipientBadKind,
    corrupt_household,
    corrupt_recipient,
)
from sandbox.config import RegistryDataConfig
from sandbox.layout import KecamatanPattern, layout_for
from sandbox.names import address, person_name
from sandbox.seeding import Salted
from sandbox.timeline import Timeline

__all__ = [
    "HOUSEHOLDS",
    "PROGRAMMES",
    "RECIPIENTS",
    "Draft",
    "Pages",
    "Position",
    "RegistryData",
    "Scan",
    "index_of_household_id",
    "make_household_id",
    "resume",
    "seek_position",
    "take_page",
]

# Served in id order within one household: "...-BPNT" sorts before "...-PKH".
PROGRAMMES: tuple[str, ...] = ("BPNT", "PKH")
PKH_SHARE = 0.25
BPNT_SHARE = 0.40
# Share of PKH families that also get BPNT; the rest of BPNT is drawn so its total is 40%.
_BPNT_GIVEN_PKH = 0.70
_BPNT_GIVEN_NOT_PKH = (BPNT_SHARE - PKH_SHARE * _BPNT_GIVEN_PKH) / (1.0 - PKH_SHARE)

_SERIALS = 9999
_MAX_MEMBERS = 7
_SIZES = tuple(range(1, _MAX_MEMBERS + 1))


def _cumulative(weights: tuple[float, ...]) -> tuple[float, ...]:
    # Upper bounds of all but the last bucket, for bisect on one uniform draw.
    total = sum(weights)
    out: list[float] = []
    acc = 0.0
    for w in weights[:-1]:
        acc += w
        out.append(acc / total)
    return tuple(out)


# Household sizes 1..7, mean about 3.1 (20 million people in 6.5 million households).
_SIZE_CUMULATIVE = _cumulative((0.12, 0.24, 0.28, 0.20, 0.09, 0.04, 0.03))
# Enrolled families sit in desil 1-4; the rest of the register spreads over all ten.
_DESIL_POOR_CUMULATIVE = _cumulative((0.35, 0.30, 0.20, 0.15))
_DESIL_ALL_CUMULATIVE = _cumulative((14, 13, 12, 11, 10, 9, 9, 8, 7, 7))
_OTHER_KECAMATAN_SHARE = 0.10
_KK_ELSEWHERE_SHARE = 0.05

# Salts keep the independent draws of one index apart.
_S_BASE, _S_UPDATE, _S_HH_VERSION, _S_REC_VERSION = 0x101, 0x102, 0x103, 0x104
_S_PKH, _S_BPNT, _S_BAD, _S_BAD_KIND, _S_BAD_HOW = 0x105, 0x106, 0x107, 0x108, 0x109
_S_REC_BASE, _S_REC_UPDATE, _S_REC_BAD, _S_REC_BAD_KIND = 0x10A, 0x10B, 0x10C, 0x10D
_S_DUP, _S_DUP_SOURCE = 0x10E, 0x10F


@dataclass(frozen=True, slots=True, order=True)
class Position:
    """Serving position of a record: (segment, household index, programme slot)."""

    segment: int
    index: int
    slot: int = 0


def seek_position(timeline: Timeline, since: datetime | None) -> Position:
    """The first position of a timeline whose records' updated_at is >= since."""
    if since is None:
        return Position(0, 0, 0)
    at = timeline.to_ms(since)
    segment = timeline.segment_of_ms(at)
    return Position(segment, timeline.first_index_at_or_after(segment, at), 0)


def resume(start: Position, after: Position | None) -> Position:
    """Where a page starts: `start`, or the cursor's position `after` if it lies beyond."""
    return after if after is not None and after > start else start


def take_page(
    scanned: Iterable[tuple[Position, dict[str, Any]]], limit: int
) -> tuple[list[dict[str, Any]], Position | None]:
    """The first `limit` scanned records and the position of the next one (None if none)."""
    out: list[dict[str, Any]] = []
    for pos, record in scanned:
        if len(out) == limit:
            return out, pos
        out.append(record)
    return out, None


Scan = Callable[[Position, str | None], Iterable[tuple[Position, dict[str, Any]]]]
"""scan(start, kecamatan) -> wire records at or after `start` with their positions, in order."""


@dataclass(frozen=True, slots=True)
class Pages:
    """The pages of one collection: where `updated_since` starts it, and its ordered scan."""

    seek: Callable[[datetime | None], Position]
    scan: Scan

    def __call__(
        self,
        *,
        since: datetime | None = None,
        after: Position | None = None,
        kecamatan: str | None = None,
        limit: int = 500,
    ) -> tuple[list[dict[str, Any]], Position | None]:
        """One page of wire records and the position of the next one (None on the last page)."""
        return take_page(self.scan(resume(self.seek(since), after), kecamatan), limit)


def make_household_id(desa_digits: str, index: int) -> str:
    """The stable id of a household: HH-<10-digit desa>-<index>."""
    return f"HH-{desa_digits}-{index}"


def index_of_household_id(hid: str) -> int:
    """The generator index of a household id (or of a member/recipient id derived from it)."""
    parts = hid.split("-")
    if len(parts) < 3 or parts[0] != "HH":
        raise ValueError(f"not a sandbox household id: {hid!r}")
    return int(parts[2])


@dataclass(slots=True)
class Draft:
    """A household before serialisation: wire fields plus what recipients need.

    `copied_slot` is the member slot that holds a person copied from `copied_from` (another
    household of the same kecamatan), or None: the planted "one NIK in two households".
    """

    index: int
    id: str
    no_kk: str
    desa_code: str
    urban: bool
    address: str
    desil: int
    members: list[dict[str, Any]]
    pengurus: int
    copied_slot: int | None = None
    copied_from: int | None = None


class RegistryData:
    """The registry's households and recipients at a settable epoch, generated on demand."""

    def __init__(
        self,
        config: RegistryDataConfig,
        regions: RegionRegistry | None = None,
        *,
        duplicate_nik_rate: float = 0.0,
        duplicate_deceased_rate: float = 0.0,
    ) -> None:
        self.config = config
        # Planted duplicates (coordination sandbox only): 0 keeps the registry as it was.
        self.duplicate_nik_rate = duplicate_nik_rate
        self.duplicate_deceased_rate = duplicate_deceased_rate
        self._plants = duplicate_nik_rate + duplicate_deceased_rate > 0.0
        self.seed = config.seed
        self.layout = layout_for(config.seed, regions)
        self.timeline = Timeline(config)
        self._epoch = config.epoch
        biggest = self.layout.max_kecamatan_households(config.households_at(config.max_epochs))
        # Residue classes of a birth/issue date: 2 origins (own, partner) x serial blocks.
        self._member_classes = 2 * ((biggest * _MAX_MEMBERS - 1) // _SERIALS + 1)
        self._kk_classes = 2 * ((biggest - 1) // _SERIALS + 1)
        self._ref_year = config.base_time.year - 1
        self._kec_codes = [k.code for k in self.layout.kecamatan]
        self._village_codes = [v.code for v in self.layout.villages]
        self._year_start = [date(self._ref_year - age, 1, 1).toordinal() for age in range(120)]
        seed = config.seed
        self._h_base = Salted(seed, _S_BASE)
        self._h_update = Salted(seed, _S_UPDATE)
        self._h_pkh = Salted(seed, _S_PKH)
        self._h_bpnt = Salted(seed, _S_BPNT)
        self._h_bad = Breakage(BadKind, config.bad_rate, seed, _S_BAD, _S_BAD_KIND)
        self._h_bad_how = Salted(seed, _S_BAD_HOW)
        self._h_rec_base = Salted(seed, _S_REC_BASE)
        self._h_rec_update = Salted(seed, _S_REC_UPDATE)
        self._h_rec_bad = Breakage(
            RecipientBadKind, config.bad_rate, seed, _S_REC_BAD, _S_REC_BAD_KIND
        )
        self._h_dup = Salted(seed, _S_DUP)
        self._h_dup_source = Salted(seed, _S_DUP_SOURCE)
        self.household_schedule = self.timeline.schedule(_S_HH_VERSION)
        self.recipient_schedule = self.timeline.schedule(_S_REC_VERSION)

    # ----------------------------------------------------------------- epoch and scope

    @property
    def epoch(self) -> int:
        """The current epoch: 0 is the first load, each later epoch re-issues some records."""
        return self._epoch

    @epoch.setter
    def epoch(self, value: int) -> None:
        if not 0 <= value <= self.config.max_epochs:
            raise ValueError(f"epoch must be within 0..{self.config.max_epochs}")
        self._epoch = value

    def households_count(self, kecamatan: str | None = None, epoch: int | None = None) -> int:
        """Number of households in the province or one kecamatan at an epoch."""
        n = self.timeline.households_at(self._epoch if epoch is None else epoch)
        if kecamatan is None:
            return n
        return self.pattern(kecamatan).count(n)

    def pattern(self, kecamatan: str) -> KecamatanPattern:
        """The index pattern of a kecamatan (dotted code); KeyError if unknown."""
        return self.layout.pattern_by_code[kecamatan]

    def indices(self, kecamatan: str | None = None, epoch: int | None = None) -> Iterator[int]:
        """Household indices of the province or one kecamatan existing at an epoch."""
        n = self.timeline.households_at(self._epoch if epoch is None else epoch)
        if kecamatan is None:
            return iter(range(n))
        return self.pattern(kecamatan).indices(0, n)

    def kecamatan_of(self, index: int) -> str:
        """Dotted code of a household's kecamatan."""
        return self._kec_codes[self.layout.kecamatan_of(index)]

    def desa_of(self, index: int) -> str:
        """Dotted code of a household's desa/kelurahan."""
        return self._village_codes[self.layout.village_of(index)]

    def household_id(self, index: int) -> str:
        """The id of the household with this index."""
        return make_household_id(self.layout.village_digits[self.layout.village_of(index)], index)

    # ------------------------------------------------------------------ ground truth

    def bad_kind(self, index: int) -> BadKind | None:
        """Ground truth: how household `index` is broken on the wire, or None if it is valid."""
        return self._h_bad.kind(index)

    def recipient_bad_kind(self, index: int, programme: str) -> RecipientBadKind | None:
        """Ground truth: how one recipient record of household `index` is broken, or None."""
        return self._h_rec_bad.kind(index, PROGRAMMES.index(programme))

    def programmes(self, index: int) -> tuple[str, ...]:
        """Programmes household `index` is enrolled in, in serving (id) order."""
        pkh = self._h_pkh.unit1(index) < PKH_SHARE
        bpnt = self._h_bpnt.unit1(index) < (_BPNT_GIVEN_PKH if pkh else _BPNT_GIVEN_NOT_PKH)
        if pkh and bpnt:
            return PROGRAMMES
        if pkh:
            return ("PKH",)
        if bpnt:
            return ("BPNT",)
        return ()

    def household_version(self, index: int, epoch: int | None = None) -> int:
        """Segment (epoch) of the household's current version at an epoch."""
        e = self._epoch if epoch is None else epoch
        return self.household_schedule.version(index, e)

    def recipient_version(self, index: int, epoch: int | None = None) -> int:
        """Segment (epoch) of the current version of the household's recipient records."""
        e = self._epoch if epoch is None else epoch
        return self.recipient_schedule.version(index, e)

    def base_enrolment_status(self, index: int, programme: str) -> str:
        """Status of an enrolment in its first version (before any re-issue)."""
        x = self._h_rec_base.unit(index, PROGRAMMES.index(programme))
        return "active" if x < 0.96 else "suspended" if x < 0.99 else "ended"

    def draft(self, index: int) -> Draft:
        """The household as first issued, before updates and corruption (a fresh copy)."""
        return self._draft(index)

    def household_update_epochs(self, index: int, upto: int | None = None) -> list[int]:
        """Epochs in which household `index` was re-issued, up to an epoch."""
        e = self._epoch if upto is None else upto
        return self.household_schedule.update_epochs(index, e)

    # ------------------------------------------------------------------- records

    def household(self, index: int, epoch: int | None = None) -> dict[str, Any]:
        """The wire record (possibly broken) of household `index` current at an epoch."""
        e = self._epoch if epoch is None else epoch
        if index >= self.timeline.households_at(e):
            raise IndexError(f"household {index} does not exist at epoch {e}")
        return self._household_record(index, self.household_version(index, e))

    def recipients(self, index: int, epoch: int | None = None) -> list[dict[str, Any]]:
        """The wire records (possibly broken) of household `index`'s enrolments at an epoch."""
        e = self._epoch if epoch is None else epoch
        if index >= self.timeline.households_at(e):
            raise IndexError(f"household {index} does not exist at epoch {e}")
        programmes = self.programmes(index)
        if not programmes:
            return []
        version = self.recipient_version(index, e)
        draft = self._draft(index)
        return [self._recipient_record(draft, p, version) for p in programmes]

    def _household_record(
        self, index: int, version: int, updates: list[int] | None = None
    ) -> dict[str, Any]:
        draft = self._draft(index)
        if updates is None:
            updates = self.household_update_epochs(index, version)
        for e in updates:
            self._apply_update(draft, e)
        record: dict[str, Any] = {
            "id": draft.id,
            "no_kk": draft.no_kk,
            "desa_code": draft.desa_code,
            "address": draft.address,
            "desil": draft.desil,
            "updated_at": self.timeline.format_ms(self.timeline.time_ms(version, index)),
            "members": draft.members,
        }
        kind = self.bad_kind(index)
        if kind is not None:
            corrupt_household(record, kind, self._h_bad_how.rng(index))
        return record

    def _recipient_record(self, draft: Draft, programme: str, version: int) -> dict[str, Any]:
        index = draft.index
        p = PROGRAMMES.index(programme)
        status = self.base_enrolment_status(index, programme)
        for e in self.recipient_schedule.update_epochs(index, version):
            # A re-issue is often only a touch (re-verification); sometimes the status moves.
            y = self._h_rec_update.unit(index, e, p)
            if status == "active" and y < 0.10:
                status = "suspended"
            elif status == "suspended" and y < 0.50:
                status = "active"
        record: dict[str, Any] = {
            "id": f"{draft.id}-{programme}",
            "programme": programme,
            "household_id": draft.id,
            "nik_pengurus": draft.members[draft.pengurus]["nik"],
            "no_kk": draft.no_kk,
            "desa_code": draft.desa_code,
            "period": self.config.period,
            "status": status,
            "updated_at": self.timeline.format_ms(self.timeline.time_ms(version, index)),
        }
        kind = self.recipient_bad_kind(index, programme)
        if kind is not None:
            corrupt_recipient(record, kind, self._h_bad_how.rng(index, p))
        return record

    def _draft(self, index: int) -> Draft:
        draft = self._base_draft(index)
        if self._plants:
            self._plant_duplicate(draft)
        return draft

    def _plant_duplicate(self, draft: Draft) -> None:
        """Copy a person of the kecamatan's previous household into this one's last slot."""
        u = self._h_dup.unit1(draft.index)
        if u >= self.duplicate_nik_rate + self.duplicate_deceased_rate:
            return
        last = len(draft.members) - 1
        # The head and the pengurus keep their identity, so enrolments are never touched.
        if last < 1 or last == draft.pengurus:
            return
        pattern = self.layout.patterns[self.layout.kecamatan_of(draft.index)]
        position = pattern.position(draft.index)
        if position == 0:
            return
        source_index = pattern.index_at(position - 1)
        source = self._base_draft(source_index)
        # Never the source's pengurus or its own last slot (which may itself be a copy).
        slots = [
            s
            for s in range(len(source.members))
            if s != source.pengurus and (s != len(source.members) - 1 or s == 0)
        ]
        if not slots:
            return
        person = source.members[slots[self._h_dup_source.hash1(draft.index) % len(slots)]]
        if person["nik"] == draft.no_kk:
            return
        copy = draft.members[last]
        copy["nik"], copy["name"] = person["nik"], person["name"]
        copy["sex"], copy["birth_date"] = person["sex"], person["birth_date"]
        copy["relationship"] = "lainnya"
        copy["status"] = "active" if u < self.duplicate_nik_rate else "deceased"
        draft.copied_slot, draft.copied_from = last, source_index

    def _base_draft(self, index: int) -> Draft:
        layout = self.layout
        village = layout.village_of(index)
        kec = layout.village_kecamatan[village]
        partner = layout.partner(kec)
        pos = layout.patterns[kec].position(index)
        hid = make_household_id(layout.village_digits[village], index)
        r = self._h_base.rng(index)
        # Plain random() arithmetic: randint/choice cost several times more per draw.
        rand = r.random
        year_start = self._year_start

        size = _SIZES[bisect.bisect(_SIZE_CUMULATIVE, rand())]
        married = size >= 2 and rand() < 0.85
        head_male = rand() < (0.97 if married else 0.55)
        head_age = 22 + int(rand() * 57)
        plan: list[tuple[str, bool, int]] = [("kepala", not head_male, head_age)]
        if married:
            gap = int(rand() * 12) - 8 if head_male else int(rand() * 12) - 3
            plan.append(("pasangan", head_male, max(18, head_age + gap)))
        while len(plan) < size:
            x = rand()
            if x < 0.85:
                eldest = max(0, min(head_age - 18, 35))
                plan.append(("anak", rand() < 0.5, int(rand() * (eldest + 1))))
            elif x < 0.94:
                plan.append(("lainnya", rand() < 0.6, min(98, head_age + 20 + int(rand() * 13))))
            else:
                plan.append(("lainnya", rand() < 0.5, int(rand() * 71)))

        members: list[dict[str, Any]] = []
        pengurus = 0
        classes = self._member_classes
        kec_code, partner_code = self._kec_codes[kec], self._kec_codes[partner]
        for slot, (relationship, female, age) in enumerate(plan):
            elsewhere = rand() < _OTHER_KECAMATAN_SHARE
            block, serial = divmod(pos * _MAX_MEMBERS + slot, _SERIALS)
            ordinal = year_start[age] + int(rand() * 365)
            # Move the date back (never forward, so it stays past) onto its residue class.
            ordinal -= (ordinal - 2 * block - elsewhere) % classes
            born = date.fromordinal(ordinal)
            sex: Literal["L", "P"] = "P" if female else "L"
            nik = make_nik(partner_code if elsewhere else kec_code, born, sex, serial + 1)
            x = rand()
            if relationship == "pasangan" and female:
                pengurus = slot
            members.append(
                {
                    "id": f"{hid}-{slot + 1}",
                    "nik": nik,
                    "name": person_name(r, female),
                    "sex": sex,
                    "birth_date": born.isoformat(),
                    "relationship": relationship,
                    "status": "deceased" if x < 0.01 else "moved" if x < 0.02 else "active",
                }
            )

        kk_elsewhere = rand() < _KK_ELSEWHERE_SHARE
        kk_block, kk_serial = divmod(pos, _SERIALS)
        first_year = max(2005, self._ref_year - head_age + 18)
        ordinal = date(first_year + int(rand() * (self._ref_year - first_year)), 1, 1).toordinal()
        ordinal += int(rand() * 365)
        ordinal -= (ordinal - 2 * kk_block - kk_elsewhere) % self._kk_classes
        kk_code = partner_code if kk_elsewhere else kec_code
        no_kk = make_no_kk(kk_code, date.fromordinal(ordinal), kk_serial + 1)
        niks = {m["nik"] for m in members}
        while no_kk in niks:
            # A KK equal to a member's NIK is a bad-record kind; keep good records clear of it.
            ordinal -= self._kk_classes
            no_kk = make_no_kk(kk_code, date.fromordinal(ordinal), kk_serial + 1)

        urban = layout.village_urban[village]
        if self.programmes(index):
            desil = 1 + bisect.bisect(_DESIL_POOR_CUMULATIVE, rand())
        else:
            desil = 1 + bisect.bisect(_DESIL_ALL_CUMULATIVE, rand())
        return Draft(
            index=index,
            id=hid,
            no_kk=no_kk,
            desa_code=self._village_codes[village],
            urban=urban,
            address=address(r, urban),
            desil=desil,
            members=members,
            pengurus=pengurus,
        )

    def _apply_update(self, draft: Draft, epoch: int) -> None:
        r = self._h_update.rng(draft.index, epoch)
        changed = False
        if r.random() < 0.6:
            draft.desil = _new_desil(draft.desil, r)
            changed = True
        if r.random() < 0.25:
            draft.address = address(r, draft.urban)
            changed = True
        x = r.random()
        active = [m for m in draft.members if m["status"] == "active"]
        if x < 0.25 and active:
            r.choice(active)["status"] = "deceased" if x < 0.15 else "moved"
            changed = True
        if not changed:
            draft.desil = _new_desil(draft.desil, r)

    # ------------------------------------------------------------------- serving

    def seek(self, since: datetime | None) -> Position:
        """The first position whose record's updated_at is >= since."""
        return seek_position(self.timeline, since)

    def scan(
        self,
        collection: str,
        start: Position,
        kecamatan: str | None = None,
        epoch: int | None = None,
    ) -> Iterator[tuple[Position, dict[str, Any]]]:
        """Current records at or after `start`, in (updated_at, id) order."""
        e = self._epoch if epoch is None else epoch
        pattern = None if kecamatan is None else self.pattern(kecamatan)
        tl = self.timeline
        recipients = collection == RECIPIENTS
        if not recipients and collection != HOUSEHOLDS:
            raise ValueError(f"unknown collection {collection!r}")
        schedule = self.recipient_schedule if recipients else self.household_schedule
        for segment in range(start.segment, e + 1):
            first = start.index if segment == start.segment else 0
            if segment > 0 and tl.share <= 0.0:
                # Without updates a later segment holds only the households created in it.
                first = max(first, tl.households_at(segment - 1))
            stop = tl.households_at(segment)
            candidates = range(first, stop) if pattern is None else pattern.indices(first, stop)
            for index in candidates:
                if recipients:
                    programmes = self.programmes(index)
                    if not programmes or schedule.version(index, e) != segment:
                        continue
                    draft = self._draft(index)
                    for programme in programmes:
                        pos = Position(segment, index, PROGRAMMES.index(programme))
                        if pos >= start:
                            yield pos, self._recipient_record(draft, programme, segment)
                else:
                    # One schedule walk gives both the current version and its updates.
                    updates = schedule.update_epochs(index, e)
                    current = updates[-1] if updates else tl.created_epoch(index)
                    if current == segment:
                        record = self._household_record(index, segment, updates)
                        yield Position(segment, index, 0), record

    def pages(self, collection: str) -> Pages:
        """The pages of one collection (households or recipients), at the current epoch."""
        return Pages(self.seek, partial(self.scan, collection))

    def truth(self, kecamatan: str | None = None) -> dict[str, Any]:
        """Exact counts of what the API serves now, for a kecamatan or the whole province."""
        e = self._epoch
        bad_households: Counter[str] = Counter()
        bad_recipients: Counter[str] = Counter()
        by_programme: Counter[str] = Counter()
        valid_by_programme: Counter[str] = Counter()
        status: Counter[str] = Counter()
        households = members = valid_members = recipients = valid_recipients = 0
        updated = created = 0
        for index in self.indices(kecamatan, e):
            households += 1
            version = self.household_version(index, e)
            if e > 0 and version == e:
                updated += 1
                if self.timeline.created_epoch(index) == e:
                    created += 1
            record = self._household_record(index, version)
            n = len(record["members"])
            members += n
            kind = self.bad_kind(index)
            if kind is None:
                valid_members += n
                status.update(m["status"] for m in record["members"])
            else:
                bad_households[kind.value] += 1
            for rec in self.recipients(index, e):
                recipients += 1
                by_programme[rec["programme"]] += 1
                rkind = self.recipient_bad_kind(index, rec["programme"])
                if rkind is None:
                    valid_recipients += 1
                    valid_by_programme[rec["programme"]] += 1
                else:
                    bad_recipients[rkind.value] += 1
        return {
            "epoch": e,
            "kecamatan": kecamatan,
            "households": households,
            "valid_households": households - bad_households.total(),
            "bad_households": bad_households.total(),
            "bad_households_by_kind": dict(sorted(bad_households.items())),
            "members": members,
            "valid_members": valid_members,
            "valid_members_by_status": dict(sorted(status.items())),
            "households_issued_this_epoch": updated,
            "households_created_this_epoch": created,
            "recipients": recipients,
            "valid_recipients": valid_recipients,
            "bad_recipients": bad_recipients.total(),
            "bad_recipients_by_kind": dict(sorted(bad_recipients.items())),
            "recipients_by_programme": dict(sorted(by_programme.items())),
            "valid_recipients_by_programme": dict(sorted(valid_by_programme.items())),
        }

    def epoch_window(self, epoch: int) -> tuple[datetime, datetime]:
        """[start, end) of the updated_at values of records issued in an epoch."""
        start, end = self.timeline.window_ms(epoch)
        return self.timeline.to_datetime(start), self.timeline.to_datetime(end)


def _new_desil(old: int, r: random.Random) -> int:
    step = r.choice((-2, -1, 1, 2))
    new = min(10, max(1, old + step))
    return new if new != old else min(10, max(1, old - step))
