"""BPS KSK data requests to the desa of a kecamatan and the desa's submissions.

Each kecamatan gets 0, 1 or 2 requests (configurable shares, mean 1 by default): the first
goes to every desa/kelurahan of the kecamatan, a second to about half of them. Each
addressed desa answers on time (by the due date, ten working days after the request),
late, or never, at the configured shares.
A kecamatan's records are generated from its own codes only; the province-wide listing is
bounded by the region list (a few thousand records), so it is built once and kept.
"""

from __future__ import annotations

import threading
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from functools import partial
from typing import Any

from models.contracts.statistik import DATA_REQUESTS, SUBMISSIONS
from models.workdays import default_calendar
from sandbox.bad_records import (
    Breakage,
    RequestBadKind,
    SubmissionBadKind,
    corrupt_request,
    corrupt_submission,
)
from sandbox.config import CoordinationConfig
from sandbox.layout import Layout
from sandbox.registry_data import Pages, Position
from sandbox.seeding import Salted
from sandbox.source_paging import KeyedEntry, SourceRecord, epoch_ms, keyed_pages

__all__ = ["REQUEST_DUE_WORKDAYS", "Answer", "Request", "StatistikData"]

REQUEST_DUE_WORKDAYS = 10
"""Working days a desa has to answer a data request."""

_S_COUNT, _S_REQUEST, _S_SUBSET, _S_ANSWER, _S_REQ_BAD, _S_REQ_KIND, _S_SUB_BAD = range(
    0x501, 0x508
)
_S_SUB_KIND, _S_BAD_HOW = 0x508, 0x509
_LATEST_LATE_DAYS = 10
_TITLES = (
    "Pendataan Potensi Desa (Podes) 2026",
    "Rekap luas panen padi dan palawija",
    "Data keluarga miskin ekstrem per dusun",
    "Data kelahiran dan kematian triwulan berjalan",
    "Data sarana pendidikan dan kesehatan desa",
    "Rekap harga gabah di tingkat petani",
)


@dataclass(frozen=True, slots=True)
class Answer:
    """How one addressed desa answers one request: on_time, late or never (and the record)."""

    request_id: str
    village: int
    desa_code: str
    due_date: date
    outcome: str
    submission: SourceRecord | None
    # Serving time of the submission (ms since 1970), fixed before any corruption.
    ms: int = 0


@dataclass(frozen=True, slots=True)
class Request:
    """One data request (possibly broken), its serving time and every desa's answer."""

    number: int
    item: SourceRecord
    ms: int
    due_date: date
    answers: list[Answer]


class StatistikData:
    """Data requests and submissions of every kecamatan, generated per kecamatan."""

    def __init__(self, seed: int, layout: Layout, config: CoordinationConfig) -> None:
        self.seed = seed
        self.layout = layout
        self.config = config
        self._villages: list[list[int]] = [[] for _ in layout.kecamatan]
        for number, kec in enumerate(layout.village_kecamatan):
            self._villages[kec].append(number)
        self._numbers = {k.code: n for n, k in enumerate(layout.kecamatan)}
        self._h_count = Salted(seed, _S_COUNT)
        self._h_request = Salted(seed, _S_REQUEST)
        self._h_subset = Salted(seed, _S_SUBSET)
        self._h_answer = Salted(seed, _S_ANSWER)
        self._h_req_bad = Breakage(RequestBadKind, config.bad_rate, seed, _S_REQ_BAD, _S_REQ_KIND)
        self._h_sub_bad = Breakage(
            SubmissionBadKind, config.bad_rate, seed, _S_SUB_BAD, _S_SUB_KIND
        )
        self._h_bad_how = Salted(seed, _S_BAD_HOW)
        self._tz = config.base_time.tzinfo
        self._window_start = (config.base_time - config.span).date()
        self._window_days = max(1, config.span.days - 20)
        self._lists: dict[str, list[KeyedEntry]] = {}
        self._requests: dict[int, list[Request]] = {}
        self._lock = threading.Lock()

    def number(self, kecamatan: str) -> int:
        """Position of a kecamatan (dotted code) in the layout; KeyError if unknown."""
        return self._numbers[kecamatan]

    def request_count(self, kec: int) -> int:
        """Requests sent to a kecamatan's desa: 0, 1 or 2."""
        u = self._h_count.unit1(kec)
        cfg = self.config
        return 2 if u < cfg.second_request_share else 1 if u < cfg.request_share else 0

    def _at(self, day: date, minute: int) -> datetime:
        return datetime.combine(day, time(8, 0), self._tz) + timedelta(minutes=minute)

    def request_bad_kind(self, kec: int, j: int) -> RequestBadKind | None:
        """How request j of a kecamatan is broken on the wire, or None."""
        return self._h_req_bad.kind(kec, j)

    def submission_bad_kind(self, village: int, j: int) -> SubmissionBadKind | None:
        """How a desa's submission to request j of its kecamatan is broken, or None."""
        return self._h_sub_bad.kind(village, j)

    def requests(self, kec: int) -> list[Request]:
        """The kecamatan's requests (possibly broken) with every addressed desa's answer."""
        with self._lock:
            cached = self._requests.get(kec)
        if cached is None:
            # The records never change, and all of them together are bounded by the
            # region list, so each kecamatan is generated once.
            cached = [self._request(kec, j) for j in range(self.request_count(kec))]
            with self._lock:
                self._requests[kec] = cached
        return cached

    def _request(self, kec: int, j: int) -> Request:
        r = self._h_request.rng(kec, j)
        villages = self._villages[kec]
        if j == 0:
            chosen = list(villages)
        else:
            chosen = [v for v in villages if self._h_subset.unit(kec, v) < 0.5] or villages[:1]
        requested = self._window_start + timedelta(days=int(r.random() * self._window_days))
        due = default_calendar().add_workdays(requested, REQUEST_DUE_WORKDAYS)
        digits = self.layout.village_digits[villages[0]][:6]
        moment = self._at(requested, int(r.random() * 180))
        record: dict[str, Any] = {
            "id": f"DR-{digits}-{j + 1}",
            "kecamatan_code": self.layout.kecamatan[kec].code,
            "ksk_id": f"KSK-{digits}",
            "title": _TITLES[int(r.random() * len(_TITLES))],
            "desa_codes": [self.layout.villages[v].code for v in chosen],
            "requested_on": requested.isoformat(),
            "due_date": due.isoformat(),
            "updated_at": _wire(moment),
        }
        answers = [self._answer(record["id"], requested, due, v, j) for v in chosen]
        kind = self.request_bad_kind(kec, j)
        if kind is not None:
            # A desa of the next kecamatan in code order: well-formed, but not this one's.
            foreign = self.layout.villages[(villages[-1] + 1) % len(self.layout.villages)].code
            corrupt_request(record, kind, self._h_bad_how.rng(kec, j), foreign)
        item = SourceRecord(record, None if kind is None else kind.value)
        return Request(j, item, epoch_ms(moment), due, answers)

    def _answer(self, request_id: str, requested: date, due: date, village: int, j: int) -> Answer:
        cfg = self.config
        r = self._h_answer.rng(village, j)
        u = r.random()
        code = self.layout.villages[village].code
        if u >= cfg.submission_on_time + cfg.submission_late:
            return Answer(request_id, village, code, due, "never", None)
        if u < cfg.submission_on_time:
            outcome = "on_time"
            span = (due - requested).days
            day = requested + timedelta(days=1 + int(r.random() * span)) if span > 0 else due
        else:
            outcome = "late"
            day = due + timedelta(days=1 + int(r.random() * _LATEST_LATE_DAYS))
        moment = self._at(day, int(r.random() * 480))
        record: dict[str, Any] = {
            "id": f"SUB-{self.layout.village_digits[village]}-{j + 1}",
            "request_id": request_id,
            "desa_code": code,
            "submitted_at": _wire(moment),
            "updated_at": _wire(moment),
        }
        kind = self.submission_bad_kind(village, j)
        if kind is not None:
            corrupt_submission(record, kind, self._h_bad_how.rng(village, j, 1))
        item = SourceRecord(record, None if kind is None else kind.value)
        return Answer(request_id, village, code, due, outcome, item, epoch_ms(moment))

    def entries(self, collection: str, kecamatan: str | None = None) -> Sequence[KeyedEntry]:
        """A collection's records (of a kecamatan) with their serving positions, sorted."""
        if collection not in (DATA_REQUESTS, SUBMISSIONS):
            raise ValueError(f"unknown collection {collection!r}")
        if kecamatan is not None:
            return self._entries(collection, [self.number(kecamatan)])
        with self._lock:
            cached = self._lists.get(collection)
        if cached is None:
            cached = self._entries(collection, range(len(self.layout.kecamatan)))
            with self._lock:
                self._lists[collection] = cached
        return cached

    def _entries(self, collection: str, kecamatan: Sequence[int]) -> list[KeyedEntry]:
        # Ids embed (kecamatan or desa number, request number) in fixed-width digits, so
        # within one millisecond the position order is the id order.
        out: list[KeyedEntry] = []
        for kec in kecamatan:
            for request in self.requests(kec):
                if collection == DATA_REQUESTS:
                    out.append(KeyedEntry(Position(request.ms, kec, request.number), request.item))
                    continue
                for answer in request.answers:
                    if answer.submission is not None:
                        pos = Position(answer.ms, answer.village, request.number)
                        out.append(KeyedEntry(pos, answer.submission))
        out.sort(key=lambda e: e.position)
        return out

    def pages(self, collection: str) -> Pages:
        """The pages of requests or of submissions."""
        return keyed_pages(partial(self.entries, collection))


def _wire(when: datetime) -> str:
    return when.isoformat(timespec="milliseconds")
