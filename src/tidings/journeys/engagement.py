"""Journey mail counts as engagement in segments, like campaign mail: ``opened_in``,
``clicked_in`` and ``received_in`` (``audience.segments.engagement``) also look at journeys.

- opened: a person (not a machine) opened a journey mail since then, or clicked in one;
- clicked: a person clicked a link in a journey mail since then;
- received: a journey mail was sent to them since then.

Opens and clicks are those of tracked journey mail (``tracking``), with the campaigns' machine
rules.  Each is an ``EXISTS`` subquery, so a person with many events counts once; the campaigns
app's conditions are ORed with these (``engagement.add``).
"""

from __future__ import annotations

from datetime import datetime

from django.db.models import Exists, OuterRef, Q

from tidings.campaigns.models import OutgoingMessage

from .models import JourneyMailEvent


def _events_since(since: datetime, kinds: tuple[str, ...]) -> Q:
    events = JourneyMailEvent.objects.filter(
        step__enrolment__contact=OuterRef("pk"), kind__in=kinds, at__gte=since, machine=False
    )
    return Q(Exists(events))


def opened_since(since: datetime) -> Q:
    return _events_since(since, (JourneyMailEvent.Kind.OPEN, JourneyMailEvent.Kind.CLICK))


def clicked_since(since: datetime) -> Q:
    return _events_since(since, (JourneyMailEvent.Kind.CLICK,))


def received_since(since: datetime) -> Q:
    sent = OutgoingMessage.objects.filter(
        contact=OuterRef("pk"),
        kind__startswith="journey:",
        status=OutgoingMessage.Status.SENT,
        sent_at__gte=since,
    )
    return Q(Exists(sent))


def add_engagement() -> None:
    from tidings.audience.segments import engagement

    engagement.add("opened_in", opened_since)
    engagement.add("clicked_in", clicked_since)
    engagement.add("received_in", received_since)
