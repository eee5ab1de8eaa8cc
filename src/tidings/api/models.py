"""API tokens, webhook endpoints and the webhook delivery queue."""

from __future__ import annotations

from django.conf import settings
from django.db import models
from django.utils import timezone

SCOPES = ("read", "write", "send", "privacy")

EVENTS = {
    "contact.subscribed": "A contact subscribed to a list (confirmed)",
    "contact.unsubscribed": "A contact unsubscribed",
    "delivery.bounced": "A message bounced",
    "delivery.complained": "A recipient complained (marked as spam)",
    "campaign.finished": "A campaign finished sending",
    "rights_request.received": "A rights request was received",
    "rights_request.near_due": "A rights request is nearly due",
    "journey.entered": "A contact entered a journey",
    "journey.exited": "A contact left a journey before its end",
    "journey.converted": "A contact reached a journey's goal",
    "journey.step": "A journey's webhook step ran for a contact",
}


class ApiToken(models.Model):
    """A bearer token acting for one operator, limited to its scopes and the operator's role.

    Only the SHA-256 of the token is kept.  A slow password hash is not needed: the token is 32
    random bytes (256 bits), so nobody can guess it from its hash however fast they hash, and a
    fast hash lets every API request find its token with one index look-up.
    """

    name = models.CharField(max_length=100, help_text="What it is for, e.g. 'website sign-ups'.")
    operator = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="api_tokens"
    )
    prefix = models.CharField(max_length=12, help_text="The token's first characters, to tell.")
    token_hash = models.CharField(max_length=64, unique=True)
    scopes = models.JSONField(default=list)
    created_at = models.DateTimeField(default=timezone.now)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, related_name="+"
    )
    last_used_at = models.DateTimeField(null=True, blank=True)
    revoked_at = models.DateTimeField(null=True, blank=True)
    expires_at = models.DateTimeField(
        null=True,
        blank=True,
        help_text="After this it answers 401; blank: never (tokens made before expiry existed, "
        "or made on purpose without one).",
    )

    class Meta:
        ordering = ["-created_at", "-pk"]

    def __str__(self) -> str:
        return f"API token #{self.pk} ({self.prefix}…)"

    @property
    def active(self) -> bool:
        return self.revoked_at is None and not self.expired

    @property
    def expired(self) -> bool:
        return self.expires_at is not None and self.expires_at <= timezone.now()


class WebhookEndpoint(models.Model):
    """Where events are posted, signed with ``secret`` (Standard Webhooks, ``whsec_…``)."""

    url = models.URLField(max_length=500)
    description = models.CharField(max_length=200, blank=True)
    events = models.JSONField(default=list)
    fields = models.JSONField(
        default=list, blank=True, help_text="Personal fields of the contact the payload may carry."
    )
    # Kept as given to the receiver: signing needs the secret itself, not a hash of it.
    secret = models.CharField(max_length=100)
    is_active = models.BooleanField(default=True)
    disabled_reason = models.CharField(max_length=300, blank=True)
    consecutive_failures = models.PositiveIntegerField(default=0)
    created_at = models.DateTimeField(default=timezone.now)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, related_name="+"
    )

    class Meta:
        ordering = ["-created_at", "-pk"]

    def __str__(self) -> str:
        return f"Webhook endpoint #{self.pk}"


class WebhookDelivery(models.Model):
    """One event for one endpoint: the queue row and its log.  ``data`` holds internal ids only;
    the personal fields an endpoint was granted are read when the message is sent."""

    class Status(models.TextChoices):
        PENDING = "pending", "Pending"
        SENDING = "sending", "Sending"
        SUCCEEDED = "succeeded", "Delivered"
        FAILED = "failed", "Failed"

    endpoint = models.ForeignKey(
        WebhookEndpoint, on_delete=models.CASCADE, related_name="deliveries"
    )
    msg_id = models.CharField(max_length=40, unique=True)
    event = models.CharField(max_length=40)
    data = models.JSONField(default=dict)
    status = models.CharField(max_length=10, choices=Status.choices, default=Status.PENDING)
    attempts = models.PositiveSmallIntegerField(default=0)
    next_attempt_at = models.DateTimeField(default=timezone.now)
    leased_until = models.DateTimeField(null=True, blank=True)
    last_status_code = models.PositiveSmallIntegerField(null=True, blank=True)
    last_duration_ms = models.PositiveIntegerField(null=True, blank=True)
    last_error = models.CharField(max_length=200, blank=True, help_text="Never personal data.")
    created_at = models.DateTimeField(default=timezone.now)
    delivered_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-pk"]
        indexes = [
            models.Index(
                fields=["next_attempt_at"],
                condition=models.Q(status="pending"),
                name="webhook_due",
            ),
        ]

    def __str__(self) -> str:
        return f"Webhook delivery #{self.pk} ({self.event}, {self.status})"


class IdempotencyKey(models.Model):
    """An ``Idempotency-Key`` a token sent with ``POST /api/tx``, and the first answer to it.

    While ``status_code`` is null the request is still being processed (a concurrent retry gets a
    409).  Kept 24 hours (``idempotency.KEPT``, pruned hourly).  Holds no personal data: the key
    is the client's own, the request is kept only as a keyed hash (``fingerprint``, to tell a
    different body), and the answer holds the message's id and status, never its content.
    """

    token = models.ForeignKey(ApiToken, on_delete=models.CASCADE, related_name="+")
    key = models.CharField(max_length=255)
    fingerprint = models.CharField(max_length=64)
    created_at = models.DateTimeField(default=timezone.now, db_index=True)
    status_code = models.PositiveSmallIntegerField(null=True, blank=True)
    response = models.JSONField(null=True, blank=True)
    message = models.ForeignKey(
        "campaigns.OutgoingMessage",
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="+",
    )

    class Meta:
        constraints = [
            # Not a read-then-write: two requests racing with one key cannot both insert.
            models.UniqueConstraint(fields=["token", "key"], name="idempotency_key_per_token"),
        ]

    def __str__(self) -> str:
        return f"Idempotency key #{self.pk}"
