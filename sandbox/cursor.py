"""Page cursors: the collection and the serving position of the next page's first record.

A cursor reads `<collection>.<segment>.<index>.<slot>` (decimal numbers, no leading zeros):
clients pass it back unchanged and never build one. It names a position in the
collection's (updated_at, id) order, which every filter of the collection shares, so a
cursor resumes any query of its collection; one of another collection is refused. Every
string that matches `cursor_pattern(collection)` is a cursor of that collection.
"""

from __future__ import annotations

import re

from sandbox.registry_data import Position

__all__ = ["CursorError", "cursor_pattern", "decode_cursor", "encode_cursor"]

# Up to 18 digits: every position part stays below 2**62.
_NUMBER = r"(0|[1-9][0-9]{0,17})"
_COLLECTION = re.compile(r"[a-z]+(-[a-z]+)*")


class CursorError(ValueError):
    """A cursor that is malformed or was issued for another collection."""


def cursor_pattern(collection: str) -> str:
    """The regular expression (anchored, ECMA and Python alike) of a collection's cursors."""
    # Collection names are lower-case words joined by hyphens: nothing to escape.
    if _COLLECTION.fullmatch(collection) is None:
        raise ValueError(f"not a collection name: {collection!r}")
    return rf"^{collection}\.{_NUMBER}\.{_NUMBER}\.{_NUMBER}$"


def encode_cursor(collection: str, position: Position) -> str:
    """The cursor of the page of `collection` starting at `position`."""
    return f"{collection}.{position.segment}.{position.index}.{position.slot}"


def decode_cursor(token: str, collection: str) -> Position:
    """The position a cursor points at; CursorError if it is not a cursor of `collection`."""
    match = re.fullmatch(cursor_pattern(collection)[1:-1], token)
    if match is None:
        if token.startswith(f"{collection}."):
            raise CursorError("cursor is not a cursor issued by this API")
        raise CursorError(f"cursor is not a cursor of {collection}")
    segment, index, slot = (int(part) for part in match.groups())
    return Position(segment, index, slot)
