"""Audience figures for the dashboard: counted live for a small audience, from a snapshot for a
large one.

Why a snapshot (``lib/snapshots.py``) rather than counters kept by every action: the figures
change through many paths (sign-ups, imports written in bulk SQL, unsubscribe links, bounces,
erasure, retention), and a counter one of them forgot would drift for ever; a snapshot is
recounted from the tables, so it is at worst late, never wrong.  Counting costs ~10 ms per
100,000 contacts (over 100 ms at 1M):

The figures include the list growth per day over the last 30 days (the dashboard's chart): two
more aggregates over the subscriptions.

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

from datetime import date, datetime, timedelta

from django.db.models import Count, Q
from django.db.models.functions import TruncDate
from django.utils import timezone

from tidings.lib import snapshots

from .models import Contact, Subscription, Suppression

DAYS = 30
LIVE_BELOW = 50_000
REFRESH = timedelta(minutes=1)
STALE_AFTER = timedelta(minutes=5)
KEY = "audience"


def growth_per_day(days: int = DAYS, *, now: datetime | None = None) -> list[tuple[date, int, int]]:
    """(local day, subscribed, unsubscribed) for each of the last ``days`` days, today last."""
    today = timezone.localdate(now or timezone.now())
    first_day = today - timedelta(days=days - 1)
    since = datetime.combine(first_day, datetime.min.time(), tzinfo=timezone.get_current_timezone())
    joined = dict(
        Subscription.objects.filter(confirmed_at__gte=since)
        .annotate(day=TruncDate("confirmed_at"))
        .values("day")
        .annotate(n=Count("pk"))
        .order_by()
        .values_list("day", "n")
    )
    left = dict(
        Subscription.objects.filter(unsubscribed_at__gte=since)
        .annotate(day=TruncDate("unsubscribed_at"))
        .values("day")
        .annotate(n=Count("pk"))
        .order_by()
        .values_list("day", "n")
    )
    return [
        (d, joined.get(d, 0), left.get(d, 0))
        for d in (first_day + timedelta(days=i) for i in range(days))
    ]


def count_audience(days: int = DAYS, *, now: datetime | None = None) -> dict:
    """The figures counted from the tables now (JSON: the snapshot keeps them as they are)."""
    now = now or timezone.now()
    since = now - timedelta(days=days)
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
        "growth": [[d.isoformat(), j, u] for d, j, u in growth_per_day(days, now=now)],
    }


def take_snapshot() -> dict:
    """Count now and keep the figures for the dashboard; returns them."""
    return snapshots.take(KEY, count_audience).data


def audience_summary() -> dict:
    """The dashboard's figures: live for a small audience, else the snapshot (see the module
    docstring); ``as_of`` is when they were counted and ``live`` whether that was for this view;
    ``growth`` is the list growth per day (``growth_per_day``).
    """
    kept = snapshots.read(KEY, count_audience, max_age=STALE_AFTER)
    data, as_of, live = kept.data, kept.taken_at, kept.live
    if not live and data["contacts"] < LIVE_BELOW:
        data, as_of, live = count_audience(), timezone.now(), True
    growth = [(date.fromisoformat(d), j, u) for d, j, u in data["growth"]]
    return {**data, "growth": growth, "as_of": as_of, "live": live}
