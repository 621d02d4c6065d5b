"""One typed error tree for every agency call, with messages safe to log (docs/ARCHITECTURE.md).

Three questions each error answers, so that no caller parses messages:

- `retryable`: may the same request succeed if sent again later? True only for
  `TransientError` (5xx, 429, timeouts, dropped connections, truncated bodies); the
  partition task retries these, with its 5 s and 30 s delays.
- `opens_circuit`: does it say the agency itself is down or refuses the hub, whatever the
  partition? True for `Unreachable` (connection refused, name not resolved, TLS failure),
  `AuthError` (401/403) and `InvalidEndpoint` (a malformed base URL). The circuit breaker
  (`integrations.agencies.breaker`) then fails the run's other partitions at once with
  `CircuitOpen`, which carries the same reason.
- `str()`: a message safe to log and to show: no token, no body, IDs masked, query values
  redacted.

```
AgencyError
├── TransientError (retryable)      ServerError, RateLimited, TransportFailure
├── Unreachable (opens the circuit, not retried by the task)
├── CircuitOpen (not tried: the agency was found down earlier in the run)
└── PermanentError                  AuthError (opens the circuit), InvalidEndpoint (opens
                                    the circuit), NotFound, BadRequest, Conflict,
                                    Unprocessable, ContractViolation
```
"""

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
    "CircuitOpen",
    "Conflict",
    "ContractViolation",
    "InvalidEndpoint",
    "NotFound",
    "PermanentError",
    "RateLimited",
    "ServerError",
    "TransientError",
    "TransportFailure",
    "Unprocessable",
    "Unreachable",
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
# The userinfo of a URL, parseable or not: everything before an "@" in the authority.
_USERINFO = re.compile(r"^((?:[A-Za-z][A-Za-z0-9+.-]*:)?/*)[^/?#]*@")


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
    # True when the agency as a whole is down or refuses the hub: every other partition
    # of the run would fail the same way (see integrations/agencies/breaker.py).
    opens_circuit: ClassVar[bool] = False
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
    """No usable answer: timeout, dropped connection, truncated or undecodable body."""


class Unreachable(AgencyError):
    """No connection to the agency at all: refused, host name not resolved, TLS failure.

    The transport retries it a couple of times with short waits (an agency restarting);
    the partition task does not retry it, and it opens the agency's circuit so that the
    run's other partitions fail at once. Timeouts are not this: they stay transient.
    """

    retryable = False
    opens_circuit = True


class CircuitOpen(AgencyError):
    """Not tried: earlier in the run the agency was found down or refused the hub.

    Carries the error that opened the circuit: its (already safe) message, type, status and
    reason, and `origin`, the partition that met it. Its message is that error's, followed
    by the note "(circuit open since <origin>: not tried)".
    """

    retryable = False

    def __init__(self, cause: AgencyError, origin: str) -> None:
        super().__init__(
            cause.agency, cause.method, cause.url, cause.status, code=cause.code, reason=None
        )
        # Copied, not re-masked: the cause's reason was masked when it was built.
        self.reason = cause.reason
        self.cause_type = type(cause).__name__
        self.cause_message = str(cause)
        self.origin = origin

    def __str__(self) -> str:
        return f"{self.cause_message} (circuit open since {self.origin}: not tried)"


class PermanentError(AgencyError):
    """A failure that the same request will hit again; fix the request, data or configuration."""

    retryable = False


class AuthError(PermanentError):
    """The agency refused the credentials (401) or the access (403)."""

    opens_circuit = True
    default_reason = "check the agency's token"


class InvalidEndpoint(PermanentError):
    """The agency's base URL is malformed (no http(s) scheme, no host): a configuration error.

    Raised before anything is sent; never retried. The message shows the whole URL (it is
    what needs fixing), without any userinfo.
    """

    opens_circuit = True

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
        # A malformed URL may not parse as one: drop anything up to an "@" by hand.
        text = _USERINFO.sub(r"\1", str(url))
        super().__init__(agency, method, text, status, attempts=attempts, code=code, reason=reason)

    def __str__(self) -> str:
        return f"{self.agency} URL {self.url!r} is malformed: {self.reason or 'unusable'}"


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
