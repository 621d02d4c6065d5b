"""KSK data requests and the desa's submissions: fan-out, due dates, answers."""

from __future__ import annotations

from collections import Counter
from datetime import date, datetime

import pytest
from pydantic import ValidationError

from models.contracts.statistik import DATA_REQUESTS, SUBMISSIONS, DataRequest, DataSubmission
from models.workdays import default_calendar
from sandbox.bad_records import RequestBadKind, SubmissionBadKind
from sandbox.statistik_data import REQUEST_DUE_WORKDAYS, StatistikData
from tests.sandbox.conftest import coordination_data


@pytest.fixture(scope="module")
def statistik() -> StatistikData:
    """Requests of the whole province with many broken records."""
    return coordination_data(100, bad_rate=0.1).statistik


def _valid(model: type[DataRequest] | type[DataSubmission], record: dict[str, object]) -> bool:
    try:
        model.model_validate(record)
    except ValidationError:
        return False
    return True


def test_requests_fan_out_to_the_kecamatan_desa(statistik: StatistikData) -> None:
    layout = statistik.layout
    counts = Counter[int]()
    bad = Counter[str]()
    for kec, region in enumerate(layout.kecamatan):
        requests = statistik.requests(kec)
        counts[len(requests)] += 1
        villages = [
            v.code
            for v, k in zip(layout.villages, layout.village_kecamatan, strict=True)
            if k == kec
        ]
        for request in requests:
            r = request.item.record
            assert _valid(DataRequest, r) == (request.item.bad is None)
            if request.item.bad is not None:
                bad[request.item.bad] += 1
                continue
            assert r["kecamatan_code"] == region.code
            assert [a.desa_code for a in request.answers] == r["desa_codes"]
            if request.number == 0:
                assert r["desa_codes"] == villages
            else:
                assert set(r["desa_codes"]) <= set(villages)
            requested = date.fromisoformat(r["requested_on"])
            due = date.fromisoformat(r["due_date"])
            assert due == default_calendar().add_workdays(requested, REQUEST_DUE_WORKDAYS)
    assert set(bad) == {k.value for k in RequestBadKind}
    # 15% none, 70% one, 15% two: mean one request per kecamatan.
    assert 0.8 < (counts[1] + 2 * counts[2]) / counts.total() < 1.2
    assert counts[0] and counts[2]


def test_answers_are_on_time_late_or_never(statistik: StatistikData) -> None:
    outcomes = Counter[str]()
    bad = Counter[str]()
    for kec in range(len(statistik.layout.kecamatan)):
        for request in statistik.requests(kec):
            for answer in request.answers:
                outcomes[answer.outcome] += 1
                if answer.submission is None:
                    assert answer.outcome == "never"
                    continue
                r = answer.submission.record
                assert _valid(DataSubmission, r) == (answer.submission.bad is None)
                if answer.submission.bad is not None:
                    bad[answer.submission.bad] += 1
                    continue
                assert r["request_id"] == request.item.record["id"]
                submitted = datetime.fromisoformat(str(r["submitted_at"])).date()
                on_time = submitted <= answer.due_date
                assert on_time == (answer.outcome == "on_time")
                assert submitted > date.fromisoformat(str(request.item.record["requested_on"]))
    assert set(bad) == {k.value for k in SubmissionBadKind}
    share = {k: v / outcomes.total() for k, v in outcomes.items()}
    assert abs(share["on_time"] - 0.75) < 0.03 and abs(share["late"] - 0.15) < 0.03


def test_a_kecamatan_listing_is_its_part_of_the_province_listing(statistik: StatistikData) -> None:
    for collection in (DATA_REQUESTS, SUBMISSIONS):
        province = statistik.entries(collection)
        positions = [e.position for e in province]
        assert positions == sorted(positions) and len(set(positions)) == len(positions)
        for code in ("35.07.01", "35.78.05", "35.29.18"):
            mine = statistik.entries(collection, code)
            digits = code.replace(".", "")
            assert list(mine) == [e for e in province if e.item.id.split("-")[1].startswith(digits)]
