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
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from django.conf import settings
from django.db.models.fields.json import KeyTextTransform

from tidings.policy import get_policy

from .models import Campaign, Delivery
from .queue import hold_until

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
    recipient's zone; returns rows per zone name.  Called while the queue is made."""
    if campaign.local_hour is None:
        return {}
    rows = Delivery.objects.filter(
        campaign=campaign, status__in=(Delivery.Status.QUEUED, Delivery.Status.HELD)
    )
    field = time_zone_field()
    fallback = company_zone()
    groups: dict[str, list[int]] = defaultdict(list)
    if field is None:
        groups[fallback.key] = list(rows.values_list("pk", flat=True))
    else:
        values = rows.annotate(tz=KeyTextTransform(field, "contact__attributes")).values_list(
            "pk", "tz"
        )
        for pk, name in values.iterator(chunk_size=10_000):
            zone = zone_named(name) or fallback
            groups[zone.key].append(pk)
    counts = {}
    for name, ids in groups.items():
        start = next_local_hour(campaign.local_hour, ZoneInfo(name), now)
        by_slot: dict[int, list[int]] = defaultdict(list)
        for pk in ids:
            by_slot[pk % SLOTS].append(pk)
        for slot, members in by_slot.items():
            hold_until(members, max(start + timedelta(minutes=5 * slot), now))
        counts[name] = len(ids)
    return counts
