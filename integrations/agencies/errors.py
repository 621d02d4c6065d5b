"""One typed error tree for every agency call, with messages safe to log (docs/ARCHITECTURE.md)."""

from __future__ import annotations

import re
from typing import Any, ClassVar
from urllib.parse import parse_qsl, quote, urlsplit, urlunsplit

from models.contracts.common import FieldError
from models.identity import mask_ids_in_text

__all__ = [
    "AgencyError",
    "AuthError",
    "BadRequest",
    "Conflict",
    "ContractViolation",
    "NotFound",
    "PermanentError",
    "RateLimited",
    "ServerError",
    "TransientError",
    "TransportFailure",
    "Unprocessable",
    "safe_error_code",
    "sanitise_url",
]

# Query values shown in clear: short, non-personal and what an operator needs to locate a
# failing request. Everything else (cursor, nik, no_kk, token, key, ...) is redacted,
# because an allow-list cannot leak a parameter someone adds later.
_VISIBLE_PARAMS = frozenset({"limit", "kecamatan", "desa", "kabupaten", "period", "programme"})
_REDACTED = "***"
# An agency's error code is echoed only when it looks like a code, not like free text.
_ERROR_CODE = re.compile(r"[A-Za-z][A-Za-z0-9_.:-]{0,63}")


def sanitise_url(url: object) -> str:
    """Return url without userinfo or fragment, IDs masked, non-public query values redacted."""
    text = str(url)
    try:
        parts = urlsplit(text)
        host = parts.hostname or ""
        port = parts.port
    except ValueError:
        # Unparseable input is still shown, but never with its query string.
        return mask_ids_in_text(text.split("?", 1)[0])
    if ":" in host:
        host = f"[{host}]"
    netloc = f"{host}:{port}" if port is not None else host
    query = "&".join(
        f"{quote(name, safe='')}="
        + (quote(value, safe=".:-") if name in _VISIBLE_PARAMS else _REDACTED)
        for name, value in parse_qsl(parts.query, keep_blank_values=True)
    )
    cleaned = urlunsplit((parts.scheme, netloc, parts.path, query, ""))
    return mask_ids_in_text(cleaned)


def safe_error_code(code: object) -> str | None:
    """Return an agency's `error` code if it is a short identifier, else None."""
    if isinstance(code, str) and _ERROR_CODE.fullmatch(code):
        return mask_ids_in_text(code)
    return None


def _target(url: str) -> str:
    """The path and (sanitised) query of a sanitised URL: what the message shows."""
    parts = urlsplit(url)
    path = parts.path or "/"
    return f"{path}?{parts.query}" if parts.query else path


class AgencyError(Exception):
    """Any failed call to an agency; str() is safe to log (no token, body or personal data)."""

    retryable: ClassVar[bool] = False
    default_reason: ClassVar[str | None] = None

    def __init__(
        self,
        agency: str,
        method: str,
        url: object,
        status: int | None = None,
        *,
        attempts: int = 1,
        code: str | None = None,
        reason: str | None = None,
    ) -> None:
        super().__init__()
        self.agency = agency
        self.method = method.upper()
        self.url = sanitise_url(url)
        self.status = status
        self.attempts = attempts
        self.code = safe_error_code(code)
        self.reason = mask_ids_in_text(reason) if reason else self.default_reason

    def __str__(self) -> str:
        # Built on demand so that `attempts`, set by the retry layer, shows up in the message.
        outcome = str(self.status) if self.status is not None else "failed"
        text = f"{self.agency} {self.method} {_target(self.url)} -> {outcome}"
        if self.attempts > 1:
            text += f" after {self.attempts} attempts"
        if self.code:
            text += f" ({self.code})"
        if self.reason:
            text += f": {self.reason}"
        return text

    def __repr__(self) -> str:
        return f"{type(self).__name__}({str(self)!r})"

    def __reduce__(self) -> tuple[Any, ...]:
        # Keyword-only arguments defeat Exception's default pickling; Prefect pickles
        # exceptions into failed states, so rebuild from the instance dictionary instead.
        return (_rebuild, (type(self), dict(self.__dict__)))


def _rebuild(cls: type[AgencyError], state: dict[str, Any]) -> AgencyError:
    error = cls.__new__(cls)
    error.__dict__.update(state)
    return error


class TransientError(AgencyError):
    """A failure that may succeed if the same request is sent again later."""

    retryable = True


class ServerError(TransientError):
    """The agency answered 5xx."""


class RateLimited(TransientError):
    """The agency answered 429; `retry_after` is its requested wait in seconds, if given."""

    def __init__(
        self,
        agency: str,
        method: str,
        url: object,
        status: int | None = 429,
        *,
        attempts: int = 1,
        code: str | None = None,
        reason: str | None = None,
        retry_after: float | None = None,
    ) -> None:
        super().__init__(agency, method, url, status, attempts=attempts, code=code, reason=reason)
        self.retry_after = retry_after


class TransportFailure(TransientError):
    """No usable answer: timeout, refused or dropped connection, truncated or undecodable body."""


class PermanentError(AgencyError):
    """A failure that the same request will hit again; fix the request, data or configuration."""

    retryable = False


class AuthError(PermanentError):
    """The agency refused the credentials (401) or the access (403)."""

    default_reason = "check the agency's token"


class NotFound(PermanentError):
    """The agency answered 404."""


class BadRequest(PermanentError):
    """The agency answered 400."""


class Conflict(PermanentError):
    """The agency answered 409: typically an idempotency key reused with another body."""


class Unprocessable(PermanentError):
    """The agency answered 422; `fields` carries its field errors (messages masked)."""

    def __init__(
        self,
        agency: str,
        method: str,
        url: object,
        status: int | None = 422,
        *,
        attempts: int = 1,
        code: str | None = None,
        reason: str | None = None,
        fields: list[FieldError] | None = None,
    ) -> None:
        # Field messages are the agency's free text and may echo a NIK: keep them masked.
        self.fields = [
            f.model_copy(update={"msg": mask_ids_in_text(f.msg)}) for f in (fields or [])
        ]
        if reason is None and self.fields:
            # Locations and error types only: they name the fields, never their values.
            shown = ", ".join(
                ".".join(str(part) for part in f.loc) + f" [{f.type}]" for f in self.fields[:5]
            )
            more = len(self.fields) - 5
            reason = shown + (f" and {more} more" if more > 0 else "")
        super().__init__(agency, method, url, status, attempts=attempts, code=code, reason=reason)


class ContractViolation(PermanentError):
    """A 2xx answer whose body does not match the exchange contract."""
