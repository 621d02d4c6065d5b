"""Turn pages of raw records of every synced source into store rows and rejections.

One prepare function per source (`<agency>.<collection>`), pure and picklable in and out
like the registry's (`models.registry_rows`), so pages can be prepared in worker processes.
People are stored by keyed token only (`nik_token`, `kk_token`): matching never needs a
clear NIK or No. KK, so these tables hold none; free text has any NIK-like run masked.
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from typing import Any, TypeVar

from pydantic import BaseModel

from models.contracts import desa, kecamatan, pertanian, pkh, registry, statistik
from models.identity import id_token, mask_ids_in_text
from models.registry_rows import PreparedPage, prepare_households, prepare_recipients
from models.validation import Reason, validate_batch

__all__ = [
    "PREPARE",
    "SOURCES",
    "PrepareFn",
    "PreparedPage",
    "prepare_blt_recipients",
    "prepare_data_requests",
    "prepare_decisions",
    "prepare_farmer_needs",
    "prepare_reports",
    "prepare_source_page",
    "prepare_submissions",
    "source_name",
]

M = TypeVar("M", bound=BaseModel)

PrepareFn = Callable[[Sequence[Any], bytes, datetime], PreparedPage]
"""(raw records, PII key, sync time) -> prepared page."""


def source_name(agency: str, collection: str) -> str:
    """The name a source goes by in cursors and quarantine: `<agency>.<collection>`."""
    return f"{agency}.{collection}"


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


def _validate(records: Sequence[Any], model: type[M]) -> tuple[list[M], PreparedPage]:
    batch = validate_batch(records, model)
    rejected = [
        dataclasses.replace(rej, reasons=tuple(_refine(r) for r in rej.reasons))
        for rej in batch.rejected
    ]
    return batch.valid, PreparedPage(rejected=rejected)


def _masked(text: str) -> str:
    # Free text typed by officers; a NIK pasted into it must not land in the store.
    return mask_ids_in_text(text) if text else text


def prepare_reports(records: Sequence[Any], key: bytes, now: datetime) -> PreparedPage:
    """PKH facilitator reports -> `facilitator_report` rows (the member by NIK token)."""
    valid, page = _validate(records, pkh.FacilitatorReport)
    for r in valid:
        changes = ""
        if r.changes is not None:
            changes = json.dumps(
                {
                    "address": _masked(r.changes.address) if r.changes.address else None,
                    "desil": r.changes.desil,
                    "members_left": list(r.changes.members_left),
                },
                sort_keys=True,
                ensure_ascii=False,
            )
        page.rows.append(
            {
                "id": r.id,
                "kind": r.kind,
                "facilitator_id": r.facilitator_id,
                "kecamatan_code": r.kecamatan_code,
                "household_id": r.household_id,
                "nik_token": id_token(r.nik, key),
                "reported_on": r.reported_on,
                "changes": changes,
                "note": _masked(r.note),
                "updated_at": page.seen(r.updated_at),
                "synced_at": now,
            }
        )
    return page


def prepare_blt_recipients(records: Sequence[Any], key: bytes, now: datetime) -> PreparedPage:
    """BLT Dana Desa list entries -> `blt_recipient` rows (NIK and No. KK by token)."""
    valid, page = _validate(records, desa.BltRecipient)
    for r in valid:
        page.rows.append(
            {
                "id": r.id,
                "desa_code": r.desa_code,
                "kecamatan_code": r.desa_code[:8],
                "period": r.period,
                "nik_token": id_token(r.nik, key),
                "kk_token": id_token(r.no_kk, key),
                "status": r.status,
                "updated_at": page.seen(r.updated_at),
                "synced_at": now,
            }
        )
    return page


def prepare_farmer_needs(records: Sequence[Any], key: bytes, now: datetime) -> PreparedPage:
    """e-RDKK lines -> `farmer_need` rows (the farmer by NIK token)."""
    valid, page = _validate(records, pertanian.FarmerNeed)
    for r in valid:
        page.rows.append(
            {
                "id": r.id,
                "nik_token": id_token(r.nik, key),
                "poktan_id": r.poktan_id,
                "desa_code": r.desa_code,
                "kecamatan_code": r.desa_code[:8],
                "land_area_ha": r.land_area_ha,
                "commodity": r.commodity,
                "season": r.season,
                "urea_kg": r.urea_kg,
                "npk_kg": r.npk_kg,
                "updated_at": page.seen(r.updated_at),
                "synced_at": now,
            }
        )
    return page


def prepare_data_requests(records: Sequence[Any], key: bytes, now: datetime) -> PreparedPage:
    """KSK data requests -> `data_request` rows (desa codes comma-separated, in order)."""
    valid, page = _validate(records, statistik.DataRequest)
    for r in valid:
        page.rows.append(
            {
                "id": r.id,
                "kecamatan_code": r.kecamatan_code,
                "ksk_id": r.ksk_id,
                "title": _masked(r.title),
                "desa_codes": ",".join(r.desa_codes),
                "requested_on": r.requested_on,
                "due_date": r.due_date,
                "updated_at": page.seen(r.updated_at),
                "synced_at": now,
            }
        )
    return page


def prepare_submissions(records: Sequence[Any], key: bytes, now: datetime) -> PreparedPage:
    """Desa submissions answering data requests -> `data_submission` rows."""
    valid, page = _validate(records, statistik.DataSubmission)
    for r in valid:
        page.rows.append(
            {
                "id": r.id,
                "request_id": r.request_id,
                "desa_code": r.desa_code,
                "submitted_at": r.submitted_at.astimezone(UTC),
                "updated_at": page.seen(r.updated_at),
                "synced_at": now,
            }
        )
    return page


def prepare_decisions(records: Sequence[Any], key: bytes, now: datetime) -> PreparedPage:
    """Office decisions from the inbox -> `office_decision` rows, not yet applied."""
    valid, page = _validate(records, kecamatan.OfficeDecision)
    for r in valid:
        page.rows.append(
            {
                "id": r.id,
                "handoff_id": r.handoff_id,
                "office": r.office,
                "decision": r.decision,
                "reason": _masked(r.reason),
                "officer": _masked(r.officer),
                "decided_at": r.decided_at.astimezone(UTC),
                "updated_at": page.seen(r.updated_at),
                # Set by the handoff engine once the decision has moved its handoff.
                "applied_at": None,
                "outcome": "",
            }
        )
    return page


PREPARE: dict[str, PrepareFn] = {
    source_name("registry", registry.HOUSEHOLDS): prepare_households,
    source_name("registry", registry.RECIPIENTS): prepare_recipients,
    source_name("pkh", pkh.REPORTS): prepare_reports,
    source_name("desa", desa.BLT_RECIPIENTS): prepare_blt_recipients,
    source_name("pertanian", pertanian.FARMER_NEEDS): prepare_farmer_needs,
    source_name("statistik", statistik.DATA_REQUESTS): prepare_data_requests,
    source_name("statistik", statistik.SUBMISSIONS): prepare_submissions,
    source_name("kecamatan", kecamatan.DECISIONS): prepare_decisions,
}
"""Prepare function of every synced source, by source name."""

SOURCES: tuple[str, ...] = tuple(PREPARE)
"""Every synced source, registry first."""


def prepare_source_page(
    source: str, records: Sequence[Any], key: bytes, now: datetime
) -> PreparedPage:
    """Prepare one page of any source; KeyError names an unknown source."""
    try:
        prepare = PREPARE[source]
    except KeyError:
        raise KeyError(f"unknown source {source!r}; expected one of {', '.join(SOURCES)}") from None
    return prepare(records, key, now)
