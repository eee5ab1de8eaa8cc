"""Journey mail counts as engagement in segments, like campaign mail: ``opened_in``,
``clicked_in`` and ``received_in`` (``audience.segments.engagement``) also look at journeys.

- opened: a person (not a machine) opened a journey mail since then, or clicked in one;
- clicked: a person clicked a link in a journey mail since then;
- received: a journey mail was sent to them since then.

Opens and clicks are those of tracked journey mail (``tracking``), with the campaigns' machine
rules.  Each is an uncorrelated ``pk IN (…)`` subquery, so a person with many events counts once
and the database computes the subquery once (a hashed set) rather than once per contact: the
campaigns app's conditions, ORed with these (``engagement.add``), are index look-ups on the
contact's engagement facts, and a correlated ``EXISTS`` beside them would be probed for every
contact of a million.
"""

from __future__ import annotations

from datetime import datetime

from django.db.models import Q

from tidings.campaigns.models import OutgoingMessage

from .models import JourneyMailEvent


def _events_since(since: datetime, kinds: tuple[str, ...]) -> Q:
    events = JourneyMailEvent.objects.filter(
        kind__in=kinds, at__gte=since, machine=False, step__enrolment__contact__isnull=False
    ).values("step__enrolment__contact")
    return Q(pk__in=events)


def opened_since(since: datetime) -> Q:
    return _events_since(since, (JourneyMailEvent.Kind.OPEN, JourneyMailEvent.Kind.CLICK))


def clicked_since(since: datetime) -> Q:
    return _events_since(since, (JourneyMailEvent.Kind.CLICK,))


def received_since(since: datetime) -> Q:
    sent = OutgoingMessage.objects.filter(
        contact__isnull=False,
        kind__startswith="journey:",
        status=OutgoingMessage.Status.SENT,
        sent_at__gte=since,
    ).values("contact")
    return Q(pk__in=sent)


def add_engagement() -> None:
    from tidings.audience.segments import engagement

    engagement.add("opened_in", opened_since)
    engagement.add("clicked_in", clicked_since)
    engagement.add("received_in", received_since)
