"""Segments: the saved ones, and how many contacts a segment matches."""

from __future__ import annotations

from django.http import HttpRequest
from ninja import Path, Query, Router, Schema
from pydantic import Field

from tidings.audience.models import Segment
from tidings.audience.segments import count_segment, validate_segment

from ..auth import need
from ..errors import Problem, found
from ..schemas import BodyIn, PageParams, keyset

router = Router()
ID = Path(..., ge=1, le=2**62)


class SegmentOut(Schema):
    id: int
    name: str
    query: str
    description: str


class SegmentPage(Schema):
    items: list[SegmentOut]
    next: str | None


class CountIn(BodyIn):
    query: str = Field(..., min_length=1, max_length=5000, description="In the segment language.")


class CountOut(Schema):
    count: int


def _count(query: str) -> dict:
    errors = validate_segment(query)
    if errors:
        raise Problem(
            422,
            f"The segment does not work: {errors[0]}",
            errors=[{"field": "query", "message": str(e)} for e in errors],
        )
    return {"count": count_segment(query)}


@router.get(
    "",
    response=SegmentPage,
    auth=need("read", page="audience:segments"),
    summary="Saved segments (read, content)",
)
def index(request: HttpRequest, params: Query[PageParams]):
    return keyset(Segment.objects.all(), params.cursor, params.limit)


@router.post(
    "/count",
    response=CountOut,
    auth=need("read", page="audience:segment-count"),
    summary="Count the contacts a segment query matches (read, content)",
)
def count_query(request: HttpRequest, payload: CountIn):
    return _count(payload.query)


@router.get(
    "/{segment_id}/count",
    response=CountOut,
    auth=need("read", page="audience:segment-count"),
    summary="Count the contacts a saved segment matches (read, content)",
)
def count_saved(request: HttpRequest, segment_id: int = ID):
    return _count(found(Segment.objects, segment_id, "segment").query)
