"""Every wire contract is strict: no coerced scalars, ISO dates only, no control characters."""

from __future__ import annotations

import copy
from collections.abc import Callable, Iterator
from datetime import UTC, date, datetime
from typing import Any

import pytest
from pydantic import ValidationError

from models.contracts.common import ErrorBody, RawPage
from models.contracts.kecamatan import DeliveryReceipt, HandoffDelivery
from models.contracts.registry import HouseholdChanges, ProposalReceipt, UpdateProposal
from models.sources import SOURCES, source_spec
from models.validation import validate_batch
from tests.factories import household, recipient
from tests.models.test_sources import (
    blt,
    data_request,
    decision,
    farmer,
    report,
    submission,
    surveillance,
)

NOW = datetime(2026, 11, 27, 3, 0, tzinfo=UTC)

# One valid record of every synced source.
VALID: dict[str, Callable[[], dict[str, Any]]] = {
    "registry.households": lambda: household(1),
    "registry.recipients": lambda: recipient(1),
    "pkh.reports": lambda: report(kind="household_update", changes={"address": "Jl. Baru 1"}),
    "desa.blt-recipients": blt,
    "pertanian.farmer-needs": farmer,
    "statistik.data-requests": data_request,
    "statistik.submissions": submission,
    "puskesmas.surveillance": surveillance,
    "kecamatan.decisions": lambda: decision(reason="sudah ditangani"),
}

DATE_FIELDS = {"birth_date", "reported_on", "requested_on", "due_date"}
TIME_FIELDS = {"updated_at", "decided_at", "submitted_at"}


def _paths(value: Any, path: tuple[Any, ...] = ()) -> Iterator[tuple[tuple[Any, ...], Any]]:
    """Every leaf of a record with its path (dict keys, list indices)."""
    if isinstance(value, dict):
        for k, v in value.items():
            yield from _paths(v, (*path, k))
    elif isinstance(value, list):
        for i, v in enumerate(value):
            yield from _paths(v, (*path, i))
    else:
        yield path, value


def _with(record: dict[str, Any], path: tuple[Any, ...], value: Any) -> dict[str, Any]:
    out = copy.deepcopy(record)
    holder: Any = out
    for p in path[:-1]:
        holder = holder[p]
    holder[path[-1]] = value
    return out


def _codes(source: str, record: dict[str, Any]) -> list[str]:
    batch = validate_batch([record], source_spec(source).contract, now=NOW)
    return batch.rejected[0].reason_codes if batch.rejected else []


def test_every_source_has_a_valid_example() -> None:
    assert set(VALID) == {s.name for s in SOURCES}
    for source, make in VALID.items():
        assert _codes(source, make()) == [], source


@pytest.mark.parametrize("source", sorted(VALID))
def test_no_text_field_of_any_contract_takes_a_nul(source: str) -> None:
    record = VALID[source]()
    texts = [(path, v) for path, v in _paths(record) if isinstance(v, str)]
    assert texts
    for path, value in texts:
        for hostile in (value[:1] + "\x00" + value[1:], value + "\x1b", "\x00"):
            codes = _codes(source, _with(record, path, hostile))
            assert codes, (path, hostile)


@pytest.mark.parametrize("source", sorted(VALID))
def test_no_date_of_any_contract_is_read_from_a_number(source: str) -> None:
    record = VALID[source]()
    found = 0
    for path, _value in _paths(record):
        field = path[-1]
        if field in DATE_FIELDS | TIME_FIELDS:
            found += 1
            kind = "date_type" if field in DATE_FIELDS else "datetime_type"
            for number in (0, 1_700_000_000, 1.5, True):
                codes = _codes(source, _with(record, path, number))
                assert any(c.endswith(f"{field}:{kind}") for c in codes), (path, number, codes)
    assert found


@pytest.mark.parametrize("source", sorted(VALID))
def test_no_number_of_any_contract_is_read_from_a_bool_or_text(source: str) -> None:
    record = VALID[source]()
    for path, value in _paths(record):
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            for trap in (True, str(value)):
                codes = _codes(source, _with(record, path, trap))
                assert codes, (path, trap)
                assert all(c.endswith(("_type",)) for c in codes), codes


def test_required_text_of_every_contract_is_not_blank() -> None:
    blanks = {
        "registry.households": ("members", 0, "name"),
        "desa.blt-recipients": ("name",),
        "pertanian.farmer-needs": ("commodity",),
        "statistik.data-requests": ("title",),
        "kecamatan.decisions": ("officer",),
        "pkh.reports": ("changes", "address"),
    }
    for source, path in blanks.items():
        codes = _codes(source, _with(VALID[source](), path, "  "))
        assert codes == [f"{'.'.join(p for p in path if isinstance(p, str))}:blank_text"], source


def test_free_text_keeps_line_breaks() -> None:
    assert _codes("pkh.reports", report(note="baris satu\nbaris dua")) == []
    assert _codes("kecamatan.decisions", decision(reason="a\r\n\tb")) == []
    assert _codes("pkh.reports", report(note="a\x00b")) == ["note:control_character"]


def test_bodies_the_hub_builds_take_python_dates_but_no_numbers() -> None:
    delivery = {
        "handoff_id": "0123456789abcdef",
        "office": "kecamatan:35.07.01",
        "kind": "blt_pkh_overlap",
        "subject_token": "0123456789abcdef0123456789abcdef",
        "period": "2026-Q4",
        "sender": "hub",
        "due_date": date(2026, 12, 4),
        "evidence": {"household_count": 2, "share": 0.5, "note": "dua\nbaris"},
    }
    assert HandoffDelivery(**delivery).due_date == date(2026, 12, 4)
    assert HandoffDelivery.model_validate({**delivery, "due_date": "2026-12-04"})
    for bad in ({"due_date": 0}, {"evidence": {"flag": True}}, {"sender": "hub\x00"}):
        with pytest.raises(ValidationError):
            HandoffDelivery.model_validate({**delivery, **bad})
    proposal = {
        "id": "UP-1",
        "household_id": "HH-1",
        "changes": HouseholdChanges(desil=3),
        "report_id": "RPT-1",
        "handoff_id": "H-1",
        "verified_by": "kecamatan:35.07.01",
        "verified_at": NOW,
    }
    assert UpdateProposal(**proposal).verified_at == NOW
    with pytest.raises(ValidationError, match="datetime_type"):
        UpdateProposal(**{**proposal, "verified_at": 0})
    with pytest.raises(ValidationError, match="int_type"):
        HouseholdChanges.model_validate({"desil": "3"})
    assert HouseholdChanges.model_validate_json('{"desil": 3, "address": "Jl. 1"}').desil == 3


def test_receipts_and_envelopes_are_strict_too() -> None:
    receipt = {
        "receipt_id": "R-1",
        "handoff_id": "0123456789abcdef",
        "office": "kecamatan:35.07.01",
        "received_at": "2026-11-27T10:00:00+07:00",
    }
    assert DeliveryReceipt.model_validate(receipt)
    with pytest.raises(ValidationError, match="datetime_type"):
        DeliveryReceipt.model_validate({**receipt, "received_at": 1_764_000_000})
    with pytest.raises(ValidationError):
        ProposalReceipt.model_validate(
            {"receipt_id": "R", "proposal_id": "P", "status": "queued", "received_at": 0}
        )
    # A cursor is stored as the partition's: never with a control character.
    assert RawPage.model_validate({"data": [], "next_cursor": "abc"}).next_cursor == "abc"
    with pytest.raises(ValidationError):
        RawPage.model_validate({"data": [], "next_cursor": "abc\x00"})
    with pytest.raises(ValidationError):
        ErrorBody.model_validate({"error": "x\x00"})
