"""Health zones in the store: the weeks' figures in, zones and red-zone handoffs out.

`apply_zones` loads the scope's surveillance figures of the last complete weeks and the
registry's people per desa, lets the pure rule of `models.zones` decide each desa's and
kecamatan's zone per condition and week, writes the zones that changed, and acts on the
red spells: one urgent handoff to the kecamatan (and a notice to its Forkopimcam) or to the
desa when an area enters red, and the kecamatan's handoff escalated when it stays red the
next week. Everything runs in the caller's transaction and is idempotent: handoff ids are
derived from the area's code and the spell, and a rerun on the same figures changes nothing.
"""

from __future__ import annotations

from collections import Counter, defaultdict
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import Connection, and_, bindparam, delete, func, select, tuple_

from integrations.store.audit import ChainWriter
from integrations.store.common import chunks, in_scope, stored_utc, to_utc
from integrations.store.handoffs import Change, apply_changes, create_findings
from integrations.store.tables import HANDOFF, HOUSEHOLD, table_of
from models import tables
from models.checks import Finding
from models.handoffs import (
    ESCALATABLE_STATES,
    HandoffKind,
    HandoffState,
    Office,
    OfficeKind,
    handoff_key,
)
from models.plain import AsDict
from models.scope import WHOLE_PROVINCE, RegionScope
from models.workdays import JAKARTA, WorkCalendar, local_date
from models.zones import (
    AreaWeek,
    Episode,
    Zone,
    ZoneThresholds,
    area_population,
    last_complete_week,
    red_episodes,
    weeks_back,
    zone_series,
)

__all__ = [
    "HEALTH_SENDER",
    "SURVEILLANCE",
    "ZONE",
    "ZoneCounts",
    "apply_zones",
    "red_entries",
    "zone_tally",
]

SURVEILLANCE = table_of(tables.SurveillanceReport)
ZONE = table_of(tables.HealthZone)

HEALTH_SENDER = "puskesmas"
"""Sender of the red-zone handoffs: the figures are the puskesmas' (the hub's rule read them)."""

_KEY = ("area_code", "condition", "week")
# Columns compared to decide whether a stored zone row changed (computed_at is not).
_VALUES = (
    "level",
    "kecamatan_code",
    "zone",
    "trend",
    "red_since",
    "new_cases",
    "previous_cases",
    "deaths",
    "population",
    "incidence_per_100k",
)


@dataclass(slots=True)
class ZoneCounts(AsDict):
    """What one zone step did: counts only (areas by code never leave the store here)."""

    last_week: str = ""
    weeks: int = 0
    zones_written: int = 0
    zones_unchanged: int = 0
    zones_removed: int = 0
    # Zones of the last complete week by colour (desa and kecamatan with figures).
    last_week_zones: Counter[str] = field(default_factory=Counter)
    # Desa and kecamatan that entered red in the last complete week.
    red_entries: Counter[str] = field(default_factory=Counter)
    handoffs_created: Counter[str] = field(default_factory=Counter)
    escalated: int = 0
    # Desa with figures but no registry people: no population figure, so no zone.
    without_population: int = 0


def _people(conn: Connection, kabupaten: set[str] | None) -> dict[str, int]:
    # The registry's people per desa of the scope's kabupaten/kota: the whole kabupaten is
    # read even for a kecamatan scope, since its share of the kabupaten's total needs them all.
    stmt = select(HOUSEHOLD.c.desa_code, func.sum(HOUSEHOLD.c.member_count)).group_by(
        HOUSEHOLD.c.desa_code
    )
    if kabupaten is not None:
        stmt = stmt.where(HOUSEHOLD.c.kabupaten_code.in_(sorted(kabupaten)))
    return {code: int(n or 0) for code, n in conn.execute(stmt)}


def _cases(
    conn: Connection, weeks: list[str], scope: RegionScope
) -> tuple[dict[tuple[str, str], dict[str, int]], dict[tuple[str, str, str], int]]:
    """New cases per (desa, condition) by week, and deaths per (desa, condition, week)."""
    cases: dict[tuple[str, str], dict[str, int]] = defaultdict(dict)
    deaths: dict[tuple[str, str, str], int] = {}
    s = SURVEILLANCE.c
    stmt = (
        select(s.desa_code, s.condition, s.week, func.sum(s.new_cases), func.sum(s.deaths))
        .where(s.week.in_(weeks), in_scope(scope, s.kecamatan_code))
        .group_by(s.desa_code, s.condition, s.week)
    )
    for desa, condition, week, n, dead in conn.execute(stmt):
        cases[desa, condition][week] = int(n or 0)
        deaths[desa, condition, week] = int(dead or 0)
    return cases, deaths


def _stored(conn: Connection, weeks: list[str], scope: RegionScope) -> dict[tuple[str, ...], Any]:
    rows = conn.execute(
        select(ZONE).where(ZONE.c.week.in_(weeks), in_scope(scope, ZONE.c.kecamatan_code))
    )
    return {(r.area_code, r.condition, r.week): r for r in rows}


def _area_series(
    cases: dict[tuple[str, str], dict[str, int]],
    population: dict[str, float],
    weeks: list[str],
    thresholds: ZoneThresholds,
    counts: ZoneCounts,
) -> list[list[AreaWeek]]:
    """Zone series of every desa and kecamatan with figures (the first week is the prior)."""
    kecamatan: dict[tuple[str, str], dict[str, int]] = defaultdict(lambda: defaultdict(int))
    out: list[list[AreaWeek]] = []
    prior, evaluated = weeks[0], weeks[1:]
    for (desa, condition), by_week in sorted(cases.items()):
        for week, n in by_week.items():
            kecamatan[desa[:8], condition][week] += n
        if desa not in population:
            counts.without_population += 1
            continue
        out.append(
            zone_series(
                desa,
                condition,
                evaluated,
                by_week,
                population[desa],
                thresholds,
                before=by_week.get(prior, 0),
            )
        )
    for (kec, condition), by_week in sorted(kecamatan.items()):
        if kec in population:
            out.append(
                zone_series(
                    kec,
                    condition,
                    evaluated,
                    by_week,
                    population[kec],
                    thresholds,
                    before=by_week.get(prior, 0),
                )
            )
    return out


def _level(code: str) -> str:
    return "desa" if code.count(".") == 3 else "kecamatan"


def _row(aw: AreaWeek, red_since: str, deaths: int, now: datetime) -> dict[str, Any]:
    return {
        "area_code": aw.area_code,
        "condition": aw.condition,
        "week": aw.week,
        "level": _level(aw.area_code),
        "kecamatan_code": aw.area_code[:8],
        "zone": aw.zone.value,
        "trend": aw.verdict.trend.value,
        "red_since": red_since,
        "new_cases": aw.new_cases,
        "previous_cases": aw.previous_cases,
        "deaths": deaths,
        # Rounded so that a rerun on the same figures compares equal to what it stored.
        "population": round(aw.population, 3),
        "incidence_per_100k": round(aw.verdict.incidence_per_100k, 3),
        "computed_at": now,
    }


def _evidence(aw: AreaWeek, deaths: int) -> dict[str, Any]:
    # Figures only: the area, the condition, the week and its numbers; never a person.
    return {
        "kecamatan_code": aw.area_code[:8],
        "area_code": aw.area_code,
        "condition": aw.condition,
        "week": aw.week,
        "zone": aw.zone.value,
        "new_cases": aw.new_cases,
        "previous_week_cases": aw.previous_cases,
        "deaths": deaths,
        "population": round(aw.population),
        "incidence_per_100k": round(aw.verdict.incidence_per_100k, 1),
        "previous_per_100k": round(aw.verdict.previous_per_100k, 1),
    }


def _findings(episode: Episode, first: AreaWeek, deaths: int) -> list[Finding]:
    area = episode.area_code
    evidence = _evidence(first, deaths)
    if area.count(".") == 3:
        desa = Office(kind=OfficeKind.DESA, code=area)
        return [Finding(HandoffKind.HEALTH_RED_ZONE, area, episode.period, (desa,), evidence)]
    office = Office(kind=OfficeKind.KECAMATAN, code=area)
    forum = Office(kind=OfficeKind.FORKOPIMCAM, code=area)
    return [
        Finding(HandoffKind.HEALTH_RED_ZONE, area, episode.period, (office,), evidence),
        Finding(HandoffKind.HEALTH_RED_ZONE_NOTICE, area, episode.period, (forum,), evidence),
    ]


def _write_zones(
    conn: Connection,
    wanted: dict[tuple[str, ...], dict[str, Any]],
    stored: dict[tuple[str, ...], Any],
    counts: ZoneCounts,
) -> None:
    new = [row for key, row in wanted.items() if key not in stored]
    changed = [
        row
        for key, row in wanted.items()
        if key in stored and any(getattr(stored[key], c) != row[c] for c in _VALUES)
    ]
    gone = [key for key in stored if key not in wanted]
    for part in chunks(new):
        conn.execute(ZONE.insert(), list(part))
    if changed:
        stmt = (
            ZONE.update()
            .where(
                and_(*(ZONE.c[k] == bindparam(f"k_{k}") for k in _KEY)),
            )
            .values({c: bindparam(f"v_{c}") for c in (*_VALUES, "computed_at")})
        )
        params = [
            {
                **{f"k_{k}": row[k] for k in _KEY},
                **{f"v_{c}": row[c] for c in (*_VALUES, "computed_at")},
            }
            for row in changed
        ]
        for part in chunks(params):
            conn.execute(stmt, list(part))
    for part in chunks(gone):
        conn.execute(
            delete(ZONE).where(tuple_(ZONE.c.area_code, ZONE.c.condition, ZONE.c.week).in_(part))
        )
    counts.zones_written += len(new) + len(changed)
    counts.zones_unchanged += len(wanted) - len(new) - len(changed)
    counts.zones_removed += len(gone)


def apply_zones(
    conn: Connection,
    *,
    now: datetime,
    thresholds: ZoneThresholds,
    weeks: int,
    scope: RegionScope = WHOLE_PROVINCE,
    calendar: WorkCalendar | None = None,
) -> ZoneCounts:
    """Zones of the scope's last `weeks` complete ISO weeks stored; red spells handed off."""
    at = to_utc(now)
    last = last_complete_week(local_date(at))
    window = weeks_back(last, weeks + 1)
    counts = ZoneCounts(last_week=last, weeks=weeks)
    kabupaten = None if scope.is_province else set(scope.partitions())
    population = area_population(_people(conn, kabupaten))
    cases, deaths = _cases(conn, window, scope)

    for (desa, condition, week), n in list(deaths.items()):
        key = (desa[:8], condition, week)
        deaths[key] = deaths.get(key, 0) + n

    def kec_deaths(code: str, condition: str, week: str) -> int:
        return deaths.get((code, condition, week), 0)

    # A week no puskesmas of the scope has reported yet is not evaluated: missing figures
    # are not zero cases (a late week would otherwise turn every red area green).
    reported = {w for by_week in cases.values() for w in by_week if w != window[0]}
    if reported:
        last = max(reported)
        window = window[: window.index(last) + 1]
        counts.last_week = last
    counts.weeks = len(window) - 1
    series = _area_series(cases, population, window, thresholds, counts)
    # Spells already red in the week before the window began there (or earlier).
    carried = {
        (r.area_code, r.condition): r.red_since
        for r in _stored(conn, [window[0]], scope).values()
        if r.zone == Zone.RED.value and r.red_since
    }
    wanted: dict[tuple[str, ...], dict[str, Any]] = {}
    findings: list[Finding] = []
    stays: list[AreaWeek] = []
    for weeks_of_area in series:
        if not weeks_of_area:
            continue
        first = weeks_of_area[0]
        start = carried.get((first.area_code, first.condition))
        if start is not None and first.week != window[1]:
            start = None
        since: dict[str, str] = {}
        for episode in red_episodes(weeks_of_area, carried_start=start):
            for aw in episode.weeks:
                since[aw.week] = episode.start
            entered = episode.entered
            if entered is not None and entered.week == last:
                counts.red_entries[_level(entered.area_code)] += 1
            evidence_week = entered or episode.weeks[0]
            findings += _findings(
                episode,
                evidence_week,
                kec_deaths(evidence_week.area_code, evidence_week.condition, evidence_week.week),
            )
            # Still red this week, a week or more after entering: the spell goes on.
            stayed = episode.stayed
            if stayed is not None and stayed.week == last and _level(episode.area_code) != "desa":
                stays.append(stayed)
        for aw in weeks_of_area:
            d = kec_deaths(aw.area_code, aw.condition, aw.week)
            wanted[aw.area_code, aw.condition, aw.week] = _row(aw, since.get(aw.week, ""), d, at)
            if aw.week == last:
                counts.last_week_zones[aw.zone.value] += 1
    _write_zones(conn, wanted, _stored(conn, window[1:], scope), counts)

    chain = ChainWriter(conn)
    created = create_findings(
        conn, chain, findings, sender=HEALTH_SENDER, now=at, calendar=calendar
    )
    counts.handoffs_created.update(created.by_kind)
    counts.escalated = _escalate(conn, chain, _stay_ids(stays, wanted), now=at)
    chain.flush()
    return counts


def week_after(week: str) -> date:
    """The Monday after an ISO week like 2026-W45 (the day its figures are complete)."""
    year, _, number = week.partition("-W")
    return date.fromisocalendar(int(year), int(number), 1) + timedelta(days=7)


def _stay_ids(
    stays: list[AreaWeek], zones: dict[tuple[str, ...], dict[str, Any]]
) -> dict[str, AreaWeek]:
    """The urgent handoff id of each kecamatan spell still red, with its latest week."""
    ids: dict[str, AreaWeek] = {}
    for aw in stays:
        start = zones[aw.area_code, aw.condition, aw.week]["red_since"]
        office = Office(kind=OfficeKind.KECAMATAN, code=aw.area_code)
        period = f"{aw.condition}:{start}"
        ids[handoff_key(HandoffKind.HEALTH_RED_ZONE, aw.area_code, period, office)] = aw
    return ids


def _escalate(
    conn: Connection, chain: ChainWriter, ids: dict[str, AreaWeek], *, now: datetime
) -> int:
    """Escalate the urgent handoff of each kecamatan still red a week after entering red.

    Escalated only when the kecamatan held the handoff while that red week went on (created
    before the week ended): a spell first seen in its second week goes to the kecamatan
    first, and is escalated if it is still red the week after.
    """
    rows: dict[str, Any] = {}
    for part in chunks(sorted(ids)):
        stmt = select(HANDOFF.c.id, HANDOFF.c.state, HANDOFF.c.office, HANDOFF.c.created_at)
        rows.update({r.id: r for r in conn.execute(stmt.where(HANDOFF.c.id.in_(list(part))))})
    changes: list[Change] = []
    for hid, aw in sorted(ids.items()):
        row = rows.get(hid)
        if row is None or HandoffState(row.state) not in ESCALATABLE_STATES:
            # Already escalated (a third red week), or settled by the office: nothing to add.
            continue
        week_over = datetime.combine(week_after(aw.week), time(0), ZoneInfo(JAKARTA))
        created = stored_utc(row.created_at)
        if created is None or created >= week_over.astimezone(UTC):
            continue
        target = Office.parse(row.office).escalation_target
        if target is None:
            continue
        changes.append(
            Change(
                hid,
                row.state,
                HandoffState.ESCALATED,
                HEALTH_SENDER,
                (
                    f"still red in {aw.week}: {aw.new_cases} new {aw.condition} cases, "
                    f"{aw.verdict.incidence_per_100k:.1f} per 100,000: "
                    f"{row.office} -> {target.key}"
                ),
                now,
                office=target.key,
            )
        )
    apply_changes(conn, chain, changes)
    return len(changes)


def zone_tally(conn: Connection, week: str, scope: RegionScope = WHOLE_PROVINCE) -> dict[str, int]:
    """Stored zones of one week by colour (desa and kecamatan together)."""
    stmt = (
        select(ZONE.c.zone, func.count())
        .where(ZONE.c.week == week, in_scope(scope, ZONE.c.kecamatan_code))
        .group_by(ZONE.c.zone)
    )
    return {zone: int(n) for zone, n in conn.execute(stmt)}


def red_entries(
    conn: Connection, scope: RegionScope = WHOLE_PROVINCE
) -> set[tuple[str, str, str, str]]:
    """Stored red-zone entries of the scope: (level, area code, condition, first red week)."""
    stmt = select(ZONE.c.level, ZONE.c.area_code, ZONE.c.condition, ZONE.c.week).where(
        ZONE.c.zone == Zone.RED.value,
        ZONE.c.red_since == ZONE.c.week,
        in_scope(scope, ZONE.c.kecamatan_code),
    )
    return {(r.level, r.area_code, r.condition, r.week) for r in conn.execute(stmt)}
