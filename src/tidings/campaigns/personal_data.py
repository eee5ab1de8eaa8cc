"""What the campaigns app holds about a person, for the access package and erasure (see
``tidings.rights.sources``): the campaigns sent to them, and the other emails we sent them.

Erasure keeps campaign statistics as anonymous counts: a delivery row stays with its status and
dates, its contact set to NULL.  One-off messages keep the record that something was sent, with
nothing in it that names the person (subject, bodies and headers blanked)."""

from __future__ import annotations

from email.utils import getaddresses
from typing import Any

from django.db.models import QuerySet

from tidings.rights.sources import PersonalData, model_source, plain, register

from .models import Delivery, OutboxMessage, OutgoingMessage


def _outbox_of(contact: Any) -> QuerySet[OutboxMessage]:
    """Outbox messages addressed to the contact: a substring match narrows them down, then only
    those with exactly this address among their recipients (not ann@ for joann@)."""
    email = contact.email.casefold()
    candidates = OutboxMessage.objects.filter(to__icontains=contact.email).only("pk", "to")
    ids = [
        m.pk
        for m in candidates
        if any(address.casefold() == email for _, address in getaddresses(m.to.splitlines()))
    ]
    return OutboxMessage.objects.filter(pk__in=ids)


def export_messages(contact: Any) -> list[dict[str, Any]]:
    rows = [
        {
            "kind": m.kind,
            "subject": m.subject,
            "status": m.status,
            "queued_at": m.created_at,
            "sent_at": m.sent_at,
        }
        for m in OutgoingMessage.objects.filter(contact=contact).order_by("created_at", "pk")
    ]
    rows += [
        {
            "kind": "outbox",
            "subject": m.subject,
            "status": "kept in the outbox",
            "queued_at": m.created_at,
            "sent_at": m.created_at,
        }
        for m in _outbox_of(contact).order_by("created_at", "pk")
    ]
    return [plain(row) for row in rows]


def erase_messages(contact: Any) -> int:
    count = OutgoingMessage.objects.filter(contact=contact).update(
        contact=None, subject="", text="", html="", headers={}
    )
    count += _outbox_of(contact).update(to="", subject="", message=b"")
    return count


def register_sources() -> None:
    register(
        model_source(
            "campaigns_received",
            Delivery,
            of="contact",
            title="Campaigns sent to you",
            record_kind="subscription",
            columns=(
                ("campaign", "campaign.name"),
                ("subject", "campaign.subject"),
                ("topic", "campaign.topic"),
                "status",
                "sent_at",
            ),
            order_by=("campaign__started_at", "pk"),
            related=("campaign",),
            anonymise={"contact": None},  # the campaign's statistics keep the row
            order=20,
        )
    )
    register(
        PersonalData(
            name="emails",
            title="Other emails we sent you",
            record_kind=None,
            models=(OutgoingMessage, OutboxMessage),
            export=export_messages,
            erase=erase_messages,
            order=21,
            about=(
                "Confirmations, welcomes and other messages we sent you, kept as the record "
                "that they went."
            ),
        )
    )
