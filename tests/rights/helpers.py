"""Helpers for the rights tests: a person with a record in every model, mail, links."""

from __future__ import annotations

import io
import re
import zipfile
from dataclasses import dataclass
from datetime import date

from django.core import mail

from tidings.audience.actions import do_create_contact, do_subscribe, do_unsubscribe
from tidings.audience.models import ConsentEvent, Contact, MailingList
from tidings.campaigns.models import Campaign, Delivery, OutboxMessage, OutgoingMessage
from tidings.campaigns.queue import enqueue_message
from tidings.crm.actions import (
    OrderLine,
    do_add_support_contact,
    do_create_contract,
    do_create_order,
    do_create_organisation,
    do_create_support_request,
    do_receive_enquiry,
)
from tidings.crm.models import Enquiry, Order, SupportContact, SupportRequest
from tidings.rights.actions import do_create_rights_request


@dataclass
class Planted:
    contact: Contact
    values: list[str]  # strings that are this person's and appear in no one else's records
    enquiry: Enquiry
    order: Order
    support_contact: SupportContact
    support_request: SupportRequest
    delivery: Delivery
    outgoing: OutgoingMessage
    outbox: OutboxMessage


def plant_person(tag: str, *, email: str | None = None) -> Planted:
    """Give a person (``tag``: "ada", "bob") a record in every model that holds personal data.
    Every planted value contains the tag, so a package can be searched for it."""
    email = email or f"{tag}@example.com"
    person = {
        "name": f"{tag.capitalize()} Person",
        "email": email,
        "company": f"{tag}-company",
        "phone": f"0{abs(hash(tag)) % 10**9:09d}",
    }
    contact, _ = do_create_contact({**person, "job_title": f"{tag}-title"}, purpose="newsletter")
    news = MailingList.objects.get_or_create(name="Product news", topic="product news")[0]
    events = MailingList.objects.get_or_create(name="Events", topic="events and webinars")[0]
    do_subscribe(contact, news, source="form", wording_text=f"{tag}-wording", confirmed=True)
    do_subscribe(contact, events, source="form", wording_text="Yes please", confirmed=True)
    do_unsubscribe(contact, events, source="unsubscribe")
    ConsentEvent.objects.create(
        contact=contact,
        purpose="marketing",
        channel="phone",
        action="granted",
        source="operator",
        source_ref=f"{tag}-operator-note",
    )
    organisation = do_create_organisation(name=f"{tag}-organisation")
    do_create_contract(organisation, start=date(2024, 1, 1))
    enquiry = do_receive_enquiry(person, channel="email", message=f"{tag}-enquiry-message")
    order = do_create_order(
        person,
        organisation=organisation,
        order_reference=f"{tag}-order-ref",
        lines=[OrderLine(f"{tag}-support-hours", 2, "95.00")],
        invoice_address=f"{tag}-invoice-address",
    )
    support_contact, _ = do_add_support_contact(person, organisation=organisation)
    support_request = do_create_support_request(
        support_contact, subject=f"{tag}-support-subject", notes=f"{tag}-support-notes"
    )
    campaign = Campaign.objects.create(
        name=f"{tag}-campaign",
        subject=f"{tag}-campaign-subject",
        topic="product news",
        status="finished",
    )
    delivery = Delivery.objects.create(campaign=campaign, contact=contact, status="sent")
    outgoing = enqueue_message(
        contact,
        kind="system:welcome",
        subject=f"{tag}-welcome-subject",
        text=f"{tag}-welcome",
        from_email="news@example.co.uk",
    )
    outbox = OutboxMessage.objects.create(
        from_email="news@example.co.uk",
        to=f"{person['name']} <{email}>",
        subject=f"{tag}-outbox-subject",
        message=f"To: {email}\n\n{tag}-outbox-body".encode(),
    )
    do_create_rights_request("access", email)
    values = [
        person["name"],
        email,
        person["company"],
        person["phone"],
        f"{tag}-title",
        f"{tag}-wording",
        f"{tag}-operator-note",
        f"{tag}-enquiry-message",
        f"{tag}-order-ref",
        f"{tag}-support-hours",
        f"{tag}-invoice-address",
        f"{tag}-organisation",
        f"{tag}-support-subject",
        f"{tag}-support-notes",
        f"{tag}-campaign-subject",
        f"{tag}-welcome-subject",
        f"{tag}-outbox-subject",
    ]
    return Planted(
        contact,
        values,
        enquiry,
        order,
        support_contact,
        support_request,
        delivery,
        outgoing,
        outbox,
    )


def mails_to(address: str) -> list[mail.EmailMessage]:
    return [m for m in mail.outbox if address in m.to]


def link_in(message: mail.EmailMessage, marker: str) -> str:
    """The path of the first link in ``message`` containing ``marker``."""
    match = re.search(r"https?://[^/\s]+(\S*" + re.escape(marker) + r"\S*)", message.body)
    assert match, f"no link with {marker} in the message"
    return match.group(1)


def unzip(data: bytes) -> dict[str, str]:
    with zipfile.ZipFile(io.BytesIO(data)) as archive:
        return {name: archive.read(name).decode("utf-8") for name in archive.namelist()}
