"""Envelope shared by every agency collection of the exchange contract (docs/ARCHITECTURE.md)."""

from __future__ import annotations

import json
from typing import Any, Generic, TypeVar

import pydantic_core
from pydantic import BaseModel, ConfigDict, Field

from models.plausibility import Code, FreeText, StrictInt

T = TypeVar("T")


class Page(BaseModel, Generic[T]):
    """One page of a collection: the records and the opaque cursor of the next page."""

    model_config = ConfigDict(extra="ignore")

    data: list[T]
    # Stored as the partition's cursor: no control character may reach the store.
    next_cursor: Code | None = None


def decode_json(content: bytes) -> Any:
    """Parse a JSON body; one with lone surrogate escapes ("\\ud800") too.

    The fast parser refuses a lone surrogate anywhere in the body, which would fail the
    whole page on every rerun; the standard parser keeps it in the string, so the record
    that holds it is quarantined by validation (`string_unicode`) and its page goes on.
    """
    try:
        return pydantic_core.from_json(content)
    except ValueError:
        return json.loads(content)


class RawPage(BaseModel):
    """A page whose records are kept as parsed, validated one by one later."""

    model_config = ConfigDict(extra="ignore")

    # Any, not dict: records pass through uncopied, and a record that is not even an object
    # is quarantined on its own instead of failing the page.
    data: list[Any]
    next_cursor: Code | None = None


class FieldError(BaseModel):
    """One field error of a 422 answer."""

    loc: list[Code | StrictInt] = Field(default_factory=list)
    msg: FreeText
    type: Code = "value_error"


class ErrorBody(BaseModel):
    """Error body every agency returns with a 4xx/5xx status."""

    error: Code
    detail: FreeText | None = None
    fields: list[FieldError] = Field(default_factory=list)
