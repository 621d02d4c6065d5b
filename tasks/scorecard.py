"""Prefect task of the kecamatan scorecard: aggregate the store, compute, write the files."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from prefect import get_run_logger, task
from prefect.cache_policies import NO_CACHE
from sqlalchemy import Engine

from integrations.scorecard_export import record, scorecard_dir, write_scorecard_files
from integrations.settings import get_settings
from integrations.store.coordination_load import (
    iter_scorecard_handoffs,
    load_overlap_counts,
    load_source_counts,
)
from integrations.store.engine import get_engine
from models.scope import WHOLE_PROVINCE, RegionScope
from models.scorecard import Scorecard, compute_scorecard
from models.wilayah import get_region_registry
from models.workdays import local_date

__all__ = ["WORST", "build_scorecard", "publish_scorecard"]

WORST = 5
"""How many of the worst kecamatan the summary names."""


def build_scorecard(
    engine: Engine, as_of: datetime, scope: RegionScope = WHOLE_PROVINCE
) -> Scorecard:
    """The scorecard of the scope's kecamatan as of a moment, from one read of the store."""
    kecamatan = [
        k.code for k in get_region_registry().kecamatan() if scope.covers_kecamatan(k.code)
    ]
    # One connection: the counts and the handoffs are read in the same snapshot on PostgreSQL
    # (SQLite's WAL readers see one snapshot per transaction too).
    with engine.connect() as conn:
        sources = {
            part: counts
            for part, counts in load_source_counts(conn).items()
            if scope.covers_kecamatan(part)
        }
        findings = load_overlap_counts(conn, as_of, scope)
        return compute_scorecard(
            iter_scorecard_handoffs(conn, as_of, scope),
            as_of=as_of,
            sources=sources,
            findings=findings,
            kecamatan_codes=kecamatan,
        )


@task(name="kecamatan-scorecard", cache_policy=NO_CACHE)
def publish_scorecard(as_of: datetime, scope: RegionScope = WHOLE_PROVINCE) -> dict[str, Any]:
    """Compute the scorecard, write its CSV/XLSX files; return counts, region lines and paths."""
    logger = get_run_logger()
    card = build_scorecard(get_engine(), as_of, scope=scope)
    directory = scorecard_dir(get_settings(), local_date(as_of), scope)
    files = write_scorecard_files(card, directory)
    prov = card.province
    logger.info(
        "%d kecamatan, %d handoffs, backlog %d (%d overdue), %d escalations; files in %s",
        len(card.kecamatan),
        prov.handoffs,
        prov.backlog,
        prov.overdue,
        prov.escalations,
        directory,
    )
    return {
        "kecamatan": len(card.kecamatan),
        "kabupaten": len(card.kabupaten),
        "other_offices": card.other_offices,
        "all_handoffs": card.all_handoffs,
        "province": record(prov),
        "kabupaten_lines": [record(r) for r in card.kabupaten],
        "kecamatan_lines": [record(r) for r in card.kecamatan],
        "worst": [record(r) for r in card.worst(WORST)],
        "files": files.as_dict(),
    }
