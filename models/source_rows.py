"""Row builders of every synced source: one validated record -> its store rows.

Each builder appends the rows of one record (validated against its contract by
`models.sources.prepare_page`) to a `PreparedPage`. People are stored by keyed token only
(`nik_token`, `kk_token`) outside the registry's own tables: matching never needs a clear
NIK or No. KK, so those tables hold none; free text has any NIK-like run masked.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime

from models.contracts import desa, kecamatan, pertanian, pkh, puskesmas, registry, statistik
from models.identity import id_token, mask_ids_in_text, record_warnings
from models.prepared import PreparedPage

__all__ = [
    "blt_recipient_rows",
    "data_request_rows",
    "decision_rows",
    "farmer_need_rows",
    "household_rows",
    "recipient_rows",
    "report_rows",
    "submission_rows",
    "surveillance_rows",
]


def _masked(text: str) -> str:
    # Free text typed by officers; a NIK pasted into it must not land in the store.
    return mask_ids_in_text(text) if text else text


def household_rows(hh: registry.Household, key: bytes, now: datetime, page: PreparedPage) -> None:
    """A household row and its member rows (members carry the household's version)."""
    ts = page.seen(hh.updated_at)
    page.rows.append(
        {
            "id": hh.id,
            "no_kk": hh.no_kk,
            "kk_token": id_token(hh.no_kk, key),
            "desa_code": hh.desa_code,
            "kecamatan_code": hh.desa_code[:8],
            "kabupaten_code": hh.desa_code[:5],
            "address": hh.address,
            "desil": hh.desil,
            "member_count": len(hh.members),
            "updated_at": ts,
            "synced_at": now,
        }
    )
    for m in hh.members:
        page.children.append(
            {
                "id": m.id,
                "household_id": hh.id,
                "nik": m.nik,
                "nik_token": id_token(m.nik, key),
                "name": m.name,
                "sex": m.sex,
                "birth_date": m.birth_date,
                "relationship": m.relationship,
                "status": m.status,
                "updated_at": ts,
            }
        )
        for code in record_warnings(m.nik, m.birth_date, m.sex):
            page.warnings[f"members.nik:{code}"] += 1


def recipient_rows(r: registry.Recipient, key: bytes, now: datetime, page: PreparedPage) -> None:
    """A programme enrolment row; tokens only (matching never needs a NIK)."""
    page.rows.append(
        {
            "id": r.id,
            "programme": r.programme,
            "household_id": r.household_id,
            "nik_token": id_token(r.nik_pengurus, key),
            "kk_token": id_token(r.no_kk, key),
            "desa_code": r.desa_code,
            "kecamatan_code": r.desa_code[:8],
            "period": r.period,
            "status": r.status,
            "updated_at": page.seen(r.updated_at),
            "synced_at": now,
        }
    )


def report_rows(r: pkh.FacilitatorReport, key: bytes, now: datetime, page: PreparedPage) -> None:
    """A PKH facilitator report row (the member by NIK token, changes as masked JSON)."""
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


def blt_recipient_rows(r: desa.BltRecipient, key: bytes, now: datetime, page: PreparedPage) -> None:
    """A BLT Dana Desa list entry row (NIK and No. KK by token)."""
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


def farmer_need_rows(
    r: pertanian.FarmerNeed, key: bytes, now: datetime, page: PreparedPage
) -> None:
    """An e-RDKK line row (the farmer by NIK token)."""
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


def data_request_rows(
    r: statistik.DataRequest, key: bytes, now: datetime, page: PreparedPage
) -> None:
    """A KSK data request row (desa codes comma-separated, in order)."""
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


def submission_rows(
    r: statistik.DataSubmission, key: bytes, now: datetime, page: PreparedPage
) -> None:
    """A desa submission row answering a data request."""
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


def decision_rows(
    r: kecamatan.OfficeDecision, key: bytes, now: datetime, page: PreparedPage
) -> None:
    """An office decision row from the inbox, not yet applied to its handoff."""
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


def surveillance_rows(
    r: puskesmas.WeeklyReport, key: bytes, now: datetime, page: PreparedPage
) -> None:
    """A puskesmas weekly surveillance row: aggregate counts of one desa, condition and week."""
    page.rows.append(
        {
            "id": r.id,
            "puskesmas_id": r.puskesmas_id,
            "desa_code": r.desa_code,
            "kecamatan_code": r.desa_code[:8],
            "week": r.week,
            "condition": r.condition,
            "new_cases": r.new_cases,
            "tests": r.tests,
            "deaths": r.deaths,
            "updated_at": page.seen(r.updated_at),
            "synced_at": now,
        }
    )
