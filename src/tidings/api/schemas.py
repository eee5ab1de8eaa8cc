"""Shapes shared by several endpoints."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any

from django.db.models import QuerySet
from ninja import Schema
from pydantic import BeforeValidator, ConfigDict, Field

from .errors import Problem

MAX_LIMIT = 200

#: A row id in a request body: positive and within the database's 64-bit integer, so a huge
#: number is a 422 about the field rather than an overflow in the database driver (a 500); and
#: strictly a JSON number: pydantic would read ``true`` as the id 1 (someone else's contact).
Id = Annotated[int, Field(ge=1, le=2**62, strict=True)]


class BodyIn(Schema):
    """A JSON request body: a key the endpoint does not take is a 422 naming it.  Ignored, a
    misspelt field did nothing at all: ``PATCH /contacts/5`` with ``{"compnay": "Acme"}``
    answered 200 and changed nothing, and a client never learnt why."""

    model_config = ConfigDict(extra="forbid")


def _written_out(value: Any) -> Any:
    if isinstance(value, int | float):  # pydantic would read it as seconds since 1970
        raise ValueError("give a date and time as text with a time zone, e.g. 2026-05-01T09:00:00Z")
    return value


#: A moment in a request body: ISO 8601 text only, as the schema says (a number such as 20260501
#: would otherwise be taken for seconds since 1970: a consent given, or a send, in 1970).
Moment = Annotated[datetime, BeforeValidator(_written_out)]


class PageParams(Schema):
    cursor: str | None = Field(None, description="The `next` value of the previous page.")
    limit: int = Field(50, ge=1, le=MAX_LIMIT)


def parse_cursor(cursor: str | None) -> int | None:
    if cursor in (None, ""):
        return None
    if not cursor.isdigit() or len(cursor) > 19:
        raise Problem(
            422,
            "The cursor is not one this API gave out.",
            errors=[{"field": "query.cursor", "message": "not a cursor from a previous page"}],
        )
    return int(cursor)


def keyset(queryset: QuerySet, cursor: str | None, limit: int) -> dict[str, Any]:
    """Newest first by id, ``limit`` at a time, after the cursor: no OFFSET, no COUNT.

    ``queryset`` may be of models or of ``.values()`` dicts (which must include "id")."""
    after = parse_cursor(cursor)
    qs = queryset.order_by("-pk")
    if after is not None:
        qs = qs.filter(pk__lt=after)
    items = list(qs[: limit + 1])
    more = len(items) > limit
    items = items[:limit]
    if more and items:
        last = items[-1]
        next_cursor = str(last["id"] if isinstance(last, dict) else last.pk)
    else:
        next_cursor = None
    return {"items": items, "next": next_cursor}


def aware(value: datetime | None) -> datetime | None:
    if value is not None and value.tzinfo is None:
        raise ValueError("give a time zone (e.g. 2026-05-01T09:00:00Z)")
    return value
