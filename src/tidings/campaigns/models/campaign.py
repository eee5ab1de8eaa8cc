"""Campaigns, their senders, and one Delivery row per recipient (the delivery queue)."""

from __future__ import annotations

from django.conf import settings
from django.db import models
from django.utils import timezone

from .templates import Layout, Template


class Sender(models.Model):
    """A From identity operators may use; only verified ones can send.

    "Verified" means the domain health checks passed (``verified_by = "checks"``: SPF, DKIM,
    DMARC and alignment, reverse DNS; ``campaigns.deliverability``), or an owner vouched for it
    anyway (``"owner"``, audited).  The checks run when the sender is added, daily, and on
    demand; ``health`` keeps the last result (no personal data: records and sentences)."""

    class VerifiedBy(models.TextChoices):
        NOBODY = "", "Not verified"
        CHECKS = "checks", "Domain checks passed"
        OWNER = "owner", "An owner vouched for it"

    name = models.CharField(max_length=200)
    email = models.EmailField(unique=True)
    reply_to = models.EmailField(blank=True)
    verified = models.BooleanField(default=False)
    verified_by = models.CharField(
        max_length=8, choices=VerifiedBy.choices, blank=True, default=VerifiedBy.NOBODY
    )
    dkim_selector = models.CharField(
        max_length=63,
        blank=True,
        help_text="Blank: tidings' own key (tidings dkim keygen).  Your email provider's "
        "selector when it signs for you.",
    )
    health_status = models.CharField(
        max_length=8, blank=True, help_text="pass, fail or unknown (could not check); blank: never"
    )
    health = models.JSONField(default=dict, blank=True)
    health_checked_at = models.DateTimeField(null=True, blank=True)

    def __str__(self) -> str:
        return f"{self.name} <{self.email}>"

    @property
    def domain(self) -> str:
        return self.email.rpartition("@")[2].lower()


class Campaign(models.Model):
    class Status(models.TextChoices):
        DRAFT = "draft", "Draft"
        SCHEDULED = "scheduled", "Scheduled"
        SENDING = "sending", "Sending"
        PAUSED = "paused", "Paused"
        CANCELLED = "cancelled", "Cancelled"
        FINISHED = "finished", "Finished"

    name = models.CharField(max_length=200)
    status = models.CharField(max_length=12, choices=Status.choices, default=Status.DRAFT)
    subject = models.CharField(max_length=300)
    preheader = models.CharField(max_length=300, blank=True)
    sender = models.ForeignKey(Sender, on_delete=models.PROTECT, null=True, blank=True)
    reply_to = models.EmailField(blank=True)
    template = models.ForeignKey(
        Template, on_delete=models.SET_NULL, null=True, blank=True, related_name="campaigns"
    )
    layout = models.ForeignKey(Layout, on_delete=models.PROTECT, null=True, blank=True)
    format = models.CharField(max_length=10, choices=Template.Format.choices, default="markdown")
    body = models.TextField(blank=True)
    text_body = models.TextField(blank=True, help_text="Blank: generated from the body.")
    topic = models.CharField(max_length=100, help_text="The policy's marketing topic it is about.")
    lists = models.ManyToManyField("audience.MailingList", blank=True, related_name="campaigns")
    segments = models.ManyToManyField("audience.Segment", blank=True, related_name="campaigns")
    scheduled_at = models.DateTimeField(null=True, blank=True)
    started_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)
    paused_reason = models.CharField(max_length=300, blank=True)
    transport = models.CharField(
        max_length=50,
        blank=True,
        help_text="The named transport to send through; blank: any of them.",
    )
    archive = models.BooleanField(default=False, help_text="Show it on the public archive page.")
    local_hour = models.PositiveSmallIntegerField(
        null=True,
        blank=True,
        help_text="Deliver at this hour (0-23) of each recipient's own time zone, where the "
        "policy lets us hold one (else the company's); blank: as soon as it starts.",
    )
    follow_up_of = models.ForeignKey(
        "self", on_delete=models.SET_NULL, null=True, blank=True, related_name="follow_ups"
    )
    follow_up_audience = models.CharField(
        max_length=12,
        blank=True,
        choices=[
            ("not_opened", "People who did not open it"),
            ("not_clicked", "People who did not click"),
        ],
        help_text="A follow-up goes only to people of the original who did not open or click "
        "(people, not machines), and who may still be emailed.",
    )
    follow_up_days = models.PositiveSmallIntegerField(
        null=True,
        blank=True,
        help_text="A follow-up goes this many days after the original started.",
    )
    protection_waived = models.BooleanField(
        default=False,
        help_text="An operator resumed it after it paused itself for complaints or bounces: "
        "it is not paused again for them.",
    )
    last_edited_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )
    # What was confirmed (campaigns.fingerprint): hashes of the content and of how the audience
    # is chosen, stored when it is scheduled; blank before it was, or before they existed.
    confirmed_content = models.CharField(max_length=64, blank=True, default="")
    confirmed_audience = models.CharField(max_length=64, blank=True, default="")
    created_at = models.DateTimeField(default=timezone.now)
    updated_at = models.DateTimeField(auto_now=True)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )

    class Meta:
        ordering = ["-created_at", "-pk"]

    def __str__(self) -> str:
        return self.name

    @property
    def shown_paused_reason(self) -> str:
        """The paused reason for pages and the command line (an old one stored cut short is
        completed or marked: ``lib.four_eyes.shown_reason``)."""
        from tidings.lib.four_eyes import shown_reason

        return shown_reason(self.paused_reason)


class Delivery(models.Model):
    """One message to one person: the queue row the workers claim, send and mark."""

    class Status(models.TextChoices):
        QUEUED = "queued", "Queued"
        SENDING = "sending", "Sending"
        SENT = "sent", "Sent"
        FAILED = "failed", "Failed"
        SKIPPED = "skipped", "Skipped"
        # Waiting for something other than the clock: an A/B test's winner, or the recipient's
        # local hour (``next_attempt_at``).  Never claimed; released to queued when its time comes.
        HELD = "held", "Held"

    campaign = models.ForeignKey(Campaign, on_delete=models.CASCADE, related_name="deliveries")
    contact = models.ForeignKey(
        "audience.Contact", on_delete=models.SET_NULL, null=True, related_name="deliveries"
    )
    status = models.CharField(max_length=10, choices=Status.choices, default=Status.QUEUED)
    attempts = models.PositiveSmallIntegerField(default=0)
    next_attempt_at = models.DateTimeField(null=True, blank=True)
    leased_by = models.CharField(max_length=64, blank=True)
    leased_until = models.DateTimeField(null=True, blank=True)
    sent_at = models.DateTimeField(null=True, blank=True)
    message_id = models.CharField(
        max_length=200,
        blank=True,
        help_text="The provider's id for the message, when it gives one (an ESP's API).  The "
        "Message-ID header is made from the row's id: campaigns.messages.message_id_for.",
    )
    error = models.CharField(max_length=300, blank=True, help_text="Never personal data.")
    error_code = models.PositiveSmallIntegerField(
        null=True, blank=True, help_text="The SMTP reply code of the last failure."
    )
    transport = models.CharField(max_length=50, blank=True, help_text="What sent it.")
    tracked = models.BooleanField(
        null=True,
        blank=True,
        help_text="Whether the message as sent carried the open pixel and tracked links (the "
        "person allowed it); unknown until sent.  Open and click rates are of the tracked ones.",
    )
    variant = models.ForeignKey(
        "campaigns.Variant",
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="deliveries",
        help_text="The A/B variant this person gets: fixed when the queue is made.",
    )

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["campaign", "contact"], name="one_delivery_per_person"),
        ]
        indexes = [
            models.Index(fields=["campaign", "status"]),
            # The queue: workers claim a campaign's queued rows in id order.  Partial, so rows
            # leave it once claimed and a million sent rows cost the claim nothing.
            models.Index(
                fields=["campaign", "id"],
                condition=models.Q(status="queued"),
                name="delivery_queue",
            ),
            # /metrics: rows waiting for a retry (few; the index holds only those).
            models.Index(
                fields=["next_attempt_at"],
                condition=models.Q(status="queued", next_attempt_at__isnull=False),
                name="delivery_retry_wait",
            ),
            # Held rows (A/B rest, local hours) are released by due time.
            models.Index(
                fields=["next_attempt_at"],
                condition=models.Q(status="held"),
                name="delivery_held",
            ),
            # Recovery: the rows a vanished worker was sending.
            models.Index(
                fields=["leased_by"],
                condition=models.Q(status="sending"),
                name="delivery_leases",
            ),
            # Reports: the messages sent without tracking (a minority; the index holds only
            # those), so open and click rates are of the people whose opens could be seen.
            models.Index(
                fields=["campaign"], condition=models.Q(tracked=False), name="delivery_untracked"
            ),
            # ESP webhooks find the row by the provider's id.  Partial: rows sent by SMTP have
            # none, so the index costs a campaign's inserts nothing.
            models.Index(
                fields=["message_id"],
                condition=~models.Q(message_id=""),
                name="delivery_provider_id",
            ),
        ]

    def __str__(self) -> str:
        return f"Delivery #{self.pk} ({self.status})"
