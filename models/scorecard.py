"""Kecamatan scorecards: how each office and kabupaten/kota handles its handoffs (pure).

Definitions (`as_of` is the moment a scorecard describes; anything stamped later is ignored,
so a scorecard for a past day comes out the same whenever it is computed):

- A handoff counts for a kecamatan when it went to the kecamatan office or to one of its
  desa (origin office kind kecamatan or desa, with the handoff's kecamatan code). Handoffs
  to agencies (pkh, registry) are the programmes' work, not the office's: they are counted
  in `Scorecard.other_offices` only.
- Time to acknowledge: working days (`models.workdays`) from the local date of delivery
  (of creation when never delivered) to the local date of the first answer: the
  acknowledgement, or the closing when the office resolved or rejected without one. An
  answer on the day of delivery is 0. The median is taken over the answered handoffs.
- Resolved within the deadline: closed (resolved or rejected, i.e. the office decided) no
  later than the due date; a due date that fell on a day off moves to the next working
  day, as for escalation. The share is over the handoffs that can be judged: every closed
  one and every open one already past its due date (open ones still within their deadline
  are not judged yet).
- Backlog: handoffs not closed; overdue: the part of it past its due date; oldest backlog:
  working days from the local creation date of the oldest open handoff to `as_of`.
- Escalations: handoffs escalated to the kabupaten/kota.
- Quarantine rate: records quarantined / records fetched in the kecamatan's sync
  partitions, over every source.
- Overlaps found: cross-programme findings with a handoff to the kecamatan or its desa.
- Health alerts: the red-zone handoffs of the kecamatan (`HEALTH_KINDS`): to the kecamatan
  office, to its desa, and the notices to its Forkopimcam (the escalation copies too).
  Response time to health alerts: working days from the local date of creation (the alert
  is urgent from the moment it is raised, delivered or not) to the local date of the first
  answer (acknowledgement, or closing without one), as the median over the answered
  alerts. The Forkopimcam's notices count only here: the forum is not the kecamatan office,
  so they stay out of its other columns (the totals count them with the other offices).
  The column does not enter the ranking.

Ranking (rank 1 = worst), applied to kecamatan and, separately, to kabupaten/kota:
1. lowest share resolved within the deadline (nothing to judge yet ranks after any share);
2. then most overdue open handoffs;
3. then the oldest backlog (in working days);
4. then the slowest median time to acknowledge;
5. then most escalations;
6. then the region code, so the order is total and deterministic.
A region with no handoff at all is listed after the ranked ones and gets no rank.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field, replace
from datetime import date, datetime
from typing import Literal

from models.handoffs import FINAL_STATES, HandoffKind
from models.wilayah import get_region_registry
from models.workdays import WorkCalendar, default_calendar, is_overdue, local_date

__all__ = [
    "CALENDAR_RULE",
    "HEADER",
    "HEALTH_KINDS",
    "OVERLAP_KINDS",
    "RANKING_RULE",
    "SCORE_COLUMNS",
    "Column",
    "HandoffRow",
    "Level",
    "ScoreRow",
    "Scorecard",
    "SourceCounts",
    "compute_scorecard",
    "median",
]

Level = Literal["kecamatan", "kabupaten", "province"]
"""Region level of a scorecard row."""

PROVINCE_CODE = "35"

OVERLAP_KINDS: frozenset[str] = frozenset(
    k.value
    for k in (
        HandoffKind.BLT_PKH_OVERLAP,
        HandoffKind.NIK_MULTIPLE_HOUSEHOLDS,
        HandoffKind.DECEASED_RECEIVING_AID,
        HandoffKind.MOVED_RECEIVING_AID,
        HandoffKind.FARMER_MULTIPLE_GROUPS,
        HandoffKind.FARMER_OVER_LAND_CAP,
    )
)
"""Handoff kinds that report a cross-programme finding (the "overlaps found" column)."""
HEALTH_KINDS: frozenset[str] = frozenset(
    k.value for k in (HandoffKind.HEALTH_RED_ZONE, HandoffKind.HEALTH_RED_ZONE_NOTICE)
)
"""Handoff kinds that are health alerts (the "response time to health alerts" column)."""
_HEALTH_OFFICE_KINDS = ("kecamatan:", "desa:", "forkopimcam:")
_KECAMATAN_CODE = re.compile(r"[0-9]{2}\.[0-9]{2}\.[0-9]{2}")
_OFFICE_KINDS = ("kecamatan:", "desa:")
_CLOSED = frozenset(s.value for s in FINAL_STATES)


@dataclass(frozen=True, slots=True)
class HandoffRow:
    """The columns of a stored handoff the scorecard reads (timestamps timezone-aware)."""

    kecamatan_code: str
    kabupaten_code: str
    origin_office: str
    office: str
    state: str
    created_at: datetime
    due_date: date
    delivered_at: datetime | None = None
    acknowledged_at: datetime | None = None
    closed_at: datetime | None = None
    escalated_at: datetime | None = None
    kind: str = ""


@dataclass(frozen=True, slots=True)
class SourceCounts:
    """Records fetched and quarantined in one kecamatan's sync partitions."""

    fetched: int = 0
    quarantined: int = 0


@dataclass(frozen=True, slots=True)
class ScoreRow:
    """One line of a scorecard: a kecamatan, a kabupaten/kota or the whole province."""

    level: Level
    code: str
    name: str
    kabupaten_code: str
    handoffs: int
    acknowledged: int
    median_ack_workdays: float | None
    judged: int
    resolved_in_time: int
    resolved_in_time_share: float | None
    backlog: int
    overdue: int
    oldest_backlog_workdays: int | None
    escalations: int
    fetched: int
    quarantined: int
    quarantine_rate: float | None
    overlaps_found: int
    kabupaten_name: str = ""
    # 1 = worst of its level; None for the province line and lines without handoffs.
    rank: int | None = None
    health_alerts: int = 0
    median_health_response_workdays: float | None = None


@dataclass(frozen=True, slots=True)
class Column:
    """One column of every scorecard table: its header (Bahasa Indonesia), gloss and meaning."""

    attr: str
    header: str
    english: str
    definition: str
    # Shares are shown as percentages with one decimal, medians with one decimal.
    percent: bool = False
    decimals: int | None = None


SCORE_COLUMNS: tuple[Column, ...] = (
    Column("code", "kode", "code", "Kode wilayah Kemendagri."),
    Column("name", "nama", "name", "Nama kecamatan, kabupaten/kota atau provinsi."),
    Column("kabupaten_code", "kode kabupaten/kota", "kabupaten/kota code", "Kode induk."),
    Column("kabupaten_name", "kabupaten/kota", "kabupaten/kota", "Nama kabupaten/kota induk."),
    Column(
        "rank",
        "peringkat (1 = terburuk)",
        "rank (1 = worst)",
        "Urutan dari yang terburuk (lihat aturan peringkat); kosong bila belum ada kasus.",
    ),
    Column(
        "handoffs",
        "kasus",
        "handoffs",
        "Kasus yang diserahkan ke kantor kecamatan atau desa-desanya sampai tanggal data.",
    ),
    Column(
        "acknowledged",
        "ditanggapi",
        "acknowledged",
        "Kasus yang sudah diakui, diselesaikan atau ditolak oleh kantor.",
    ),
    Column(
        "median_ack_workdays",
        "median hari kerja sampai ditanggapi",
        "median working days to acknowledge",
        "Hari kerja dari tanggal kasus dikirim sampai tanggapan pertama (median; 0 = hari "
        "yang sama).",
        decimals=1,
    ),
    Column(
        "judged",
        "jatuh tempo atau selesai",
        "due or closed",
        "Kasus yang bisa dinilai: semua yang selesai dan yang terbuka melewati tenggat.",
    ),
    Column(
        "resolved_in_time",
        "selesai tepat waktu",
        "resolved within deadline",
        "Kasus yang diputus (diselesaikan atau ditolak) paling lambat pada tanggal tenggat.",
    ),
    Column(
        "resolved_in_time_share",
        "% selesai tepat waktu",
        "% resolved within deadline",
        "Selesai tepat waktu dibagi kasus yang bisa dinilai, dalam persen.",
        percent=True,
    ),
    Column("backlog", "belum selesai", "backlog", "Kasus yang belum diputus."),
    Column(
        "overdue",
        "lewat tenggat",
        "overdue",
        "Kasus belum selesai yang sudah melewati tanggal tenggat.",
    ),
    Column(
        "oldest_backlog_workdays",
        "umur kasus terbuka tertua (hari kerja)",
        "oldest backlog (working days)",
        "Hari kerja sejak kasus terbuka tertua dibuat.",
    ),
    Column(
        "escalations",
        "dieskalasi",
        "escalations",
        "Kasus yang dieskalasi ke kabupaten/kota karena melewati tenggat.",
    ),
    Column(
        "fetched",
        "rekaman diambil",
        "records fetched",
        "Rekaman yang diambil dari instansi untuk kecamatan ini (setiap pengambilan dihitung).",
    ),
    Column(
        "quarantined",
        "rekaman dikarantina",
        "records quarantined",
        "Rekaman yang ditolak validasi dan disimpan di karantina dengan alasannya.",
    ),
    Column(
        "quarantine_rate",
        "% dikarantina",
        "% quarantined",
        "Rekaman dikarantina dibagi rekaman diambil, dalam persen.",
        percent=True,
    ),
    Column(
        "overlaps_found",
        "tumpang tindih ditemukan",
        "overlaps found",
        "Temuan lintas program (mis. penerima BLT-DD yang juga menerima PKH) yang diserahkan "
        "ke kecamatan atau desanya.",
    ),
    Column(
        "health_alerts",
        "peringatan kesehatan",
        "health alerts",
        "Peringatan zona merah dari data puskesmas: kasus ke kantor kecamatan dan desanya "
        "serta pemberitahuan ke Forkopimcam kecamatan (termasuk tembusan eskalasi).",
    ),
    Column(
        "median_health_response_workdays",
        "median hari kerja tanggap peringatan kesehatan",
        "median working days to respond to health alerts",
        "Hari kerja dari tanggal peringatan kesehatan dibuat sampai tanggapan pertama "
        "(diakui, atau diselesaikan/ditolak tanpa diakui), median atas peringatan yang sudah "
        "ditanggapi; 0 = hari yang sama. Tidak dipakai untuk peringkat.",
        decimals=1,
    ),
)
"""The columns of the scorecard's tables, artifacts and files, in order."""

HEADER: dict[str, str] = {c.attr: c.header for c in SCORE_COLUMNS}
"""ScoreRow attribute -> its column header."""

RANKING_RULE = (
    "Peringkat 1 = terburuk. Urutan: persentase selesai tepat waktu terendah (belum ada yang "
    "bisa dinilai berada setelah semua persentase), lalu paling banyak lewat tenggat, lalu "
    "kasus terbuka tertua, lalu median tanggapan paling lambat, lalu paling banyak "
    "eskalasi, lalu kode wilayah. Wilayah tanpa kasus ditampilkan tetapi tidak diberi "
    "peringkat."
)
"""The ranking rule as the workbook states it (the module docstring's, in Bahasa Indonesia)."""

CALENDAR_RULE = (
    "Hari kerja: Senin-Jumat, tidak termasuk hari libur nasional dan cuti bersama "
    "(kalender yang sama dengan tenggat kasus). Waktu dalam WIB (Asia/Jakarta)."
)
"""Which days count as working days, as the workbook states it."""


@dataclass(frozen=True, slots=True)
class Scorecard:
    """Scorecard lines per kecamatan and per kabupaten/kota (worst first) and the province.

    Lines with a rank come in rank order; lines without handoffs follow, unranked, by code.
    """

    as_of: datetime
    kecamatan: tuple[ScoreRow, ...]
    kabupaten: tuple[ScoreRow, ...]
    province: ScoreRow
    # Handoffs to agencies or without a kecamatan: not any office's line.
    other_offices: int = 0

    def worst(self, n: int = 5, level: Level = "kecamatan") -> list[ScoreRow]:
        """The n worst lines of a level, worst first."""
        rows = self.kecamatan if level == "kecamatan" else self.kabupaten
        return [r for r in rows if r.rank is not None][:n]

    @property
    def all_handoffs(self) -> int:
        """Every handoff the scorecard read: the offices' lines plus those to other offices."""
        return self.province.handoffs + self.other_offices


def median(counts: Mapping[int, int]) -> float | None:
    """Median of values given as value -> occurrences; None when there are none."""
    total = sum(counts.values())
    if total <= 0:
        return None
    # 0-based positions of the middle value(s): one for an odd count, two for an even one.
    lo, hi = (total - 1) // 2, total // 2
    seen = 0
    low: int | None = None
    for value in sorted(counts):
        seen += counts[value]
        if low is None and seen > lo:
            low = value
        if seen > hi:
            assert low is not None  # lo <= hi, so the low middle was passed first
            return (low + value) / 2
    raise AssertionError("unreachable: the counts add up to total")


@dataclass(slots=True)
class _Tally:
    """Running counts of one region; histograms rather than lists keep memory flat."""

    handoffs: int = 0
    ack_days: Counter[int] = field(default_factory=Counter)
    judged: int = 0
    in_time: int = 0
    backlog: int = 0
    overdue: int = 0
    oldest: date | None = None
    escalations: int = 0
    fetched: int = 0
    quarantined: int = 0
    overlaps: int = 0
    health_alerts: int = 0
    health_days: Counter[int] = field(default_factory=Counter)

    def merge(self, other: _Tally) -> None:
        self.handoffs += other.handoffs
        self.ack_days.update(other.ack_days)
        self.judged += other.judged
        self.in_time += other.in_time
        self.backlog += other.backlog
        self.overdue += other.overdue
        if other.oldest is not None and (self.oldest is None or other.oldest < self.oldest):
            self.oldest = other.oldest
        self.escalations += other.escalations
        self.fetched += other.fetched
        self.quarantined += other.quarantined
        self.overlaps += other.overlaps
        self.health_alerts += other.health_alerts
        self.health_days.update(other.health_days)


def _seen(moment: datetime | None, as_of: datetime) -> datetime | None:
    return moment if moment is not None and moment <= as_of else None


def _first_answer(row: HandoffRow, as_of: datetime) -> datetime | None:
    """The office's first answer seen by as_of: acknowledgement, or closing without one."""
    acknowledged = _seen(row.acknowledged_at, as_of)
    closed = _seen(row.closed_at, as_of) if row.state in _CLOSED else None
    answers = [t for t in (acknowledged, closed) if t is not None]
    return min(answers) if answers else None


def _add_health_alert(tally: _Tally, row: HandoffRow, as_of: datetime, cal: WorkCalendar) -> None:
    tally.health_alerts += 1
    answer = _first_answer(row, as_of)
    if answer is not None:
        days = max(0, cal.workdays_between(local_date(row.created_at), local_date(answer)))
        tally.health_days[days] += 1


def _add_handoff(tally: _Tally, row: HandoffRow, as_of: datetime, cal: WorkCalendar) -> None:
    tally.handoffs += 1
    delivered = _seen(row.delivered_at, as_of)
    acknowledged = _seen(row.acknowledged_at, as_of)
    closed = _seen(row.closed_at, as_of) if row.state in _CLOSED else None
    answers = [t for t in (acknowledged, closed) if t is not None]
    if answers:
        start = local_date(delivered or row.created_at)
        # Clock skew between systems must not produce a negative duration.
        days = max(0, cal.workdays_between(start, local_date(min(answers))))
        tally.ack_days[days] += 1
    if closed is not None:
        tally.judged += 1
        if not is_overdue(row.due_date, closed, cal):
            tally.in_time += 1
    else:
        tally.backlog += 1
        created = local_date(row.created_at)
        if tally.oldest is None or created < tally.oldest:
            tally.oldest = created
        if is_overdue(row.due_date, as_of, cal):
            tally.judged += 1
            tally.overdue += 1
    if _seen(row.escalated_at, as_of) is not None:
        tally.escalations += 1


def _line(
    level: Level, code: str, kabupaten: str, t: _Tally, today: date, cal: WorkCalendar
) -> ScoreRow:
    regions = get_region_registry()
    region = regions.get(code)
    parent = regions.get(kabupaten) if kabupaten else None
    return ScoreRow(
        level=level,
        code=code,
        name=region.name if region is not None else "",
        kabupaten_code=kabupaten,
        kabupaten_name=parent.name if parent is not None else "",
        handoffs=t.handoffs,
        acknowledged=sum(t.ack_days.values()),
        median_ack_workdays=median(t.ack_days),
        judged=t.judged,
        resolved_in_time=t.in_time,
        resolved_in_time_share=t.in_time / t.judged if t.judged else None,
        backlog=t.backlog,
        overdue=t.overdue,
        oldest_backlog_workdays=(
            max(0, cal.workdays_between(t.oldest, today)) if t.oldest is not None else None
        ),
        escalations=t.escalations,
        fetched=t.fetched,
        quarantined=t.quarantined,
        quarantine_rate=t.quarantined / t.fetched if t.fetched else None,
        overlaps_found=t.overlaps,
        health_alerts=t.health_alerts,
        median_health_response_workdays=median(t.health_days),
    )


def _badness(row: ScoreRow) -> tuple[float, int, int, float, int, str]:
    """Sort key putting the worst line first (see the module docstring)."""
    share = row.resolved_in_time_share
    return (
        share if share is not None else 2.0,
        -row.overdue,
        -(row.oldest_backlog_workdays if row.oldest_backlog_workdays is not None else -1),
        -(row.median_ack_workdays if row.median_ack_workdays is not None else -1.0),
        -row.escalations,
        row.code,
    )


def _ranked(rows: Iterable[ScoreRow]) -> tuple[ScoreRow, ...]:
    """Lines with handoffs ranked worst first, then the lines without any, by code."""
    lines = list(rows)
    # A region with nothing handed to it has no record to judge: ranking it 202nd of 666
    # would read as a verdict.
    scored = sorted((r for r in lines if r.handoffs), key=_badness)
    idle = sorted((r for r in lines if not r.handoffs), key=lambda r: r.code)
    return (*(replace(r, rank=i) for i, r in enumerate(scored, start=1)), *idle)


def compute_scorecard(
    handoffs: Iterable[HandoffRow],
    *,
    as_of: datetime,
    sources: Mapping[str, SourceCounts] | None = None,
    findings: Mapping[str, int] | None = None,
    kecamatan_codes: Iterable[str] = (),
    calendar: WorkCalendar | None = None,
) -> Scorecard:
    """Scorecard lines per kecamatan, kabupaten/kota and province from handoffs and counts.

    `handoffs` is consumed once (a stream is fine); `sources` and `findings` are keyed by
    kecamatan code (other keys, such as a partition "all", are ignored); `kecamatan_codes`
    adds lines for offices with nothing to show yet.
    """
    if as_of.tzinfo is None or as_of.utcoffset() is None:
        raise ValueError("as_of must be timezone-aware")
    cal = calendar if calendar is not None else default_calendar()
    today = local_date(as_of)
    tallies: dict[str, _Tally] = {}

    def tally(code: str) -> _Tally:
        got = tallies.get(code)
        if got is None:
            got = tallies[code] = _Tally()
        return got

    for code in kecamatan_codes:
        if _KECAMATAN_CODE.fullmatch(code):
            tally(code)
    other = 0
    for row in handoffs:
        if row.created_at > as_of:
            continue
        kec = row.kecamatan_code
        if (
            row.kind in HEALTH_KINDS
            and row.origin_office.startswith(_HEALTH_OFFICE_KINDS)
            and _KECAMATAN_CODE.fullmatch(kec)
        ):
            _add_health_alert(tally(kec), row, as_of, cal)
        if not row.origin_office.startswith(_OFFICE_KINDS) or not _KECAMATAN_CODE.fullmatch(kec):
            other += 1
            continue
        _add_handoff(tally(kec), row, as_of, cal)
    for code, counts in (sources or {}).items():
        if _KECAMATAN_CODE.fullmatch(code):
            t = tally(code)
            t.fetched += counts.fetched
            t.quarantined += counts.quarantined
    for code, n in (findings or {}).items():
        if _KECAMATAN_CODE.fullmatch(code):
            tally(code).overlaps += n

    kab_tallies: dict[str, _Tally] = {}
    province = _Tally()
    for code, t in tallies.items():
        kab_tallies.setdefault(code[:5], _Tally()).merge(t)
        province.merge(t)
    kecamatan = _ranked(
        _line("kecamatan", code, code[:5], t, today, cal) for code, t in tallies.items()
    )
    kabupaten = _ranked(
        _line("kabupaten", code, code, t, today, cal) for code, t in kab_tallies.items()
    )
    return Scorecard(
        as_of=as_of,
        kecamatan=kecamatan,
        kabupaten=kabupaten,
        province=_line("province", PROVINCE_CODE, "", province, today, cal),
        other_offices=other,
    )
