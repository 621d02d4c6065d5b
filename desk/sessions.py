"""Desk sessions in a signed cookie: who is signed in, the CSRF token, and when last seen.

The cookie holds no secret and no personal data: the account id, its session version (a
password change, reset or disable raises it, ending older sessions), the CSRF token of the
session's forms, and the time of the last request, which ends the session after the idle
hours. It is signed with the desk's secret key (itsdangerous), so a changed cookie is
simply no session.
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass, field
from typing import Any

from itsdangerous import BadSignature, URLSafeSerializer

__all__ = ["COOKIE", "Session", "SessionCodec"]

COOKIE = "cettar_desk"


def _token() -> str:
    return secrets.token_urlsafe(24)


@dataclass(slots=True)
class Session:
    """One browser's session; `account_id` None before sign-in."""

    csrf: str = field(default_factory=_token)
    account_id: int | None = None
    version: int = 0
    seen: float = 0.0

    def sign_in(self, account_id: int, version: int) -> None:
        """Bind the session to an account with a fresh CSRF token (no fixation)."""
        self.account_id, self.version, self.csrf = account_id, version, _token()

    def sign_out(self) -> None:
        """Forget the account and the CSRF token."""
        self.account_id, self.version, self.csrf = None, 0, _token()

    def csrf_ok(self, token: object) -> bool:
        """True when a form's token is this session's."""
        return isinstance(token, str) and secrets.compare_digest(token, self.csrf)


class SessionCodec:
    """Signs sessions into cookie values and reads them back, ending idle ones."""

    def __init__(self, secret_key: str, idle_seconds: float) -> None:
        if not secret_key:
            raise ValueError("the desk needs a secret key to sign its sessions")
        self._serializer = URLSafeSerializer(secret_key, salt="cettar-desk-session")
        self.idle_seconds = idle_seconds

    def dumps(self, session: Session, now: float) -> str:
        """The cookie value of the session, seen at `now` (epoch seconds)."""
        session.seen = now
        payload: dict[str, Any] = {"c": session.csrf, "t": round(now, 3)}
        if session.account_id is not None:
            payload |= {"a": session.account_id, "v": session.version}
        return str(self._serializer.dumps(payload))

    def loads(self, value: str | None, now: float) -> Session:
        """The session of a cookie value; a fresh one when missing, forged or idle too long."""
        if not value:
            return Session()
        try:
            payload = self._serializer.loads(value)
        except BadSignature:
            return Session()
        if not isinstance(payload, dict):
            return Session()
        seen = payload.get("t")
        csrf = payload.get("c")
        if not isinstance(seen, int | float) or not isinstance(csrf, str):
            return Session()
        if now - float(seen) > self.idle_seconds or float(seen) > now + 60:
            return Session()
        account, version = payload.get("a"), payload.get("v")
        if isinstance(account, int) and isinstance(version, int):
            return Session(csrf=csrf, account_id=account, version=version, seen=float(seen))
        return Session(csrf=csrf, seen=float(seen))
