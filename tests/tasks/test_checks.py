"""Checks in pages of subjects: the findings and handoffs of one pass (SQLite, PostgreSQL)."""

from __future__ import annotations

from collections import Counter
from datetime import UTC, datetime

import pytest
from sqlalchemy import Engine, func, select

from integrations.store.tables import HANDOFF
from models.checks import Finding
from tasks.checks import Check, find, find_pages, run_check
from tests.integrations.store.test_check_scaling import PERIOD, _fill

NOW = datetime(2026, 10, 7, 3, tzinfo=UTC)
PAGED = [Check.BLT_OVERLAP, Check.NIK_MULTIPLE_HOUSEHOLDS, Check.DECEASED_OR_MOVED]
HOUSEHOLDS = 5_000
PAGE = 3


def _order(f: Finding) -> tuple[str, str]:
    return (str(f.kind), f.subject_token)


@pytest.fixture
def filled(store: Engine) -> Engine:
    with store.begin() as conn:
        _fill(conn, 0, HOUSEHOLDS)
    return store


@pytest.mark.parametrize("check", PAGED)
def test_pages_hold_at_most_a_page_of_subjects_and_add_up_to_one_pass(
    filled: Engine, check: Check
) -> None:
    with filled.connect() as conn:
        pages = list(find_pages(conn, check, PERIOD, page_subjects=PAGE))
        whole = list(find_pages(conn, check, PERIOD, page_subjects=10**9))
        listed = find(conn, check, PERIOD)
    assert len(whole) == 1
    assert len(whole[0]) >= 3 * PAGE, "the fixture must hold several pages of findings"
    assert len(pages) >= len(whole[0]) // PAGE
    for page in pages:
        assert len({f.subject_token for f in page}) <= PAGE
    # Each subject's finding is the one a single pass over every subject gives.
    one_pass = sorted(whole[0], key=_order)
    assert sorted((f for page in pages for f in page), key=_order) == one_pass
    assert listed == one_pass


@pytest.mark.parametrize("check", PAGED)
def test_a_paged_run_creates_the_handoffs_of_one_pass(filled: Engine, check: Check) -> None:
    with filled.connect() as conn:
        expected = Counter(str(f.kind) for f in find(conn, check, PERIOD))
    paged = run_check(filled, check, period=PERIOD, now=NOW, page_subjects=PAGE)
    assert {k: v["findings"] for k, v in paged.items() if v["findings"]} == dict(expected)
    assert all(v["existing"] == 0 for v in paged.values())
    with filled.connect() as conn:
        stored = conn.execute(select(func.count()).select_from(HANDOFF)).scalar_one()
    assert stored == sum(v["created"] for v in paged.values()) > 0
    # One pass over all subjects afterwards finds every handoff there already: same keys.
    again = run_check(filled, check, period=PERIOD, now=NOW, page_subjects=10**9)
    assert all(v["created"] == 0 for v in again.values())
    assert {k: v["existing"] for k, v in again.items()} == {
        k: v["created"] for k, v in paged.items()
    }
