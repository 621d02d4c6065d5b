"""The query of a read route, `?updated_since=&cursor=&limit=&kecamatan=`: its exact rules.

One table drives both sides: the OpenAPI parameter objects the routes publish and the
parser that reads a request, so every value the document allows is served and every value
it forbids is refused (422 with field errors; a bad cursor is 400 `bad_cursor`).
"""

from __future__ import annotations

import functools
import re
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from starlette.datastructures import QueryParams

from models.wilayah import get_region_registry, normalise_region_code
from sandbox.cursor import CursorError, cursor_pattern, decode_cursor
from sandbox.registry_data import Position

__all__ = [
    "DEFAULT_LIMIT",
    "KECAMATAN_SCHEMA",
    "MAX_LIMIT",
    "UPDATED_SINCE_PATTERN",
    "QueryError",
    "ReadQuery",
    "kecamatan_codes",
    "parse_read_query",
    "read_components",
    "read_parameters",
]

DEFAULT_LIMIT = 500
MAX_LIMIT = 5000

KECAMATAN_SCHEMA = "KodeKecamatan"
"""Name of the components schema of a known kecamatan code (the filter's values)."""

# RFC 3339 date-time with a zone, limited to what the ISO parser reads (years 0001-9999, no
# leap second); the calendar (no 30 February) is the `date-time` format's part.
_YEAR = r"([1-9][0-9]{3}|0[1-9][0-9]{2}|00[1-9][0-9]|000[1-9])"
_HOUR = r"([01][0-9]|2[0-3])"
_MINUTE = r"[0-5][0-9]"
UPDATED_SINCE_PATTERN = (
    rf"^{_YEAR}-(0[1-9]|1[0-2])-(0[1-9]|[12][0-9]|3[01])"
    rf"T{_HOUR}:{_MINUTE}:{_MINUTE}(\.[0-9]{{1,6}})?(Z|[+-]{_HOUR}:{_MINUTE})$"
)
_UPDATED_SINCE = re.compile(UPDATED_SINCE_PATTERN[1:-1])
_LIMIT = re.compile(r"0|[1-9][0-9]*")


@functools.cache
def kecamatan_codes() -> tuple[str, ...]:
    """Every known kecamatan code, dotted then as six digits: what `KodeKecamatan` accepts."""
    dotted = [region.code for region in get_region_registry().kecamatan()]
    return (*dotted, *(code.replace(".", "") for code in dotted))


class QueryError(Exception):
    """A query parameter the read routes refuse; `status` 422 (field) or 400 (cursor)."""

    def __init__(self, status: int, name: str, msg: str, kind: str) -> None:
        super().__init__(msg)
        self.status = status
        self.name = name
        self.msg = msg
        self.kind = kind

    @property
    def field(self) -> dict[str, Any]:
        """The FieldError of this refusal."""
        return {"loc": ["query", self.name], "msg": self.msg, "type": self.kind}


@dataclass(frozen=True, slots=True)
class ReadQuery:
    """A parsed read query; `cursor` is still the raw token (decoded after the fault draw)."""

    updated_since: datetime | None
    cursor: str | None
    limit: int
    kecamatan: str | None

    def position(self, collection: str) -> Position | None:
        """The cursor's position; QueryError (400) if it is not a cursor of `collection`."""
        if self.cursor is None:
            return None
        try:
            return decode_cursor(self.cursor, collection)
        except CursorError as exc:
            raise QueryError(400, "cursor", str(exc), "bad_cursor") from None


def _one(query: QueryParams, name: str) -> str | None:
    values = query.getlist(name)
    if len(values) > 1:
        raise QueryError(422, name, "the parameter is given more than once", "multiple_values")
    return values[0] if values else None


def _updated_since(text: str | None) -> datetime | None:
    if text is None:
        return None
    if _UPDATED_SINCE.fullmatch(text) is not None:
        try:
            return datetime.fromisoformat(text)
        except ValueError:
            pass
    raise QueryError(
        422,
        "updated_since",
        "updated_since must be an RFC 3339 date-time with a zone, e.g. 2026-11-02T00:00:00Z",
        "datetime_format",
    )


def _limit(text: str | None) -> int:
    if text is None:
        return DEFAULT_LIMIT
    if _LIMIT.fullmatch(text) is None or not 1 <= int(text) <= MAX_LIMIT:
        raise QueryError(
            422, "limit", f"limit must be an integer from 1 to {MAX_LIMIT}", "limit_range"
        )
    return int(text)


def _kecamatan(text: str | None) -> str | None:
    if text is None:
        return None
    if text in _known_kecamatan():
        return normalise_region_code(text)
    raise QueryError(
        422,
        "kecamatan",
        "kecamatan must be a known kecamatan code (35.78.01 or 357801)",
        "region_code_unknown",
    )


@functools.cache
def _known_kecamatan() -> frozenset[str]:
    return frozenset(kecamatan_codes())


def parse_read_query(query: QueryParams) -> ReadQuery:
    """The read query of a request; QueryError for the first parameter it refuses."""
    return ReadQuery(
        updated_since=_updated_since(_one(query, "updated_since")),
        cursor=_one(query, "cursor"),
        limit=_limit(_one(query, "limit")),
        kecamatan=_kecamatan(_one(query, "kecamatan")),
    )


def read_parameters(collection: str) -> list[dict[str, Any]]:
    """The OpenAPI parameter objects of a collection's read route (what the parser accepts)."""
    return [
        {
            "name": "updated_since",
            "in": "query",
            "required": False,
            "description": "Only records with updated_at >= this instant (RFC 3339, with a zone).",
            "schema": {"type": "string", "format": "date-time", "pattern": UPDATED_SINCE_PATTERN},
        },
        {
            "name": "cursor",
            "in": "query",
            "required": False,
            "description": (
                "next_cursor of the previous page, passed back unchanged; it resumes the "
                "collection's (updated_at, id) order at that record, whatever the filter."
            ),
            "schema": {"type": "string", "pattern": cursor_pattern(collection)},
        },
        {
            "name": "limit",
            "in": "query",
            "required": False,
            "description": "Records per page.",
            "schema": {
                "type": "integer",
                "minimum": 1,
                "maximum": MAX_LIMIT,
                "default": DEFAULT_LIMIT,
            },
        },
        {
            "name": "kecamatan",
            "in": "query",
            "required": False,
            "description": "Only records of this kecamatan; absent: the whole province.",
            "schema": {"$ref": f"#/components/schemas/{KECAMATAN_SCHEMA}"},
        },
    ]


def read_components() -> dict[str, Any]:
    """The components schemas the read parameters refer to."""
    return {
        KECAMATAN_SCHEMA: {
            "type": "string",
            "description": "A known Jawa Timur kecamatan code, dotted (35.78.01) or not (357801).",
            "enum": list(kecamatan_codes()),
        }
    }
