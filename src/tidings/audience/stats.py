"""Audience figures for the dashboard: counted live for a small audience, from a snapshot for a
large one.

Why a snapshot rather than counters kept by every action: the figures change through many paths
(sign-ups, imports written in bulk SQL, unsubscribe links, bounces, erasure, retention), and a
counter any of them forgot would drift for ever; a snapshot is recounted from the tables, so it
is at worst late, never wrong.  Counting costs ~10 ms per 100,000 contacts (over 100 ms at 1M):

- below ``LIVE_BELOW`` contacts (as of the last count) the dashboard counts on every view, so a
  small audience always sees exact figures;
- above it, the dashboard shows the snapshot the worker refreshes every ``REFRESH`` (the periodic
  job ``audience.snapshot``: ``tasks.take_audience_snapshot``, registered in apps.py): figures
  are at most about two minutes old while ``tidings worker`` runs (the interval plus the
  scheduler's 30 s check);
- a snapshot older than ``STALE_AFTER`` (no worker running) is recounted by the view and saved,
  so the figures are never more than five minutes old, whatever runs.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from django.db.models import Count, Q
from django.utils import timezone

from .models import AudienceSnapshot, Contact, Subscription, Suppression

DAYS = 30
LIVE_BELOW = 50_000
REFRESH = timedelta(minutes=1)
STALE_AFTER = timedelta(minutes=5)
FIGURES = ("contacts", "confirmed", "pending", "joined", "left", "suppressed")
_SNAPSHOT_ID = 1


def count_audience(days: int = DAYS, *, now: datetime | None = None) -> dict[str, int]:
    """The figures counted from the tables now (four aggregate queries)."""
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


def take_snapshot(days: int = DAYS) -> dict[str, int]:
    """Count now and keep the figures for the dashboard; returns them."""
    now = timezone.now()
    figures = count_audience(days, now=now)
    AudienceSnapshot.objects.update_or_create(
        pk=_SNAPSHOT_ID, defaults={"taken_at": now, **figures}
    )
    return figures


def audience_summary(days: int = DAYS) -> dict:
    """The dashboard's figures: live for a small audience, else the snapshot (see the module
    docstring); ``as_of`` is when they were counted and ``live`` whether that was now."""
    snapshot = AudienceSnapshot.objects.filter(pk=_SNAPSHOT_ID, days=days).first()
    now = timezone.now()
    if snapshot is None or snapshot.contacts < LIVE_BELOW or now - snapshot.taken_at > STALE_AFTER:
        figures = count_audience(days, now=now)
        if snapshot is None or snapshot.contacts >= LIVE_BELOW or figures["contacts"] >= LIVE_BELOW:
            AudienceSnapshot.objects.update_or_create(
                pk=_SNAPSHOT_ID, defaults={"taken_at": now, **figures}
            )
        return {**figures, "as_of": now, "live": True}
    figures = {f: getattr(snapshot, f) for f in FIGURES}
    return {**figures, "days": days, "as_of": snapshot.taken_at, "live": False}
