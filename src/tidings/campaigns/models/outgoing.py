"""One-off messages (confirmations, welcomes, transactional mail): the priority queue."""

from __future__ import annotations

from django.db import models
from django.utils import timezone


class OutgoingMessage(models.Model):
    """A message to one contact, rendered when it was enqueued, sent by the delivery engine
    before any campaign mail.  Its subject and bodies (which hold personal links) are blanked
    once it is sent or has failed for good; the row stays as the record that it went."""

    class Status(models.TextChoices):
        QUEUED = "queued", "Queued"
        SENDING = "sending", "Sending"
        SENT = "sent", "Sent"
        FAILED = "failed", "Failed"
        SKIPPED = "skipped", "Skipped"

    # Higher goes first.  System emails that someone is waiting for (a confirmation) outrank the
    # rest; every one-off message outranks campaigns, which are not in this table at all.
    PRIORITY_URGENT = 20
    PRIORITY_NORMAL = 10

    kind = models.CharField(max_length=60, help_text="e.g. system:confirmation; never personal.")
    priority = models.SmallIntegerField(default=PRIORITY_NORMAL)
    contact = models.ForeignKey(
        "audience.Contact", on_delete=models.SET_NULL, null=True, related_name="+"
    )
    from_email = models.CharField(max_length=320)
    subject = models.CharField(max_length=998, blank=True)
    text = models.TextField(blank=True)
    html = models.TextField(blank=True)
    headers = models.JSONField(default=dict, blank=True)
    # [{"filename": "invite.ics", "content_type": "text/calendar; method=REQUEST", "content": ...}]
    # Text attachments only (a calendar invitation); blanked with the bodies once sent.
    attachments = models.JSONField(default=list, blank=True)
    transport = models.CharField(
        max_length=50, blank=True, help_text="Named transport to use (blank: any); then: used."
    )

    status = models.CharField(max_length=10, choices=Status.choices, default=Status.QUEUED)
    attempts = models.PositiveSmallIntegerField(default=0)
    next_attempt_at = models.DateTimeField(null=True, blank=True)
    leased_by = models.CharField(max_length=64, blank=True)
    leased_until = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(default=timezone.now, db_index=True)
    sent_at = models.DateTimeField(null=True, blank=True)
    message_id = models.CharField(max_length=200, blank=True)
    error = models.CharField(max_length=300, blank=True, help_text="Never personal data.")
    error_code = models.PositiveSmallIntegerField(null=True, blank=True)

    class Meta:
        indexes = [
            models.Index(
                fields=["-priority", "id"],
                condition=models.Q(status="queued"),
                name="outgoing_queue",
            ),
            models.Index(
                fields=["leased_by"],
                condition=models.Q(status="sending"),
                name="outgoing_leases",
            ),
            models.Index(  # ESP webhooks find the row by the provider's id
                fields=["message_id"],
                condition=~models.Q(message_id=""),
                name="outgoing_provider_id",
            ),
        ]

    def __str__(self) -> str:
        return f"Outgoing message #{self.pk} ({self.kind}, {self.status})"
