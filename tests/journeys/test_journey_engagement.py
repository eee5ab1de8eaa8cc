"""Journey mail counts in the segment language's engagement functions like campaign mail:
opened_in, clicked_in and received_in see people's opens and clicks of journey mail (not
machines'), and journey mail sent to them."""

from __future__ import annotations

from datetime import datetime, timedelta

import pytest
from django.utils import timezone

from tests.journeys.helpers import make_list, subscriber, welcome
from tidings.audience.models import Contact
from tidings.audience.segments import compile_segment
from tidings.campaigns.models import OutgoingMessage
from tidings.journeys import engine
from tidings.journeys.actions import do_enrol
from tidings.journeys.models import EnrolmentStep, JourneyMailEvent

pytestmark = pytest.mark.django_db


def matches(query: str, now: datetime) -> set[str]:
    found = Contact.objects.filter(compile_segment(query, now=now))
    return set(found.values_list("name", flat=True))


def test_journey_opens_clicks_and_mail_count_in_segments_machines_apart():
    journey = welcome()
    news = make_list()
    ann = subscriber("Ann Reader", news)
    bob = subscriber("Bob Proxy", news)
    cat = subscriber("Cat Clicker", news)
    subscriber("Dan Nobody", news)
    for contact in (ann, bob, cat):
        do_enrol(journey, contact)
    engine.advance_due()
    now = timezone.now()
    OutgoingMessage.objects.filter(kind=f"journey:{journey.pk}").update(
        status=OutgoingMessage.Status.SENT, sent_at=now - timedelta(days=10)
    )

    def event(contact, kind, *, machine=False, days=5):
        step = EnrolmentStep.objects.get(enrolment__contact=contact, step="hello")
        JourneyMailEvent.objects.create(
            step=step, kind=kind, machine=machine, at=now - timedelta(days=days)
        )

    event(ann, JourneyMailEvent.Kind.OPEN)
    event(bob, JourneyMailEvent.Kind.OPEN, machine=True)  # a privacy proxy: not Bob
    event(bob, JourneyMailEvent.Kind.CLICK, machine=True)  # a link scanner
    event(cat, JourneyMailEvent.Kind.CLICK, days=40)

    assert matches("opened_in(30d)", now) == {"Ann Reader"}
    assert matches("opened_in(60d)", now) == {"Ann Reader", "Cat Clicker"}  # a click proves it
    assert matches("clicked_in(60d)", now) == {"Cat Clicker"}
    assert matches("received_in(30d)", now) == {"Ann Reader", "Bob Proxy", "Cat Clicker"}
    assert matches("received_in(7d)", now) == set()
    assert "Dan Nobody" in matches("not opened_in(60d)", now)


def test_campaign_engagement_still_counts_beside_journey_engagement():
    from tests.campaigns.lifecycle_helpers import make_campaign, queue
    from tidings.campaigns.engagement import note_received
    from tidings.campaigns.events import record_delivery_event
    from tidings.campaigns.models import Delivery, Event

    news = make_list()
    eve = subscriber("Eve Campaign", news)
    campaign = make_campaign(news)
    [delivery] = queue(campaign, [eve], status=Delivery.Status.SENT)
    now = timezone.now()
    # As the queue and the tracking ingest write them (they keep the contact's engagement facts).
    Delivery.objects.filter(pk=delivery.pk).update(sent_at=now - timedelta(days=2))
    note_received([eve.pk], now - timedelta(days=2))
    record_delivery_event(delivery.pk, Event.Kind.OPEN, at=now - timedelta(days=1))
    assert matches("opened_in(7d)", now) == {"Eve Campaign"}
    assert matches("received_in(7d)", now) == {"Eve Campaign"}
