"""Bearer-token checks for agency and admin routes."""

# No `from __future__ import annotations` here: FastAPI must evaluate the dependency's
# annotation, which refers to the closure's security scheme.
import hmac
from collections.abc import Awaitable, Callable
from typing import Annotated

from fastapi import Security
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from sandbox.errors import Unauthorized

__all__ = ["bearer_auth"]


def bearer_auth(
    scheme_name: str, expected: Callable[[], str | None]
) -> Callable[..., Awaitable[None]]:
    """A dependency that rejects requests whose bearer token is not `expected()`."""
    scheme = HTTPBearer(
        auto_error=False, scheme_name=scheme_name, description=f"Bearer token ({scheme_name})"
    )

    async def check(
        credentials: Annotated[HTTPAuthorizationCredentials | None, Security(scheme)],
    ) -> None:
        token = expected()
        if (
            credentials is None
            or token is None
            or not hmac.compare_digest(credentials.credentials.encode(), token.encode())
        ):
            raise Unauthorized()

    return check
