"""Reports that come back about the mail we sent: bounces (DSNs), complaints (ARF) and the
same from ESP webhooks.  See ``campaigns.bounces``."""

from __future__ import annotations

from django.db import models
from django.utils import timezone


class InboundReport(models.Model):
    """One bounce or complaint as it arrived, and what was done with it.

    Kept even when it could not be read or matched to a message we sent (``unprocessed``, with
    the reason), so nothing is ever dropped.  The message itself (``raw``) is kept only while
    it is unprocessed (to retry matching) and at most ``TIDINGS_BOUNCE_KEEP_DAYS``; once
    processed only the facts remain.  The address it was about is kept as an HMAC
    (``recipient_hmac``, as in the suppression list), never in clear, so an erasure can find
    the reports about a person without anyone being able to read the address.
    """

    class Status(models.TextChoices):
        UNPROCESSED = "unprocessed", "Unprocessed"
        PROCESSED = "processed", "Processed"

    class Kind(models.TextChoices):
        HARD_BOUNCE = "bounce_hard", "Hard bounce"
        SOFT_BOUNCE = "bounce_soft", "Soft bounce"
        COMPLAINT = "complaint", "Complaint"
        # 5.7.x: the receiver refused the message or its sender, not the address.
        BLOCKED = "blocked", "Blocked by the receiver's policy"
        # 5.1.7 / 5.1.8, "Sender address rejected": our envelope sender, not the address.
        SENDER = "sender", "Our sender refused"
        UNKNOWN = "", "Unknown"

    received_at = models.DateTimeField(default=timezone.now, db_index=True)
    source = models.CharField(
        max_length=40, help_text="pipe, imap, pop3, or webhook:<esp>; never personal."
    )
    status = models.CharField(max_length=12, choices=Status.choices, default=Status.UNPROCESSED)
    kind = models.CharField(max_length=12, choices=Kind.choices, blank=True)
    reason = models.CharField(
        max_length=300, blank=True, help_text="What was done, or why not.  Never personal data."
    )
    detail = models.CharField(
        max_length=100, blank=True, help_text="Status code, bounce or feedback type."
    )
    delivery = models.ForeignKey(
        "campaigns.Delivery", on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )
    outgoing = models.ForeignKey(
        "campaigns.OutgoingMessage",
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="+",
    )
    contact = models.ForeignKey(
        "audience.Contact", on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )
    recipient_hmac = models.CharField(max_length=64, blank=True, db_index=True)
    provider_id = models.CharField(
        max_length=200, blank=True, help_text="The ESP's id of the message it is about."
    )
    event_id = models.CharField(
        max_length=200, blank=True, help_text="The ESP's id of the event, to ignore repeats."
    )
    raw = models.BinaryField(blank=True, default=b"", help_text="Kept while unprocessed only.")
    processed_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-received_at", "-pk"]
        indexes = [
            models.Index(fields=["status", "received_at"]),
            models.Index(fields=["contact", "kind", "received_at"]),
            models.Index(fields=["source", "event_id"]),
        ]

    def __str__(self) -> str:
        return f"Inbound report #{self.pk} ({self.source}, {self.status})"
