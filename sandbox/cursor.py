"""Opaque page cursors: urlsafe base64 of a small JSON naming the next record's position."""

from __future__ import annotations

import base64
import binascii
import json

from sandbox.registry_data import Position

__all__ = ["CursorError", "decode_cursor", "encode_cursor"]

_VERSION = 1


class CursorError(ValueError):
    """A cursor that is malformed or was issued for another collection or filter."""


def encode_cursor(collection: str, kecamatan: str | None, position: Position) -> str:
    """The cursor of the page starting at `position` of a collection (and filter)."""
    payload = {
        "v": _VERSION,
        "c": collection,
        "k": kecamatan,
        "p": [position.segment, position.index, position.slot],
    }
    raw = json.dumps(payload, separators=(",", ":")).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def decode_cursor(token: str, collection: str, kecamatan: str | None) -> Position:
    """The position a cursor points at; CursorError if it is not one of ours for this query."""
    try:
        raw = base64.urlsafe_b64decode(token + "=" * (-len(token) % 4))
        payload = json.loads(raw)
    except (binascii.Error, ValueError, UnicodeDecodeError) as exc:
        raise CursorError("cursor is not a cursor issued by this API") from exc
    if not isinstance(payload, dict) or payload.get("v") != _VERSION:
        raise CursorError("cursor is not a cursor issued by this API")
    if payload.get("c") != collection:
        raise CursorError(f"cursor was issued for another collection, not {collection}")
    if payload.get("k") != kecamatan:
        raise CursorError("cursor was issued for another kecamatan filter")
    pos = payload.get("p")
    if (
        not isinstance(pos, list)
        or len(pos) != 3
        or not all(type(x) is int and 0 <= x < 1 << 62 for x in pos)
    ):
        raise CursorError("cursor position is malformed")
    return Position(pos[0], pos[1], pos[2])
