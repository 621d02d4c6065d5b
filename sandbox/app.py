"""The sandbox ASGI app: each simulated agency under its own prefix, plus /_admin."""

from __future__ import annotations

from fastapi import FastAPI

from models.wilayah import RegionRegistry
from sandbox.admin_api import admin_router
from sandbox.agencies_api import agency_routers
from sandbox.config import SandboxConfig
from sandbox.errors import install_error_handlers
from sandbox.faults import hide_injected_drops
from sandbox.inbox_api import inbox_router
from sandbox.registry_api import registry_router
from sandbox.state import SandboxState
from sandbox.stats import StatsMiddleware

# The configuration types are re-exported so callers can build an app from one import.
__all__ = ["create_app"]

DESCRIPTION = """Simulated agency APIs of the CETTAR Hub exchange contract (docs/ARCHITECTURE.md).

Agencies: registry, pkh, desa, pertanian, kecamatan (office inbox), statistik, each under
`/<agency>` with its own bearer token (`Authorization: Bearer`).

Reads are incremental and paged: `GET /<agency>/v1/<collection>?updated_since=&cursor=&limit=
&kecamatan=` answers `{"data": [...], "next_cursor": "..." | null}` ordered by
`(updated_at, id)`; `updated_since` is inclusive. Writes (`POST /kecamatan/v1/handoffs`,
`POST /registry/v1/update-proposals`) need an `Idempotency-Key`: a replay returns the first
result, the same key with another body is 409. Errors carry an ErrorBody; 429 carries
`Retry-After`. Records are synthetic, the same people across agencies, and a known share of
them is deliberately invalid."""


def create_app(
    config: SandboxConfig | None = None, regions: RegionRegistry | None = None
) -> FastAPI:
    """Build the sandbox app; its state is reachable as `app.state.sandbox`."""
    cfg = config if config is not None else SandboxConfig()
    hide_injected_drops()
    state = SandboxState(cfg, regions)
    app = FastAPI(title="CETTAR Hub sandbox agencies", version="1", description=DESCRIPTION)
    app.state.sandbox = state
    install_error_handlers(app)
    app.include_router(registry_router(state), prefix="/registry")
    for agency, router in agency_routers(state).items():
        app.include_router(router, prefix=f"/{agency}")
    app.include_router(inbox_router(state), prefix="/kecamatan")
    app.include_router(admin_router(state))
    app.add_middleware(StatsMiddleware, stats=state.stats)
    return app
