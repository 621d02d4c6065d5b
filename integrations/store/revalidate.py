"""Re-validation of stored rows against the current contracts: what no longer passes leaves.

A row in a source's table passed the contract of the day it was synced. When a contract
gets stricter, old rows would keep feeding the checks. Re-validation rebuilds each stored
row's wire record, runs today's contract on it (through `models.sources.prepare_page`, so
reasons carry the same codes as at sync time) and moves every row that fails to
quarantine with its reasons, deleting it (and a household's members) from its table so the
checks no longer match on it. Each batch commits its quarantine rows, its deletions and one
audit-chain row with the counts together; a second run finds nothing left to move.

What can be re-validated depends on what the row builders (`models/source_rows.py`) keep:

- whole records, every rule including cross-field rules: `registry.households` (the
  registry's own tables keep the No. KK and members' NIK in clear), `statistik.data-requests`,
  `statistik.submissions`, and `kecamatan.decisions` not yet applied to a handoff;
- stored fields only, for sources that keep people by keyed token: `registry.recipients`
  (no `nik_pengurus`, `no_kk`), `pkh.reports` (no `nik`), `desa.blt-recipients` (no `nik`,
  `no_kk`, `name`), `pertanian.farmer-needs` (no `nik`, `name`). A token cannot be turned
  back into its NIK, so rules on those fields, and cross-field rules (they run only once
  every field is valid), cannot be checked here; the other fields' rules are.

Free text was stored masked, and is validated as stored. A decision already applied has
moved its handoff and stays (what the hub did with it stays true). A record moved from a
token source carries a `revalidated_partial` reason: replay cannot restore it (its ids are
not in the payload); a full re-sync reads it again from the agency.
"""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime
from typing import Any

from sqlalchemy import ColumnElement, Connection, Engine, String, Table, delete, func, select, true

from integrations.store.audit import STORE_SUBJECT_PREFIX, ChainWriter
from integrations.store.common import CHUNK, chunks, in_scope, stored_utc
from integrations.store.engine import write_lock
from integrations.store.quarantine import PARTIAL_REASON, quarantine
from integrations.store.tables import MEMBER, table_of
from models.plain import AsDict
from models.scope import WHOLE_PROVINCE, RegionScope
from models.sources import CATALOGUE, SourceSpec, prepare_page, source_spec
from models.validation import Reason, Rejection

__all__ = [
    "PARTIAL_REASON",
    "REVALIDATE_SUBJECT",
    "Rebuild",
    "RevalidateCounts",
    "rebuild_of",
    "revalidate_source",
    "revalidate_store",
]

REVALIDATE_SUBJECT = f"{STORE_SUBJECT_PREFIX}revalidate"
"""Subject of re-validation's rows in the audit chain."""


def _iso(value: Any) -> Any:
    if isinstance(value, datetime):
        aware = stored_utc(value)
        return aware.isoformat() if aware is not None else None
    if isinstance(value, date):
        return value.isoformat()
    return value


def _plain(columns: Sequence[str]) -> Callable[[Mapping[str, Any]], dict[str, Any]]:
    def rebuild(row: Mapping[str, Any]) -> dict[str, Any]:
        return {c: _iso(row[c]) for c in columns}

    return rebuild


def _report(row: Mapping[str, Any]) -> dict[str, Any]:
    record = _plain(
        ("id", "kind", "facilitator_id", "kecamatan_code", "household_id", "reported_on")
    )(row)
    record["changes"] = json.loads(row["changes"]) if row["changes"] else None
    record["note"] = row["note"]
    record["updated_at"] = _iso(row["updated_at"])
    return record


def _data_request(row: Mapping[str, Any]) -> dict[str, Any]:
    record = _plain(("id", "kecamatan_code", "ksk_id", "title", "requested_on", "due_date"))(row)
    record["desa_codes"] = [c for c in row["desa_codes"].split(",") if c]
    record["updated_at"] = _iso(row["updated_at"])
    return record


_MEMBER_FIELDS = ("id", "nik", "name", "sex", "birth_date", "relationship", "status")


@dataclass(frozen=True)
class Rebuild:
    """How one source's stored rows become wire records again, and what cannot come back."""

    record: Callable[[Mapping[str, Any]], dict[str, Any]]
    # Contract fields the store keeps only as tokens (or not at all): never re-validated.
    unrecoverable: frozenset[str] = frozenset()
    # The row's kecamatan code, for the scope and the quarantine partition; None: read whole.
    kecamatan: Callable[[Table], ColumnElement[Any]] | None = None
    # Rows that are not re-validated at all (an applied decision stays).
    exclude: Callable[[Table], ColumnElement[bool]] | None = None
    # Households: members are rebuilt into the record and deleted with it.
    members: bool = False

    @property
    def partial(self) -> bool:
        """True when some of the contract's fields cannot be re-validated."""
        return bool(self.unrecoverable)


def _kecamatan_column(t: Table) -> ColumnElement[Any]:
    return t.c.kecamatan_code


def _kecamatan_of_desa(t: Table) -> ColumnElement[Any]:
    # A dotted desa code starts with its kecamatan's: 35.78.01.1001 -> 35.78.01.
    return func.substr(t.c.desa_code, 1, 8, type_=String)


_REBUILDS: dict[str, Rebuild] = {
    "registry.households": Rebuild(
        _plain(("id", "no_kk", "desa_code", "address", "desil", "updated_at")),
        kecamatan=_kecamatan_column,
        members=True,
    ),
    "registry.recipients": Rebuild(
        _plain(("id", "programme", "household_id", "desa_code", "period", "status", "updated_at")),
        unrecoverable=frozenset({"nik_pengurus", "no_kk"}),
        kecamatan=_kecamatan_column,
    ),
    "pkh.reports": Rebuild(_report, unrecoverable=frozenset({"nik"}), kecamatan=_kecamatan_column),
    "desa.blt-recipients": Rebuild(
        _plain(("id", "desa_code", "period", "status", "updated_at")),
        unrecoverable=frozenset({"nik", "no_kk", "name"}),
        kecamatan=_kecamatan_column,
    ),
    "pertanian.farmer-needs": Rebuild(
        _plain(
            (
                "id",
                "poktan_id",
                "desa_code",
                "land_area_ha",
                "commodity",
                "season",
                "urea_kg",
                "npk_kg",
                "updated_at",
            )
        ),
        unrecoverable=frozenset({"nik", "name"}),
        kecamatan=_kecamatan_column,
    ),
    "puskesmas.surveillance": Rebuild(
        _plain(
            (
                "id",
                "puskesmas_id",
                "desa_code",
                "week",
                "condition",
                "new_cases",
                "tests",
                "deaths",
                "updated_at",
            )
        ),
        kecamatan=_kecamatan_column,
    ),
    "statistik.data-requests": Rebuild(_data_request, kecamatan=_kecamatan_column),
    "statistik.submissions": Rebuild(
        _plain(("id", "request_id", "desa_code", "submitted_at", "updated_at")),
        kecamatan=_kecamatan_of_desa,
    ),
    # Decisions answer offices of every level and are read whole: province scope only.
    "kecamatan.decisions": Rebuild(
        _plain(
            (
                "id",
                "handoff_id",
                "office",
                "decision",
                "reason",
                "officer",
                "decided_at",
                "updated_at",
            )
        ),
        exclude=lambda t: t.c.applied_at.is_not(None),
    ),
}


def rebuild_of(source: str) -> Rebuild | None:
    """How `source`'s rows are rebuilt, or None when the store cannot rebuild them."""
    source_spec(source)  # an unknown source fails here, with the known ones named
    return _REBUILDS.get(source)


@dataclass(slots=True)
class RevalidateCounts(AsDict):
    """Outcome of re-validating one source: counts and reason codes, never a record."""

    source: str
    examined: int = 0
    quarantined: int = 0
    kept: int = 0
    # Rows whose validation raised instead of answering: kept, counted, never fatal.
    errors: int = 0
    # Why the source was not examined ("" when it was).
    skipped: str = ""
    # Contract fields this source's rows cannot be re-validated on (kept as tokens).
    unchecked: list[str] = field(default_factory=list)
    reasons: Counter[str] = field(default_factory=Counter)
    audit_rows: int = 0


def _where(table: Table, rebuild: Rebuild, scope: RegionScope) -> ColumnElement[bool]:
    condition: ColumnElement[bool] = true()
    if rebuild.exclude is not None:
        condition = condition & ~rebuild.exclude(table)
    if not scope.is_province and rebuild.kecamatan is not None:
        condition = condition & in_scope(scope, rebuild.kecamatan(table))
    return condition


def _pages(
    engine: Engine, table: Table, rebuild: Rebuild, condition: ColumnElement[bool], batch: int
) -> Iterator[list[dict[str, Any]]]:
    after = ""
    while True:
        with engine.connect() as conn:
            rows = [
                dict(r)
                for r in conn.execute(
                    select(table)
                    .where(condition, table.c.id > after)
                    .order_by(table.c.id)
                    .limit(batch)
                ).mappings()
            ]
            if rows and rebuild.members:
                _attach_members(conn, rows)
        if not rows:
            return
        yield rows
        after = rows[-1]["id"]


def _attach_members(conn: Connection, rows: list[dict[str, Any]]) -> None:
    members: dict[str, list[dict[str, Any]]] = {r["id"]: [] for r in rows}
    for ids in chunks(list(members)):
        stmt = (
            select(MEMBER)
            .where(MEMBER.c.household_id.in_(list(ids)))
            .order_by(MEMBER.c.household_id, MEMBER.c.id)
        )
        for m in conn.execute(stmt).mappings():
            members[m["household_id"]].append({f: _iso(m[f]) for f in _MEMBER_FIELDS})
    for row in rows:
        row["_members"] = members[row["id"]]


def _record(rebuild: Rebuild, row: Mapping[str, Any]) -> dict[str, Any]:
    record = rebuild.record(row)
    if rebuild.members:
        record["members"] = row["_members"]
    return record


def _kept_reasons(rejection: Rejection, unrecoverable: frozenset[str]) -> tuple[Reason, ...]:
    # A field the store does not keep is missing from the rebuilt record: not a finding.
    return tuple(r for r in rejection.reasons if r.loc.split(".", 1)[0] not in unrecoverable)


def _validate(
    source: str, records: list[dict[str, Any]], key: bytes, now: datetime
) -> tuple[dict[str, Rejection], set[str]]:
    """Rejections by record id, and the ids whose validation raised (kept, counted)."""
    try:
        page = prepare_page(source, records, key, now)
        return {str(r.record_id): r for r in page.rejected}, set()
    except Exception:  # a contract that raises on a rebuilt record must not stop the run
        rejected: dict[str, Rejection] = {}
        failed: set[str] = set()
        for record in records:
            try:
                one = prepare_page(source, [record], key, now)
            except Exception:
                failed.add(str(record["id"]))
                continue
            rejected.update({str(r.record_id): r for r in one.rejected})
        return rejected, failed


def _partial_reason(rebuild: Rebuild) -> Reason:
    fields = ", ".join(sorted(rebuild.unrecoverable))
    return Reason(
        loc="",
        code=PARTIAL_REASON,
        message=(
            f"rebuilt from the store without {fields} (kept as tokens): replay cannot "
            "restore it; a full re-sync reads it again"
        ),
    )


def _partition(row: Mapping[str, Any]) -> str:
    # The quarantine partition of the row's region, as a sync of it would have used.
    if row.get("kecamatan_code"):
        return str(row["kecamatan_code"])
    if row.get("desa_code"):
        return str(row["desa_code"])[:8]
    return "all"


def _audit_reason(source: str, reasons: Counter[str], moved: int, scope: RegionScope) -> str:
    listed = ", ".join(f"{code} {n}" for code, n in reasons.most_common(8))
    text = (
        f"{source}: {moved} stored records no longer pass the current contract, "
        f"moved to quarantine (scope {scope.label()}); reasons: {listed}"
    )
    return text[:500]


def _move(
    engine: Engine,
    spec: SourceSpec,
    table: Table,
    rebuild: Rebuild,
    invalid: list[tuple[dict[str, Any], Rejection]],
    *,
    scope: RegionScope,
    counts: RevalidateCounts,
    now: datetime,
    actor: str,
) -> int:
    """Quarantine and delete the rows still as validated; one audit row; how many moved."""
    with write_lock(engine), engine.begin() as conn:
        chain = ChainWriter(conn)  # the head lock first: SQLite's transaction is now a writer
        versions = {row["id"]: row["updated_at"] for row, _ in invalid}
        current: dict[str, Any] = {}
        for ids in chunks(list(versions)):
            stmt = select(table.c.id, table.c.updated_at).where(table.c.id.in_(list(ids)))
            current.update(dict(conn.execute(stmt.with_for_update()).tuples().all()))
        # A row a sync rewrote since it was read is another version: the next run judges it.
        moving = [
            (row, rej)
            for row, rej in invalid
            if row["id"] in current
            and stored_utc(current[row["id"]]) == stored_utc(versions[row["id"]])
        ]
        if not moving:
            return 0
        by_partition: dict[str, list[Rejection]] = {}
        for row, rej in moving:
            by_partition.setdefault(_partition(row), []).append(rej)
        for partition, rejected in by_partition.items():
            quarantine(conn, spec.name, partition, rejected, now=now)
        ids = [row["id"] for row, _ in moving]
        for part in chunks(ids):
            if rebuild.members:
                conn.execute(delete(MEMBER).where(MEMBER.c.household_id.in_(list(part))))
            conn.execute(delete(table).where(table.c.id.in_(list(part))))
        reasons: Counter[str] = Counter()
        for _, rej in moving:
            reasons.update(rej.reason_codes)
        counts.reasons.update(reasons)
        chain.record(
            REVALIDATE_SUBJECT,
            "quarantined",
            actor=actor,
            reason=_audit_reason(spec.name, reasons, len(moving), scope),
            at=now,
        )
        chain.flush()
        counts.audit_rows += 1
        return len(moving)


def revalidate_source(
    engine: Engine,
    source: str,
    *,
    key: bytes,
    now: datetime,
    scope: RegionScope = WHOLE_PROVINCE,
    batch: int = CHUNK,
    actor: str = "hub:revalidate-store",
) -> RevalidateCounts:
    """Re-validate `source`'s stored rows in `scope`; quarantine and remove what fails now."""
    if batch < 1:
        raise ValueError("batch must be at least 1")
    spec = source_spec(source)
    counts = RevalidateCounts(source)
    rebuild = _REBUILDS.get(source)
    if rebuild is None:
        counts.skipped = "the store cannot rebuild this source's records"
        return counts
    if rebuild.kecamatan is None and not scope.is_province:
        counts.skipped = "read whole: re-validated only for the whole province"
        return counts
    counts.unchecked = sorted(rebuild.unrecoverable)
    table = table_of(spec.table)
    condition = _where(table, rebuild, scope)
    for rows in _pages(engine, table, rebuild, condition, batch):
        counts.examined += len(rows)
        records = [_record(rebuild, row) for row in rows]
        rejected, failed = _validate(source, records, key, now)
        counts.errors += len(failed)
        invalid: list[tuple[dict[str, Any], Rejection]] = []
        for row, record in zip(rows, records, strict=True):
            rej = rejected.get(str(row["id"]))
            if rej is None:
                continue
            reasons = _kept_reasons(rej, rebuild.unrecoverable)
            if not reasons:
                continue  # only the fields the store does not keep were missing
            if rebuild.partial:
                reasons = (*reasons, _partial_reason(rebuild))
            invalid.append((row, Rejection(str(row["id"]), reasons, record)))
        moved = (
            _move(
                engine,
                spec,
                table,
                rebuild,
                invalid,
                scope=scope,
                counts=counts,
                now=now,
                actor=actor,
            )
            if invalid
            else 0
        )
        counts.quarantined += moved
    counts.kept = counts.examined - counts.quarantined
    return counts


def revalidate_store(
    engine: Engine,
    *,
    key: bytes,
    now: datetime,
    sources: Sequence[str] | None = None,
    scope: RegionScope = WHOLE_PROVINCE,
    batch: int = CHUNK,
) -> list[RevalidateCounts]:
    """Re-validate every catalogue source (or `sources`), in catalogue order."""
    names = list(CATALOGUE) if not sources else [source_spec(s).name for s in sources]
    return [
        revalidate_source(engine, name, key=key, now=now, scope=scope, batch=batch)
        for name in names
    ]
