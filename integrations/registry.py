"""Client of the social-registry agency (DTKS/DTSEN): incremental, paged collection reads."""

from __future__ import annotations

import re
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from types import TracebackType
from typing import Any, Self

import httpx
from pydantic import ValidationError

from integrations.errors import ContractViolation, sanitise_url
from integrations.http import ATTEMPTS_EXTENSION, JSON_EXTENSION, build_client, raise_for_status
from integrations.settings import Settings, get_settings
from models.contracts.common import RawPage
from models.contracts.registry import COLLECTIONS

__all__ = ["AGENCY", "FetchedPage", "PageCursor", "RegistryClient"]

AGENCY = "registry"
_KECAMATAN = re.compile(r"[0-9]{2}\.[0-9]{2}\.[0-9]{2}")


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
    raw_bytes: int
    elapsed_s: float
    attempts: int = field(default=1)


def _format_since(value: datetime) -> str:
    if value.tzinfo is None or value.utcoffset() is None:
        # A naive time would be read in the agency's zone: silently shifting the window.
        raise ValueError("updated_since must be timezone-aware")
    # UTC with "Z": no "+" for a query string to mangle, one spelling for every cursor.
    return value.astimezone(UTC).isoformat().replace("+00:00", "Z")


class RegistryClient:
    """Reads households and programme recipients from the registry agency, page by page."""

    def __init__(
        self,
        base_url: str,
        token: str,
        *,
        settings: Settings | None = None,
        transport: httpx.BaseTransport | None = None,
        client: httpx.Client | None = None,
    ) -> None:
        self._settings = settings or get_settings()
        self._owns_client = client is None
        self._client = client or build_client(
            base_url, token, agency=AGENCY, settings=self._settings, transport=transport
        )
        # Sanitised: a base URL may carry userinfo, and this shows up in reprs and logs.
        self.base_url = sanitise_url(self._client.base_url)

    @classmethod
    def from_settings(
        cls, settings: Settings | None = None, transport: httpx.BaseTransport | None = None
    ) -> RegistryClient:
        """A client for the configured registry URL and token."""
        s = settings or get_settings()
        return cls(
            s.registry_url, s.registry_token.get_secret_value(), settings=s, transport=transport
        )

    def __repr__(self) -> str:
        return f"RegistryClient({self.base_url!r})"

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
        if collection not in COLLECTIONS:
            raise ValueError(f"unknown registry collection {collection!r}; expected {COLLECTIONS}")
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
        raise_for_status(response, AGENCY)
        content = response.content
        try:
            if JSON_EXTENSION in response.extensions:
                # Already parsed (and checked for truncation) by the retry layer.
                page = RawPage.model_validate(response.extensions[JSON_EXTENSION])
            else:
                page = RawPage.model_validate_json(content)
        except ValidationError as exc:
            raise _envelope_error(response, exc) from None
        return FetchedPage(
            records=page.data,
            next_cursor=page.next_cursor,
            raw_bytes=len(content),
            elapsed_s=time.perf_counter() - started,
            attempts=int(response.extensions.get(ATTEMPTS_EXTENSION, 1)),
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
                    AGENCY,
                    "GET",
                    self._client.base_url.join(f"v1/{collection}"),
                    200,
                    reason="next_cursor did not advance",
                )
            cursor = page.next_cursor


def _envelope_error(response: httpx.Response, exc: ValidationError) -> ContractViolation:
    # Locations and error types only: pydantic's messages and inputs may echo record values.
    problems = sorted({".".join(str(p) for p in e["loc"]) or e["type"] for e in exc.errors()})
    more = f" and {len(problems) - 5} more" if len(problems) > 5 else ""
    shown = ", ".join(problems[:5]) + more
    return ContractViolation(
        AGENCY,
        response.request.method,
        response.request.url,
        response.status_code,
        attempts=int(response.extensions.get(ATTEMPTS_EXTENSION, 1)),
        reason=f"body does not match the page envelope ({shown})",
    )
