"""What the CRM holds about a person, for the access package and erasure (see
``tidings.audience.sources``): enquiries, orders, support roles and support requests.

Orders are kept under a legal minimum when the policy says so: erasure leaves those whose
minimum has not run out, and the receipt says when each goes; an order past its minimum is
erased like any other record."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from tidings.audience.sources import (
    AnyOf,
    Held,
    Kept,
    People,
    day_in_words,
    delete_ids,
    ids_of,
    model_source,
    register,
)

from .models import Enquiry, Order, SupportContact, SupportRequest


def _orders_kept() -> bool:
    from tidings.policy import get_policy

    policy = get_policy()
    return "order" in policy.retention and policy.is_legal_minimum("order")


def _orders_of(people: People):
    return Order.objects.filter(AnyOf("contact_id", people.contact_ids))


def _still_kept(people: People) -> list[Order]:
    """The people's orders that their legal minimum still keeps."""
    from tidings.rights.retention import is_expired

    if not _orders_kept():
        return []
    return [
        order for order in _orders_of(people).order_by("created_at", "pk") if not is_expired(order)
    ]


def find_orders(people: People) -> list[int]:
    kept = {order.pk for order in _still_kept(people)}
    return [pk for pk in ids_of(_orders_of(people)) if pk not in kept]


def kept_orders(people: People) -> list[Kept]:
    from tidings.policy import get_policy
    from tidings.rights.retention import expiry

    orders = _still_kept(people)
    if not orders:
        return []
    minimum = get_policy().retention_for("order").duration
    kept = []
    for order in orders:
        until = expiry(order)
        # No reference or amount: the words go into the request's receipt, which is kept.
        kept.append(
            Kept(
                f"Your order of {day_in_words(order.created_at)} is kept until "
                f"{day_in_words(until)}: the law requires us to keep orders for {minimum}, "
                "and it is erased then.",
                (Held(Order, (order.pk,)),),
            )
        )
    return kept


def register_sources() -> None:
    register_mergers()
    register(
        model_source(
            "enquiries",
            Enquiry,
            of="contact",
            record_kind="enquiry",
            columns=(
                "channel",
                "subject",  # an emailed enquiry's: the person's own words, screened
                "message",
                ("removed_by_screening", "redaction_note"),
                "created_at",
                "last_contact_at",
                "kept_until",
            ),
            order=30,
        )
    )
    register(
        model_source(
            "orders",
            Order,
            of="contact",
            title="Orders and invoices",
            record_kind="order",
            columns=(
                "order_reference",
                ("organisation", "organisation.name"),  # "" without one
                "lines",
                "invoice_address",
                "created_at",
            ),
            related=("organisation",),
            find=find_orders,
            remove=lambda ids: delete_ids(Order, ids),
            kept=kept_orders,
            order=31,
        )
    )
    register(
        model_source(
            "support_requests",
            SupportRequest,
            of="support_contact__contact",
            record_kind="support_contact",
            columns=(
                ("organisation", "organisation.name"),
                "subject",
                "notes",
                ("removed_by_screening", "redaction_note"),
                "created_at",
            ),
            related=("organisation",),
            order=32,
        )
    )
    register(
        model_source(
            "support_contacts",
            SupportContact,
            of="contact",
            title="Support contact at your company",
            record_kind="support_contact",
            columns=(
                ("organisation", "organisation.name"),
                "left_employer",
                "created_at",
                "kept_until",
            ),
            related=("organisation",),
            order=33,
        )
    )


# --- conversations and support mail (crm/conversations.py, crm/inbound/) ----------------------
# Kept apart from the records above: a conversation's messages are personal data of the
# enquiry or support request they belong to, held for its purpose and as long as it is (the
# record goes, its messages go with it: CASCADE, also in the retention sweep).
def _message_columns(reference: Callable[[Any], str]) -> tuple[Any, ...]:
    from .models import ConversationMessage

    return (
        ("conversation", reference),
        ("when", "created_at"),
        (
            "from",
            lambda m: (
                "us (automatic)"
                if m.automatic and m.direction == "out"
                else ConversationMessage.Direction(m.direction).label
            ),
        ),
        "subject",
        "text",
        ("removed_by_screening", "redaction_note"),
        ("attachments_not_kept", "attachments_dropped"),
        ("attachments_kept", lambda m: ", ".join(a.filename for a in m.attachments.all())),
    )


def _support_mail_of(people: People):
    from django.db.models import Q

    from .models import InboundMail

    return InboundMail.objects.filter(
        Q(AnyOf("contact_id", people.contact_ids)) | Q(AnyOf("sender_hmac", people.hmacs))
    )


def register_conversation_sources() -> None:
    from dataclasses import replace

    from .models import ConversationAttachment, ConversationMessage, InboundMail

    both = (ConversationMessage, ConversationAttachment)  # attachments go with their message
    register(
        replace(
            model_source(
                "enquiry_messages",
                ConversationMessage,
                of="enquiry__contact",
                title="Messages about your enquiries",
                record_kind="enquiry",
                columns=_message_columns(lambda m: f"enquiry E-{m.enquiry_id}"),
                related=("enquiry",),
                order=29,  # before the enquiries they belong to
            ),
            models=both,
        )
    )
    register(
        replace(
            model_source(
                "support_messages",
                ConversationMessage,
                of="support_request__support_contact__contact",
                title="Messages about your support requests",
                record_kind="support_contact",
                columns=_message_columns(lambda m: f"support request R-{m.support_request_id}"),
                related=("support_request",),
                order=32,
            ),
            models=both,
        )
    )
    register(
        model_source(
            "support_mail",
            InboundMail,
            of=_support_mail_of,
            record_kind=None,
            title="Mail you sent to our support address, as it arrived",
            about=(
                "Each mail to our support address, kept until it is added to your enquiry or "
                "request (then only the facts remain), and at most a month while we cannot."
            ),
            columns=("received_at", "source", "status", ("outcome", "reason")),
            order_by=("received_at", "pk"),
            order=34,
        )
    )


# --- merging two contacts (tidings.audience.merge) --------------------------------------------
def merge_support_contacts(m) -> int:
    """One support role per person and organisation: when both had one at the same
    organisation, the dropped one's requests move to the kept one's role; the others move."""
    from tidings.audience.merge import fold_into

    mine = dict(SupportContact.objects.filter(contact=m.keep).values_list("organisation_id", "pk"))
    moved = 0
    rows = SupportContact.objects.filter(contact=m.drop).values_list("pk", "organisation_id")
    for pk, organisation_id in rows:
        if organisation_id in mine:
            fold_into(SupportContact, pk, mine[organisation_id], m)
        else:
            SupportContact.objects.filter(pk=pk).update(contact=m.keep)
        moved += 1
    return moved


def register_mergers() -> None:
    from tidings.audience.merge import register_merger

    from .models import InboundMail

    register_merger(Enquiry, "contact")
    register_merger(Order, "contact")
    register_merger(InboundMail, "contact")
    register_merger(SupportContact, "contact", merge_support_contacts)
