"""The source catalogue: every agency collection the hub syncs, declared once.

A `SourceSpec` says everything the hub needs to know of a source: the agency and collection
it is read from, the wire contract its records are validated against, the row builder that
turns a valid record into store rows, the tables they go to, how they are written and
whether the source is read per kecamatan. The agency client's collections, the sync engine,
the store's writes, quarantine replay, the flows' agency choices and the CLI all derive
from `SOURCES`; nothing else lists sources by name.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum
from types import MappingProxyType
from typing import Any

from pydantic import BaseModel
from sqlmodel import SQLModel

from models import source_rows, tables
from models.contracts import desa, kecamatan, pertanian, pkh, puskesmas, registry, statistik
from models.contracts.common import RawPage, decode_json
from models.prepared import PreparedPage
from models.validation import Reason, validate_batch

__all__ = [
    "AGENCIES",
    "CATALOGUE",
    "SOURCES",
    "RowBuilder",
    "SourceSpec",
    "WriteRule",
    "collections_of",
    "prepare_page",
    "prepare_page_body",
    "source_spec",
    "sources_of",
]

RowBuilder = Callable[[Any, bytes, datetime, PreparedPage], None]
"""(valid record, PII key, sync time, page) -> None: appends the record's rows to the page."""


class WriteRule(StrEnum):
    """How a source's rows are written to its table."""

    NEWER_WINS = "newer-wins"
    """Upsert: a stored row is replaced only by a record with a newer `updated_at`."""
    INSERT_ONLY = "insert-only"
    """A row, once stored, is never updated (what the hub did with it stays true)."""


@dataclass(frozen=True, slots=True)
class SourceSpec:
    """One synced source: where it is read, how it is validated, built and written."""

    agency: str
    collection: str
    contract: type[BaseModel]
    # A module-level function: pages may be prepared in worker processes.
    rows: RowBuilder
    table: type[SQLModel]
    write: WriteRule = WriteRule.NEWER_WINS
    # Rows of `PreparedPage.children` (a household's members): newer wins, and children
    # older than their just-written parent (members who left) are removed.
    children: type[SQLModel] | None = None
    child_key: str = ""
    # Read per kecamatan (one cursor each) or whole (one cursor, partition "all").
    partitioned: bool = True

    @property
    def name(self) -> str:
        """The name a source goes by in cursors, quarantine and summaries."""
        return f"{self.agency}.{self.collection}"


SOURCES: tuple[SourceSpec, ...] = (
    SourceSpec(
        "registry",
        registry.HOUSEHOLDS,
        registry.Household,
        source_rows.household_rows,
        tables.Household,
        children=tables.Member,
        child_key="household_id",
    ),
    SourceSpec(
        "registry",
        registry.RECIPIENTS,
        registry.Recipient,
        source_rows.recipient_rows,
        tables.Enrolment,
    ),
    SourceSpec(
        "pkh", pkh.REPORTS, pkh.FacilitatorReport, source_rows.report_rows, tables.FacilitatorReport
    ),
    SourceSpec(
        "desa",
        desa.BLT_RECIPIENTS,
        desa.BltRecipient,
        source_rows.blt_recipient_rows,
        tables.BltRecipient,
    ),
    SourceSpec(
        "pertanian",
        pertanian.FARMER_NEEDS,
        pertanian.FarmerNeed,
        source_rows.farmer_need_rows,
        tables.FarmerNeed,
    ),
    SourceSpec(
        "statistik",
        statistik.DATA_REQUESTS,
        statistik.DataRequest,
        source_rows.data_request_rows,
        tables.DataRequest,
    ),
    SourceSpec(
        "statistik",
        statistik.SUBMISSIONS,
        statistik.DataSubmission,
        source_rows.submission_rows,
        tables.DataSubmission,
    ),
    SourceSpec(
        "puskesmas",
        puskesmas.SURVEILLANCE,
        puskesmas.WeeklyReport,
        source_rows.surveillance_rows,
        tables.SurveillanceReport,
    ),
    # Office decisions answer handoffs of any office (desa, kabupaten, agency desks too), so
    # the inbox is read whole; the handoff engine's `applied_at`/`outcome` are never
    # overwritten by a later read of the same decision.
    SourceSpec(
        "kecamatan",
        kecamatan.DECISIONS,
        kecamatan.OfficeDecision,
        source_rows.decision_rows,
        tables.OfficeDecision,
        write=WriteRule.INSERT_ONLY,
        partitioned=False,
    ),
)
"""Every synced source, registry first."""

CATALOGUE: Mapping[str, SourceSpec] = MappingProxyType({s.name: s for s in SOURCES})
"""Each source by its name (`<agency>.<collection>`)."""

AGENCIES: tuple[str, ...] = tuple(dict.fromkeys(s.agency for s in SOURCES))
"""Agencies with at least one synced collection, in catalogue order."""


def source_spec(name: str) -> SourceSpec:
    """The spec of a source by name; ValueError names the known ones."""
    try:
        return CATALOGUE[name]
    except KeyError:
        raise ValueError(
            f"the hub does not sync {name!r}; expected one of {', '.join(CATALOGUE)}"
        ) from None


def sources_of(agency: str) -> tuple[SourceSpec, ...]:
    """The sources the hub syncs from `agency`, in catalogue order."""
    return tuple(s for s in SOURCES if s.agency == agency)


def collections_of(agency: str) -> tuple[str, ...]:
    """The collections of `agency` the hub syncs, in catalogue order."""
    return tuple(s.collection for s in sources_of(agency))


# The contracts' cross-field rules raise plain ValueErrors, which pydantic reports without a
# field as "value_error". Each known rule gets its field and a stable code here, so the
# quarantine counts records by cause ("desa_code:kelurahan_no_dana_desa") instead of lumping
# every cross-field failure together. An unknown message keeps the generic reason.
_CROSS_FIELD_RULES: tuple[tuple[str, str, str], ...] = (
    ("is a kelurahan", "desa_code", "kelurahan_no_dana_desa"),
    ("the NIK equals the No. KK", "nik", "nik_equals_no_kk"),
    ("must carry the changes", "changes", "changes_missing"),
    ("carries no household changes", "changes", "changes_unexpected"),
    ("reported_on is after", "reported_on", "date_in_future"),
    ("are not in", "desa_codes", "desa_outside_kecamatan"),
    ("a desa is listed twice", "desa_codes", "desa_listed_twice"),
    ("due_date is before", "due_date", "due_before_request"),
)


def _refine(reason: Reason) -> Reason:
    if reason.loc or reason.code != "value_error":
        return reason
    for fragment, loc, code in _CROSS_FIELD_RULES:
        if fragment in reason.message:
            return Reason(loc=loc, code=code, message=reason.message.removeprefix("Value error, "))
    return reason


def prepare_page(source: str, records: Sequence[Any], key: bytes, now: datetime) -> PreparedPage:
    """Validate a page of `source` against its contract and build the valid records' rows.

    Pure and picklable in and out (the source goes by name), so pages can be prepared in
    worker processes while the parent fetches the next page and writes the previous one.
    """
    spec = source_spec(source)
    batch = validate_batch(records, spec.contract, now=now)
    page = PreparedPage(
        rejected=[
            dataclasses.replace(rej, reasons=tuple(_refine(r) for r in rej.reasons))
            for rej in batch.rejected
        ]
    )
    build = spec.rows
    for record in batch.valid:
        build(record, key, now, page)
    return page


def prepare_page_body(source: str, body: bytes, key: bytes, now: datetime) -> PreparedPage:
    """`prepare_page` of a page's body as served (decoded here: in a worker process).

    The caller has decoded and accepted the same bytes (`RawPage`), so its records and
    these are equal.
    """
    return prepare_page(source, RawPage.model_validate(decode_json(body)).data, key, now)
