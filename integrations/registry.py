"""Client of the social-registry agency (DTKS/DTSEN): the agency client bound to `registry`."""

from __future__ import annotations

import httpx

from integrations.agency import AgencyClient, FetchedPage, PageCursor
from integrations.settings import Settings, get_settings

__all__ = ["AGENCY", "FetchedPage", "PageCursor", "RegistryClient"]

AGENCY = "registry"


class RegistryClient(AgencyClient):
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
        super().__init__(
            AGENCY, base_url, token, settings=settings, transport=transport, client=client
        )

    @classmethod
    def from_settings(
        cls, settings: Settings | None = None, transport: httpx.BaseTransport | None = None
    ) -> RegistryClient:
        """A client for the configured registry URL and token."""
        s = settings or get_settings()
        url, token = s.agency_endpoint(AGENCY)
        return cls(url, token, settings=s, transport=transport)

    def __repr__(self) -> str:
        return f"RegistryClient({self.base_url!r})"
