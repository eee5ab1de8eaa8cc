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


class TrackedLink(models.Model):
    """The campaign's link table: a click token names a link by its index here, so a click can
    only ever redirect to an address that is in the campaign (no open redirect)."""

    campaign = models.ForeignKey(Campaign, on_delete=models.CASCADE, related_name="tracked_links")
    index = models.PositiveSmallIntegerField()
    url = models.URLField(max_length=2000)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["campaign", "index"], name="one_link_per_index"),
        ]
        ordering = ["campaign", "index"]

    def __str__(self) -> str:
        return f"link {self.index} of campaign {self.campaign_id}"


class RecipientDomain(models.Model):
    """How many of a finished campaign's recipients were at each mail domain: an anonymous
    aggregate, counted once when the report is first opened (a million-row join is too slow to
    repeat on every view, and a finished campaign's recipients no longer change)."""

    campaign = models.ForeignKey(Campaign, on_delete=models.CASCADE, related_name="domains")
    domain = models.CharField(max_length=253)
    recipients = models.PositiveIntegerField()

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["campaign", "domain"], name="one_row_per_domain"),
        ]

    def __str__(self) -> str:
        return f"{self.domain}: {self.recipients}"
