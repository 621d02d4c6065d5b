"""The sandbox ASGI app: each simulated agency under its own prefix, plus /_admin."""

from __future__ import annotations

from typing import Any

from fastapi import FastAPI
from fastapi.openapi.utils import get_openapi
from starlette.responses import JSONResponse

from models.wilayah import RegionRegistry
from sandbox.admin_api import admin_router
from sandbox.agencies_api import agency_routers
from sandbox.config import SandboxConfig
from sandbox.errors import install_error_handlers
from sandbox.faults import hide_injected_drops
from sandbox.inbox_api import inbox_router
from sandbox.read_query import read_components
from sandbox.registry_api import registry_router
from sandbox.state import SandboxState
from sandbox.stats import StatsMiddleware

# The configuration types are re-exported so callers can build an app from one import.
__all__ = ["ADMIN_OPENAPI_URL", "create_app"]

ADMIN_OPENAPI_URL = "/_admin/openapi.json"
"""The admin routes' own document: test control, not part of any agency's contract."""

DESCRIPTION = """Simulated agency APIs of the CETTAR Hub exchange contract (docs/ARCHITECTURE.md).

Agencies: registry, pkh, desa, pertanian, kecamatan (office inbox), statistik, each under
`/<agency>` with its own bearer token (`Authorization: Bearer`).

Reads are incremental and paged: `GET /<agency>/v1/<collection>?updated_since=&cursor=&limit=
&kecamatan=` answers `{"data": [...], "next_cursor": "..." | null}` ordered by
`(updated_at, id)`; `updated_since` is inclusive. Writes (`POST /kecamatan/v1/handoffs`,
`POST /registry/v1/update-proposals`) need an `Idempotency-Key`: a replay returns the first
result, the same key with another body is 409. Errors carry an ErrorBody; 429 carries
`Retry-After`. Records are synthetic, the same people across agencies, and a known share of
them is deliberately invalid (`SandboxConfig.bad_records`).

The `/_admin` routes that drive the simulation are test control, not an agency contract:
they are described apart, at `/_admin/openapi.json`."""


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
    admin = admin_router(state)
    app.include_router(admin, include_in_schema=False)
    _publish_documents(app, admin.routes)
    app.add_middleware(StatsMiddleware, stats=state.stats)
    return app


def _publish_documents(app: FastAPI, admin_routes: list[Any]) -> None:
    agencies_openapi = app.openapi

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            doc = agencies_openapi()
            doc.setdefault("components", {}).setdefault("schemas", {}).update(read_components())
        return app.openapi_schema or {}

    app.openapi = openapi  # type: ignore[method-assign]
    admin_doc: dict[str, Any] = {}

    async def admin_openapi() -> JSONResponse:
        if not admin_doc:
            admin_doc.update(
                get_openapi(
                    title="CETTAR Hub sandbox control (test only)",
                    version="1",
                    description="Drive and observe the simulation: faults, epoch, clock, truth.",
                    routes=admin_routes,
                )
            )
        return JSONResponse(admin_doc)

    app.add_api_route(ADMIN_OPENAPI_URL, admin_openapi, include_in_schema=False)
