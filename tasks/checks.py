"""Prefect task of the cross-programme checks: one run per check kind, counts out, never people."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterator
from datetime import date, datetime
from enum import StrEnum

from prefect import get_run_logger, task
from prefect.cache_policies import NO_CACHE
from sqlalchemy import Connection, Engine

from integrations.settings import get_settings
from integrations.store.common import chunks
from integrations.store.coordination_load import (
    blt_overlap_subjects,
    deceased_or_moved_subjects,
    load_blt_overlap_inputs,
    load_deceased_or_moved_inputs,
    load_farmer_needs,
    load_household_update_reports,
    load_multiple_household_people,
    multiple_household_subjects,
)
from integrations.store.engine import get_engine, write_lock
from integrations.store.handoffs import create_handoffs
from models.checks import (
    Finding,
    blt_overlaps,
    deceased_or_moved_receiving,
    farmer_conflicts,
    household_updates_to_verify,
    nik_in_multiple_households,
)
from models.handoffs import HandoffKind
from models.scope import RegionScope
from models.workdays import local_date

__all__ = [
    "CHECK_KINDS",
    "SENDER",
    "Check",
    "current_period",
    "find",
    "find_pages",
    "period_start",
    "run_check",
    "run_programme_check",
]

SENDER = "cettar-hub"
"""Sender of the handoffs the checks create."""


class Check(StrEnum):
    """The cross-programme checks, one task run each."""

    BLT_OVERLAP = "blt_overlap"
    NIK_MULTIPLE_HOUSEHOLDS = "nik_multiple_households"
    DECEASED_OR_MOVED = "deceased_or_moved"
    FARMER_CONFLICTS = "farmer_conflicts"
    HOUSEHOLD_UPDATES = "household_updates"


CHECK_KINDS: dict[Check, tuple[HandoffKind, ...]] = {
    Check.BLT_OVERLAP: (HandoffKind.BLT_PKH_OVERLAP,),
    Check.NIK_MULTIPLE_HOUSEHOLDS: (HandoffKind.NIK_MULTIPLE_HOUSEHOLDS,),
    Check.DECEASED_OR_MOVED: (
        HandoffKind.DECEASED_RECEIVING_AID,
        HandoffKind.MOVED_RECEIVING_AID,
    ),
    Check.FARMER_CONFLICTS: (
        HandoffKind.FARMER_MULTIPLE_GROUPS,
        HandoffKind.FARMER_OVER_LAND_CAP,
    ),
    Check.HOUSEHOLD_UPDATES: (HandoffKind.HOUSEHOLD_UPDATE_VERIFICATION,),
}
"""The handoff kinds each check can produce (every one is reported, zeros included)."""


def current_period(moment: datetime) -> str:
    """The payment quarter (tahap) of a moment in Jakarta, like 2026-Q4."""
    day = local_date(moment)
    return f"{day.year}-Q{(day.month - 1) // 3 + 1}"


def period_start(period: str) -> date:
    """First day of a quarter like 2026-Q4; ValueError for anything else."""
    year, sep, quarter = period.partition("-Q")
    if not sep or not year.isdigit() or len(year) != 4 or quarter not in ("1", "2", "3", "4"):
        raise ValueError(f"period must be a quarter like 2026-Q4, got {period[:20]!r}")
    return date(int(year), 3 * (int(quarter) - 1) + 1, 1)


def _previous_quarter_start(period: str) -> date:
    start = period_start(period)
    month = start.month - 3
    return date(start.year - 1, month + 12, 1) if month < 1 else date(start.year, month, 1)


def find_pages(
    conn: Connection,
    check: Check,
    period: str,
    scope: RegionScope | None = None,
    *,
    page_subjects: int | None = None,
) -> Iterator[list[Finding]]:
    """Findings of one check in pages: SQL-narrowed candidates through the pure check.

    The checks that group by a person (NIK token: BLT-DD overlaps, one NIK in two households,
    deceased or moved) find their subjects first, then read and check `page_subjects` of
    them at a time (default: the setting), every row of each: the findings per subject are
    those of one pass over all subjects, and the rows, findings and handoffs in memory are
    one page's, not the province's.
    """
    size = page_subjects or get_settings().check_page_subjects
    if check is Check.NIK_MULTIPLE_HOUSEHOLDS:
        for page in chunks(multiple_household_subjects(conn, scope), size):
            people = load_multiple_household_people(conn, subjects=page)
            yield nik_in_multiple_households(people, period)
        return
    if check is Check.DECEASED_OR_MOVED:
        for page in chunks(deceased_or_moved_subjects(conn, period, scope), size):
            dm = load_deceased_or_moved_inputs(conn, period, subjects=page)
            yield deceased_or_moved_receiving(dm.reports, dm.people, dm.enrolments, period)
        return
    if check is Check.BLT_OVERLAP:
        for page in chunks(blt_overlap_subjects(conn, period, scope), size):
            blt = load_blt_overlap_inputs(conn, period, subjects=page)
            yield blt_overlaps(blt.blt, blt.enrolments, period)
        return
    if check is Check.FARMER_CONFLICTS:
        # Seasons (musim tanam) do not follow quarters: every synced season is checked, and
        # findings already handed off are recognised by their idempotency keys.
        yield farmer_conflicts(load_farmer_needs(conn, scope=scope))
        return
    # A household update is handed off when first seen; reports filed since the previous
    # quarter began still get checked, so a report synced late is not missed.
    reports = load_household_update_reports(
        conn, reported_since=_previous_quarter_start(period), scope=scope
    )
    yield household_updates_to_verify(reports)


def find(
    conn: Connection, check: Check, period: str, scope: RegionScope | None = None
) -> list[Finding]:
    """Findings of one check, all pages, in the pure check's order."""
    pages = list(find_pages(conn, check, period, scope))
    if len(pages) == 1:
        return pages[0]
    # Pages of subjects: a check grouping by person orders its findings by kind, then subject.
    findings = [f for page in pages for f in page]
    findings.sort(key=lambda f: (HandoffKind(f.kind).value, f.subject_token))
    return findings


def run_check(
    engine: Engine,
    check: Check,
    *,
    period: str,
    now: datetime,
    scope: RegionScope | None = None,
    page_subjects: int | None = None,
) -> dict[str, dict[str, int]]:
    """Run one check and create its handoffs; per handoff kind: findings, created, existing."""
    period_start(period)
    declared = {k.value for k in CHECK_KINDS[check]}
    result = {k.value: {"findings": 0, "created": 0, "existing": 0} for k in CHECK_KINDS[check]}
    with engine.connect() as conn:
        for findings in find_pages(conn, check, period, scope, page_subjects=page_subjects):
            by_kind: dict[str, list[Finding]] = defaultdict(list)
            for f in findings:
                by_kind[HandoffKind(f.kind).value].append(f)
            unexpected = set(by_kind) - declared
            if unexpected:
                raise RuntimeError(
                    f"check {check} produced kinds it does not declare: {sorted(unexpected)}"
                )
            # One transaction per page: its handoffs are all created or none, and a rerun
            # finds those of the pages before (their idempotency keys) as existing.
            with write_lock(engine), engine.begin() as wconn:
                for kind, group in by_kind.items():
                    counts = create_handoffs(wconn, group, sender=SENDER, now=now)
                    result[kind]["findings"] += len(group)
                    result[kind]["created"] += counts.created
                    result[kind]["existing"] += counts.existing
    return result


@task(name="programme-check", task_run_name="check {check}", cache_policy=NO_CACHE)
def run_programme_check(
    check: Check, period: str, now: datetime, scope: RegionScope | None = None
) -> dict[str, dict[str, int]]:
    """Run one cross-programme check over the store; returns counts per handoff kind."""
    logger = get_run_logger()
    result = run_check(get_engine(), check, period=period, now=now, scope=scope)
    for kind, c in result.items():
        logger.info(
            "%s: %d findings, %d handoffs created, %d already there",
            kind,
            c["findings"],
            c["created"],
            c["existing"],
        )
    return result
