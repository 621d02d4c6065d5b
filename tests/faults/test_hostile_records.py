"""Hostile records through a real registry agency and the real sync, into SQLite and PostgreSQL.

Every served record is either stored exactly as served or quarantined with a reason; the
valid ones (injection text included) are stored verbatim; nothing is lost; no partition
fails, on the first sync or a full resync; the sync report renders none of the markup.
Run with `pytest -s` to read the outcome table.
"""

from __future__ import annotations

import json
import re
from collections import Counter, defaultdict
from collections.abc import Iterator, Sequence
from datetime import UTC, date, datetime
from typing import Any

import pytest
from sqlalchemy import Engine, select

from flows.common import summarise, sync_markdown
from integrations.agencies.client import AgencyClient
from integrations.agencies.http import RetryingTransport, RetryPolicy
from integrations.settings import Settings
from integrations.store.engine import make_engine
from integrations.store.tables import HOUSEHOLD, MEMBER, QUARANTINE
from integrations.sync.engine import sync_source
from models.contracts.registry import HOUSEHOLDS
from sandbox.config import DEFAULT_REGISTRY_TOKEN
from sandbox.transport import SyncASGITransport
from tests.factories import household, member
from tests.faults.hostile import (
    CATEGORIES,
    DUPLICATES,
    INJECTIONS,
    Hostile,
    hostile_records,
    hostile_registry_app,
    payload_hash,
)

SOURCE = "registry.households"
KEY = b"hostile-records-test-key"
LIMIT = 50


@pytest.fixture(scope="module")
def hostile() -> list[Hostile]:
    """The hostile records, generated once for both stores."""
    return hostile_records()


def _client(records: Sequence[Hostile]) -> AgencyClient:
    transport = RetryingTransport(
        SyncASGITransport(hostile_registry_app(records)),
        policy=RetryPolicy(max_attempts=2, backoff_base_s=0.0, backoff_max_s=0.0),
        agency="registry",
        sleep=lambda _: None,
    )
    return AgencyClient(
        "registry",
        "http://sandbox/registry",
        DEFAULT_REGISTRY_TOKEN,
        settings=Settings(),
        transport=transport,
    )


def _sync(store: Engine, records: Sequence[Hostile], *, full: bool = False) -> dict[str, Any]:
    """Sync every partition, one at a time (a failing partition raises)."""
    results: dict[tuple[str, str], dict[str, Any]] = {}
    with _client(records) as client:
        for kec in dict.fromkeys(h.kecamatan for h in records):
            counts = sync_source(store, client, SOURCE, [kec], limit=LIMIT, key=KEY, full=full)
            results[("registry", kec)] = {HOUSEHOLDS: counts.as_dict()}
    return summarise(results, {})


def _utc(value: datetime) -> datetime:
    return value.astimezone(UTC).replace(tzinfo=None) if value.tzinfo else value


def _served_form(record: Any) -> tuple[Any, ...] | None:
    """What the store must hold for a record stored exactly as served (None if it cannot be)."""
    try:
        members = frozenset(
            (
                m["id"],
                m["nik"],
                m["name"],
                m["sex"],
                date.fromisoformat(m["birth_date"]),
                m["relationship"],
                m.get("status", "active"),
            )
            for m in record["members"]
        )
        return (
            record["id"],
            record["no_kk"],
            record["desa_code"],
            record.get("address", ""),
            record.get("desil"),
            _utc(datetime.fromisoformat(record["updated_at"])),
            members,
        )
    except (TypeError, KeyError, ValueError, AttributeError):
        return None


def _stored(store: Engine) -> dict[str, tuple[Any, ...]]:
    with store.connect() as conn:
        members: dict[str, set[tuple[Any, ...]]] = defaultdict(set)
        for m in conn.execute(select(MEMBER)).mappings():
            members[m["household_id"]].add(
                (
                    m["id"],
                    m["nik"],
                    m["name"],
                    m["sex"],
                    m["birth_date"],
                    m["relationship"],
                    m["status"],
                )
            )
        return {
            h["id"]: (
                h["id"],
                h["no_kk"],
                h["desa_code"],
                h["address"],
                h["desil"],
                _utc(h["updated_at"]),
                frozenset(members[h["id"]]),
            )
            for h in conn.execute(select(HOUSEHOLD)).mappings()
        }


def _quarantined(store: Engine) -> dict[str, dict[str, Any]]:
    with store.connect() as conn:
        rows = conn.execute(select(QUARANTINE).where(QUARANTINE.c.source == SOURCE)).mappings()
        return {r["payload_hash"]: dict(r) for r in rows}


def _outcomes(
    records: Sequence[Hostile], stored: dict[str, tuple[Any, ...]], quarantine: dict[str, Any]
) -> Iterator[tuple[Hostile, str, list[str]]]:
    """(record, "stored" | "quarantined" | "lost", reason codes) for every served record."""
    for h in records:
        form = _served_form(h.record) if isinstance(h.record, dict) else None
        rid = h.record.get("id") if isinstance(h.record, dict) else None
        if form is not None and isinstance(rid, str) and stored.get(rid) == form:
            yield h, "stored", []
            continue
        row = quarantine.get(payload_hash(h.record))
        if row is not None:
            yield h, "quarantined", [k.split(":")[-1] for k in row["reason_codes"].split(",")]
            continue
        yield h, "lost", []


def _table(outcomes: Sequence[tuple[Hostile, str, list[str]]], title: str) -> str:
    by_category: dict[str, Counter[str]] = defaultdict(Counter)
    reasons: dict[str, Counter[str]] = defaultdict(Counter)
    for h, outcome, codes in outcomes:
        by_category[h.category][outcome] += 1
        reasons[h.category].update(codes)
    lines = [
        f"\n{title}",
        f"{'category':<27} {'served':>6} {'stored':>6} {'quar.':>6} {'lost':>5}  reasons",
    ]
    for category in [*CATEGORIES, DUPLICATES]:
        c = by_category[category]
        top = ", ".join(f"{k} {n}" for k, n in reasons[category].most_common(6))
        lines.append(
            f"{category:<27} {sum(c.values()):>6} {c['stored']:>6} {c['quarantined']:>6} "
            f"{c['lost']:>5}  {top}"
        )
    total = Counter(o for _, o, _ in outcomes)
    lines.append(
        f"{'total':<27} {len(outcomes):>6} {total['stored']:>6} {total['quarantined']:>6} "
        f"{total['lost']:>5}"
    )
    return "\n".join(lines)


_REASON_ROW = re.compile(r"^\| `(?P<key>[^`]*)` \| [0-9,]+ \|$")


def _assert_report_renders_no_markup(summary: dict[str, Any]) -> None:
    markdown = sync_markdown(summary, "Registry sync")
    for text in INJECTIONS:
        assert text not in markdown
    for line in markdown.splitlines():
        found = _REASON_ROW.match(line)
        if found:
            # Reason keys are contract field names and codes, nothing a record wrote.
            assert re.fullmatch(r"registry\.households/(?:[a-z_.*]+:)?[a-z_]+", found["key"]), line
    assert "<" not in markdown and "](" not in markdown


@pytest.mark.parametrize(
    "store_url", ["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)], indirect=True
)
def test_hostile_records_are_stored_verbatim_or_quarantined_never_lost(
    hostile: list[Hostile], store_url: str
) -> None:
    assert len(hostile) >= 1000
    sizes = Counter(h.category for h in hostile)
    assert all(sizes[c] >= 50 for c in [*CATEGORIES, DUPLICATES]), sizes
    store = make_engine(store_url)
    try:
        summary = _sync(store, hostile)
        outcomes = list(_outcomes(hostile, _stored(store), _quarantined(store)))
        print(_table(outcomes, f"hostile records into {store.dialect.name}"))

        wrong = [
            (h.category, outcome, codes, repr(h.record)[:120])
            for h, outcome, codes in outcomes
            if outcome != h.expect or (h.reason is not None and h.reason not in codes)
        ]
        assert not wrong, wrong[:10]
        assert not [h for h, o, _ in outcomes if o == "lost"]
        # Every quarantined record says why; the store holds no record it did not serve.
        quarantine = _quarantined(store)
        assert all(
            row["reason_codes"] and json.loads(row["reasons"]) for row in quarantine.values()
        )
        served_ids = {h.record.get("id") for h in hostile if isinstance(h.record, dict)}
        assert set(_stored(store)) <= served_ids
        # Injection text is valid text, stored verbatim (checked field by field above).
        stored_injections = [h for h, o, _ in outcomes if h.category == "injection text"]
        assert stored_injections and all(h.expect == "stored" for h in stored_injections)
        totals = summary["totals"][SOURCE]
        assert totals["fetched"] == len(hostile)
        assert totals["quarantined"] == sum(1 for _, o, _ in outcomes if o == "quarantined")
        _assert_report_renders_no_markup(summary)

        # A full resync reads everything again: nothing fails, nothing changes.
        before = (_stored(store), {k: v["reason_codes"] for k, v in quarantine.items()})
        again = _sync(store, hostile, full=True)
        assert again["totals"][SOURCE]["upserted"] == 0
        after = (_stored(store), {k: v["reason_codes"] for k, v in _quarantined(store).items()})
        assert after == before
        _assert_report_renders_no_markup(again)
    finally:
        store.dispose()


@pytest.mark.postgres
@pytest.mark.parametrize("store_url", ["postgresql"], indirect=True)
def test_a_nul_in_a_member_name_quarantines_only_its_household_on_postgresql(
    store_url: str,
) -> None:
    kec = "35.78.01"
    records = [
        Hostile("valid", kec, household(i, updated_at=f"2026-01-05T08:00:{i:02d}+07:00"), "stored")
        for i in range(1, 40)
    ]
    bad = household(
        40,
        updated_at="2026-01-05T08:00:40+07:00",
        members=[member(401), member(402, name="Siti\x00Aminah")],
    )
    records.insert(17, Hostile("control characters", kec, bad, "quarantined"))
    # The same id's quarantine row must not break on PostgreSQL either.
    nul_id = household(41, updated_at="2026-01-05T08:00:41+07:00")
    nul_id["id"] = "HH-41\x00"
    records.append(Hostile("broken ids", kec, nul_id, "quarantined"))
    store = make_engine(store_url)
    try:
        summary = _sync(store, records)
        stored = _stored(store)
        assert sorted(stored) == sorted(f"HH-{i}" for i in range(1, 40))
        quarantine = _quarantined(store)
        assert len(quarantine) == 2
        row = quarantine[payload_hash(bad)]
        assert row["record_id"] == "HH-40"
        assert row["reason_codes"] == "members.name:control_character"
        assert json.loads(row["payload"])["members"][1]["name"] == "Siti\x00Aminah"
        nul_row = quarantine[payload_hash(nul_id)]
        assert nul_row["record_id"] is None
        assert summary["totals"][SOURCE]["quarantined"] == 2
        # The rerun the defect blocked for good: it passes and changes nothing.
        again = _sync(store, records, full=True)
        assert again["totals"][SOURCE]["upserted"] == 0
        assert sorted(_stored(store)) == sorted(stored)
    finally:
        store.dispose()
