"""The suppression list: add, check and remove addresses.  Addresses travel in request bodies,
never in URLs (which end up in access logs)."""

from __future__ import annotations

from django.http import HttpRequest
from ninja import Router, Schema, Status
from pydantic import Field

from tidings.audience.emails import InvalidEmail, email_hmac, normalise_email
from tidings.audience.models import Suppression
from tidings.audience.suppression import do_remove_suppression, do_suppress, suppression_reason

from .. import idempotency
from ..actions import api_actor_label
from ..auth import need, token_of
from ..errors import Problem
from ..schemas import BodyIn

router = Router()


class AddressIn(BodyIn):
    email: str = Field(..., min_length=3, max_length=254)


class AddedOut(Schema):
    added: bool


class CheckOut(Schema):
    suppressed: bool
    reason: str | None


class UnsuppressedOut(Schema):
    removed: bool


def _address(raw: str) -> str:
    try:
        return normalise_email(raw)
    except InvalidEmail as exc:
        raise Problem(
            422, f"email: {exc}", errors=[{"field": "email", "message": str(exc)}]
        ) from None


@router.post(
    "",
    response={200: AddedOut, 201: AddedOut},
    auth=need("privacy", page="audience:suppression"),
    summary="Suppress an address (scope privacy, permission privacy)",
    openapi_extra=idempotency.openapi(),
)
def add(request: HttpRequest, payload: AddressIn):
    return idempotency.run(request, AddedOut, lambda: _add(request, payload))


def _add(request: HttpRequest, payload: AddressIn):
    token = token_of(request)
    added = do_suppress(
        _address(payload.email),
        Suppression.Reason.MANUAL,
        actor=token.operator,
        actor_label=api_actor_label(token),
    )
    return Status(201 if added else 200, {"added": added})


@router.post(
    "/check",
    response=CheckOut,
    auth=need("privacy", page="audience:suppression"),
    summary="Is an address suppressed, and why (scope privacy, permission privacy)",
)
def check(request: HttpRequest, payload: AddressIn):
    reason = suppression_reason(_address(payload.email))
    return {"suppressed": reason is not None, "reason": reason}


@router.post(
    "/remove",
    response=UnsuppressedOut,
    auth=need("privacy", page="audience:suppression-remove"),
    summary="Remove an address from the suppression list (scope privacy, permission privacy)",
)
def remove(request: HttpRequest, payload: AddressIn):
    entry = Suppression.objects.filter(email_hmac=email_hmac(_address(payload.email))).first()
    if entry is None:
        return {"removed": False}
    do_remove_suppression(entry, actor=token_of(request).operator, cause="api")
    return {"removed": True}
