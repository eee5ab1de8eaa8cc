"""Rights requests: record one an integrator received, and follow its status."""

from __future__ import annotations

from datetime import date, datetime

from django.http import HttpRequest
from ninja import Path, Router, Schema, Status
from pydantic import Field, StrictBool

from tidings.audience.emails import InvalidEmail
from tidings.rights.actions import RightsError, do_create_rights_request
from tidings.rights.models import RightsRequest

from .. import idempotency
from ..auth import need, token_of
from ..errors import Problem, found
from ..schemas import BodyIn

router = Router()
ID = Path(..., ge=1, le=2**62)


class RightsRequestIn(BodyIn):
    kind: RightsRequest.Kind
    email: str = Field(..., min_length=3, max_length=254, description="The person's address.")
    details: str = Field("", max_length=5000, description="For rectification: what to correct.")
    # Strict, like a campaign's confirm: skipping the identity check (an erasure at once) is
    # not something "yes", 1 or "on" should do; only the JSON literal true.
    verified: StrictBool = Field(
        False,
        description="true (the JSON literal) when you have already checked the person's "
        "identity; otherwise tidings emails them a verification link.",
    )


class RightsRequestOut(Schema):
    id: int
    kind: str
    state: str
    received_at: datetime
    due: date = Field(
        description="The date the answer is due: one calendar month from receipt, or the date "
        "the request was extended to (UK GDPR Art. 12(3)).  Read this one."
    )
    # Kept so clients written against it keep working; it never moved with an extension, so a
    # client reading it took an extended request for overdue.
    due_on: date = Field(
        description="Deprecated: read `due`.  The due date before any extension (one calendar "
        "month from receipt); it does not change when the request is extended.",
        json_schema_extra={"deprecated": True},
    )
    verified_at: datetime | None
    closed_at: datetime | None


def _out(request: RightsRequest) -> dict:
    return {
        "id": request.pk,
        "kind": request.kind,
        "state": request.state,
        "received_at": request.received_at,
        "due_on": request.due_on,
        "due": request.due,
        "verified_at": request.verified_at,
        "closed_at": request.closed_at,
    }


@router.post(
    "",
    response={201: RightsRequestOut},
    auth=need("privacy", page="privacy:new-request"),
    summary="Record a rights request (scope privacy, permission privacy)",
    openapi_extra=idempotency.openapi(),
)
def create(request: HttpRequest, payload: RightsRequestIn):
    return idempotency.run(request, RightsRequestOut, lambda: _create(request, payload))


def _create(request: HttpRequest, payload: RightsRequestIn):
    try:
        created = do_create_rights_request(
            payload.kind.value,
            payload.email,
            details=payload.details,
            channel="api",
            actor=token_of(request).operator,
            verified=payload.verified,
        )
    except InvalidEmail as exc:
        raise Problem(
            422, f"email: {exc}", errors=[{"field": "email", "message": str(exc)}]
        ) from None
    except RightsError as exc:
        raise Problem(422, f"The request cannot be recorded: {exc}.") from None
    return Status(201, _out(created))


@router.get(
    "/{request_id}",
    response=RightsRequestOut,
    auth=need("privacy", page="privacy:request"),
    summary="A rights request's status (scope privacy, permission privacy)",
)
def status(request: HttpRequest, request_id: int = ID):
    return _out(found(RightsRequest.objects, request_id, "rights request"))
