"""One client for every agency of the exchange contract: paged reads and idempotent writes."""

from __future__ import annotations

import re
import time
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from types import MappingProxyType, TracebackType
from typing import Any, Self

import httpx
import pydantic_core
from pydantic import ValidationError

from integrations.agencies.errors import (
    AgencyError,
    Conflict,
    ContractViolation,
    PermanentError,
    ServerError,
    Unprocessable,
    sanitise_url,
)
from integrations.agencies.http import (
    IDEMPOTENCY_KEY,
    IDEMPOTENT_EXTENSION,
    JSON_EXTENSION,
    build_client,
    raise_for_status,
    response_attempts,
)
from integrations.settings import Settings, get_settings
from models.contracts import kecamatan, registry
from models.contracts.common import ErrorBody, RawPage
from models.sources import AGENCIES, collections_of

__all__ = [
    "BATCH_COLLECTIONS",
    "READ_COLLECTIONS",
    "WRITE_COLLECTIONS",
    "AgencyClient",
    "FetchedPage",
    "PageCursor",
]

READ_COLLECTIONS: Mapping[str, tuple[str, ...]] = MappingProxyType(
    {agency: collections_of(agency) for agency in AGENCIES}
)
"""Collections each agency serves for paged reads (`GET /v1/<collection>`): the catalogue's."""

WRITE_COLLECTIONS: Mapping[str, tuple[str, ...]] = MappingProxyType(
    {
        "registry": (registry.UPDATE_PROPOSALS,),
        "kecamatan": (kecamatan.HANDOFFS,),
    }
)
"""Collections each agency accepts idempotent writes on (`POST /v1/<collection>`)."""

BATCH_COLLECTIONS: Mapping[str, Mapping[str, int]] = MappingProxyType(
    {"kecamatan": MappingProxyType({kecamatan.HANDOFF_BATCHES: kecamatan.MAX_BATCH_ITEMS})}
)
"""Batch write collections of each agency (`POST /v1/<collection>`) and their item limit."""

_KECAMATAN = re.compile(r"[0-9]{2}\.[0-9]{2}\.[0-9]{2}")
# Printable ASCII without spaces: what an HTTP header value carries safely.
_IDEMPOTENCY_KEY = re.compile(r"[!-~]{1,200}")


@dataclass(frozen=True, slots=True)
class PageCursor:
    """Where a paged read stands: enough to resume it after the page it came with."""

    collection: str
    kecamatan: str | None = None
    updated_since: datetime | None = None
    # Opaque cursor of the next page; None once the read is exhausted.
    cursor: str | None = None


@dataclass(slots=True)
class FetchedPage:
    """One page as received: raw records (validated later, by the sync task) and its metrics."""

    records: list[dict[str, Any]]
    next_cursor: str | None
    # The body as served: a worker process decodes it again instead of receiving the
    # records pickled (bytes cross a pipe for almost nothing; the records cost the sender).
    body: bytes
    elapsed_s: float
    attempts: int = field(default=1)

    @property
    def raw_bytes(self) -> int:
        """Size of the body as served."""
        return len(self.body)


def _format_since(value: datetime) -> str:
    if value.tzinfo is None or value.utcoffset() is None:
        # A naive time would be read in the agency's zone: silently shifting the window.
        raise ValueError("updated_since must be timezone-aware")
    # UTC with "Z": no "+" for a query string to mangle, one spelling for every cursor.
    return value.astimezone(UTC).isoformat().replace("+00:00", "Z")


class AgencyClient:
    """Reads an agency's collections page by page and posts idempotent writes to it."""

    def __init__(
        self,
        agency: str,
        base_url: str,
        token: str,
        *,
        settings: Settings | None = None,
        transport: httpx.BaseTransport | None = None,
        client: httpx.Client | None = None,
    ) -> None:
        if agency not in AGENCIES:
            raise ValueError(f"unknown agency {agency!r}; expected one of {', '.join(AGENCIES)}")
        self.agency = agency
        self.collections = READ_COLLECTIONS[agency]
        self.write_collections = WRITE_COLLECTIONS.get(agency, ())
        self._settings = settings or get_settings()
        self._owns_client = client is None
        self._client = client or build_client(
            base_url, token, agency=agency, settings=self._settings, transport=transport
        )
        # Sanitised: a base URL may carry userinfo, and this shows up in reprs and logs.
        self.base_url = sanitise_url(self._client.base_url)

    @staticmethod
    def for_agency(
        agency: str,
        settings: Settings | None = None,
        transport: httpx.BaseTransport | None = None,
    ) -> AgencyClient:
        """A client for the configured URL and token of `agency`."""
        s = settings or get_settings()
        url, token = s.agency_endpoint(agency)
        return AgencyClient(agency, url, token, settings=s, transport=transport)

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.agency!r}, {self.base_url!r})"

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    def close(self) -> None:
        """Close the HTTP client if this object created it."""
        if self._owns_client:
            self._client.close()

    def fetch_page(
        self,
        collection: str,
        *,
        updated_since: datetime | None = None,
        cursor: str | None = None,
        kecamatan: str | None = None,
        limit: int | None = None,
    ) -> FetchedPage:
        """Fetch one page of a collection; raise an `AgencyError` subclass on failure."""
        if collection not in self.collections:
            raise ValueError(
                f"unknown {self.agency} collection {collection!r}; expected {self.collections}"
            )
        size = self._settings.page_limit if limit is None else limit
        if size < 1:
            raise ValueError("limit must be at least 1")
        params: dict[str, str | int] = {"limit": size}
        if updated_since is not None:
            params["updated_since"] = _format_since(updated_since)
        if cursor is not None:
            params["cursor"] = cursor
        if kecamatan is not None:
            if not _KECAMATAN.fullmatch(kecamatan):
                raise ValueError("kecamatan must be a dotted kecamatan code such as 35.78.01")
            params["kecamatan"] = kecamatan
        started = time.perf_counter()
        # Retries (429, 5xx, timeouts, drops, truncated bodies) all happen inside the
        # client's transport; what comes back here is final.
        response = self._client.get(f"/v1/{collection}", params=params)
        raise_for_status(response, self.agency)
        content = response.content
        try:
            if JSON_EXTENSION in response.extensions:
                # Already parsed (and checked for truncation) by the retry layer.
                page = RawPage.model_validate(response.extensions[JSON_EXTENSION])
            else:
                page = RawPage.model_validate_json(content)
        except ValidationError as exc:
            raise self._envelope_error(response, exc) from None
        return FetchedPage(
            records=page.data,
            next_cursor=page.next_cursor,
            body=content,
            elapsed_s=time.perf_counter() - started,
            attempts=response_attempts(response),
        )

    def iter_pages(
        self,
        collection: str,
        *,
        updated_since: datetime | None = None,
        kecamatan: str | None = None,
        limit: int | None = None,
        start_cursor: str | None = None,
    ) -> Iterator[tuple[FetchedPage, PageCursor]]:
        """Yield pages lazily until the collection is exhausted, each with its resume point."""
        cursor = start_cursor
        while True:
            page = self.fetch_page(
                collection,
                updated_since=updated_since,
                cursor=cursor,
                kecamatan=kecamatan,
                limit=limit,
            )
            yield page, PageCursor(collection, kecamatan, updated_since, page.next_cursor)
            if page.next_cursor is None:
                return
            if page.next_cursor == cursor:
                # A cursor that does not move would page the same records forever.
                raise ContractViolation(
                    self.agency,
                    "GET",
                    self._client.base_url.join(f"v1/{collection}"),
                    200,
                    reason="next_cursor did not advance",
                )
            cursor = page.next_cursor

    def post_idempotent(self, collection: str, body: Mapping[str, Any], key: str) -> dict[str, Any]:
        """POST body under an `Idempotency-Key`; return the agency's JSON receipt.

        The same key always means the same write: the transport may send it again after a
        5xx, a 429 or a dropped connection, and the agency answers a replay with the first
        receipt. 409 (the key was used for another body) raises `Conflict`, 422 raises
        `Unprocessable` with the field errors.
        """
        if collection not in self.write_collections:
            raise ValueError(
                f"{self.agency} accepts no writes on {collection!r}; "
                f"expected one of {self.write_collections}"
            )
        if not _IDEMPOTENCY_KEY.fullmatch(key):
            raise ValueError("the idempotency key must be 1-200 printable ASCII characters")
        # Serialised here so dates and datetimes in the body need no caller-side conversion.
        content = pydantic_core.to_json(dict(body))
        response = self._client.post(
            f"/v1/{collection}",
            content=content,
            headers={IDEMPOTENCY_KEY: key, "Content-Type": "application/json"},
        )
        raise_for_status(response, self.agency)
        try:
            if JSON_EXTENSION in response.extensions:
                receipt = response.extensions[JSON_EXTENSION]
            else:
                receipt = pydantic_core.from_json(response.content) if response.content else None
        except ValueError:
            receipt = None
        if not isinstance(receipt, dict):
            raise self._violation(
                response, "the answer to a write is not a JSON object (receipt expected)"
            )
        return receipt

    def post_batch(
        self, collection: str, items: Sequence[tuple[str, Mapping[str, Any]]]
    ) -> list[dict[str, Any] | AgencyError]:
        """POST (key, body) items as one batch; return each item's receipt or error, in order.

        Each item is the write its single POST would be, under its own key: the transport
        may send the whole batch again after a 5xx, a 429 or a dropped connection, and the
        agency answers every replayed item with its first receipt. An item refused on its
        own comes back as the error its single POST would raise (409 `Conflict`, 422
        `Unprocessable`); a batch refused as a whole raises, like a single POST.
        """
        limits = BATCH_COLLECTIONS.get(self.agency, {})
        if collection not in limits:
            raise ValueError(
                f"{self.agency} accepts no batches on {collection!r}; expected one of "
                f"{tuple(limits)}"
            )
        if not 1 <= len(items) <= limits[collection]:
            raise ValueError(f"a batch holds 1 to {limits[collection]} items")
        keys = [key for key, _ in items]
        if not all(_IDEMPOTENCY_KEY.fullmatch(k) for k in keys):
            raise ValueError("each idempotency key must be 1-200 printable ASCII characters")
        content = pydantic_core.to_json(
            {"items": [{"idempotency_key": k, "body": dict(b)} for k, b in items]}
        )
        response = self._client.post(
            f"/v1/{collection}",
            content=content,
            headers={"Content-Type": "application/json"},
            # Safe to send again: every item carries its own idempotency key.
            extensions={IDEMPOTENT_EXTENSION: True},
        )
        raise_for_status(response, self.agency)
        try:
            if JSON_EXTENSION in response.extensions:
                answer = response.extensions[JSON_EXTENSION]
            else:
                answer = pydantic_core.from_json(response.content) if response.content else None
        except ValueError:
            answer = None
        results = answer.get("results") if isinstance(answer, dict) else None
        if not isinstance(results, list) or len(results) != len(items):
            raise self._violation(response, "the answer to a batch is not one result per item")
        out: list[dict[str, Any] | AgencyError] = []
        for key, result in zip(keys, results, strict=True):
            if not isinstance(result, dict) or result.get("idempotency_key") != key:
                raise self._violation(response, "the batch's results are not in the items' order")
            out.append(self._item_outcome(response, result))
        return out

    def _item_outcome(
        self, response: httpx.Response, result: dict[str, Any]
    ) -> dict[str, Any] | AgencyError:
        """One batch item's receipt (a JSON object, validated by the caller) or its error."""
        status = result.get("status")
        if status in (200, 201):
            receipt = result.get("receipt")
            if not isinstance(receipt, dict):
                return self._violation(response, "a batch item's receipt is not a JSON object")
            return receipt
        try:
            error = ErrorBody.model_validate(result.get("error"))
        except ValidationError:
            error = None
        code = error.error if error else None
        number = status if isinstance(status, int) else None
        args = (self.agency, "POST", response.request.url, number)
        common: dict[str, Any] = {"attempts": response_attempts(response), "code": code}
        if status == 422:
            # Its reason names the invalid fields (locations and types only).
            return Unprocessable(*args, fields=error.fields if error else [], **common)
        common["reason"] = "batch item"
        if status == 409:
            return Conflict(*args, **common)
        if isinstance(status, int) and status >= 500:
            return ServerError(*args, **common)
        return PermanentError(*args, **common)

    def _violation(self, response: httpx.Response, reason: str) -> ContractViolation:
        """The error for a 2xx answer of this agency whose body breaks the contract."""
        return ContractViolation(
            self.agency,
            response.request.method,
            response.request.url,
            response.status_code,
            attempts=response_attempts(response),
            reason=reason,
        )

    def _envelope_error(self, response: httpx.Response, exc: ValidationError) -> ContractViolation:
        # Locations and error types only: pydantic's messages and inputs may echo record values.
        problems = sorted({".".join(str(p) for p in e["loc"]) or e["type"] for e in exc.errors()})
        more = f" and {len(problems) - 5} more" if len(problems) > 5 else ""
        shown = ", ".join(problems[:5]) + more
        return self._violation(response, f"body does not match the page envelope ({shown})")
