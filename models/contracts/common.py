"""Envelope shared by every agency collection of the exchange contract (docs/ARCHITECTURE.md)."""

from __future__ import annotations

from typing import Any, Generic, TypeVar

from pydantic import BaseModel, ConfigDict, Field

T = TypeVar("T")


class Page(BaseModel, Generic[T]):
    """One page of a collection: the records and the opaque cursor of the next page."""

    model_config = ConfigDict(extra="ignore")

    data: list[T]
    next_cursor: str | None = None


class RawPage(BaseModel):
    """A page whose records are kept as parsed, validated one by one later."""

    model_config = ConfigDict(extra="ignore")

    # Any, not dict: records pass through uncopied, and a record that is not even an object
    # is quarantined on its own instead of failing the page.
    data: list[Any]
    next_cursor: str | None = None


class FieldError(BaseModel):
    """One field error of a 422 answer."""

    loc: list[str | int] = Field(default_factory=list)
    msg: str
    type: str = "value_error"


class ErrorBody(BaseModel):
    """Error body every agency returns with a 4xx/5xx status."""

    error: str
    detail: str | None = None
    fields: list[FieldError] = Field(default_factory=list)
