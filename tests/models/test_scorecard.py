"""Kecamatan scorecard: hand-made handoffs with known medians, shares, ages and ranks."""

from __future__ import annotations

import random
from datetime import UTC, date, datetime
from zoneinfo import ZoneInfo

import pytest

from models.scorecard import HandoffRow, Scorecard, SourceCounts, compute_scorecard, median

WIB = ZoneInfo("Asia/Jakarta")
A, B, C = "35.78.01", "35.78.02", "35.07.01"


def at(y: int, m: int, d: int, h: int = 9) -> datetime:
    """A Jakarta wall-clock time."""
    return datetime(y, m, d, h, tzinfo=WIB)


def row(
    kec: str,
    created: datetime,
    due: date,
    *,
    state: str = "delivered",
    origin: str | None = None,
    delivered: datetime | None = None,
    acknowledged: datetime | None = None,
    closed: datetime | None = None,
    escalated: datetime | None = None,
) -> HandoffRow:
    origin = origin or f"kecamatan:{kec}"
    return HandoffRow(
        kecamatan_code=kec,
        kabupaten_code=kec[:5],
        origin_office=origin,
        office=f"kabupaten:{kec[:5]}" if escalated else origin,
        state=state,
        created_at=created,
        due_date=due,
        delivered_at=delivered if delivered is not None else created,
        acknowledged_at=acknowledged,
        closed_at=closed,
        escalated_at=escalated,
    )


# Around Nyepi and Idul Fitri 2026 offices are closed from Wed 18 to Tue 24 March.
IDUL_FITRI_ROWS = [
    # 1. delivered Mon 16 Mar, acknowledged Wed 25 Mar: Tue 17 + Wed 25 = 2 working days;
    #    resolved Thu 26 Mar, due Fri 27 Mar: in time.
    row(
        A,
        at(2026, 3, 16),
        date(2026, 3, 27),
        state="resolved",
        acknowledged=at(2026, 3, 25),
        closed=at(2026, 3, 26),
    ),
    # 2. delivered Fri 13 Mar 15:00, acknowledged Mon 16 Mar: 1; rejected Tue 31 Mar: late.
    row(
        A,
        at(2026, 3, 13, 15),
        date(2026, 3, 27),
        state="rejected",
        acknowledged=at(2026, 3, 16),
        closed=at(2026, 3, 31, 8),
    ),
    # 3. delivered Tue 17 Mar, resolved without acknowledgement on Wed 25 Mar, its due date:
    #    answered after 1 working day, in time.
    row(A, at(2026, 3, 17), date(2026, 3, 25), state="resolved", closed=at(2026, 3, 25, 16)),
    # 4. open since Wed 25 Mar, due Mon 30 Mar: overdue on Tue 31 Mar, escalated that morning.
    row(A, at(2026, 3, 25), date(2026, 3, 30), state="escalated", escalated=at(2026, 3, 31, 8)),
    # 5. open since Mon 30 Mar, due 6 Apr: backlog, not judged yet.
    row(A, at(2026, 3, 30), date(2026, 4, 6)),
    # 6. to the PKH agency: not the office's work.
    row(A, at(2026, 3, 16), date(2026, 3, 27), origin="agency:pkh"),
    # 7. to a desa of A, delivered Thu 26 Mar, acknowledged Fri 27 Mar 16:00: 1; open.
    row(
        A,
        at(2026, 3, 26),
        date(2026, 4, 9),
        state="acknowledged",
        origin="desa:35.78.01.2001",
        acknowledged=at(2026, 3, 27, 16),
    ),
    # 8. created after as_of: not in this scorecard at all.
    row(A, at(2026, 4, 1), date(2026, 4, 8)),
    # 9. acknowledged and resolved only after as_of: open and unanswered as of Tue 31 Mar.
    row(
        A,
        at(2026, 3, 27),
        date(2026, 4, 3),
        state="resolved",
        acknowledged=at(2026, 4, 2),
        closed=at(2026, 4, 2, 10),
    ),
    # B: answered the same day (0) and the next day (1).
    row(
        B,
        at(2026, 3, 30),
        date(2026, 4, 6),
        state="resolved",
        acknowledged=at(2026, 3, 30, 14),
        closed=at(2026, 3, 30, 15),
    ),
    row(
        B, at(2026, 3, 30), date(2026, 4, 6), state="acknowledged", acknowledged=at(2026, 3, 31, 8)
    ),
]
AS_OF = at(2026, 3, 31, 10)
SOURCES = {
    A: SourceCounts(fetched=100, quarantined=4),
    C: SourceCounts(fetched=200, quarantined=5),
    "all": SourceCounts(fetched=50, quarantined=50),
}
FINDINGS = {A: 2, C: 3, "": 9}


def _card(rows: list[HandoffRow]) -> Scorecard:
    return compute_scorecard(
        rows, as_of=AS_OF, sources=SOURCES, findings=FINDINGS, kecamatan_codes=[A, B, C]
    )


def test_kecamatan_lines_across_idul_fitri() -> None:
    card = compute_scorecard(
        IDUL_FITRI_ROWS, as_of=AS_OF, sources=SOURCES, findings=FINDINGS, kecamatan_codes=[C]
    )
    lines = {r.code: r for r in card.kecamatan}
    assert sorted(lines) == [C, A, B]
    a = lines[A]
    assert a.name == "Karang Pilang"
    assert (a.handoffs, a.acknowledged, a.median_ack_workdays) == (7, 4, 1.0)
    assert (a.judged, a.resolved_in_time, a.resolved_in_time_share) == (4, 2, 0.5)
    # Open: 4, 5, 7, 9; the oldest (25 Mar) is 4 working days old on Tue 31 Mar.
    assert (a.backlog, a.overdue, a.oldest_backlog_workdays, a.escalations) == (4, 1, 4, 1)
    assert (a.fetched, a.quarantined, a.quarantine_rate, a.overlaps_found) == (100, 4, 0.04, 2)
    b = lines[B]
    assert (b.handoffs, b.median_ack_workdays, b.resolved_in_time_share) == (2, 0.5, 1.0)
    assert (b.backlog, b.overdue, b.oldest_backlog_workdays) == (1, 0, 1)
    assert (b.fetched, b.quarantine_rate, b.overlaps_found) == (0, None, 0)
    c = lines[C]
    assert (c.handoffs, c.median_ack_workdays, c.resolved_in_time_share) == (0, None, None)
    assert (c.backlog, c.oldest_backlog_workdays) == (0, None)
    assert (c.quarantine_rate, c.overlaps_found) == (0.025, 3)
    assert card.other_offices == 1
    # Worst first: A (half in time), then B (all in time); C had nothing handed to it, so it
    # is listed last and not ranked.
    assert [(r.code, r.rank) for r in card.worst(5)] == [(A, 1), (B, 2)]
    assert [(r.code, r.rank) for r in card.kecamatan] == [(A, 1), (B, 2), (C, None)]
    assert (a.kabupaten_code, a.kabupaten_name) == ("35.78", "Kota Surabaya")
    assert card.all_handoffs == a.handoffs + b.handoffs + 1


def test_kabupaten_and_province_pool_their_kecamatan() -> None:
    card = compute_scorecard(
        IDUL_FITRI_ROWS, as_of=AS_OF, sources=SOURCES, findings=FINDINGS, kecamatan_codes=[C]
    )
    kab = {r.code: r for r in card.kabupaten}
    surabaya = kab["35.78"]
    assert surabaya.name == "Kota Surabaya"
    # Answer times 2,1,1,1 (A) and 0,1 (B): median of six values is 1.
    assert (surabaya.handoffs, surabaya.acknowledged, surabaya.median_ack_workdays) == (9, 6, 1.0)
    assert (surabaya.judged, surabaya.resolved_in_time) == (5, 3)
    assert surabaya.resolved_in_time_share == pytest.approx(0.6)
    assert (surabaya.backlog, surabaya.overdue, surabaya.oldest_backlog_workdays) == (5, 1, 4)
    assert (surabaya.escalations, surabaya.fetched, surabaya.quarantined) == (1, 100, 4)
    assert (surabaya.rank, kab["35.07"].rank) == (1, None)  # 35.07 had no handoffs
    prov = card.province
    assert (prov.level, prov.code, prov.rank) == ("province", "35", None)
    assert (prov.handoffs, prov.fetched, prov.quarantined, prov.overlaps_found) == (9, 300, 9, 5)
    assert prov.quarantine_rate == pytest.approx(9 / 300)


def test_year_end_holidays_and_a_due_date_on_a_holiday() -> None:
    as_of = at(2027, 1, 4, 10)  # Monday after Christmas, cuti bersama and New Year
    rows = [
        # Delivered Wed 23 Dec, acknowledged Mon 4 Jan: 28-31 Dec and 4 Jan = 5 working days;
        # still open, due Thu 31 Dec: overdue; 5 working days old.
        row(A, at(2026, 12, 23), date(2026, 12, 31), acknowledged=at(2027, 1, 4, 8)),
        # Due on New Year's Day (a holiday): closing on Mon 4 Jan is still in time.
        row(A, at(2026, 12, 28), date(2027, 1, 1), state="resolved", closed=at(2027, 1, 4, 9)),
        # Due Thu 24 Dec (cuti bersama, rolls to Mon 28 Dec): closed Tue 29 Dec is late.
        row(A, at(2026, 12, 21), date(2026, 12, 24), state="resolved", closed=at(2026, 12, 29)),
    ]
    (a,) = compute_scorecard(rows, as_of=as_of).kecamatan
    assert a.median_ack_workdays == 4.0  # answers after 5, 4 (29, 30, 31 Dec, 4 Jan) and 4
    assert (a.judged, a.resolved_in_time, a.overdue) == (3, 1, 1)
    assert a.oldest_backlog_workdays == 5


def test_order_of_input_does_not_matter() -> None:
    shuffled = IDUL_FITRI_ROWS[:]
    random.Random(3).shuffle(shuffled)
    assert _card(shuffled) == _card(IDUL_FITRI_ROWS)


def test_ranking_breaks_ties_in_the_documented_order() -> None:
    kec = ["35.78.01", "35.78.02", "35.78.03", "35.78.04", "35.78.05", "35.78.06"]
    as_of = at(2026, 6, 30, 10)
    june_1, due = at(2026, 6, 1), date(2026, 6, 5)

    def closed(code: str, on: datetime, acknowledged: datetime | None = None) -> HandoffRow:
        return row(code, june_1, due, state="resolved", closed=on, acknowledged=acknowledged)

    rows = [
        # 01 and 02: half in time; 02 has two overdue open handoffs, 01 none.
        closed(kec[0], at(2026, 6, 29)),
        closed(kec[0], at(2026, 6, 2)),
        closed(kec[1], at(2026, 6, 2)),
        closed(kec[1], at(2026, 6, 2)),
        row(kec[1], june_1, due),
        row(kec[1], june_1, due),
        # 03 and 04: nothing judged; 04's backlog is older.
        row(kec[2], at(2026, 6, 29), date(2026, 7, 6)),
        row(kec[3], at(2026, 6, 22), date(2026, 7, 6)),
        # 05 and 06: all in time, nothing open; 05 answered slower.
        closed(kec[4], at(2026, 6, 2), acknowledged=at(2026, 6, 3)),
        closed(kec[5], at(2026, 6, 2), acknowledged=at(2026, 6, 1, 10)),
    ]
    card = compute_scorecard(rows, as_of=as_of)
    assert [r.code for r in card.worst(6)] == [kec[1], kec[0], kec[4], kec[5], kec[3], kec[2]]
    # The lines themselves come worst first too.
    assert [(r.code, r.rank) for r in card.kecamatan] == [
        (kec[1], 1),
        (kec[0], 2),
        (kec[4], 3),
        (kec[5], 4),
        (kec[3], 5),
        (kec[2], 6),
    ]


def test_regions_without_handoffs_are_listed_last_and_not_ranked() -> None:
    as_of = at(2026, 6, 30, 10)
    rows = [row("35.78.05", at(2026, 6, 1), date(2026, 6, 5))]
    card = compute_scorecard(rows, as_of=as_of, kecamatan_codes=["35.78.01", "35.07.01"])
    assert [(r.code, r.rank) for r in card.kecamatan] == [
        ("35.78.05", 1),
        ("35.07.01", None),
        ("35.78.01", None),
    ]
    assert [(r.code, r.rank) for r in card.kabupaten] == [("35.78", 1), ("35.07", None)]


def test_median_of_a_histogram() -> None:
    assert median({}) is None
    assert median({3: 1}) == 3.0
    assert median({1: 1, 3: 1}) == 2.0
    assert median({0: 2, 5: 1, 9: 1}) == 2.5
    assert median({1: 3, 2: 1, 7: 1}) == 1.0


def test_as_of_must_be_aware() -> None:
    with pytest.raises(ValueError, match="timezone-aware"):
        compute_scorecard([], as_of=datetime(2026, 1, 1))
    card = compute_scorecard([], as_of=datetime(2026, 1, 1, tzinfo=UTC))
    assert (card.kecamatan, card.kabupaten, card.province.handoffs) == ((), (), 0)


def _alert(
    kec: str,
    origin: str,
    created: datetime,
    *,
    kind: str = "health_red_zone",
    acknowledged: datetime | None = None,
    closed: datetime | None = None,
    state: str = "delivered",
) -> HandoffRow:
    return HandoffRow(
        kecamatan_code=kec,
        kabupaten_code=kec[:5],
        origin_office=origin,
        office=origin,
        state=state,
        created_at=created,
        due_date=created.date(),
        # Delivered a day late: the response time counts from creation all the same.
        delivered_at=created.replace(day=created.day + 1),
        acknowledged_at=acknowledged,
        closed_at=closed,
        kind=kind,
    )


def test_response_time_to_health_alerts_is_a_median_from_creation() -> None:
    rows = [
        # Mon 2 Nov 2026 alerts of A: the kecamatan answers Wed (2), its desa Mon (0), the
        # forum's notice Thu (3), the escalation copy not yet; B's kecamatan Tue (1).
        _alert(A, f"kecamatan:{A}", at(2026, 11, 2), acknowledged=at(2026, 11, 4)),
        _alert(
            A,
            f"desa:{A}.1001",
            at(2026, 11, 2),
            state="resolved",
            closed=at(2026, 11, 2, 15),
        ),
        _alert(
            A,
            f"forkopimcam:{A}",
            at(2026, 11, 2),
            kind="health_red_zone_notice",
            acknowledged=at(2026, 11, 5),
        ),
        _alert(A, f"forkopimcam:{A}", at(2026, 11, 4), kind="health_red_zone_notice"),
        # An answer after as_of is not seen.
        _alert(B, f"kecamatan:{B}", at(2026, 11, 2), acknowledged=at(2026, 11, 3)),
        _alert(B, f"kecamatan:{B}", at(2026, 11, 3), acknowledged=at(2026, 11, 20)),
        # Not a health alert: no effect on the column.
        row(A, at(2026, 11, 2), date(2026, 11, 9), acknowledged=at(2026, 11, 6)),
    ]
    card = compute_scorecard(rows, as_of=at(2026, 11, 6, 12))
    line = {r.code: r for r in card.kecamatan}
    assert (line[A].health_alerts, line[A].median_health_response_workdays) == (4, 2.0)
    assert (line[B].health_alerts, line[B].median_health_response_workdays) == (2, 1.0)
    # The forum's notices are not the kecamatan office's cases: counted apart in the totals.
    assert line[A].handoffs == 3 and card.other_offices == 2
    assert card.kabupaten[0].health_alerts == 6
    assert card.province.median_health_response_workdays == 1.5  # 0, 1, 2, 3
    # A kecamatan without alerts has no response time; the column does not rank.
    quiet = compute_scorecard(rows[-1:], as_of=at(2026, 11, 6, 12))
    assert quiet.kecamatan[0].median_health_response_workdays is None
    assert quiet.kecamatan[0].health_alerts == 0
