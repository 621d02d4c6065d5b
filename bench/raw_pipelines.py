"""The two raw baselines of `bench/sync_throughput.py`: one thread each, no Prefect, no engine.

same-validation  httpx GET, orjson decoding, the hub's own `prepare_page` (its pydantic
                 contract, NIK/No. KK and region rules, tokens, row builders), DB-API
                 `executemany` newer-wins upserts of the same tables, the stale-member
                 delete and the quarantine, in groups of about 5,000 records per commit.
fast             httpx GET, orjson decoding, hand-written typed checks of the same rules
                 (format, region, dates, serial, text), the same tokens and rows, the same
                 `executemany` writes.

Both write into a store created by the hub's own migrations, so every index the checks and
look-ups need is there and is paid for.
"""

from __future__ import annotations

import hashlib
import json
import re
import sqlite3
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from typing import Any

import httpx
import orjson
from sqlalchemy import create_engine, make_url, text

from models.identity import PROVINCE_CODES, IdFormatError, id_token, normalise_id
from models.plausibility import EARLIEST_BIRTH_DATE, RECORD_ID, REGISTRY_EPOCH
from models.scope import WHOLE_PROVINCE
from models.wilayah import get_region_registry, normalise_region_code

HOUSEHOLD_COLUMNS = [
    "id",
    "no_kk",
    "kk_token",
    "desa_code",
    "kecamatan_code",
    "kabupaten_code",
    "address",
    "desil",
    "member_count",
    "updated_at",
    "synced_at",
]
MEMBER_COLUMNS = [
    "id",
    "household_id",
    "nik",
    "nik_token",
    "name",
    "sex",
    "birth_date",
    "relationship",
    "status",
    "updated_at",
]
ENROLMENT_COLUMNS = [
    "id",
    "programme",
    "household_id",
    "nik_token",
    "kk_token",
    "desa_code",
    "kecamatan_code",
    "period",
    "status",
    "updated_at",
    "synced_at",
]
QUARANTINE_COLUMNS = [
    "source",
    "partition",
    "record_id",
    "payload_hash",
    "reason_codes",
    "reasons",
    "payload",
    "status",
    "first_seen",
    "last_seen",
    "seen_count",
]
TABLES = {
    table: [c for c in columns if c != "synced_at"]
    for table, columns in (
        ("household", HOUSEHOLD_COLUMNS),
        ("member", MEMBER_COLUMNS),
        ("enrolment", ENROLMENT_COLUMNS),
    )
}
"""The tables a registry sync fills, with the columns the bench compares (not `synced_at`)."""

GROUP_RECORDS = 5000
"""Records per commit, as the hub's `CETTAR_COMMIT_RECORDS` default."""


def _upsert(table: str, columns: Sequence[str], mark: str) -> str:
    sets = ", ".join(f"{c}=excluded.{c}" for c in columns if c != "id")
    return (
        f"INSERT INTO {table} ({', '.join(columns)}) VALUES ({', '.join([mark] * len(columns))})"
        f" ON CONFLICT(id) DO UPDATE SET {sets} WHERE excluded.updated_at > {table}.updated_at"
    )


def _quarantine_sql(mark: str) -> str:
    return (
        f"INSERT INTO quarantine ({', '.join(QUARANTINE_COLUMNS)})"
        f" VALUES ({', '.join([mark] * len(QUARANTINE_COLUMNS))})"
        " ON CONFLICT(source, payload_hash) DO UPDATE SET last_seen=excluded.last_seen,"
        " seen_count=quarantine.seen_count+excluded.seen_count"
    )


def _sqlite_time(value: datetime) -> str:
    # What SQLAlchemy's SQLite DateTime writes: the UTC wall time, always with microseconds.
    return f"{value:%Y-%m-%d %H:%M:%S.%f}"


class RawStore:
    """A DB-API connection to a store made by the hub's migrations, and its write statements."""

    def __init__(self, url: str) -> None:
        from integrations.store.engine import make_engine, upgrade

        engine = make_engine(url)
        upgrade(engine, "heads")
        engine.dispose()
        parsed = make_url(url)
        self.sqlite = parsed.get_backend_name() == "sqlite"
        if self.sqlite:
            conn: Any = sqlite3.connect(parsed.database or "", isolation_level=None)
            for pragma in (
                "journal_mode=WAL",
                "synchronous=NORMAL",
                "cache_size=-32768",
            ):
                conn.execute(f"PRAGMA {pragma}")
            mark = "?"
        else:
            import psycopg

            conn = psycopg.connect(
                parsed.set(drivername="postgresql").render_as_string(hide_password=False)
            )
            mark = "%s"
        self.conn = conn
        self.household = _upsert("household", HOUSEHOLD_COLUMNS, mark)
        self.member = _upsert("member", MEMBER_COLUMNS, mark)
        self.enrolment = _upsert("enrolment", ENROLMENT_COLUMNS, mark)
        self.quarantine = _quarantine_sql(mark)
        # Members older than their just-written household have left it.
        self.stale = (
            f"DELETE FROM member WHERE household_id = {mark}"
            f" AND updated_at < (SELECT updated_at FROM household WHERE id = {mark})"
        )

    def time(self, value: datetime) -> Any:
        """A UTC time as the store's column takes it."""
        return _sqlite_time(value) if self.sqlite else value

    def write(self, batch: Batch) -> None:
        """One transaction: the group's rows, stale members and quarantine."""
        cur = self.conn.cursor()
        if self.sqlite:
            cur.execute("BEGIN")
        if batch.households:
            cur.executemany(self.household, batch.households)
        if batch.members:
            cur.executemany(self.member, batch.members)
        if batch.household_ids:
            cur.executemany(self.stale, [(h, h) for h in batch.household_ids])
        if batch.enrolments:
            cur.executemany(self.enrolment, batch.enrolments)
        if batch.quarantine:
            cur.executemany(self.quarantine, list(batch.quarantine.values()))
        self.conn.commit()
        batch.clear()

    def close(self) -> None:
        """Close the connection."""
        self.conn.close()


@dataclass
class Batch:
    """Rows waiting for the next commit, as parameter tuples."""

    households: list[tuple[Any, ...]] = field(default_factory=list)
    members: list[tuple[Any, ...]] = field(default_factory=list)
    household_ids: list[str] = field(default_factory=list)
    enrolments: list[tuple[Any, ...]] = field(default_factory=list)
    quarantine: dict[str, tuple[Any, ...]] = field(default_factory=dict)
    records: int = 0

    def clear(self) -> None:
        """Empty the batch after a commit."""
        self.households.clear()
        self.members.clear()
        self.household_ids.clear()
        self.enrolments.clear()
        self.quarantine.clear()
        self.records = 0


@dataclass
class Counts:
    """What a raw pipeline read and wrote."""

    records: int = 0
    valid: int = 0
    rejected: int = 0
    members: int = 0
    pages: int = 0


def pages(
    client: httpx.Client, collection: str, kecamatan: str, limit: int, waits: list[float]
) -> Iterator[list[Any]]:
    """The records of every page of one kecamatan, following next_cursor."""
    params: dict[str, Any] = {"kecamatan": kecamatan, "limit": limit}
    while True:
        asked = time.perf_counter()
        resp = client.get(f"/v1/{collection}", params=params)
        waits[0] += time.perf_counter() - asked
        resp.raise_for_status()
        try:
            page = orjson.loads(resp.content)
        except orjson.JSONDecodeError:
            # orjson refuses what Python's json reads (NaN, huge integers): the page is still
            # a page, so it is read the slow way rather than dropped.
            page = json.loads(resp.content)
        yield page["data"]
        cursor = page["next_cursor"]
        if not cursor:
            return
        params["cursor"] = cursor


def run(
    mode: str,
    registry_url: str,
    token: str,
    database_url: str,
    limit: int,
    collections: Sequence[str],
    key: bytes,
) -> dict[str, Any]:
    """Sync the whole province's pages with one raw pipeline; figures of the timed part."""
    from models.validation import validate_batch

    del validate_batch  # imported before timing, like the hub's modules
    store = RawStore(database_url)
    build = _same_validation(store, key) if mode == "raw" else _fast(store, key)
    counts = Counts()
    batch = Batch()
    # Wall seconds waiting for HTTP answers and in commits (DB-API executemany included).
    waits = [0.0, 0.0]

    def write() -> None:
        begun = time.perf_counter()
        store.write(batch)
        waits[1] += time.perf_counter() - begun

    started, cpu = time.perf_counter(), time.process_time()
    with httpx.Client(
        base_url=registry_url, headers={"Authorization": f"Bearer {token}"}, timeout=60
    ) as client:
        # The hub's order: one partition (kabupaten/kota) after another, each collection
        # of it kecamatan by kecamatan.
        for kecamatan in WHOLE_PROVINCE.partitions().values():
            for collection in collections:
                for kec in kecamatan:
                    for records in pages(client, collection, kec, limit, waits):
                        counts.pages += 1
                        build(collection, kec, records, batch, counts)
                        if batch.records >= GROUP_RECORDS:
                            write()
        write()
    seconds, cpu = time.perf_counter() - started, time.process_time() - cpu
    store.close()
    return {
        "records": counts.records,
        "stored": counts.valid,
        "quarantined": counts.rejected,
        "members": counts.members,
        "pages": counts.pages,
        "seconds": seconds,
        "cpu_s": cpu,
        "http_wait_s": waits[0],
        "write_s": waits[1],
    }


Builder = Callable[[str, str, list[Any], Batch, Counts], None]


# --------------------------------------------------------------------- same validation


def _same_validation(store: RawStore, key: bytes) -> Builder:
    """Pages through the hub's own `prepare_page`, rows written as DB-API tuples."""
    from integrations.store.quarantine import reasons_json
    from models.sources import prepare_page

    ts = store.time

    def build(
        collection: str, partition: str, records: list[Any], batch: Batch, counts: Counts
    ) -> None:
        now = datetime.now(UTC)
        page = prepare_page(f"registry.{collection}", records, key, now)
        counts.records += page.fetched
        counts.valid += len(page.rows)
        counts.rejected += len(page.rejected)
        batch.records += page.fetched
        if collection == "households":
            for r in page.rows:
                batch.households.append(
                    (
                        *(r[c] for c in HOUSEHOLD_COLUMNS[:9]),
                        ts(r["updated_at"]),
                        ts(r["synced_at"]),
                    )
                )
                batch.household_ids.append(r["id"])
            for m in page.children:
                batch.members.append((*(m[c] for c in MEMBER_COLUMNS[:9]), ts(m["updated_at"])))
            counts.members += len(page.children)
        else:
            for r in page.rows:
                batch.enrolments.append(
                    (
                        *(r[c] for c in ENROLMENT_COLUMNS[:9]),
                        ts(r["updated_at"]),
                        ts(r["synced_at"]),
                    )
                )
        seen = ts(now)
        source = f"registry.{collection}"
        for rej in page.rejected:
            digest = rej.payload_hash
            batch.quarantine[digest] = (
                source,
                partition,
                rej.record_id,
                digest,
                ",".join(rej.reason_codes)[:400],
                reasons_json(rej),
                rej.payload_json,
                "open",
                seen,
                seen,
                1,
            )

    return build


# ------------------------------------------------------------------------------ fast


_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f]")
_SEXES = frozenset({"L", "P"})
_RELATIONSHIPS = frozenset({"kepala", "pasangan", "anak", "lainnya"})
_MEMBER_STATUSES = frozenset({"active", "deceased", "moved"})
_PROGRAMMES = frozenset({"PKH", "BPNT"})
_ENROLMENT_STATUSES = frozenset({"active", "suspended", "ended"})
_PERIOD = re.compile(r"20\d\d-Q[1-4]")
_EPOCH_UTC = REGISTRY_EPOCH.astimezone(UTC)
_EARLIEST_BIRTH = EARLIEST_BIRTH_DATE.isoformat()


class Reject(Exception):
    """A record the fast checks refuse, with the field and rule."""


def _line(value: Any, most: int, *, optional: bool = False) -> str:
    if type(value) is not str or len(value) > most:
        raise Reject("text")
    if _CONTROL.search(value):
        raise Reject("control_character")
    if not value.strip() and not (optional and value == ""):
        raise Reject("blank_text")
    return value


def _record_id(value: Any) -> str:
    if type(value) is not str or RECORD_ID.fullmatch(value) is None:
        raise Reject("id")
    return value


@dataclass(frozen=True)
class _Rules:
    """Region look-ups and the validation clock of one run."""

    kabupaten: frozenset[str]
    desa: frozenset[str]
    today: date
    latest: datetime

    @classmethod
    def now(cls) -> _Rules:
        reg = get_region_registry()
        now = datetime.now(UTC)
        return cls(
            frozenset(r.code.replace(".", "") for r in reg.kabupaten_kota()),
            frozenset(v.code for v in reg.villages()),
            date.today(),
            now + timedelta(days=1),
        )

    def digits(self, value: Any) -> str:
        """16 ASCII digits of a NIK or No. KK, separators removed, or Reject."""
        if type(value) is str and len(value) == 16 and value.isascii() and value.isdigit():
            return value
        try:
            return normalise_id(value)
        except IdFormatError:
            raise Reject("id_format") from None

    def region_and_serial(self, d: str) -> None:
        if d[:2] not in PROVINCE_CODES or (d[:2] == "35" and d[:4] not in self.kabupaten):
            raise Reject("id_region")
        if d[12:] == "0000":
            raise Reject("id_serial")

    def past_date(self, day: int, month: int, yy: int) -> None:
        # The century is not encoded: 20YY unless that is in the future, else 19YY.
        for year in (2000 + yy, 1900 + yy):
            try:
                if date(year, month, day) <= self.today:
                    return
            except ValueError:
                raise Reject("id_date") from None
        raise Reject("id_future")

    def nik(self, value: Any) -> str:
        d = self.digits(value)
        self.region_and_serial(d)
        day = int(d[6:8])
        if day > 40:
            day -= 40
        if not 1 <= day <= 31:
            raise Reject("nik_day")
        self.past_date(day, int(d[8:10]), int(d[10:12]))
        return d

    def no_kk(self, value: Any) -> str:
        d = self.digits(value)
        self.region_and_serial(d)
        self.past_date(int(d[6:8]), int(d[8:10]), int(d[10:12]))
        return d

    def desa_code(self, value: Any) -> str:
        if type(value) is not str or _CONTROL.search(value):
            raise Reject("desa_code")
        if value in self.desa:
            return value
        try:
            code = normalise_region_code(value)
        except ValueError:
            raise Reject("desa_code") from None
        if code not in self.desa:
            raise Reject("region_code_unknown")
        return code

    def record_time(self, value: Any) -> datetime:
        if type(value) is not str:
            raise Reject("datetime_type")
        try:
            when = datetime.fromisoformat(value)
        except ValueError:
            raise Reject("datetime_format") from None
        if when.tzinfo is None or len(value) < 20 or value[10] not in "Tt ":
            raise Reject("datetime_format")
        when = when.astimezone(UTC)
        if when < _EPOCH_UTC:
            raise Reject("date_too_early")
        if when > self.latest:
            raise Reject("date_in_future")
        return when

    def birth_date(self, value: Any) -> date:
        if type(value) is not str or len(value) != 10:
            raise Reject("date_type")
        try:
            born = date.fromisoformat(value)
        except ValueError:
            raise Reject("date_format") from None
        if value < _EARLIEST_BIRTH or born > self.today + timedelta(days=1):
            raise Reject("date_range")
        return born


def _fast(store: RawStore, key: bytes) -> Builder:
    """Hand-written checks of the same rules, the same tokens and rows."""
    rules = _Rules.now()
    ts = store.time

    def household(raw: Any, now: Any, batch: Batch) -> int:
        if type(raw) is not dict:
            raise Reject("model_type")
        hid = _record_id(raw.get("id"))
        no_kk = rules.no_kk(raw.get("no_kk"))
        desa = rules.desa_code(raw.get("desa_code"))
        address = _line(raw.get("address", ""), 200, optional=True)
        desil = raw.get("desil")
        if desil is not None and (type(desil) is not int or not 1 <= desil <= 10):
            raise Reject("desil")
        updated = ts(rules.record_time(raw.get("updated_at")))
        members = raw.get("members")
        if type(members) is not list or not 1 <= len(members) <= 30:
            raise Reject("members")
        rows = []
        niks: set[str] = set()
        ids: set[str] = set()
        for m in members:
            if type(m) is not dict:
                raise Reject("member_type")
            nik = rules.nik(m.get("nik"))
            sex = m.get("sex")
            relationship = m.get("relationship")
            status = m.get("status", "active")
            if (
                sex not in _SEXES
                or relationship not in _RELATIONSHIPS
                or status not in _MEMBER_STATUSES
                or type(sex) is not str
                or type(relationship) is not str
                or type(status) is not str
            ):
                raise Reject("member_enum")
            mid = _record_id(m.get("id"))
            if nik in niks or mid in ids or nik == no_kk:
                raise Reject("value_error")
            niks.add(nik)
            ids.add(mid)
            rows.append(
                (
                    mid,
                    hid,
                    nik,
                    id_token(nik, key),
                    _line(m.get("name"), 120),
                    sex,
                    rules.birth_date(m.get("birth_date")).isoformat(),
                    relationship,
                    status,
                    updated,
                )
            )
        batch.households.append(
            (
                hid,
                no_kk,
                id_token(no_kk, key),
                desa,
                desa[:8],
                desa[:5],
                address,
                desil,
                len(rows),
                updated,
                now,
            )
        )
        batch.household_ids.append(hid)
        batch.members.extend(rows)
        return len(rows)

    def recipient(raw: Any, now: Any, batch: Batch) -> int:
        if type(raw) is not dict:
            raise Reject("model_type")
        programme, status, period = raw.get("programme"), raw.get("status"), raw.get("period")
        if (
            type(programme) is not str
            or programme not in _PROGRAMMES
            or type(status) is not str
            or status not in _ENROLMENT_STATUSES
            or type(period) is not str
            or _PERIOD.fullmatch(period) is None
        ):
            raise Reject("enum")
        desa = rules.desa_code(raw.get("desa_code"))
        batch.enrolments.append(
            (
                _record_id(raw.get("id")),
                programme,
                _record_id(raw.get("household_id")),
                id_token(rules.nik(raw.get("nik_pengurus")), key),
                id_token(rules.no_kk(raw.get("no_kk")), key),
                desa,
                desa[:8],
                period,
                status,
                ts(rules.record_time(raw.get("updated_at"))),
                now,
            )
        )
        return 0

    def build(
        collection: str, partition: str, records: list[Any], batch: Batch, counts: Counts
    ) -> None:
        now = ts(datetime.now(UTC))
        one = household if collection == "households" else recipient
        source = f"registry.{collection}"
        counts.records += len(records)
        batch.records += len(records)
        for raw in records:
            # A record appends its rows only once every check passed.
            try:
                counts.members += one(raw, now, batch)
                counts.valid += 1
            except Reject as exc:
                payload = orjson.dumps(raw, option=orjson.OPT_SORT_KEYS)
                digest = hashlib.sha256(payload).hexdigest()
                rid = raw.get("id") if type(raw) is dict else None
                batch.quarantine[digest] = (
                    source,
                    partition,
                    rid if type(rid) is str and RECORD_ID.fullmatch(rid) else None,
                    digest,
                    str(exc),
                    json.dumps([{"loc": "", "code": str(exc), "message": str(exc)}]),
                    payload.decode(),
                    "open",
                    now,
                    now,
                    1,
                )
                counts.rejected += 1

    return build


# --------------------------------------------------------------------------- checks


def _plain(value: Any) -> str:
    if isinstance(value, datetime):
        if value.tzinfo is not None:
            value = value.astimezone(UTC).replace(tzinfo=None)
        return _sqlite_time(value)
    if isinstance(value, date):
        return value.isoformat()
    return repr(value)


def table_checksums(database_url: str) -> dict[str, tuple[int, str]]:
    """Rows and SHA-256 of each registry table's content (without `synced_at`), by id."""
    engine = create_engine(database_url)
    out: dict[str, tuple[int, str]] = {}
    try:
        with engine.connect() as conn:
            for table, columns in TABLES.items():
                h = hashlib.sha256()
                n = 0
                result = conn.execution_options(stream_results=True).execute(
                    text(f"SELECT {', '.join(columns)} FROM {table} ORDER BY id")
                )
                for row in result:
                    h.update("\x1f".join(map(_plain, row)).encode())
                    h.update(b"\x1e")
                    n += 1
                out[table] = (n, h.hexdigest())
            n = conn.execute(text("SELECT count(*) FROM quarantine")).scalar_one()
            qh = hashlib.sha256()
            for row in conn.execute(
                text(
                    "SELECT source, payload_hash, reason_codes, payload FROM quarantine"
                    " ORDER BY source, payload_hash"
                )
            ):
                qh.update("\x1f".join(map(str, row)).encode())
            out["quarantine"] = (int(n), qh.hexdigest())
    finally:
        engine.dispose()
    return out
