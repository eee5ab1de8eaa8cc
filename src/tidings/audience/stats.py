"""Audience figures for the dashboard: counted live for a small audience, from a snapshot for a
large one.

Why a snapshot (``web/snapshots.py``) rather than counters kept by every action: the figures
change through many paths (sign-ups, imports written in bulk SQL, unsubscribe links, bounces,
erasure, retention), and a counter one of them forgot would drift for ever; a snapshot is
recounted from the tables, so it is at worst late, never wrong.  Counting costs ~10 ms per
100,000 contacts (over 100 ms at 1M):

- below ``LIVE_BELOW`` contacts (as of the last count) the dashboard counts on every view, so a
  small audience always sees exact figures;
- above it, the dashboard shows the snapshot the worker retakes every ``REFRESH`` (the periodic
  job ``audience.snapshot``: ``tasks.take_audience_snapshot``, registered in apps.py): figures
  are at most about two minutes old while ``tidings worker`` runs (the interval plus the
  scheduler's 30 s check);
- a snapshot older than ``STALE_AFTER`` (no worker running) is recounted by the view and kept,
  so the figures are never more than five minutes old, whatever runs.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from django.db.models import Count, Q
from django.utils import timezone

from tidings.web import snapshots

from .models import Contact, Subscription, Suppression

DAYS = 30
LIVE_BELOW = 50_000
REFRESH = timedelta(minutes=1)
STALE_AFTER = timedelta(minutes=5)
KEY = "audience"


def count_audience(days: int = DAYS, *, now: datetime | None = None) -> dict[str, int]:
    """The figures counted from the tables now (two aggregate queries and a count)."""
    since = (now or timezone.now()) - timedelta(days=days)
    subs = Subscription.objects.aggregate(
        confirmed=Count("pk", filter=Q(status="confirmed")),
        pending=Count("pk", filter=Q(status="pending")),
        joined=Count("pk", filter=Q(status="confirmed", confirmed_at__gte=since)),
        left=Count("pk", filter=Q(status="unsubscribed", unsubscribed_at__gte=since)),
    )
    return {
        "contacts": Contact.objects.count(),
        "suppressed": Suppression.objects.count(),
        "days": days,
        **subs,
    }


def take_snapshot() -> dict[str, int]:
    """Count now and keep the figures for the dashboard; returns them."""
    return snapshots.take(KEY, count_audience).data


def audience_summary() -> dict:
    """The dashboard's figures: live for a small audience, else the snapshot (see the module
    docstring); ``as_of`` is when they were counted and ``live`` whether that was for this view.
    """
    kept = snapshots.read(KEY, count_audience, max_age=STALE_AFTER)
    if not kept.live and kept.data["contacts"] < LIVE_BELOW:
        return {**count_audience(), "as_of": timezone.now(), "live": True}
    return {**kept.data, "as_of": kept.taken_at, "live": kept.live}
