"""Sent campaigns with deliveries, for the event, tracking and report tests."""

from __future__ import annotations

import itertools
from datetime import timedelta

from django.utils import timezone

from tidings.audience.models import Contact
from tidings.campaigns.models import Campaign, Delivery

_numbers = itertools.count(1)


def sent_campaign(people: int = 3, *, sent_ago: timedelta = timedelta(hours=1), domain=None):
    """A finished campaign sent to ``people`` new contacts; returns (campaign, [deliveries])."""
    campaign = Campaign.objects.create(
        name=f"Autumn news {next(_numbers)}",
        subject="Autumn news",
        topic="newsletter",
        body="Hello",
        status=Campaign.Status.FINISHED,
    )
    sent_at = timezone.now() - sent_ago
    deliveries = []
    for i in range(people):
        n = next(_numbers)
        contact = Contact.objects.create(email=f"reader{n}@{domain or f'example{i % 2}.org'}")
        deliveries.append(
            Delivery.objects.create(
                campaign=campaign, contact=contact, status=Delivery.Status.SENT, sent_at=sent_at
            )
        )
    return campaign, deliveries
