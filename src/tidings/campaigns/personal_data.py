"""What the campaigns app holds about a person, for the access package and erasure (see
``tidings.audience.sources``): the campaigns sent to them, and the other emails we sent them.

Erasure keeps campaign statistics as anonymous counts: a delivery row stays with its status and
dates, its contact set to NULL (a queued one is then skipped by the engine).  One-off messages
keep the record that something was sent, with nothing in it that names the person: subject,
bodies, headers and attachments (a demo booking's calendar invitation) blanked, whether the
message was sent or is still queued; the engine skips a queued one (its contact is gone)."""

from __future__ import annotations

from contextlib import suppress
from email.utils import getaddresses
from functools import reduce
from operator import or_
from typing import Any

from django.db.models import Q, QuerySet
from email_validator import EmailNotValidError, validate_email

from tidings.audience.emails import InvalidEmail, email_key, normalise_email
from tidings.audience.sources import (
    AnyOf,
    People,
    PersonalData,
    ids_of,
    model_source,
    plain,
    register,
    update_ids,
)

from .models import Delivery, OutboxMessage, OutgoingMessage

# A person's outbox messages are found by a substring match of their address, then checked
# address by address; for more people than this at once (the retention sweep), one pass over
# the recipients of the whole outbox (an embedded, demo-sized table) is cheaper than a query each.
_OUTBOX_LIKE_LIMIT = 20


def _mailbox(address: str) -> str:
    """The key of the mailbox ``address`` names, whichever way it is spelt: an outbox copy
    names an internationalised domain as the wire has it (``xn--bcher-kva.example``), a
    contact's address holds it in Unicode (``bücher.example``)."""
    try:
        return email_key(normalise_email(address))
    except InvalidEmail:
        return address.casefold()


def _domain_spellings(email: str) -> set[str]:
    """The two ways an address's domain can be written in an outbox copy's ``to``: as stored
    (Unicode, lower case) and in ASCII (the IDNA form), both for a LIKE that, on SQLite, folds
    ASCII letters only: so the domain, not the whole address, which may have ``Ö`` for ``ö``."""
    domain = email.rpartition("@")[2].lower()
    spellings = {domain}
    if not domain.isascii():
        with suppress(EmailNotValidError):
            spellings.add(validate_email(email, check_deliverability=False).ascii_domain)
    return {spelling for spelling in spellings if spelling}


def _outbox_of(people: People) -> QuerySet[OutboxMessage]:
    """Outbox messages addressed to any of ``people``: exactly these mailboxes among their
    recipients (not ann@ for joann@), however the address is spelt there (``ZOË@`` for
    ``zoë@``, an IDN domain in Unicode or as ``xn--``)."""
    mailboxes = {_mailbox(email) for email in people.emails}
    if not mailboxes:
        return OutboxMessage.objects.none()
    candidates = OutboxMessage.objects.order_by()
    if len(mailboxes) <= _OUTBOX_LIKE_LIMIT:
        domains = set().union(*(_domain_spellings(email) for email in people.emails))
        if domains:
            candidates = candidates.filter(reduce(or_, [Q(to__icontains=d) for d in domains]))
    ids = [
        pk
        for pk, to in candidates.values_list("pk", "to").iterator()
        if any(_mailbox(address) in mailboxes for _, address in getaddresses(to.splitlines()))
    ]
    return OutboxMessage.objects.filter(AnyOf("pk", ids))


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
        for m in _outbox_of(People.of(contact)).order_by("created_at", "pk")
    ]
    return [plain(row) for row in rows]


_BLANK_MESSAGE: dict[str, Any] = {
    "contact": None,
    "subject": "",
    "text": "",
    "html": "",
    "headers": {},
}


def find_messages(people: People) -> dict[str, list[int]]:
    outgoing = ids_of(OutgoingMessage.objects.filter(AnyOf("contact_id", people.contact_ids)))
    outbox = ids_of(_outbox_of(people).exclude(to="", subject="", message=b""))
    return {"outgoing": outgoing, "outbox": outbox} if outgoing or outbox else {}


def remove_messages(found: dict[str, list[int]]) -> int:
    count = update_ids(OutgoingMessage, found["outgoing"], **_BLANK_MESSAGE, attachments=[])
    count += update_ids(OutboxMessage, found["outbox"], to="", subject="", message=b"")
    return count


def subject_as_received(campaign: Any, contact: Any) -> str:
    """The campaign's subject as this person got it: rendered for them (``Hello {{
    contact.first_name }}`` -> "Hello Ada"), never the template's code."""
    from .rendering import MessageLinks, TemplateProblem, render_subject

    try:
        return render_subject(campaign.subject or "", contact, MessageLinks("", "", ""))
    except TemplateProblem:
        return f"an email of our campaign {campaign.name}"


def export_deliveries(contact: Any) -> list[dict[str, Any]]:
    """The campaigns sent to the person, each with its subject as they received it (rendered
    for them, not the template's code)."""
    rows = []
    deliveries = (
        Delivery.objects.filter(contact=contact)
        .select_related("campaign")
        .order_by("campaign__started_at", "pk")
    )
    for delivery in deliveries:
        campaign = delivery.campaign
        rows.append(
            {
                "campaign": campaign.name,
                "subject": subject_as_received(campaign, contact),
                "topic": campaign.topic,
                "status": delivery.status,
                "sent_at": delivery.sent_at,
            }
        )
    return [plain(row) for row in rows]


def register_sources() -> None:
    register_mergers()
    register(
        model_source(
            "campaigns_received",
            Delivery,
            of="contact",
            title="Campaigns sent to you",
            record_kind="subscription",
            export=export_deliveries,
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
            find=find_messages,
            remove=remove_messages,
            order=21,
            about=(
                "Confirmations, welcomes and other messages we sent you, kept as the record "
                "that they went."
            ),
            retention="Their text is removed once they are sent; the record that they went is "
            "kept with your other records, and erased with them.",
        )
    )


# --- merging two contacts (tidings.audience.merge) --------------------------------------------
def merge_deliveries(m) -> int:
    """One delivery per person and campaign: when both received a campaign, the dropped one's
    delivery is folded into the kept one's (its events and reports move there); the others move."""
    from tidings.audience.merge import fold_into

    from .models import Delivery

    mine = dict(Delivery.objects.filter(contact=m.keep).values_list("campaign_id", "pk"))
    moved = 0
    for pk, campaign_id in Delivery.objects.filter(contact=m.drop).values_list("pk", "campaign_id"):
        if campaign_id in mine:
            fold_into(Delivery, pk, mine[campaign_id], m)
            m.count("deliveries_folded", 1)
        else:
            Delivery.objects.filter(pk=pk).update(contact=m.keep)
        moved += 1
    return moved


def refresh_engagement(m) -> int:
    """The kept contact's engagement facts, from the events and deliveries it now has."""
    from .engagement import refresh

    return refresh([m.keep.pk])


def register_mergers() -> None:
    from tidings.audience.merge import register_after_merge, register_merger

    from .models import Delivery, InboundReport, OutgoingMessage

    register_merger(Delivery, "contact", merge_deliveries)
    register_merger(InboundReport, "contact")
    register_merger(OutgoingMessage, "contact")
    register_after_merge("engagement", refresh_engagement)
