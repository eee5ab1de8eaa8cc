"""Sending at a chosen local hour: each recipient's own time zone where the policy lets us hold
one, otherwise the company's (``TIDINGS_TIME_ZONE``).

A recipient's time zone is the contact attribute ``time_zone`` (an IANA name such as
``America/New_York``), used only when the policy's newsletter purpose collects that field: a
policy that does not mention it holds no time zone for anyone, and everyone gets the company's.
A missing or unknown name also means the company's.

When a campaign with ``local_hour`` starts, its rows are held until the next time that hour comes
round in each recipient's zone (today if that hour has not passed yet, or is under way now; else
tomorrow), grouped by zone; the worker releases them when due (``queue.release_due``).  Each
zone's group is spread over the hour in twelve five-minute steps (by row id), so a large zone does
not arrive at the transports all at once; the transports' own rate limits (``TIDINGS_SMTP_RATE``,
``TIDINGS_TRANSPORTS``) still hold throughout, as they do for every message.
"""

from __future__ import annotations

from collections import defaultdict
from datetime import datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from django.conf import settings
from django.db.models import (
    CharField,
    DateTimeField,
    DurationField,
    ExpressionWrapper,
    F,
    Q,
    Value,
)
from django.db.models.fields.json import KeyTextTransform
from django.db.models.functions import Cast, Greatest

from tidings.policy import get_policy

from .models import Campaign, Delivery

FIELD_NAMES = ("time_zone", "timezone")
SLOTS = 12  # five-minute steps within the hour


def time_zone_field() -> str | None:
    """The contact attribute that holds a recipient's time zone, when the policy's newsletter
    purpose collects one; None otherwise."""
    try:
        fields = get_policy().fields_for("newsletter").all
    except KeyError:
        return None
    return next((name for name in FIELD_NAMES if name in fields), None)


def company_zone() -> ZoneInfo:
    return ZoneInfo(settings.TIME_ZONE)


def zone_named(name: str | None) -> ZoneInfo | None:
    if not name or not isinstance(name, str):
        return None
    try:
        return ZoneInfo(name.strip())
    except (ZoneInfoNotFoundError, ValueError):
        return None


def next_local_hour(hour: int, zone: ZoneInfo, now: datetime) -> datetime:
    """The start of ``hour``:00 in ``zone``: today's if that hour has not ended yet (an hour
    under way gives its start, which is already past), else tomorrow's."""
    local = now.astimezone(zone)
    start = local.replace(hour=hour, minute=0, second=0, microsecond=0)
    if local.hour > hour:
        start = (local + timedelta(days=1)).replace(hour=hour, minute=0, second=0, microsecond=0)
    # Normalise through UTC: a wall time that does not exist (a spring-forward gap) moves on.
    return start.astimezone(ZoneInfo("UTC"))


def plan_local_hour(campaign: Campaign, now: datetime) -> dict[str, int]:
    """Hold the campaign's queued and held rows until ``campaign.local_hour`` in each
    recipient's zone; returns rows per zone name.  Called while the queue is made.

    One query finds the zone names present; then one UPDATE per zone (the five-minute step is
    the row id modulo 12), so a million rows in a handful of zones is a handful of statements,
    not a million ids through Python."""
    if campaign.local_hour is None:
        return {}
    rows = Delivery.objects.filter(
        campaign=campaign, status__in=(Delivery.Status.QUEUED, Delivery.Status.HELD)
    )
    field = time_zone_field()
    fallback = company_zone()
    # zone key → the attribute values that mean it (None: no value, or one that is no zone)
    names: dict[str, list[str | None]] = defaultdict(list)
    if field is None:
        names[fallback.key].append(None)
    else:
        # Cast: plain text lookups (``in``), not JSON ones, on the attribute's value.
        rows = rows.annotate(
            tz=Cast(KeyTextTransform(field, "contact__attributes"), output_field=CharField())
        )
        for name in rows.order_by().values_list("tz", flat=True).distinct():
            zone = zone_named(name)
            names[zone.key if zone else fallback.key].append(name if zone else None)
        names[fallback.key].append(None)
    counts: dict[str, Any] = {}
    for key, values in names.items():
        start = next_local_hour(campaign.local_hour, ZoneInfo(key), now)
        if field is None:
            members = rows
        else:
            known = [v for v in values if v is not None]
            condition = Q(tz__in=known) if known else Q(pk__in=[])
            if None in values:  # the company's zone also takes the missing and unknown names
                valid = [k for k in _all_valid(names) if k is not None]
                condition |= Q(tz__isnull=True) | ~Q(tz__in=valid)
            members = rows.filter(condition)
        # One UPDATE a zone: the row's step is its id modulo 12, five minutes each; an hour
        # already under way starts now.
        step = ExpressionWrapper(
            (F("pk") % SLOTS) * Value(timedelta(minutes=5)), output_field=DurationField()
        )
        when = ExpressionWrapper(Value(start) + step, output_field=DateTimeField())
        total = members.update(
            status=Delivery.Status.HELD, next_attempt_at=Greatest(when, Value(now))
        )
        counts[key] = counts.get(key, 0) + total
    return {k: v for k, v in counts.items() if v}


def _all_valid(names: dict[str, list[str | None]]) -> list[str | None]:
    return [v for values in names.values() for v in values]
