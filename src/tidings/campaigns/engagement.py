"""The data behind the segment language's ``opened_in(90d)``, ``clicked_in(30d)`` and
``received_in(30d)`` (``audience.segments.engagement``).

- ``opened_in``: a person opened one of our messages since then, or clicked in one (a click
  proves the open even when images were blocked);
- ``clicked_in``: a person clicked a link in one of our messages since then;
- ``received_in``: we sent a person a message since then.

Opens and clicks by machines (privacy proxies, link scanners: ``tracking.is_machine_request``,
``Event.machine``) are not engagement: Apple's proxy opens every message it is sent.  Each is an
``EXISTS`` subquery on the person's deliveries, so a person with many events counts once.
"""

from __future__ import annotations

from datetime import datetime

from django.db.models import Exists, OuterRef, Q

from .models import Delivery, Event, EventKind


def _events_since(since: datetime, kinds: tuple[str, ...]) -> Q:
    events = Event.objects.filter(
        delivery__contact=OuterRef("pk"), kind__in=kinds, at__gte=since, machine=False
    )
    return Q(Exists(events))


def opened_since(since: datetime) -> Q:
    return _events_since(since, (EventKind.OPEN, EventKind.CLICK))


def clicked_since(since: datetime) -> Q:
    return _events_since(since, (EventKind.CLICK,))


def received_since(since: datetime) -> Q:
    sent = Delivery.objects.filter(
        contact=OuterRef("pk"), status=Delivery.Status.SENT, sent_at__gte=since
    )
    return Q(Exists(sent))


def register_engagement() -> None:
    from tidings.audience.segments import engagement

    engagement.register("opened_in", opened_since)
    engagement.register("clicked_in", clicked_since)
    engagement.register("received_in", received_since)
