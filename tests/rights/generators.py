"""A generator per registered personal-data source: each fills its source for one person, through
the product's own actions where there is one, the way real use fills it.

``GENERATORS`` has one entry per source name; tests/rights/test_erasure_scan.py fails when a
source is registered without a generator here, so a new kind of personal record is covered by
the erasure scan (and the access-package tests) from the day it appears.

Each person carries distinctive values (a tag in every string, ids from a sequence no other
table uses: ``distinct_ids``), so that a scan of the whole database can tell what is theirs.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import timedelta

from django.apps import apps
from django.db import connection, models
from django.utils import timezone

from tests.campaigns.bounce_helpers import sample
from tidings.audience.actions import do_create_contact, do_subscribe, do_unsubscribe
from tidings.audience.emails import email_hmac
from tidings.audience.models import Contact, MailingList, PendingPreferences
from tidings.audience.suppression import do_suppress
from tidings.campaigns.events import record_delivery_event
from tidings.campaigns.mail import send_system_email
from tidings.campaigns.models import Campaign, Delivery, OutboxMessage, TrackedLink

_numbers = itertools.count(1)


@dataclass
class Person:
    """One data subject of a test: who they are, and every value of theirs a scan looks for."""

    tag: str  # in every string planted for them: a scan searches for it
    email: str
    name: str
    contact: Contact
    values: set[str] = field(default_factory=set)  # strings that are theirs alone
    filled: set[str] = field(default_factory=set)  # the sources filled for them

    @property
    def hmac(self) -> str:
        return email_hmac(self.email)

    @property
    def delivery_ids(self) -> set[int]:
        """Every delivery row ever made for them (an erasure keeps the rows, anonymous)."""
        return set(self._deliveries)

    _deliveries: list[int] = field(default_factory=list)

    def planted(self, *values: str) -> None:
        self.values.update(v for v in values if v)


def new_person(tag: str | None = None) -> Person:
    """A contact with an address and a name (the contact source's generator adds the rest)."""
    tag = tag or f"qz{next(_numbers):03d}x"
    name = f"{tag.capitalize()} Vandersloot"
    email = f"{tag}.mail@{tag}-home.example"
    contact, _ = do_create_contact({"name": name, "email": email}, purpose="newsletter")
    person = Person(tag, email, name, contact)
    person.planted(name, email)
    return person


# --- one generator per source -----------------------------------------------------------------
def _details(person: Person) -> None:
    values = {
        "name": person.name,
        "email": person.email,
        "phone": f"+44 7700 9{next(_numbers):05d}",
        "company": f"{person.tag.capitalize()} Widgets Ltd",
        "job_title": f"Head of {person.tag} operations",
        "work_address": f"{person.tag.capitalize()} House, 1 Quay Street",
    }
    # Under the enquiry purpose, which collects the work address too.
    do_create_contact(values, purpose="enquiry")
    person.planted(*(v for k, v in values.items() if k not in ("name", "email")))


def _lists() -> tuple[MailingList, MailingList]:
    news = MailingList.objects.get_or_create(name="Product news", topic="product news")[0]
    events = MailingList.objects.get_or_create(name="Events", topic="events and webinars")[0]
    return news, events


def _subscriptions(person: Person) -> None:
    news, events = _lists()
    do_subscribe(
        person.contact, news, source="form", wording_text="Yes, email me news.", confirmed=True
    )
    do_subscribe(
        person.contact, events, source="form", wording_text="Yes, invite me.", confirmed=True
    )
    do_unsubscribe(person.contact, events, source="unsubscribe")


def _consent(person: Person) -> None:
    news, _ = _lists()
    ip = f"198.51.{next(_numbers) % 250}.{next(_numbers) % 250 + 1}"
    do_subscribe(
        person.contact,
        news,
        source="form",
        wording_text="Yes, email me news.",
        confirmed=False,
        ip_address=ip,
    )
    person.planted(ip)


def _pending_preferences(person: Person) -> None:
    """A new name and company typed on the preference page, waiting for the email's click."""
    news, _ = _lists()
    values = {
        "name": f"{person.tag.capitalize()} Waitingname",
        "company": f"{person.tag} Pending Ltd",
    }
    PendingPreferences.objects.create(
        contact=person.contact, list_ids=[news.pk], channels=["phone"], values=values
    )
    person.planted(*values.values())


def _suppression(person: Person) -> None:
    do_suppress(person.email, "complained", actor_label="test")


def _campaign(person: Person, *, subject: str = "News for {{ contact.first_name }}") -> Delivery:
    campaign = Campaign.objects.create(
        name=f"Campaign {next(_numbers)}",
        subject=subject,
        topic="product news",
        body="Hello {{ contact.name }}",
        status=Campaign.Status.FINISHED,
    )
    delivery = Delivery.objects.create(
        campaign=campaign,
        contact=person.contact,
        status=Delivery.Status.SENT,
        sent_at=timezone.now() - timedelta(days=3),
    )
    person._deliveries.append(delivery.pk)
    return delivery


def _campaigns_received(person: Person) -> None:
    _campaign(person)
    queued = _campaign(person)
    Delivery.objects.filter(pk=queued.pk).update(status=Delivery.Status.QUEUED, sent_at=None)


def _emails(person: Person) -> None:
    """A welcome already sent (in the outbox, as the transport keeps it) and a system email with
    a calendar invitation still queued, its attachment naming the person."""
    invitation = (
        "BEGIN:VCALENDAR\r\nBEGIN:VEVENT\r\n"
        f"ATTENDEE;CN={person.name}:mailto:{person.email}\r\nEND:VEVENT\r\nEND:VCALENDAR\r\n"
    )
    send_system_email(
        person.contact,
        "welcome",
        {"list_names": "Product news", "lists": ["Product news"]},
        headers={"X-Reference": f"welcome-{person.tag}"},
        attachments=[
            {"filename": "invite.ics", "content_type": "text/calendar", "content": invitation}
        ],
    )
    OutboxMessage.objects.create(
        from_email="news@example.co.uk",
        to=f"{person.name} <{person.email}>",
        subject=f"Welcome, {person.name}",
        message=(
            f"To: {person.name} <{person.email}>\r\nSubject: Welcome\r\n\r\nHi {person.tag}"
        ).encode(),
    )
    person.planted(f"Hi {person.tag}")


def _email_events(person: Person) -> None:
    delivery = _campaign(person)
    TrackedLink.objects.get_or_create(
        campaign=delivery.campaign, index=0, defaults={"url": "https://example.co.uk/launch"}
    )
    record_delivery_event(delivery.pk, "open")
    record_delivery_event(delivery.pk, "click", link=0)


def _bounce_reports(person: Person) -> None:
    from tidings.campaigns.bounces.processing import do_record_inbound_mail

    delivery = _campaign(person)
    # One matched to the delivery (processed: a soft bounce), one unmatched (kept with its
    # message, which names the address, until it is processed or expires).
    do_record_inbound_mail(
        sample("postfix_delayed.eml", recipient=person.email, row=("d", delivery.pk)),
        source="pipe",
    )
    do_record_inbound_mail(sample("postfix_hard.eml", recipient=person.email), source="pipe")


def _enquiries(person: Person) -> None:
    from tidings.crm.actions import do_receive_enquiry

    message = f"Could {person.tag} have a quote for ten seats?"
    do_receive_enquiry(
        {"name": person.name, "email": person.email}, channel="email", message=message
    )
    person.planted(message)


def _booking_hosts() -> None:
    from tests.booking.helpers import hosts
    from tidings.booking.models import DemoHost

    if not DemoHost.objects.filter(is_active=True).exists():
        hosts(f"host{next(_numbers)}")


def _demo_bookings(person: Person) -> None:
    """A demo booked on the booking page: its invitation (an .ics naming the person) is queued."""
    from tidings.booking.actions import do_book_demo, free_slots

    _booking_hosts()
    slot = free_slots()[0]
    do_book_demo(
        {"name": person.name, "email": person.email},
        start=slot.start,
        visitor_timezone="Europe/Paris",
    )


def _organisation(person: Person):
    from tidings.crm.actions import do_create_contract, do_create_organisation

    # The customer's own record (not the person's data: it stays when they are erased), named
    # differently from the person's company so that a scan cannot mistake one for the other.
    organisation = do_create_organisation(name=f"Customer {next(_numbers)} plc")
    do_create_contract(organisation, start=timezone.localdate() - timedelta(days=400))
    return organisation


def _orders(person: Person) -> None:
    """A recent order (kept for its legal minimum) and one past it (erased like the rest)."""
    from tidings.crm.actions import OrderLine, do_create_order

    organisation = _organisation(person)
    who = {"name": person.name, "email": person.email, "company": f"{person.tag} Trading"}
    for age, reference in ((30, "recent"), (7 * 366, "old")):
        do_create_order(
            who,
            organisation=organisation,
            order_reference=f"INV-{person.tag}-{reference}",
            lines=[OrderLine(f"Support hours for {person.tag}", 2, "95.00")],
            invoice_address=f"Accounts, {person.tag} Trading, 2 Mill Lane",
            created_at=timezone.now() - timedelta(days=age),
        )
    person.planted(f"INV-{person.tag}-old", f"Accounts, {person.tag} Trading, 2 Mill Lane")


def _support(person: Person):
    from tidings.crm.actions import do_add_support_contact

    support_contact, _ = do_add_support_contact(
        {"name": person.name, "email": person.email, "company": f"{person.tag} Trading"},
        organisation=_organisation(person),
    )
    return support_contact


def _support_contacts(person: Person) -> None:
    _support(person)


def _support_requests(person: Person) -> None:
    from tidings.crm.actions import do_create_support_request

    notes = f"{person.tag} cannot sign in since Monday"
    do_create_support_request(_support(person), subject="Sign-in problem", notes=notes)
    person.planted(notes)


def _support_mail_from(person: Person, *, subject: str, body: str, **headers: str) -> None:
    from tests.crm.helpers import mail
    from tidings.crm.inbound.processing import do_receive_inbound

    raw = mail(f"{person.name} <{person.email}>", subject=subject, body=body, headers=headers)
    do_receive_inbound(raw, source="pipe")
    person.planted(body)


def _enquiry_messages(person: Person) -> None:
    """An enquiry's conversation: our acknowledgement, and the person's answer to it by mail
    (threaded by In-Reply-To) with a file, as an installation whose policy collects
    ``attachments`` keeps it (the example policy does not, so the file is added here)."""
    from tidings.crm.actions import do_receive_enquiry
    from tidings.crm.models import ConversationAttachment, ConversationMessage

    enquiry = do_receive_enquiry(
        {"name": person.name, "email": person.email},
        channel="web form",
        message=f"Do you train {person.tag} teams?",
        acknowledge=True,
    )
    acknowledgement = ConversationMessage.objects.filter(enquiry=enquiry).latest("pk")
    _support_mail_from(
        person,
        subject="Re: We have your message",
        body=f"Hello, could {person.tag} get a price for 12 seats?",
        **{"In-Reply-To": acknowledgement.message_id},
    )
    answer = ConversationMessage.objects.filter(enquiry=enquiry, direction="in").latest("pk")
    data = f"Seating plan of {person.tag}".encode()
    ConversationAttachment.objects.create(
        message=answer, filename="plan.txt", content_type="text/plain", size=len(data), data=data
    )
    person.planted(f"Do you train {person.tag} teams?", data.decode())


def _support_messages(person: Person) -> None:
    """A mail from a support contact of a customer under contract: a support request."""
    _support(person)
    _support_mail_from(
        person, subject="Export fails", body=f"The {person.tag} export stops at 80 per cent."
    )


def _support_mail(person: Person) -> None:
    """An out-of-office reply from the person: kept as it arrived, never a ticket."""
    _support_mail_from(
        person,
        subject="Out of office",
        body=f"{person.tag} is away until Monday.",
        **{"Auto-Submitted": "auto-replied"},
    )


def _pictures(person: Person) -> None:
    """A picture an operator marked as showing the person (media library)."""
    import io

    from PIL import Image

    from tidings.media.actions import do_mark_image_personal, do_upload_image

    n = next(_numbers)
    out = io.BytesIO()
    Image.new("RGB", (40, 30), (n % 256, (n * 7) % 256, (n * 13) % 256)).save(out, "PNG")
    image, _ = do_upload_image(
        out.getvalue(), name=f"{person.tag} at the stand", alt=f"{person.tag} smiling", actor=None
    )
    do_mark_image_personal(image, person.contact, actor=None)
    person.planted(f"{person.tag} at the stand", f"{person.tag} smiling")


def _privacy_requests(person: Person) -> None:
    from tidings.rights.actions import do_create_rights_request

    do_create_rights_request("access", person.email)
    do_create_rights_request("rectify", person.email, details=f"My name is {person.tag} Smith")
    person.planted(f"My name is {person.tag} Smith")


def _activity_log(person: Person) -> None:
    from tidings.rights.actions import do_rectify_contact

    do_rectify_contact(person.contact, {"job_title": f"Chief {person.tag} officer"})
    person.planted(f"Chief {person.tag} officer")


def _webhooks(person: Person) -> None:
    from tidings.api.models import WebhookEndpoint
    from tidings.api.webhooks import record_event

    if not WebhookEndpoint.objects.exists():
        WebhookEndpoint.objects.create(
            url="https://crm.example.co.uk/hooks",
            description="Our CRM",
            events=["contact.subscribed", "delivery.bounced"],
            secret="whsec_" + "A" * 32,
        )
    news, _ = _lists()
    delivery = _campaign(person)
    record_event("contact.subscribed", {"contact_id": person.contact.pk, "list_id": news.pk})
    record_event("delivery.bounced", {"contact_id": None, "delivery_id": delivery.pk, "hard": True})


def _journeys(person: Person) -> None:
    """In a welcome series: its first email queued, waiting for the second."""
    from tidings.campaigns.models import Template
    from tidings.campaigns.rendering import ensure_default_layout
    from tidings.journeys.actions import JourneySpec, do_activate, do_create_journey, do_enrol
    from tidings.journeys.engine import advance_due
    from tidings.journeys.models import Journey

    news, _ = _lists()
    do_subscribe(person.contact, news, source="form", wording_text="Yes", confirmed=True)
    journey = Journey.objects.filter(name="Welcome series").first()
    if journey is None:
        Template.objects.get_or_create(
            name="Journey welcome",
            defaults={"layout": ensure_default_layout(), "body": "Hello {{ contact.name }}"},
        )
        steps = [
            {
                "id": "hello",
                "kind": "send_email",
                "template": "Journey welcome",
                "subject": "Welcome, {{ contact.name }}",
            },
            {"id": "wait", "kind": "wait", "duration": "2 days"},
            {"id": "tips", "kind": "send_email", "template": "Journey welcome"},
        ]
        journey = do_create_journey(
            JourneySpec("Welcome series", news.topic, "confirmed", {}, "once", 0, steps, []),
            actor=None,
        )
        do_activate(journey, actor=None)
    if person.contact.pk not in set(journey.enrolments.values_list("contact_id", flat=True)):
        do_enrol(journey, person.contact)
        advance_due()
    person.planted(f"Welcome, {person.name}")


def _journey_mail_events(person: Person) -> None:
    """Their first journey email opened (as the tracking ingest writes it)."""
    from tidings.journeys.models import EnrolmentStep, JourneyMailEvent

    _journeys(person)
    step = EnrolmentStep.objects.filter(enrolment__contact=person.contact, step="hello").first()
    if step is not None and not step.mail_events.exists():
        JourneyMailEvent.objects.create(step=step, kind=JourneyMailEvent.Kind.OPEN)


def _journey_segment_matches(person: Person) -> None:
    """Matched by a segment-started journey's segment at its last check."""
    from tidings.audience.models import Segment
    from tidings.journeys.actions import JourneySpec, do_create_journey
    from tidings.journeys.models import Journey, SegmentMember

    journey = Journey.objects.filter(name="Segment series").first()
    if journey is None:
        segment, _ = Segment.objects.get_or_create(
            name="Everyone", defaults={"query": 'email ~ "@"'}
        )
        steps = [{"id": "tell", "kind": "webhook", "event": "matched"}]
        journey = do_create_journey(
            JourneySpec(
                "Segment series",
                "",
                "segment_matched",
                {"segment": segment.pk},
                "once",
                0,
                steps,
                [],
            ),
            actor=None,
        )
    SegmentMember.objects.get_or_create(journey=journey, contact=person.contact)


GENERATORS: dict[str, Callable[[Person], None]] = {
    "contact": _details,
    "subscriptions": _subscriptions,
    "consent": _consent,
    "pending preferences": _pending_preferences,
    "suppression": _suppression,
    "campaigns_received": _campaigns_received,
    "emails": _emails,
    "email_events": _email_events,
    "bounce_reports": _bounce_reports,
    "enquiries": _enquiries,
    "demo bookings": _demo_bookings,
    "orders": _orders,
    "support_requests": _support_requests,
    "support_contacts": _support_contacts,
    "enquiry_messages": _enquiry_messages,
    "support_messages": _support_messages,
    "support_mail": _support_mail,
    "pictures": _pictures,
    "privacy_requests": _privacy_requests,
    "activity_log": _activity_log,
    "webhooks": _webhooks,
    "journeys": _journeys,
    "journey history": _journeys,
    "journey mail opens and clicks": _journey_mail_events,
    "journey segment matches": _journey_segment_matches,
}


def fill(person: Person, names: set[str] | None = None) -> Person:
    """Fill ``names`` (every source when None) for ``person``, in the registry's order."""
    names = set(GENERATORS) if names is None else names
    for name in [n for n in GENERATORS if n in names]:
        GENERATORS[name](person)
        person.filled.add(name)
    person.contact.refresh_from_db()
    return person


# --- ids no other table shares ----------------------------------------------------------------
SPACING = 1_000_000  # ids per table: far more than a test makes


def auto_tables() -> list[str]:
    """Every table whose primary key the database numbers (models and many-to-many tables)."""
    tables = []
    for model in apps.get_models(include_auto_created=True):
        pk = model._meta.pk
        if isinstance(pk, models.AutoField | models.BigAutoField | models.SmallAutoField):
            tables.append(model._meta.db_table)
    return sorted(set(tables))


def distinct_ids() -> None:
    """Make every table number its rows from its own range (table n: from 10^8 + n × 10^6).

    Then an id says which table it is from: the erased person's contact id or delivery ids found
    in any integer column, text or JSON is theirs, never a count or another table's row.
    """
    with connection.cursor() as cursor:
        for n, table in enumerate(auto_tables()):
            quoted = connection.ops.quote_name(table)  # a model's table, not input
            cursor.execute(f"SELECT COALESCE(MAX(id), 0) FROM {quoted}")  # noqa: S608
            current = max(100_000_000 + n * SPACING, cursor.fetchone()[0])
            if connection.vendor == "postgresql":
                cursor.execute(
                    "SELECT setval(pg_get_serial_sequence(%s, 'id'), %s)", [quoted, current]
                )
            else:
                cursor.execute("DELETE FROM sqlite_sequence WHERE name = %s", [table])
                cursor.execute(
                    "INSERT INTO sqlite_sequence (name, seq) VALUES (%s, %s)", [table, current]
                )
