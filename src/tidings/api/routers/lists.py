"""Lists, and subscribing (with proof of consent) and unsubscribing contacts."""

from __future__ import annotations

from datetime import datetime, timedelta

from django.db import transaction
from django.http import HttpRequest
from django.utils import timezone
from ninja import Path, Query, Router, Schema, Status
from pydantic import Field, StrictBool, field_validator

from tidings.audience.actions import ConsentWithdrawnSince, do_unsubscribe, lock_person
from tidings.audience.models import ConsentEvent, Contact, MailingList, Subscription
from tidings.audience.operator import do_save_list
from tidings.audience.operator_forms import MailingListForm
from tidings.audience.suppression import suppression_reason

from .. import idempotency
from ..actions import api_actor_label, do_subscribe_via_api
from ..auth import need, token_of
from ..conditional import etag_for, require_match
from ..errors import Problem, found
from ..schemas import BodyIn, Moment, PageParams, aware, keyset

router = Router()
ID = Path(..., ge=1, le=2**62)


class ListOut(Schema):
    id: int
    name: str
    topic: str
    description: str
    is_public: bool
    created_at: datetime
    closed_at: datetime | None


class ListPage(Schema):
    items: list[ListOut]
    next: str | None


class ListIn(BodyIn):
    name: str = Field(..., min_length=1, max_length=200)
    topic: str = Field(..., description="One of the policy's marketing topics.")
    description: str = ""
    # Strict: pydantic took "yes", 1 and "1" for true (and "no", 0 for false).
    is_public: StrictBool = Field(True, description="true or false (the JSON literals).")


class ConsentProof(BodyIn):
    source: str = Field(
        ...,
        min_length=1,
        max_length=150,
        description="Where and how the person consented, e.g. 'checkout page, example.com'.",
    )
    wording: str = Field(
        ..., min_length=1, max_length=5000, description="The exact words the person agreed to."
    )
    at: Moment = Field(..., description="When they consented (with a time zone).")

    @field_validator("at")
    @classmethod
    def _past(cls, value: datetime) -> datetime:
        aware(value)
        if value > timezone.now() + timedelta(minutes=5):
            raise ValueError("consent cannot have been given in the future")
        return value


class SubscribeIn(BodyIn):
    contact_id: int = Field(..., ge=1, le=2**62, strict=True)
    consent: ConsentProof


class SubscriptionOut(Schema):
    contact_id: int
    list_id: int
    status: str
    confirmed_at: datetime | None


class UnsubscribeOut(Schema):
    unsubscribed: bool


def _list(list_id: int) -> MailingList:
    return found(MailingList.objects, list_id, "list")


def _contact(contact_id: int) -> Contact:
    return found(Contact.objects, contact_id, "contact")


@router.get(
    "",
    response=ListPage,
    auth=need("read", page="audience:lists"),
    summary="Lists (scope read, content)",
)
def index(request: HttpRequest, params: Query[PageParams]):
    return keyset(MailingList.objects.all(), params.cursor, params.limit)


@router.post(
    "",
    response={201: ListOut},
    auth=need("write", page="audience:list-new"),
    summary="Create a list (scope write, content)",
    openapi_extra=idempotency.openapi(),
)
def create(request: HttpRequest, payload: ListIn):
    return idempotency.run(request, ListOut, lambda: _create(request, payload))


def _create(request: HttpRequest, payload: ListIn):
    form = MailingListForm(payload.dict())
    if not form.is_valid():
        errors = [
            {"field": name, "message": str(message)}
            for name, messages in form.errors.items()
            for message in messages
        ]
        raise Problem(
            422,
            "The list cannot be created: " + "; ".join(e["message"] for e in errors),
            errors=errors,
        )
    return Status(201, do_save_list(form, actor=token_of(request).operator))


@router.get(
    "/{list_id}",
    response=ListOut,
    auth=need("read", page="audience:list-edit"),
    summary="A list (read, content)",
)
def read(request: HttpRequest, list_id: int = ID):
    return _list(list_id)


@router.post(
    "/{list_id}/subscriptions",
    response={201: SubscriptionOut},
    auth=need("write", page="audience:contact-lists"),
    summary="Subscribe a contact, confirmed, with proof of their consent (scope write, people)",
    openapi_extra=idempotency.openapi(),
)
def subscribe(request: HttpRequest, payload: SubscribeIn, list_id: int = ID):
    return idempotency.run(request, SubscriptionOut, lambda: _subscribe(request, payload, list_id))


def _subscribe(request: HttpRequest, payload: SubscribeIn, list_id: int):
    mailing_list = _list(list_id)
    contact = _contact(payload.contact_id)
    token = token_of(request)
    if mailing_list.closed_at is not None:
        raise Problem(409, f"The list {list_id} is closed.")
    reason = suppression_reason(contact.email)
    if reason is not None:
        raise Problem(
            409,
            f"The contact's address is suppressed ({reason}); nobody may subscribe it until the "
            "suppression is removed.",
        )
    try:
        sub = do_subscribe_via_api(
            contact,
            mailing_list,
            source=payload.consent.source,
            wording_text=payload.consent.wording,
            at=payload.consent.at,
            token=token,
        )
    except ConsentWithdrawnSince:
        raise Problem(
            409,
            "The contact withdrew consent to this list after the time given for this consent: "
            "a consent given before a withdrawal cannot subscribe them again. Send the time of "
            "a consent given since.",
        ) from None
    return Status(201, _subscription_out(sub))


def _subscription_out(sub: Subscription) -> dict:
    return {
        "contact_id": sub.contact_id,
        "list_id": sub.mailing_list_id,
        "status": sub.status,
        "confirmed_at": sub.confirmed_at,
    }


def _subscription(list_id: int, contact_id: int) -> Subscription | None:
    return Subscription.objects.filter(mailing_list_id=list_id, contact_id=contact_id).first()


@router.get(
    "/{list_id}/subscriptions/{contact_id}",
    response=SubscriptionOut,
    auth=need("read", page="audience:contact-lists"),
    summary="A contact's subscription to the list, with its ETag (scope read, people)",
)
def subscription(request: HttpRequest, list_id: int = ID, contact_id: int = ID):
    _list(list_id)
    _contact(contact_id)
    sub = _subscription(list_id, contact_id)
    if sub is None:
        raise Problem(404, f"Contact {contact_id} has no subscription to the list {list_id}.")
    return _subscription_out(sub)


@router.delete(
    "/{list_id}/subscriptions/{contact_id}",
    response=UnsubscribeOut,
    auth=need("write", page="audience:contact-lists"),
    summary="Unsubscribe a contact from the list (scope write, people)",
)
def unsubscribe(request: HttpRequest, list_id: int = ID, contact_id: int = ID):
    mailing_list = _list(list_id)
    contact = _contact(contact_id)
    with transaction.atomic():
        lock_person(contact.pk)  # do_unsubscribe's lock, taken first: nothing changes between
        sub = _subscription(list_id, contact_id)
        current = None if sub is None else etag_for(SubscriptionOut, _subscription_out(sub))
        require_match(request, current, "subscription")
        done = do_unsubscribe(
            contact,
            mailing_list,
            source=ConsentEvent.Source.API,
            source_ref=api_actor_label(token_of(request)),
        )
    return {"unsubscribed": done}
