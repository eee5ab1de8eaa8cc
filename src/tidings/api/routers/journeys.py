"""Journeys: list them with their figures, activate, pause and resume them, put people in and
take them out; custom events."""

from __future__ import annotations

import json
from datetime import datetime
from typing import Annotated, Any

from django.db import transaction
from django.http import HttpRequest
from ninja import Path, Query, Router, Schema, Status
from pydantic import Field, field_validator

from tidings.audience.models import Contact
from tidings.journeys.actions import (
    InvalidTransition,
    JourneyNotReady,
    NotEnrolled,
    do_activate,
    do_enrol,
    do_exit_contact,
    do_pause,
    do_resume,
)
from tidings.journeys.models import Enrolment, Journey
from tidings.journeys.stats import journey_counts
from tidings.journeys.triggers import do_record_event

from .. import idempotency
from ..auth import need, token_of
from ..conditional import etag_for, require_match
from ..errors import Problem, found, named
from ..schemas import BodyIn, PageParams, keyset

router = Router()
events_router = Router()
ID = Path(..., ge=1, le=2**62)
PROPERTIES_BYTES = 16 * 1024  # an event's properties (not stored): a few fields, not a payload


class JourneyOut(Schema):
    id: int
    name: str
    status: str
    topic: str
    trigger: str
    version: int
    created_at: datetime
    stats: dict[str, int]


class JourneyPage(Schema):
    items: list[JourneyOut]
    next: str | None


class EnrolIn(BodyIn):
    contact_id: int = Field(..., ge=1, le=2**62, strict=True)


class EnrolOut(Schema):
    enrolment_id: int
    state: str


class UnenrolledOut(Schema):
    removed: int


class EventIn(BodyIn):
    contact: (
        Annotated[str, Field(max_length=320)] | Annotated[int, Field(ge=1, le=2**62, strict=True)]
    ) = Field(..., description="The person's email address or contact id.")
    name: str = Field(..., min_length=1, max_length=100, description="e.g. demo_booked")
    properties: dict[str, Any] = Field(
        default_factory=dict, description="Not stored; at most 16 KB as JSON."
    )
    idempotency_key: str = Field(
        "", max_length=200, description="An event sent again with the same key is dropped."
    )

    @field_validator("properties")
    @classmethod
    def _small(cls, value: dict[str, Any]) -> dict[str, Any]:
        if len(json.dumps(value, separators=(",", ":"))) > PROPERTIES_BYTES:
            raise ValueError(f"at most {PROPERTIES_BYTES // 1024} KB as JSON (they are not stored)")
        return value


class Accepted(Schema):
    accepted: bool = True


def _out(journey: Journey) -> dict:
    c = journey_counts(journey)
    stats = {
        "entered": c.entered,
        "active": c.active,
        "completed": c.completed,
        "converted": c.converted,
        "exited": c.exited,
        "parked": c.parked,
        "sent": sum(s.sent for s in c.steps.values()),
    }
    fields = ("id", "name", "status", "topic", "trigger", "version", "created_at")
    return {**{f: getattr(journey, f) for f in fields}, "stats": stats}


@router.get("", response=JourneyPage, auth=need("read", page="journeys:index"), summary="Journeys")
def index(request: HttpRequest, params: Query[PageParams]):
    page = keyset(Journey.objects.all(), params.cursor, params.limit)
    return {"items": [_out(j) for j in page["items"]], "next": page["next"]}


@router.get("/{journey_id}", response=JourneyOut, auth=need("read", page="journeys:detail"))
def read(request: HttpRequest, journey_id: int = ID):
    return _out(found(Journey.objects, journey_id, "journey"))


def _button(action, journey_id: int, request: HttpRequest) -> dict:
    journey = found(Journey.objects, journey_id, "journey")
    try:
        action(journey, actor=token_of(request).operator)
    except InvalidTransition as exc:
        raise Problem(409, f"{str(exc).capitalize()}.") from None
    except JourneyNotReady as exc:  # four-eyes: waiting for a second operator; or not ready
        errors = [{"field": p.field or "", "message": p.message} for p in exc.problems]
        detail = "; ".join(p.message for p in exc.problems)
        raise Problem(409, f"{detail[:1].upper()}{detail[1:]}.", errors=errors) from None
    return _out(found(Journey.objects, journey_id, "journey"))


@router.post(
    "/{journey_id}/activate",
    response=JourneyOut,
    auth=need("send", page="journeys:activate"),
    summary="Activate a draft or paused journey (scope send, permission send).  With four-eyes "
    "sending, only once a second operator confirmed it as it is (on its page): else 409",
)
def activate(request: HttpRequest, journey_id: int = ID):
    return _button(do_activate, journey_id, request)


@router.post(
    "/{journey_id}/pause",
    response=JourneyOut,
    auth=need("send", page="journeys:pause"),
    summary="Pause an active journey (scope send, permission send)",
)
def pause(request: HttpRequest, journey_id: int = ID):
    return _button(do_pause, journey_id, request)


@router.post(
    "/{journey_id}/resume",
    response=JourneyOut,
    auth=need("send", page="journeys:resume"),
    summary="Resume a paused journey (scope send, permission send).  With four-eyes sending, "
    "only as a second operator confirmed it: else 409",
)
def resume(request: HttpRequest, journey_id: int = ID):
    return _button(do_resume, journey_id, request)


@router.post(
    "/{journey_id}/enrolments",
    response={201: EnrolOut},
    auth=need("send", page="journeys:activate"),
    summary="Put a contact into an active journey (scope send, permission send)",
    openapi_extra=idempotency.openapi(),
)
def enrol(request: HttpRequest, payload: EnrolIn, journey_id: int = ID):
    return idempotency.run(request, EnrolOut, lambda: _enrol(request, payload, journey_id))


def _enrol(request: HttpRequest, payload: EnrolIn, journey_id: int):
    journey = found(Journey.objects, journey_id, "journey")
    contact = named(Contact.objects, payload.contact_id, "contact", field="contact_id")
    try:
        enrolment = do_enrol(journey, contact, source="api")
    except NotEnrolled as exc:
        raise Problem(409, f"Not enrolled: {exc}.") from None
    return Status(201, {"enrolment_id": enrolment.pk, "state": enrolment.state})


def _latest_enrolment(journey: Journey, contact_id: int, *, lock: bool = False) -> Enrolment | None:
    rows = Enrolment.objects.filter(journey=journey, contact_id=contact_id).order_by("-pk")
    return (rows.select_for_update() if lock else rows).first()


@router.get(
    "/{journey_id}/enrolments/{contact_id}",
    response=EnrolOut,
    auth=need("read", page="journeys:detail"),
    summary="A contact's latest enrolment in a journey, with its ETag (scope read)",
)
def enrolment(request: HttpRequest, journey_id: int = ID, contact_id: int = ID):
    journey = found(Journey.objects, journey_id, "journey")
    row = _latest_enrolment(journey, contact_id)
    if row is None:
        raise Problem(404, f"Contact {contact_id} was never in the journey {journey_id}.")
    return {"enrolment_id": row.pk, "state": row.state}


@router.delete(
    "/{journey_id}/enrolments/{contact_id}",
    response=UnenrolledOut,
    auth=need("send", page="journeys:pause"),
    summary="Take a contact out of a journey (scope send, permission send)",
)
def remove(request: HttpRequest, journey_id: int = ID, contact_id: int = ID):
    journey = found(Journey.objects, journey_id, "journey")
    with transaction.atomic():
        row = _latest_enrolment(journey, contact_id, lock=True)
        current = None
        if row is not None:
            current = etag_for(EnrolOut, {"enrolment_id": row.pk, "state": row.state})
        require_match(request, current, "enrolment")
        removed = do_exit_contact(contact_id, "removed through the API", journey=journey)
    return {"removed": removed}


@events_router.post(
    "",
    response={202: Accepted},
    auth=need(
        "write",
        perm="people",
        no_page="custom events come from other systems only; they are facts about people",
    ),
    summary="Record a custom event about a person: goals and journey triggers (scope write, "
    "permission people).  Always 202: an unknown or erased person is dropped unseen.",
    openapi_extra=idempotency.openapi(),
)
def event(request: HttpRequest, payload: EventIn):
    return idempotency.run(request, Accepted, lambda: _event(request, payload))


def _event(request: HttpRequest, payload: EventIn):
    do_record_event(payload.contact, payload.name, payload.properties, key=payload.idempotency_key)
    return Status(202, {"accepted": True})
