"""Prefect tasks of handoff dispatch: outbox batches, decisions, escalation, reconciliation.

Deliveries and update proposals leave through outboxes. A batch is read from the store,
posted under each row's idempotency key (in a thread pool), and the receipts are recorded in
one transaction. Deliveries to the office inbox go `CETTAR_INBOX_BATCH_SIZE` (100) to a
request (`POST /v1/handoff-batches`, each item under its own key; 1: one POST each), and
each item's result counts as its single POST's would. A crash between a POST and its record
leaves the row pending; the next run posts it again under the same key and the agency
answers with the first receipt, so the receiving office sees it once. Tasks pass keys and
counts, never handoff contents.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Literal, Protocol, TypeVar, runtime_checkable

from prefect import get_run_logger, task
from prefect.cache_policies import NO_CACHE
from prefect.tasks import Task
from pydantic import ValidationError
from sqlalchemy import Engine

from integrations.agencies.client import AgencyClient
from integrations.agencies.errors import AgencyError, Conflict, Unprocessable
from integrations.settings import get_settings
from integrations.store import decisions, outbox
from integrations.store import handoff_queries as queries
from integrations.store import handoffs as store
from integrations.store.engine import get_engine, write_lock
from integrations.store.outbox import OutboxItem, SendResult
from models.contracts.kecamatan import (
    HANDOFF_BATCHES,
    HANDOFFS,
    MAX_BATCH_ITEMS,
    DeliveryReceipt,
)
from models.contracts.registry import UPDATE_PROPOSALS, ProposalReceipt
from models.desk import DESK_RECEIPT_PREFIX, OfficeChannels
from models.scope import WHOLE_PROVINCE, RegionScope
from models.workdays import operator_instant

__all__ = [
    "BATCH_SIZE",
    "BatchPoster",
    "Outbox",
    "Poster",
    "apply_data_submissions",
    "apply_office_decisions",
    "deliver_handoffs",
    "escalate_overdue_handoffs",
    "fan_out_requests",
    "office_channels",
    "outbox_batches",
    "plan_outbox_batches",
    "post_batches",
    "post_items",
    "queue_handoff_deliveries",
    "reconcile_offices",
    "send_batch",
    "send_update_proposals",
]

BATCH_SIZE = 200
"""Outbox rows per task: one task per batch, never one per handoff."""
POST_WORKERS = 8
"""Concurrent POSTs within a batch (the client's transport bounds them too)."""

Outbox = Literal["deliveries", "proposals"]
"""The hub's two outboxes: handoff deliveries and registry update proposals."""


class Poster(Protocol):
    """What the outboxes need of an agency client: an idempotent POST."""

    def post_idempotent(self, collection: str, body: Mapping[str, Any], key: str) -> dict[str, Any]:
        """POST body under key; return the receipt or raise an AgencyError."""
        ...


@runtime_checkable
class BatchPoster(Protocol):
    """An agency client that also posts batches of keyed writes (the office inbox's)."""

    def post_idempotent(self, collection: str, body: Mapping[str, Any], key: str) -> dict[str, Any]:
        """POST body under key; return the receipt or raise an AgencyError."""
        ...

    def post_batch(
        self, collection: str, items: Sequence[tuple[str, Mapping[str, Any]]]
    ) -> list[dict[str, Any] | AgencyError]:
        """POST (key, body) items as one batch; each item's receipt or error, in order."""
        ...


def _now(as_of: datetime | None) -> datetime:
    return operator_instant(as_of)


_R = TypeVar("_R")


def _store_step(step: Callable[..., _R], as_of: datetime | None, scope: RegionScope) -> _R:
    """Run one dispatch step on the store in its own write transaction."""
    engine = get_engine()
    with write_lock(engine), engine.begin() as conn:
        return step(conn, _now(as_of), scope=scope)


def _delivery_receipt(item: OutboxItem, answer: Mapping[str, Any]) -> str:
    receipt = DeliveryReceipt.model_validate(answer)
    body = item.body or {}
    if (receipt.handoff_id, receipt.office) != (body.get("handoff_id"), body.get("office")):
        raise ValueError("the receipt names another handoff or office")
    return receipt.receipt_id


def _proposal_receipt(item: OutboxItem, answer: Mapping[str, Any]) -> str:
    receipt = ProposalReceipt.model_validate(answer)
    if receipt.proposal_id != item.key:
        raise ValueError("the receipt names another proposal")
    return receipt.receipt_id


def _outcome(
    collection: str,
    item: OutboxItem,
    answer: Mapping[str, Any] | BaseException,
    receipt_of: Callable[[OutboxItem, Mapping[str, Any]], str],
) -> SendResult:
    """What one item's answer (its receipt, or the error of its POST) means for its row."""
    if isinstance(answer, Conflict | Unprocessable):
        # The same request would fail again: keep the row, out of the queue, for an operator.
        return SendResult(item.key, error=str(answer), permanent=True)
    if isinstance(answer, AgencyError):
        # Retried by the transport already; the next run tries again under the same key.
        return SendResult(item.key, error=str(answer))
    if isinstance(answer, BaseException):  # one bad row must not stop the batch
        return SendResult(item.key, error=f"{collection} POST failed: {type(answer).__name__}")
    try:
        return SendResult(item.key, receipt_id=receipt_of(item, answer))
    except (ValidationError, ValueError) as exc:
        # Sent, but the answer is no usable receipt: the replay under the key will tell.
        kind = "invalid receipt" if isinstance(exc, ValidationError) else str(exc)
        return SendResult(item.key, error=f"{collection} POST answered with {kind}")


def _send_one(
    client: Poster,
    collection: str,
    item: OutboxItem,
    receipt_of: Callable[[OutboxItem, Mapping[str, Any]], str],
) -> SendResult:
    if item.body is None:
        return SendResult(item.key, error=item.problem, permanent=True)
    answer: Mapping[str, Any] | BaseException
    try:
        answer = client.post_idempotent(collection, item.body, item.key)
    except Exception as exc:  # the type names it; the message is the error tree's, or none
        answer = exc
    return _outcome(collection, item, answer, receipt_of)


def post_items(
    client: Poster,
    collection: str,
    items: Sequence[OutboxItem],
    receipt_of: Callable[[OutboxItem, Mapping[str, Any]], str],
    *,
    workers: int = POST_WORKERS,
) -> list[SendResult]:
    """POST every item under its key, a few at a time; failures become results, not errors."""
    if not items:
        return []
    if workers <= 1 or len(items) == 1:
        return [_send_one(client, collection, i, receipt_of) for i in items]
    with ThreadPoolExecutor(max_workers=min(workers, len(items))) as pool:
        return list(pool.map(lambda i: _send_one(client, collection, i, receipt_of), items))


def _send_chunk(
    client: BatchPoster,
    collection: str,
    single: str,
    chunk: Sequence[OutboxItem],
    receipt_of: Callable[[OutboxItem, Mapping[str, Any]], str],
) -> list[SendResult]:
    """POST one batch request; each item's result as its single POST's would be."""
    answers: Sequence[Mapping[str, Any] | BaseException]
    try:
        answers = client.post_batch(collection, [(i.key, i.body or {}) for i in chunk])
    except Unprocessable:
        # Refused as a whole (an item the inbox judges otherwise than the hub): each item
        # goes on its own, so that only an invalid one fails for good.
        return [_send_one(client, single, i, receipt_of) for i in chunk]
    except Exception as exc:  # the whole request failed: every item as its POST would
        answers = [exc] * len(chunk)
    return [
        _outcome(collection, item, answer, receipt_of)
        for item, answer in zip(chunk, answers, strict=True)
    ]


def post_batches(
    client: BatchPoster,
    collection: str,
    single: str,
    items: Sequence[OutboxItem],
    receipt_of: Callable[[OutboxItem, Mapping[str, Any]], str],
    *,
    size: int,
    workers: int = POST_WORKERS,
) -> list[SendResult]:
    """POST items in batch requests of `size`, a few at a time; one result per item, in order."""
    if size < 1:
        raise ValueError("size must be at least 1")
    results: list[SendResult | None] = [
        None if i.body is not None else SendResult(i.key, error=i.problem, permanent=True)
        for i in items
    ]
    ready = [n for n, i in enumerate(items) if i.body is not None]
    chunks = [ready[n : n + size] for n in range(0, len(ready), size)]

    def send(chunk: list[int]) -> list[SendResult]:
        return _send_chunk(client, collection, single, [items[n] for n in chunk], receipt_of)

    if workers <= 1 or len(chunks) <= 1:
        sent = [send(c) for c in chunks]
    else:
        with ThreadPoolExecutor(max_workers=min(workers, len(chunks))) as pool:
            sent = list(pool.map(send, chunks))
    for chunk, out in zip(chunks, sent, strict=True):
        for n, result in zip(chunk, out, strict=True):
            results[n] = result
    return [r for r in results if r is not None]


@dataclass(frozen=True, slots=True)
class _Way:
    """How one outbox leaves: which agency and collection, how rows load and receipts record."""

    agency: str
    collection: str
    # Names in `integrations.store.outbox`, looked up per call (tests replace them).
    load: str
    record: str
    receipt_of: Callable[[OutboxItem, Mapping[str, Any]], str]
    # The agency's batch collection for this outbox, if it takes batches.
    batch: str | None = None


_WAYS: dict[Outbox, _Way] = {
    "deliveries": _Way(
        "kecamatan",
        HANDOFFS,
        "load_deliveries",
        "record_deliveries",
        _delivery_receipt,
        batch=HANDOFF_BATCHES,
    ),
    "proposals": _Way(
        "registry", UPDATE_PROPOSALS, "load_proposals", "record_proposals", _proposal_receipt
    ),
}


def office_channels() -> OfficeChannels:
    """The offices' channels of the hub's settings (`CETTAR_DESK_OFFICES`)."""
    return OfficeChannels.parse(get_settings().desk_offices)


def _desk_only(items: Sequence[OutboxItem], channels: OfficeChannels) -> list[OutboxItem]:
    """The deliveries to offices that work on the desk alone (none is posted to the inbox)."""
    return [
        i
        for i in items
        if i.body is not None and not channels.posts_to_inbox(str(i.body.get("office", "")))
    ]


def send_batch(
    engine: Engine,
    client: Poster,
    which: Outbox,
    keys: Sequence[str],
    *,
    as_of: datetime | None = None,
    workers: int = POST_WORKERS,
    channels: OfficeChannels | None = None,
    request_size: int | None = None,
) -> dict[str, int]:
    """Send one batch of an outbox's pending rows (deliveries or proposals); record receipts.

    Deliveries go `request_size` to a batch request (default `CETTAR_INBOX_BATCH_SIZE`; 1,
    or a client without batches, posts each on its own). A delivery to a desk-only office is
    not posted: the handoff is on that office's desk already, so the row is recorded as sent
    with a desk receipt, by the same path as an inbox receipt (the handoff becomes delivered
    once, with its audit row).
    """
    way = _WAYS[which]
    with engine.connect() as conn:
        items = getattr(outbox, way.load)(conn, keys)
    desk: list[OutboxItem] = []
    if which == "deliveries" and channels is not None:
        desk = _desk_only(items, channels)
        on_desk = {i.key for i in desk}
        items = [i for i in items if i.key not in on_desk]
    size = get_settings().inbox_batch_size if request_size is None else request_size
    # Never more per request than the contract takes.
    size = min(size, MAX_BATCH_ITEMS)
    if way.batch is not None and size > 1 and isinstance(client, BatchPoster):
        results = post_batches(
            client, way.batch, way.collection, items, way.receipt_of, size=size, workers=workers
        )
    else:
        results = post_items(client, way.collection, items, way.receipt_of, workers=workers)
    results += [SendResult(i.key, receipt_id=f"{DESK_RECEIPT_PREFIX}{i.key}") for i in desk]
    with write_lock(engine), engine.begin() as conn:
        counts: dict[str, int] = getattr(outbox, way.record)(conn, results, _now(as_of))
    if which == "deliveries" and channels is not None:
        counts["desk"] = len(desk)
    return counts


def outbox_batches(
    engine: Engine,
    which: Outbox,
    batch_size: int = BATCH_SIZE,
    scope: RegionScope = WHOLE_PROVINCE,
) -> list[list[str]]:
    """Keys of the pending rows of an outbox (the scope's handoffs), in batches of batch_size."""
    if batch_size < 1:
        raise ValueError("batch_size must be at least 1")
    with engine.connect() as conn:
        if which == "deliveries":
            keys = outbox.pending_deliveries(conn, scope=scope)
        else:
            keys = outbox.pending_proposals(conn, scope=scope)
    return [keys[i : i + batch_size] for i in range(0, len(keys), batch_size)]


# --- Prefect tasks ---------------------------------------------------------------------------


@task(name="plan-outbox-batches", cache_policy=NO_CACHE)
def plan_outbox_batches(
    which: Outbox, batch_size: int = BATCH_SIZE, scope: RegionScope = WHOLE_PROVINCE
) -> list[list[str]]:
    """Split an outbox's pending keys into batches, one delivery task each."""
    return outbox_batches(get_engine(), which, batch_size, scope)


def _name_for_the_ui(fn: Callable[..., Any], name: str, doc: str) -> None:
    # The Prefect UI shows a task's function docstring; its key derives from the qualname.
    fn.__doc__ = doc
    fn.__name__ = fn.__qualname__ = name.replace("-", "_")


def _send_task(name: str, which: Outbox, doc: str) -> Task[..., dict[str, int]]:
    """A task that sends one batch of an outbox's keys; returns counts (retried once)."""

    def run(keys: list[str], as_of: datetime | None = None) -> dict[str, int]:
        channels = office_channels() if which == "deliveries" else None
        with AgencyClient.for_agency(_WAYS[which].agency) as client:
            counts = send_batch(get_engine(), client, which, keys, as_of=as_of, channels=channels)
        get_run_logger().info(
            "%s: %d sent (%d on the desk), %d failed for good, %d to retry",
            which,
            counts["sent"],
            counts.get("desk", 0),
            counts["failed"],
            counts["retry"],
        )
        return counts

    _name_for_the_ui(run, name, doc)
    return task(name=name, retries=1, retry_delay_seconds=5, cache_policy=NO_CACHE)(run)


deliver_handoffs = _send_task(
    "deliver-handoffs", "deliveries", "Deliver one batch of handoffs to the office inbox."
)
send_update_proposals = _send_task(
    "send-update-proposals",
    "proposals",
    "Send one batch of verified household updates (proposal ids) to the registry.",
)


@task(name="apply-office-decisions", cache_policy=NO_CACHE)
def apply_office_decisions(
    as_of: datetime | None = None, scope: RegionScope = WHOLE_PROVINCE
) -> dict[str, int]:
    """Apply the office decisions synced from the inbox, in the order they were made."""
    counts = _store_step(decisions.apply_decisions, as_of, scope)
    get_run_logger().info("decisions: %s", counts.as_dict())
    return counts.as_dict()


def _store_task(name: str, step: Callable[..., int], done: str, doc: str) -> Task[..., int]:
    """A task that runs one counting store step in its own transaction and logs the count."""

    def run(as_of: datetime | None = None, scope: RegionScope = WHOLE_PROVINCE) -> int:
        count = _store_step(step, as_of, scope)
        get_run_logger().info(done, count)
        return count

    _name_for_the_ui(run, name, doc)
    return task(name=name, cache_policy=NO_CACHE)(run)


queue_handoff_deliveries = _store_task(
    "queue-handoff-deliveries",
    outbox.queue_deliveries,
    "%d deliveries queued",
    "Queue a pending delivery for every handoff not yet sent to its current office.",
)
fan_out_requests = _store_task(
    "fan-out-data-requests",
    store.fan_out_data_requests,
    "%d data-request handoffs created",
    "Turn each KSK data request into one handoff per desa asked.",
)
apply_data_submissions = _store_task(
    "apply-data-submissions",
    store.apply_submissions,
    "%d data requests answered",
    "Resolve the data-request handoffs whose desa has submitted.",
)
escalate_overdue_handoffs = _store_task(
    "escalate-overdue-handoffs",
    store.escalate_overdue,
    "%d handoffs escalated",
    "Escalate overdue kecamatan and desa handoffs to their kabupaten/kota; copy an escalated "
    "red-zone handoff to the kecamatan's Forkopimcam.",
)


@task(name="reconcile-offices", cache_policy=NO_CACHE)
def reconcile_offices(scope: RegionScope = WHOLE_PROVINCE) -> list[dict[str, Any]]:
    """Per office: deliveries sent, handoffs accepted, rejected and pending (counts only)."""
    with get_engine().connect() as conn:
        return [o.as_dict() for o in queries.reconciliation(conn, scope)]
