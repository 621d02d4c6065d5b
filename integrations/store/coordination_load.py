"""Store reads for the cross-programme checks and the scorecard: SQL narrows, pure code decides.

Each check loader runs one set-based query that finds the candidate subjects (people or
groups that could possibly match), then loads only those subjects' rows, whole, into the
pure check inputs of `models.checks`. The SQL conditions are necessary conditions of the
pure checks, never sufficient ones: the pure functions stay the single definition of a
match, and running them on the candidates gives exactly what they give on every row.

Every query is set-based and reads about linearly more rows from a larger store: no probe
repeated per candidate reads more than one person's, household's or farmer's rows
(`tests/integrations/store/test_check_scaling.py` measures it at n and 4n).

A scope (some kabupaten/kota or kecamatan) picks the subjects with a matching row in a
region of the scope, i.e. the findings with a receiver there; their rows elsewhere are
still loaded, so a finding's evidence is the same whatever the scope.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any, cast

from sqlalchemy import (
    ColumnElement,
    Connection,
    Select,
    and_,
    case,
    exists,
    func,
    or_,
    select,
)

from integrations.store.common import chunks, handoff_in_scope, in_scope, stored_utc, to_utc
from integrations.store.tables import (
    BLT,
    CURSOR,
    ENROLMENT,
    FARM,
    HANDOFF,
    HOUSEHOLD,
    MEMBER,
    QUARANTINE,
    REPORT,
)
from models.checks import (
    DEFAULT_LAND_CAP_HA,
    BltRecipient,
    Enrolment,
    FacilitatorReport,
    FarmerNeed,
    Person,
)
from models.contracts.pkh import ReportKind
from models.contracts.registry import EnrolmentStatus, MemberStatus, Programme
from models.scope import WHOLE_PROVINCE, RegionScope
from models.scorecard import OVERLAP_KINDS, HandoffRow, SourceCounts

__all__ = [
    "BLT_OFF_LIST",
    "BltOverlapInputs",
    "DeceasedOrMovedInputs",
    "blt_overlap_subjects",
    "deceased_or_moved_subjects",
    "iter_scorecard_handoffs",
    "load_blt_overlap_inputs",
    "load_deceased_or_moved_inputs",
    "load_farmer_needs",
    "load_household_update_reports",
    "load_multiple_household_people",
    "load_overlap_counts",
    "load_source_counts",
    "multiple_household_subjects",
]


BLT_OFF_LIST = "removed"
"""BLT-DD list status of a KPM taken off the list: no longer a recipient, never checked."""

# SQL sums floats without the pure check's rounding: widen the cap so that a sum rounding
# to just over it is always a candidate (the pure check then decides).
_AREA_SLACK = 1e-6
_STREAM_ROWS = 5000


def _scope(scope: RegionScope | None) -> RegionScope:
    return scope if scope is not None else WHOLE_PROVINCE


def _rows(conn: Connection, stmt: Select[Any]) -> list[Any]:
    return list(conn.execute(stmt).all())


def _tokens(conn: Connection, stmt: Select[Any]) -> list[str]:
    """The distinct values of a one-column query, sorted: a candidate list, read once."""
    return sorted({value for (value,) in conn.execute(stmt)})


def _rows_of(
    conn: Connection, stmt: Select[Any], column: ColumnElement[str], values: Sequence[str]
) -> list[Any]:
    """The rows of `stmt` whose `column` is one of `values`, by their `id`, read in chunks.

    The candidates are found once and their rows read by key: a candidate subquery in each
    of a check's statements would be evaluated again for each, a scan of the province per
    statement.
    """
    out: list[Any] = []
    for part in chunks(values):
        out.extend(conn.execute(stmt.where(column.in_(list(part)))).all())
    out.sort(key=_by_id)
    return out


def _by_id(row: Any) -> str:
    return str(row.id)


def _two_or_more(column: ColumnElement[str]) -> ColumnElement[bool]:
    """Aggregate condition: a group holds two or more values of a NOT NULL column."""
    # The same as count(DISTINCT column) > 1 without a per-group set of seen values:
    # SQLite and PostgreSQL then aggregate in one streaming pass (PostgreSQL may also hash).
    return func.min(column) != func.max(column)


# --- BLT-DD recipients also in PKH/BPNT -------------------------------------------------------


@dataclass(frozen=True, slots=True)
class BltOverlapInputs:
    """Candidate BLT-DD rows and the active enrolments that may match them."""

    blt: list[BltRecipient]
    enrolments: list[Enrolment]


def _listed(period: str) -> ColumnElement[bool]:
    return and_(BLT.c.period == period, BLT.c.status != BLT_OFF_LIST, BLT.c.nik_token != "")


def _active(period: str) -> ColumnElement[bool]:
    return and_(ENROLMENT.c.period == period, ENROLMENT.c.status == "active")


_ENR_COLUMNS = (
    ENROLMENT.c.nik_token,
    ENROLMENT.c.kk_token,
    ENROLMENT.c.programme,
    ENROLMENT.c.period,
    ENROLMENT.c.status,
    ENROLMENT.c.desa_code,
    ENROLMENT.c.household_id,
)


def _enrolment(row: Any) -> Enrolment:
    return Enrolment(
        nik_token=row.nik_token,
        kk_token=row.kk_token,
        programme=cast(Programme, row.programme),
        period=row.period,
        status=cast(EnrolmentStatus, row.status),
        desa_code=row.desa_code,
        household_id=row.household_id,
    )


def blt_overlap_subjects(
    conn: Connection, period: str, scope: RegionScope | None = None
) -> list[str]:
    """NIK tokens of the period's BLT-DD rows (in scope) whose NIK or No. KK is enrolled, sorted."""
    sc = _scope(scope)
    # Empty tokens never match in the pure check; equality with "" is excluded the same way.
    enrolled_nik = exists().where(
        _active(period), ENROLMENT.c.nik_token == BLT.c.nik_token, ENROLMENT.c.nik_token != ""
    )
    enrolled_kk = exists().where(
        _active(period), ENROLMENT.c.kk_token == BLT.c.kk_token, ENROLMENT.c.kk_token != ""
    )
    # A row without a No. KK token skips the No. KK probe: the probe for "" would read every
    # enrolment without one, once per such row.
    return _tokens(
        conn,
        select(BLT.c.nik_token).where(
            _listed(period),
            or_(enrolled_nik, and_(BLT.c.kk_token != "", enrolled_kk)),
            in_scope(sc, BLT.c.kecamatan_code),
        ),
    )


def load_blt_overlap_inputs(
    conn: Connection,
    period: str,
    scope: RegionScope | None = None,
    *,
    subjects: Sequence[str] | None = None,
) -> BltOverlapInputs:
    """BLT-DD rows of the period whose NIK or No. KK token has an active enrolment, and those.

    Every listed row of each subject (NIK token), whatever its region, and every active
    enrolment of its NIK or No. KK; `subjects` (some of `blt_overlap_subjects`) limits them
    to those tokens.
    """
    if subjects is None:
        subjects = blt_overlap_subjects(conn, period, scope)
    blt_rows = _rows_of(
        conn,
        select(BLT.c.nik_token, BLT.c.kk_token, BLT.c.desa_code, BLT.c.period, BLT.c.id).where(
            _listed(period)
        ),
        BLT.c.nik_token,
        subjects,
    )
    enrolled = select(ENROLMENT.c.id, *_ENR_COLUMNS).where(_active(period))
    families = sorted({r.kk_token for r in blt_rows if r.kk_token})
    # Each probe on its own index: one enrolment may match both ways, and is kept once.
    matched = {
        r.id: r
        for r in (
            *_rows_of(conn, enrolled, ENROLMENT.c.nik_token, subjects),
            *_rows_of(conn, enrolled, ENROLMENT.c.kk_token, families),
        )
    }
    return BltOverlapInputs(
        blt=[
            BltRecipient(
                nik_token=r.nik_token,
                kk_token=r.kk_token,
                desa_code=r.desa_code,
                period=r.period,
                record_id=r.id,
            )
            for r in blt_rows
        ],
        enrolments=[_enrolment(matched[i]) for i in sorted(matched)],
    )


# --- one NIK in two households or desa -------------------------------------------------------


def _living() -> ColumnElement[bool]:
    return and_(MEMBER.c.status != "deceased", MEMBER.c.nik_token != "")


def multiple_household_subjects(conn: Connection, scope: RegionScope | None = None) -> list[str]:
    """The NIK tokens of living members in two or more households (some in scope), sorted."""
    sc = _scope(scope)
    # Two desa imply two households (a household lies in one desa): counting households
    # on the member table alone finds every candidate without joining 20 M rows.
    grouped = select(MEMBER.c.nik_token).where(_living())
    if not sc.is_province:
        scoped = (
            select(MEMBER.c.nik_token)
            .join(HOUSEHOLD, HOUSEHOLD.c.id == MEMBER.c.household_id)
            .where(_living(), in_scope(sc, HOUSEHOLD.c.kecamatan_code))
        )
        grouped = grouped.where(MEMBER.c.nik_token.in_(scoped))
    candidates = grouped.group_by(MEMBER.c.nik_token).having(_two_or_more(MEMBER.c.household_id))
    return _tokens(conn, candidates)


def load_multiple_household_people(
    conn: Connection,
    scope: RegionScope | None = None,
    *,
    subjects: Sequence[str] | None = None,
) -> list[Person]:
    """Living registry members whose NIK token is in two or more households.

    `subjects` (some of `multiple_household_subjects`) limits them to those tokens: the
    check then runs a page of subjects at a time.
    """
    if subjects is None:
        subjects = multiple_household_subjects(conn, scope)
    return _people(conn, subjects, _living())


def _people(conn: Connection, tokens: Sequence[str], *where: ColumnElement[bool]) -> list[Person]:
    """Registry members with one of these NIK tokens matching where, with their desa, by id."""
    stmt = (
        select(
            MEMBER.c.id,
            MEMBER.c.nik_token,
            MEMBER.c.household_id,
            HOUSEHOLD.c.desa_code,
            MEMBER.c.status,
        )
        .join(HOUSEHOLD, HOUSEHOLD.c.id == MEMBER.c.household_id)
        .where(*where)
    )
    return [_person(r) for r in _rows_of(conn, stmt, MEMBER.c.nik_token, tokens)]


def _person(row: Any) -> Person:
    return Person(
        nik_token=row.nik_token,
        household_id=row.household_id,
        desa_code=row.desa_code,
        status=cast(MemberStatus, row.status),
    )


# --- reported deceased or moved, still paid ---------------------------------------------------


@dataclass(frozen=True, slots=True)
class DeceasedOrMovedInputs:
    """Candidates' deceased/moved reports and registry rows, and their enrolments."""

    reports: list[FacilitatorReport]
    people: list[Person]
    enrolments: list[Enrolment]


_REPORT_COLUMNS = (
    REPORT.c.id,
    REPORT.c.kind,
    REPORT.c.nik_token,
    REPORT.c.household_id,
    REPORT.c.kecamatan_code,
    REPORT.c.facilitator_id,
    REPORT.c.reported_on,
)


def _report(row: Any) -> FacilitatorReport:
    return FacilitatorReport(
        report_id=row.id,
        kind=cast(ReportKind, row.kind),
        nik_token=row.nik_token,
        household_id=row.household_id,
        kecamatan_code=row.kecamatan_code,
        facilitator_id=row.facilitator_id,
        reported_on=row.reported_on,
    )


def deceased_or_moved_subjects(
    conn: Connection, period: str, scope: RegionScope | None = None
) -> list[str]:
    """NIK tokens of the period's active enrolments (in scope) reported or registered dead or moved.

    Sorted; an enrolment's pengurus is its NIK token.
    """
    sc = _scope(scope)
    reported = exists().where(
        REPORT.c.nik_token == ENROLMENT.c.nik_token,
        or_(
            REPORT.c.kind == "deceased",
            and_(REPORT.c.kind == "moved", REPORT.c.household_id == ENROLMENT.c.household_id),
        ),
    )
    # Selecting the token (not EXISTS (SELECT *)) lets the member index answer alone.
    registered = (
        select(MEMBER.c.nik_token)
        .where(
            MEMBER.c.nik_token == ENROLMENT.c.nik_token,
            or_(
                MEMBER.c.status == "deceased",
                and_(MEMBER.c.status == "moved", MEMBER.c.household_id == ENROLMENT.c.household_id),
            ),
        )
        .exists()
    )
    return _tokens(
        conn,
        select(ENROLMENT.c.nik_token).where(
            _active(period),
            ENROLMENT.c.nik_token != "",
            or_(reported, registered),
            in_scope(sc, ENROLMENT.c.kecamatan_code),
        ),
    )


def load_deceased_or_moved_inputs(
    conn: Connection,
    period: str,
    scope: RegionScope | None = None,
    *,
    subjects: Sequence[str] | None = None,
) -> DeceasedOrMovedInputs:
    """Active enrolments of the period whose pengurus is reported or registered dead or moved.

    With their reports and registry rows, every row of each subject (NIK token), whatever its
    region; `subjects` (some of `deceased_or_moved_subjects`) limits them to those tokens.
    """
    if subjects is None:
        subjects = deceased_or_moved_subjects(conn, period, scope)
    enrolments = _rows_of(
        conn,
        select(ENROLMENT.c.id, *_ENR_COLUMNS).where(_active(period)),
        ENROLMENT.c.nik_token,
        subjects,
    )
    reports = _rows_of(
        conn,
        select(*_REPORT_COLUMNS).where(REPORT.c.kind.in_(("deceased", "moved"))),
        REPORT.c.nik_token,
        subjects,
    )
    people = _people(conn, subjects, MEMBER.c.status.in_(("deceased", "moved")))
    return DeceasedOrMovedInputs(
        reports=[_report(r) for r in reports],
        people=people,
        enrolments=[_enrolment(r) for r in enrolments],
    )


# --- farmers in two poktan or over the land cap ----------------------------------------------


def _not_probed(column: ColumnElement[str]) -> ColumnElement[str]:
    """The same text as `column`, as an expression: no index of the column can serve it.

    Without statistics SQLite chose the season index to join the flagged (farmer, season)
    keys back to their lines: every key then read every line of its season, so the check
    grew with flagged farmers times farmers (175 s at 200,000 households). With the season
    term an expression the join goes through the farmer's index, and each key reads only
    that farmer's lines. PostgreSQL, which has statistics, hashes the join either way.
    """
    return column.concat("")


def load_farmer_needs(
    conn: Connection,
    *,
    cap_ha: float = DEFAULT_LAND_CAP_HA,
    seasons: Sequence[str] | None = None,
    scope: RegionScope | None = None,
) -> list[FarmerNeed]:
    """e-RDKK lines of farmers in two or more poktan, or over the cap, within a season."""
    sc = _scope(scope)
    base = FARM.c.nik_token != ""
    if seasons is not None:
        base = and_(base, FARM.c.season.in_(sorted(set(seasons))))
    having = or_(
        _two_or_more(FARM.c.poktan_id),
        func.sum(FARM.c.land_area_ha) > cap_ha - _AREA_SLACK,
    )
    if not sc.is_province:
        having = and_(having, func.sum(case((in_scope(sc, FARM.c.kecamatan_code), 1), else_=0)) > 0)
    # Aggregate first into the flagged (farmer, season) keys, then read each key's lines.
    # Farmer first: the groups come in the order of the farmer's index.
    groups = (
        select(FARM.c.nik_token, FARM.c.season)
        .where(base)
        .group_by(FARM.c.nik_token, FARM.c.season)
        .having(having)
        .subquery()
    )
    rows = _rows(
        conn,
        select(
            FARM.c.id,
            FARM.c.nik_token,
            FARM.c.poktan_id,
            FARM.c.desa_code,
            FARM.c.land_area_ha,
            FARM.c.season,
        )
        .join(
            groups,
            and_(
                groups.c.nik_token == FARM.c.nik_token,
                groups.c.season == _not_probed(FARM.c.season),
            ),
        )
        .order_by(FARM.c.id),
    )
    return [
        FarmerNeed(
            record_id=r.id,
            nik_token=r.nik_token,
            poktan_id=r.poktan_id,
            desa_code=r.desa_code,
            land_area_ha=float(r.land_area_ha),
            season=r.season,
        )
        for r in rows
    ]


# --- facilitator household updates to verify --------------------------------------------------


def load_household_update_reports(
    conn: Connection, *, reported_since: date | None = None, scope: RegionScope | None = None
) -> list[FacilitatorReport]:
    """Household-update reports (since a day), whole per household and day when scoped."""
    sc = _scope(scope)
    base = and_(REPORT.c.kind == "household_update", REPORT.c.household_id != "")
    if reported_since is not None:
        base = and_(base, REPORT.c.reported_on >= reported_since)
    stmt = select(*_REPORT_COLUMNS).where(base)
    if not sc.is_province:
        # One finding per household and day: a day's reports from another kecamatan come too.
        groups = (
            select(REPORT.c.household_id, REPORT.c.reported_on)
            .where(base, in_scope(sc, REPORT.c.kecamatan_code))
            .distinct()
            .subquery()
        )
        stmt = stmt.join(
            groups,
            and_(
                groups.c.household_id == REPORT.c.household_id,
                groups.c.reported_on == REPORT.c.reported_on,
            ),
        )
    return [_report(r) for r in _rows(conn, stmt.order_by(REPORT.c.id))]


# --- scorecard inputs --------------------------------------------------------------------------


def iter_scorecard_handoffs(
    conn: Connection, as_of: datetime, scope: RegionScope = WHOLE_PROVINCE
) -> Iterator[HandoffRow]:
    """Stream the scorecard's columns of the scope's handoffs created up to as_of (no evidence)."""
    # SQLite compares the stored UTC text: the bound as_of is UTC too.
    stmt = select(
        HANDOFF.c.kecamatan_code,
        HANDOFF.c.kabupaten_code,
        HANDOFF.c.origin_office,
        HANDOFF.c.office,
        HANDOFF.c.state,
        HANDOFF.c.created_at,
        HANDOFF.c.due_date,
        HANDOFF.c.delivered_at,
        HANDOFF.c.acknowledged_at,
        HANDOFF.c.closed_at,
        HANDOFF.c.escalated_at,
        HANDOFF.c.kind,
    ).where(HANDOFF.c.created_at <= to_utc(as_of, "as_of"), handoff_in_scope(scope))
    result = conn.execution_options(yield_per=_STREAM_ROWS).execute(stmt)
    for r in result:
        created = stored_utc(r.created_at)
        assert created is not None  # the column is NOT NULL
        yield HandoffRow(
            kecamatan_code=r.kecamatan_code,
            kabupaten_code=r.kabupaten_code,
            origin_office=r.origin_office,
            office=r.office,
            state=r.state,
            created_at=created,
            due_date=r.due_date,
            delivered_at=stored_utc(r.delivered_at),
            acknowledged_at=stored_utc(r.acknowledged_at),
            closed_at=stored_utc(r.closed_at),
            escalated_at=stored_utc(r.escalated_at),
            kind=r.kind,
        )


def load_source_counts(conn: Connection) -> dict[str, SourceCounts]:
    """Records fetched and quarantine sightings per sync partition, over every source."""
    # Both count sightings (a record fetched again is counted again), so the rate compares
    # like with like; both are the store's totals when the scorecard runs.
    fetched: dict[str, int] = {
        part: int(n or 0)
        for part, n in conn.execute(
            select(CURSOR.c.partition, func.sum(CURSOR.c.records)).group_by(CURSOR.c.partition)
        )
    }
    quarantined: dict[str, int] = {
        part: int(n or 0)
        for part, n in conn.execute(
            select(QUARANTINE.c.partition, func.sum(QUARANTINE.c.seen_count)).group_by(
                QUARANTINE.c.partition
            )
        )
    }
    return {
        part: SourceCounts(fetched=fetched.get(part, 0), quarantined=quarantined.get(part, 0))
        for part in sorted(fetched.keys() | quarantined.keys())
    }


def load_overlap_counts(
    conn: Connection, as_of: datetime, scope: RegionScope = WHOLE_PROVINCE
) -> dict[str, int]:
    """Cross-programme findings per kecamatan of the scope: distinct (kind, subject, period)."""
    to_office = or_(
        HANDOFF.c.origin_office.startswith("kecamatan:"),
        HANDOFF.c.origin_office.startswith("desa:"),
    )
    findings = (
        select(
            HANDOFF.c.kecamatan_code,
            HANDOFF.c.kind,
            HANDOFF.c.subject_token,
            HANDOFF.c.period,
        )
        .where(
            HANDOFF.c.kind.in_(sorted(OVERLAP_KINDS)),
            HANDOFF.c.kecamatan_code != "",
            HANDOFF.c.created_at <= to_utc(as_of, "as_of"),
            to_office,
            in_scope(scope, HANDOFF.c.kecamatan_code),
        )
        .distinct()
        .subquery()
    )
    rows = conn.execute(
        select(findings.c.kecamatan_code, func.count()).group_by(findings.c.kecamatan_code)
    ).all()
    return {code: int(n) for code, n in rows}
