"""What happened to a delivered message (opens, clicks, bounces...) and the per-campaign counters.

``Event`` rows are personal data (they tie a person, through ``Delivery.contact``, to what they
did): the access package exports them, erasure and the retention sweep delete them.  They hold
only what the report needs — time, kind, link index, human or machine — never an IP address or a
user agent.

``EventCounter`` rows are anonymous numbers kept up to date in the same transaction that writes
the events (``campaigns.events``), so a report reads a few dozen rows instead of counting
millions; they survive erasure and retention.
"""

from __future__ import annotations

from django.db import models
from django.utils import timezone

from .campaign import Campaign, Delivery


class EventKind(models.TextChoices):
    OPEN = "open", "Open"
    CLICK = "click", "Click"
    BOUNCE_HARD = "bounce_hard", "Hard bounce"
    BOUNCE_SOFT = "bounce_soft", "Soft bounce"
    COMPLAINT = "complaint", "Complaint"
    UNSUBSCRIBE = "unsubscribe", "Unsubscribe"


class Event(models.Model):
    """One thing that happened to one delivered message."""

    Kind = EventKind

    delivery = models.ForeignKey(Delivery, on_delete=models.CASCADE, related_name="events")
    # Denormalised from the delivery so reports and retention never join a million deliveries.
    campaign = models.ForeignKey(Campaign, on_delete=models.CASCADE, related_name="events")
    kind = models.CharField(max_length=12, choices=EventKind.choices)
    at = models.DateTimeField(default=timezone.now)
    link = models.PositiveSmallIntegerField(
        null=True, blank=True, help_text="Clicks: the index of the link in the campaign's links."
    )
    machine = models.BooleanField(
        default=False, help_text="Fetched by a privacy proxy or a link scanner, not a person."
    )

    class Meta:
        indexes = [
            # "Has this person opened/clicked before?" (unique counts) and erasure by delivery.
            models.Index(fields=["delivery", "kind"], name="event_delivery_kind"),
            # Retention sweeps and the per-campaign listing in time order.
            models.Index(fields=["campaign", "at"], name="event_campaign_at"),
        ]

    def __str__(self) -> str:
        return f"Event #{self.pk} ({self.kind})"


class EventCounter(models.Model):
    """An anonymous count for a campaign: ``total`` events and ``people`` (distinct deliveries).

    One row per (campaign, kind, machine, link, bucket):
    - ``link`` is -1 except for per-link click counters;
    - ``bucket`` is 0 for all-time counters, or the hour (hours since the Unix epoch, UTC) for the
      over-time chart (those rows count ``total`` only: a person is unique per campaign, not per
      hour).
    """

    ALL_LINKS = -1
    ALL_TIME = 0

    campaign = models.ForeignKey(Campaign, on_delete=models.CASCADE, related_name="counters")
    kind = models.CharField(max_length=12, choices=EventKind.choices)
    machine = models.BooleanField(default=False)
    link = models.SmallIntegerField(default=ALL_LINKS)
    bucket = models.IntegerField(default=ALL_TIME)
    total = models.PositiveBigIntegerField(default=0)
    people = models.PositiveBigIntegerField(default=0)

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["campaign", "kind", "machine", "link", "bucket"], name="one_event_counter"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.kind} x{self.total} (campaign {self.campaign_id})"
