"""The one streaming sync loop of every source in the catalogue (`models.sources`).

`stream_source` reads a source's partitions ahead in a thread, prepares pages in order (in
worker processes when configured) and commits groups of pages with their rows, quarantine
and cursors in one transaction each. `sync_source` is the Prefect-free entry point with
the settings' defaults; the Prefect tasks in `tasks.sync` wrap it.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Iterator, Sequence
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import Connection, Engine

from integrations.agencies.client import AgencyClient, FetchedPage
from integrations.settings import get_settings
from integrations.store.bulk import keyed_plans, stored_rows
from integrations.store.cursors import CursorState, load_cursor
from integrations.store.engine import write_lock
from integrations.store.pages import PageCounts, write_source_page
from integrations.store.tables import table_of
from integrations.sync.prefetch import prefetch
from integrations.sync.workers import ordered_map, tune_collector_for_bulk
from models.prepared import PreparedPage
from models.sources import SourceSpec, prepare_page, prepare_page_body, source_spec
from models.validation import Rejection, conflict_rejection

__all__ = ["ALL", "PageWriter", "stream_source", "sync_source"]

ALL = "all"
"""Partition of a source read whole, without a kecamatan filter."""


PageWriter = Callable[..., PageCounts]
"""Writes a prepared page with its quarantine and cursor: `write_source_page`'s signature."""


def _pages(
    client: AgencyClient,
    collection: str,
    plans: Sequence[tuple[str | None, CursorState]],
    limit: int,
) -> Iterator[tuple[CursorState, FetchedPage]]:
    for kecamatan, state in plans:
        pages = client.iter_pages(
            collection,
            updated_since=state.pass_since,
            kecamatan=kecamatan,
            limit=limit,
            start_cursor=state.cursor,
        )
        for page, _resume in pages:
            yield state, page


def stream_source(
    engine: Engine,
    client: AgencyClient,
    spec: SourceSpec,
    kecamatan: Sequence[str] | None,
    *,
    limit: int,
    key: bytes,
    full: bool = False,
    processes: int = 0,
    group_records: int = 1,
    write: PageWriter = write_source_page,
) -> PageCounts:
    """Stream a source's pages in order; each page's rows and cursor commit together.

    `kecamatan` None reads the source whole as partition "all"; otherwise each kecamatan is
    a partition read with the agency's `kecamatan` filter. Three stages overlap: the next
    pages are fetched in a thread, pages are prepared in `processes` worker processes (here
    when 0), and this thread writes them in order.
    """
    if client.agency != spec.agency:
        raise ValueError(f"a {client.agency} client cannot read {spec.name}")
    tune_collector_for_bulk()
    partitions: list[tuple[str, str | None]] = (
        [(ALL, None)] if kecamatan is None else [(kec, kec) for kec in kecamatan]
    )
    plans: list[tuple[str | None, CursorState]] = []
    with engine.connect() as conn:
        for partition, kec in partitions:
            state = load_cursor(conn, spec.name, partition)
            if not state.in_pass:
                state.start_pass(full=full)
            plans.append((kec, state))

    def jobs() -> Iterator[tuple[tuple[Any, ...], tuple[Any, ...]]]:
        for state, page in prefetch(_pages(client, spec.collection, plans, limit)):
            read_at = datetime.now(UTC)
            # The records and their reading time stay with the page: a record contradicting
            # a stored one of the same id and version is only found at write time. A worker
            # process gets the body as served and decodes it itself.
            yield (
                (state, page.next_cursor, page.records, read_at),
                (spec.name, page.body if processes > 0 else page.records, key, read_at),
            )

    counts = PageCounts()
    prepare = prepare_page_body if processes > 0 else prepare_page
    results = ordered_map(prepare, jobs(), processes=processes)
    # Pages are committed in groups of about `group_records` records: each group's rows and
    # the cursors of its pages commit together, so a crash resumes after the last group, and
    # indexes on random tokens are written once per group instead of once per page.
    while True:
        with write_lock(engine), engine.begin() as conn:
            keyed_plans(conn)
            pending = 0
            for (state, next_cursor, records, read_at), prepared in results:
                checked = without_conflicts(conn, spec, prepared, records, key, read_at)
                page = write(conn, spec.name, checked, state, next_cursor, now=datetime.now(UTC))
                counts.add(page)
                pending += page.fetched
                if pending >= group_records:
                    break
            else:
                return counts


# Columns the hub sets itself: a stored row that differs only there is the same record.
_HUB_COLUMNS = frozenset({"synced_at", "applied_at", "outcome"})


def _plain(value: Any) -> Any:
    # SQLite gives back naive UTC times, PostgreSQL aware ones, the page aware UTC ones.
    if isinstance(value, datetime) and value.tzinfo is not None:
        return value.astimezone(UTC).replace(tzinfo=None)
    return value


def _content(row: dict[str, Any], columns: Sequence[str]) -> tuple[Any, ...]:
    return tuple(_plain(row.get(c)) for c in columns)


def _valid_positions(
    page: PreparedPage, records: Sequence[Any], ids: set[str]
) -> dict[str, list[int]]:
    """Positions in `records` of the valid records with one of `ids`, in serving order.

    The n-th row with an id was built from the n-th valid record with that id.
    """
    rejected = {rej.payload_hash for rej in page.rejected if rej.record_id in ids}
    out: dict[str, list[int]] = {}
    for j, raw in enumerate(records):
        rid = raw.get("id") if isinstance(raw, dict) else None
        if rid in ids and Rejection(None, (), raw).payload_hash not in rejected:
            out.setdefault(rid, []).append(j)
    return out


def without_conflicts(
    conn: Connection,
    spec: SourceSpec,
    page: PreparedPage,
    records: Sequence[Any],
    key: bytes,
    read_at: datetime,
) -> PreparedPage:
    """The page without records that contradict a stored record of the same id and version.

    A record whose id and `updated_at` are stored, or earlier on the page, with other
    content (its own row or its child rows) is quarantined (`duplicate_conflict`) instead of
    being dropped unseen by the newer-wins write, which keeps the first version; the page is
    then prepared again without it, so each record keeps its own child rows.
    """
    rows = page.rows
    if not rows:
        return page
    ids = [row["id"] for row in rows]
    distinct = list(dict.fromkeys(ids))
    table = table_of(spec.table)
    versions = {
        r["id"]: _plain(r["updated_at"])
        for r in stored_rows(conn, table, "id", distinct, columns=("id", "updated_at"))
    }
    same = {
        row["id"]
        for row in rows
        if row["id"] in versions and versions[row["id"]] == _plain(row["updated_at"])
    }
    repeated = {i for i, n in Counter(ids).items() if n > 1} if len(distinct) < len(ids) else set()
    if not same and not repeated:
        return page
    columns = sorted(set(rows[0]) - _HUB_COLUMNS)
    child = table_of(spec.children) if spec.children is not None else None
    kid_columns = sorted(set(page.children[0]) - _HUB_COLUMNS) if page.children else []

    def kids_of(children: Sequence[dict[str, Any]], wanted: set[str]) -> dict[str, frozenset[Any]]:
        grouped: dict[str, set[tuple[Any, ...]]] = {}
        for c in children:
            if c[spec.child_key] in wanted:
                grouped.setdefault(c[spec.child_key], set()).add(_content(c, kid_columns))
        return {k: frozenset(v) for k, v in grouped.items()}

    # What each candidate row holds: its own row and its child rows. A record whose id is
    # on the page once owns the page's child rows of that id; repeats (rare) cannot be told
    # apart in the page, so each is prepared alone.
    once = same - repeated
    page_kids = kids_of(page.children, once) if child is not None else {}
    positions = _valid_positions(page, records, repeated) if repeated else {}
    alone: dict[int, tuple[Any, ...]] = {}
    for rid in repeated:
        for j in positions.get(rid, []):
            single = prepare_page(spec.name, [records[j]], key, read_at)
            if single.rows:
                solo = single.rows[0]
                alone[j] = (_content(solo, columns), kids_of(single.children, {rid}).get(rid))

    seen: dict[str, tuple[Any, Any]] = {}
    if same:
        stored_kids = (
            kids_of(stored_rows(conn, child, spec.child_key, sorted(same)), same)
            if child is not None
            else {}
        )
        for stored in stored_rows(conn, table, "id", sorted(same)):
            rid = stored["id"]
            seen[rid] = (
                _plain(stored["updated_at"]),
                (_content(stored, columns), stored_kids.get(rid)),
            )
    for rid, version in versions.items():
        # A stored newer version: older rows on the page are not written, nothing to compare.
        seen.setdefault(rid, (version, None))

    dropped: set[int] = set()
    occurrence: Counter[str] = Counter()
    for row in rows:
        rid = row["id"]
        k = occurrence[rid]
        occurrence[rid] += 1
        if rid in repeated:
            spots = positions.get(rid, [])
            if k >= len(spots) or spots[k] not in alone:
                continue
            j = spots[k]
            content: Any = alone[j]
        elif rid in same:
            j = -1
            content = (_content(row, columns), page_kids.get(rid))
        else:
            continue
        version = _plain(row["updated_at"])
        first = seen.get(rid)
        if first is None or version > first[0]:
            seen[rid] = (version, content)
        elif version == first[0] and content != first[1]:
            if j < 0:
                j = _valid_positions(page, records, {rid})[rid][0]
            dropped.add(j)
    if not dropped:
        return page
    kept = [raw for j, raw in enumerate(records) if j not in dropped]
    again = prepare_page(spec.name, kept, key, read_at)
    again.rejected.extend(conflict_rejection(records[j]) for j in sorted(dropped))
    return again


def sync_source(
    engine: Engine,
    client: AgencyClient,
    source: str,
    kecamatan: Sequence[str] | None,
    *,
    limit: int | None = None,
    key: bytes | None = None,
    full: bool = False,
    processes: int = 0,
    group_records: int = 1,
) -> PageCounts:
    """Sync one source (`<agency>.<collection>`) into the store; returns its counts.

    `kecamatan` lists the partitions of a per-kecamatan source; None reads it whole. A
    source read whole (the office inbox's decisions) refuses a kecamatan list. Page size and
    PII key default to the settings.
    """
    spec = source_spec(source)
    if kecamatan is not None and not spec.partitioned:
        raise ValueError(f"{spec.name} is read whole (partition {ALL!r}), not per kecamatan")
    settings = get_settings()
    return stream_source(
        engine,
        client,
        spec,
        kecamatan,
        limit=limit or settings.page_limit,
        key=key or settings.pii_key.get_secret_value().encode(),
        full=full,
        processes=processes,
        group_records=group_records,
    )
