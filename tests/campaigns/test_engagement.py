"""Segments on engagement: opened_in(), clicked_in() and received_in() read people's deliveries
and tracking events; machine opens and clicks are not engagement."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.utils import timezone

from tests.campaigns.event_helpers import sent_campaign
from tidings.audience.segments import count_segment, segment_queryset
from tidings.campaigns.models import Delivery, Event

pytestmark = pytest.mark.django_db


def emails(text: str) -> set[str]:
    return set(segment_queryset(text).values_list("email", flat=True))


def event(delivery, kind, days_ago, *, machine=False, link=None):
    Event.objects.create(
        delivery=delivery,
        campaign_id=delivery.campaign_id,
        kind=kind,
        at=timezone.now() - timedelta(days=days_ago),
        machine=machine,
        link=link,
    )


def test_opened_in_counts_a_person_who_opened_or_clicked_since_then_once():
    _, (reader, clicker, old, proxied) = sent_campaign(4, sent_ago=timedelta(days=200))
    event(reader, "open", 10)
    event(reader, "open", 5)  # twice: still one person
    event(clicker, "click", 20, link=0)  # images blocked, but the click proves the open
    event(old, "open", 120)
    event(proxied, "open", 3, machine=True)  # Apple's proxy opens every message
    assert emails("opened_in(90d)") == {reader.contact.email, clicker.contact.email}
    assert count_segment("opened_in(90d)") == 2
    assert emails("opened_in(1y)") == {reader.contact.email, clicker.contact.email,
                                       old.contact.email}  # fmt: skip
    assert proxied.contact.email in emails("not opened_in(1y)")


def test_clicked_in_counts_human_clicks_only():
    _, (clicker, scanned, opener) = sent_campaign(3)
    event(clicker, "click", 2, link=1)
    event(scanned, "click", 2, link=1, machine=True)  # a link scanner of the mail gateway
    event(opener, "open", 2)
    assert emails("clicked_in(30d)") == {clicker.contact.email}


def test_received_in_counts_messages_sent_since_then():
    _, (recent,) = sent_campaign(1, sent_ago=timedelta(days=3))
    _, (old,) = sent_campaign(1, sent_ago=timedelta(days=60))
    _, (queued,) = sent_campaign(1)
    Delivery.objects.filter(pk=queued.pk).update(status=Delivery.Status.QUEUED, sent_at=None)
    assert emails("received_in(30d)") == {recent.contact.email}
    assert emails("received_in(90d) and not opened_in(90d)") == {
        recent.contact.email,
        old.contact.email,
    }
