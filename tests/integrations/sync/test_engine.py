"""The shared streaming loop on a scripted agency: partitions, cursors, groups and crashes."""

from __future__ import annotations

from datetime import datetime
from typing import Any

import httpx
import pytest
from sqlalchemy import Engine, func, select

from integrations.agencies.client import AgencyClient
from integrations.agencies.http import RetryingTransport, RetryPolicy
from integrations.settings import Settings
from integrations.store.cursors import CursorState
from integrations.store.pages import PageCounts, write_source_page
from integrations.store.tables import BLT, CURSOR, QUARANTINE, source_table
from integrations.sync.engine import ALL, stream_source, sync_source
from models.prepared import PreparedPage
from models.sources import source_spec
from tests.models.test_sources import blt, decision

KEY = b"test-pii-key"
KECAMATAN = ["35.07.01", "35.07.02"]


def _at(i: int) -> str:
    return f"2026-10-{1 + i // 24:02d}T{i % 24:02d}:00:00+07:00"


def _blt_records() -> list[dict[str, Any]]:
    """Seven records in 35.07.01 (the newest has an unknown desa code) and three in
    35.07.02, each with its own version."""
    out = [blt(id=f"B1-{i}", desa_code="35.07.01.2001", updated_at=_at(i)) for i in range(6)] + [
        blt(id="B1-bad", desa_code="35.07.01.2999", updated_at=_at(6))
    ]
    out += [blt(id=f"B2-{i}", desa_code="35.07.02.2001", updated_at=_at(10 + i)) for i in range(3)]
    return out


class FakeAgency:
    """Serves records by the exchange contract: (updated_at, id) order, inclusive
    `updated_since`, optional `kecamatan` filter on the record's desa, offset cursors."""

    def __init__(self, records: list[dict[str, Any]]) -> None:
        self.records = records
        self.requests: list[httpx.Request] = []

    def __call__(self, request: httpx.Request) -> httpx.Response:
        self.requests.append(request)
        params = request.url.params
        rows = self.records
        if "kecamatan" in params:
            rows = [r for r in rows if r.get("desa_code", "").startswith(params["kecamatan"] + ".")]
        if "updated_since" in params:
            since = datetime.fromisoformat(params["updated_since"])
            rows = [r for r in rows if datetime.fromisoformat(r["updated_at"]) >= since]
        rows = sorted(rows, key=lambda r: (datetime.fromisoformat(r["updated_at"]), r["id"]))
        start = int(params.get("cursor", "0"))
        end = min(start + int(params["limit"]), len(rows))
        nxt = str(end) if end < len(rows) else None
        return httpx.Response(200, json={"data": rows[start:end], "next_cursor": nxt})


def _client(agency: str, fake: FakeAgency) -> AgencyClient:
    transport = RetryingTransport(
        httpx.MockTransport(fake),
        policy=RetryPolicy(max_attempts=2, backoff_base_s=0.0, backoff_max_s=0.0),
        sleep=lambda _: None,
    )
    return AgencyClient(
        agency, f"https://{agency}.test", "t", settings=Settings(), transport=transport
    )


def _ids(store: Engine) -> list[str]:
    with store.connect() as conn:
        return sorted(conn.execute(select(BLT.c.id)).scalars())


def _cursors(store: Engine) -> dict[tuple[str, str], dict[str, Any]]:
    with store.connect() as conn:
        return {
            (r["source"], r["partition"]): dict(r) for r in conn.execute(select(CURSOR)).mappings()
        }


def _quarantined(store: Engine) -> list[tuple[str, int]]:
    with store.connect() as conn:
        return sorted(
            (r.record_id, r.seen_count)
            for r in conn.execute(select(QUARANTINE.c.record_id, QUARANTINE.c.seen_count))
        )


# With a worker process, pages cross to it as the bodies served and are decoded there.
@pytest.mark.parametrize("processes", [0, 1])
def test_partitioned_source_syncs_per_kecamatan_then_incrementally(
    store: Engine, processes: int
) -> None:
    fake = FakeAgency(_blt_records())
    with _client("desa", fake) as client:
        counts = sync_source(
            store, client, "desa.blt-recipients", KECAMATAN, limit=3, key=KEY, processes=processes
        )
    assert (counts.fetched, counts.upserted, counts.quarantined) == (10, 9, 1)
    assert counts.reasons == {"desa_code:region_code_unknown": 1}
    assert counts.pages == 3 + 1  # 7 records in pages of 3, then 3 records
    assert len(_ids(store)) == 9
    assert _quarantined(store) == [("B1-bad", 1)]
    cursors = _cursors(store)
    assert set(cursors) == {("desa.blt-recipients", k) for k in KECAMATAN}
    assert all(c["cursor"] is None for c in cursors.values())
    assert {r.url.params["kecamatan"] for r in fake.requests} == set(KECAMATAN)

    # Only the new record changed. Each partition re-reads from its watermark (inclusive):
    # the newest valid record there, and the invalid one after it, which stays one
    # quarantine record seen twice.
    fake.requests.clear()
    fake.records.append(blt(id="B2-new", desa_code="35.07.02.2001", updated_at=_at(40)))
    with _client("desa", fake) as client:
        again = sync_source(
            store, client, "desa.blt-recipients", KECAMATAN, limit=3, key=KEY, processes=processes
        )
    assert (again.fetched, again.upserted, again.unchanged, again.quarantined) == (4, 1, 2, 1)
    assert all("updated_since" in r.url.params for r in fake.requests)
    assert _quarantined(store) == [("B1-bad", 2)]
    assert len(_ids(store)) == 10


def test_decisions_are_read_whole_as_partition_all(store: Engine) -> None:
    records = [
        decision(id=f"D-{i}", updated_at=f"2026-11-0{1 + i}T09:00:00+07:00") for i in range(5)
    ]
    fake = FakeAgency(records)
    with _client("kecamatan", fake) as client:
        counts = sync_source(store, client, "kecamatan.decisions", None, limit=2, key=KEY)
        with pytest.raises(ValueError, match="read whole"):
            sync_source(store, client, "kecamatan.decisions", ["35.07.01"], key=KEY)
    assert (counts.fetched, counts.upserted, counts.pages) == (5, 5, 3)
    assert all("kecamatan" not in r.url.params for r in fake.requests)
    assert list(_cursors(store)) == [("kecamatan.decisions", ALL)]
    with store.connect() as conn:
        n = conn.execute(select(func.count()).select_from(source_table("kecamatan.decisions")))
        assert n.scalar_one() == 5


def test_specs_and_clients_must_match() -> None:
    assert source_spec("statistik.submissions").partitioned
    assert not source_spec("kecamatan.decisions").partitioned
    assert source_spec("pkh.reports").name == "pkh.reports"
    with pytest.raises(ValueError, match=r"does not sync 'kecamatan\.handoffs'"):
        source_spec("kecamatan.handoffs")
    with (
        _client("pkh", FakeAgency([])) as client,
        pytest.raises(ValueError, match=r"a pkh client cannot read desa\.blt-recipients"),
    ):
        stream_source(
            None,  # type: ignore[arg-type]
            client,
            source_spec("desa.blt-recipients"),
            None,
            limit=1,
            key=KEY,
        )


class Crash(RuntimeError):
    """The process dies while writing a page."""


def _crashing_on(call: int) -> Any:
    calls = 0

    def write(
        conn: Any,
        source: str,
        page: PreparedPage,
        state: CursorState,
        next_cursor: str | None,
        *,
        now: datetime,
    ) -> PageCounts:
        nonlocal calls
        calls += 1
        if calls == call:
            raise Crash(f"killed at page {call}")
        return write_source_page(conn, source, page, state, next_cursor, now=now)

    return write


def test_a_crash_mid_group_keeps_the_last_group_only_and_resumes_exactly(store: Engine) -> None:
    spec = source_spec("desa.blt-recipients")
    fake = FakeAgency(_blt_records())
    # Pages of 2 records, groups of 4 records: pages 1-2 commit together, then the crash
    # while writing page 4 rolls back page 3 with it.
    with _client("desa", fake) as client, pytest.raises(Crash):
        stream_source(
            store,
            client,
            spec,
            ["35.07.01"],
            limit=2,
            key=KEY,
            group_records=4,
            write=_crashing_on(4),
        )
    assert _ids(store) == ["B1-0", "B1-1", "B1-2", "B1-3"]
    cursor = _cursors(store)[("desa.blt-recipients", "35.07.01")]
    assert cursor["cursor"] == "4" and cursor["pages"] == 2 and cursor["records"] == 4
    assert _quarantined(store) == []

    with _client("desa", fake) as client:
        resumed = stream_source(
            store, client, spec, ["35.07.01"], limit=2, key=KEY, group_records=4
        )
    # The resumed run reads only the pages after the committed cursor: nothing twice.
    assert (resumed.fetched, resumed.upserted, resumed.quarantined) == (3, 2, 1)
    assert _ids(store) == [f"B1-{i}" for i in range(6)]
    assert _quarantined(store) == [("B1-bad", 1)]
    final = _cursors(store)[("desa.blt-recipients", "35.07.01")]
    assert final["cursor"] is None and final["records"] == 7
