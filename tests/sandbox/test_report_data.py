"""PKH facilitator reports: about PKH households, by the kecamatan's facilitators, plants."""

from __future__ import annotations

from collections import Counter
from datetime import date, datetime

import pytest

from models.contracts.pkh import FacilitatorReport
from sandbox.bad_records import ReportBadKind
from sandbox.coordination_data import CoordinationData
from sandbox.report_data import REPORT_PLANTS
from tests.sandbox.conftest import bad_kinds, coordination_data


@pytest.fixture(scope="module")
def data() -> CoordinationData:
    """5,000 households with many broken reports."""
    return coordination_data(5000, bad_rate=0.25)


def test_every_bad_report_fails_the_contract_and_every_good_one_passes(
    data: CoordinationData,
) -> None:
    kinds = bad_kinds(data.reports.all_records(), FacilitatorReport)
    assert set(kinds) == {k.value for k in ReportBadKind}


def test_reports_are_about_pkh_households_and_their_people(data: CoordinationData) -> None:
    plants = Counter[str | None]()
    kinds = Counter[str]()
    for index in data.registry.indices():
        view = data.households.view(index)
        items = data.reports.records(index)
        if items:
            assert "PKH" in view.programmes
        assert [i.record["id"] for i in items] == sorted(i.record["id"] for i in items)
        for item in items:
            plants[item.plant] += 1
            if item.bad is not None:
                continue
            r = item.record
            kinds[r["kind"]] += 1
            draft = view.draft
            assert r["household_id"] == draft.id and r["kecamatan_code"] == view.kecamatan
            assert r["facilitator_id"].startswith(f"PKH-{view.kecamatan_digits}-")
            reported = date.fromisoformat(r["reported_on"])
            assert reported <= datetime.fromisoformat(r["updated_at"]).date()
            pengurus = draft.members[draft.pengurus]["nik"]
            if item.plant in ("deceased", "moved", "deceased_inactive"):
                assert r["nik"] == pengurus and r["kind"] in ("deceased", "moved")
            if item.plant == "deceased_member":
                assert r["nik"] != pengurus and r["kind"] == "deceased"
            if item.plant == "deceased_inactive":
                assert view.all_enrolments_inactive()
            if r["kind"] == "household_update":
                changes = r["changes"]
                assert changes
                ids = {m["id"] for m in draft.members}
                for left in changes.get("members_left", []):
                    assert left in ids
                    assert left not in (draft.members[0]["id"], draft.members[draft.pengurus]["id"])
            else:
                assert r["changes"] is None
    assert all(plants[p] > 0 for p in REPORT_PLANTS)
    assert plants[None] > 0 and {"non_compliance", "graduation"} <= set(kinds)
