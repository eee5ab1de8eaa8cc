"""Audience figures for the dashboard."""

from __future__ import annotations

from datetime import timedelta

from django.db.models import Count, Q
from django.utils import timezone

from .models import Contact, Subscription, Suppression


def audience_summary(days: int = 30) -> dict[str, int]:
    since = timezone.now() - timedelta(days=days)
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
