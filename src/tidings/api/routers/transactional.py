"""Transactional mail: one template to one contact, ahead of campaign mail."""

from __future__ import annotations

from typing import Any

from django.db import transaction
from django.http import HttpRequest
from ninja import Router, Schema, Status
from pydantic import Field

from tidings.audience.models import Contact
from tidings.campaigns.models import Sender, Template
from tidings.campaigns.rendering import TemplateProblem

from .. import idempotency
from ..actions import Suppressed, do_send_transactional
from ..auth import need, token_of
from ..errors import Problem, named
from ..schemas import BodyIn

router = Router()


class TxIn(BodyIn):
    template_id: int = Field(..., ge=1, le=2**62, strict=True)
    contact_id: int = Field(..., ge=1, le=2**62, strict=True)
    context: dict[str, Any] = Field(
        default_factory=dict,
        description="Extra values for the template, as `data` (e.g. {{ data.order }}); plain "
        "data only.",
    )
    sender_id: int | None = Field(None, ge=1, le=2**62, strict=True)


class TxOut(Schema):
    message_id: int
    status: str


@router.post(
    "",
    response={202: TxOut},
    auth=need(
        "send",
        perm="send",
        no_page="transactional mail is sent only through the API; the roles grant it with 'send'",
    ),
    summary="Queue a template for one contact (scope send, permission send)",
    openapi_extra=idempotency.openapi(),
)
def send(request: HttpRequest, payload: TxIn):
    # idempotency.run, by hand: the kept answer is linked to the message it queued.
    token = token_of(request)
    claimed = idempotency.claim(request, token)
    if isinstance(claimed, idempotency.Replay):
        return idempotency.replayed(claimed)
    try:
        with transaction.atomic():
            message = _send(payload, token)
            body = {"message_id": message.pk, "status": message.status}
            if claimed is not None:
                idempotency.answer(claimed, 202, body, message=message)
    except BaseException:
        if claimed is not None:
            idempotency.release(claimed)
        raise
    return Status(202, body)


def _send(payload: TxIn, token: Any) -> Any:
    template = named(
        Template.objects.select_related("layout"),
        payload.template_id,
        "template",
        field="template_id",
    )
    contact = named(Contact.objects, payload.contact_id, "contact", field="contact_id")
    sender = None
    if payload.sender_id is not None:
        sender = named(
            Sender.objects.filter(verified=True),
            payload.sender_id,
            "verified sender",
            field="sender_id",
            message="unknown or unverified sender",
        )
    try:
        return do_send_transactional(template, contact, payload.context, token=token, sender=sender)
    except Suppressed as exc:
        raise Problem(409, f"Not sent: {exc}.") from None
    except TemplateProblem as exc:
        raise Problem(
            422,
            f"The template cannot be rendered: {exc}",
            errors=[{"field": "template_id", "message": str(exc)}],
        ) from None
    except TypeError as exc:  # a renderer that takes no extra variables
        raise Problem(
            422, f"context: {exc}.", errors=[{"field": "context", "message": str(exc)}]
        ) from None
