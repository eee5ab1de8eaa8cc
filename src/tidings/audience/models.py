"""People, lists, subscriptions, the consent ledger and the suppression list."""

from __future__ import annotations

from django.conf import settings
from django.db import models
from django.db.models.functions import Lower
from django.utils import timezone


class Contact(models.Model):
    """One person.  Which of these fields may hold data is decided by the policy's categories."""

    # Columns for the fields the product knows; anything else the policy allows goes in attributes.
    COLUMN_FIELDS = ("email", "name", "phone", "company", "job_title", "work_address")

    email = models.EmailField(max_length=254)
    name = models.CharField(max_length=200, blank=True)
    phone = models.CharField(max_length=50, blank=True)
    company = models.CharField(max_length=200, blank=True)
    job_title = models.CharField(max_length=200, blank=True)
    work_address = models.TextField(blank=True)
    attributes = models.JSONField(default=dict, blank=True)
    created_at = models.DateTimeField(default=timezone.now)
    updated_at = models.DateTimeField(auto_now=True)
    last_contact_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(Lower("email"), name="contact_email_ci_unique"),
        ]
        indexes = [
            models.Index(fields=["created_at"]),
            models.Index(Lower("name"), name="contact_name_lower"),
        ]

    def __str__(self) -> str:
        return f"Contact #{self.pk}"  # never the address: str() ends up in logs

    @property
    def display_name(self) -> str:
        return self.name or self.email


class MailingList(models.Model):
    """A list people subscribe to.  Called "List" in DESIGN.md; renamed to keep `list` usable."""

    name = models.CharField(max_length=200, unique=True)
    topic = models.CharField(max_length=100, help_text="One of the policy's marketing topics.")
    description = models.TextField(blank=True)
    is_public = models.BooleanField(
        default=True, help_text="Public lists are offered in sign-up forms and preference centres."
    )
    created_at = models.DateTimeField(default=timezone.now)
    closed_at = models.DateTimeField(
        null=True, blank=True, help_text="When the list was closed: subscriptions then expire."
    )

    class Meta:
        ordering = ["name"]
        verbose_name = "list"

    def __str__(self) -> str:
        return self.name


class Subscription(models.Model):
    class Status(models.TextChoices):
        PENDING = "pending", "Pending confirmation"
        CONFIRMED = "confirmed", "Confirmed"
        UNSUBSCRIBED = "unsubscribed", "Unsubscribed"
        BOUNCED = "bounced", "Bounced"
        COMPLAINED = "complained", "Complained"

    contact = models.ForeignKey(Contact, on_delete=models.CASCADE, related_name="subscriptions")
    mailing_list = models.ForeignKey(
        MailingList, on_delete=models.CASCADE, related_name="subscriptions"
    )
    status = models.CharField(max_length=20, choices=Status.choices, default=Status.PENDING)
    created_at = models.DateTimeField(default=timezone.now)
    confirmed_at = models.DateTimeField(null=True, blank=True)
    unsubscribed_at = models.DateTimeField(null=True, blank=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["contact", "mailing_list"], name="one_subscription"),
        ]
        indexes = [models.Index(fields=["mailing_list", "status"])]

    def __str__(self) -> str:
        return f"Subscription #{self.pk} ({self.status})"


class ConsentWording(models.Model):
    """The exact words a person saw when they gave or withdrew consent, stored once."""

    sha256 = models.CharField(max_length=64, unique=True)
    text = models.TextField()
    created_at = models.DateTimeField(default=timezone.now)

    def __str__(self) -> str:
        return f"Wording {self.sha256[:12]}"


class AppendOnlyQuerySet(models.QuerySet):
    """For ledgers: rows are only ever inserted (erasure uses its own, audited path)."""

    def update(self, **kwargs):
        raise TypeError(f"{self.model.__name__} rows are append-only: they are never updated")

    def delete(self):
        raise TypeError(f"{self.model.__name__} rows are append-only: they are never deleted")


class ConsentEvent(models.Model):
    """One grant or withdrawal of consent.  Append-only: the ledger is the proof."""

    class Action(models.TextChoices):
        GRANTED = "granted", "Granted"
        WITHDRAWN = "withdrawn", "Withdrawn"

    class Source(models.TextChoices):
        FORM = "form", "Sign-up form"
        CONFIRMATION = "confirmation", "Email confirmation"
        PREFERENCES = "preferences", "Preference centre"
        UNSUBSCRIBE = "unsubscribe", "Unsubscribe link"
        IMPORT = "import", "Import"
        API = "api", "API"
        OPERATOR = "operator", "Operator"
        SYSTEM = "system", "System (bounce, complaint, erasure)"

    contact = models.ForeignKey(
        Contact, on_delete=models.PROTECT, related_name="consent_events", null=True
    )
    purpose = models.CharField(max_length=50)
    channel = models.CharField(max_length=20, blank=True)
    mailing_list = models.ForeignKey(
        MailingList, on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )
    topic = models.CharField(max_length=100, blank=True)
    action = models.CharField(max_length=10, choices=Action.choices)
    at = models.DateTimeField(default=timezone.now)
    source = models.CharField(max_length=20, choices=Source.choices)
    source_ref = models.CharField(
        max_length=200, blank=True, help_text="Form id, import id, operator id, API token id..."
    )
    wording = models.ForeignKey(ConsentWording, on_delete=models.PROTECT, null=True, blank=True)
    ip_address = models.GenericIPAddressField(null=True, blank=True)

    objects = AppendOnlyQuerySet.as_manager()

    class Meta:
        indexes = [models.Index(fields=["contact", "at"])]
        ordering = ["at", "pk"]

    def __str__(self) -> str:
        return f"ConsentEvent #{self.pk} ({self.action} {self.purpose}/{self.channel})"

    def save(self, *args, **kwargs):
        if self.pk is not None or kwargs.get("force_update") or kwargs.get("update_fields"):
            raise TypeError("consent events are append-only: they are never updated")
        kwargs["force_insert"] = True
        super().save(*args, **kwargs)

    def delete(self, *args, **kwargs):
        raise TypeError("consent events are append-only: they are never deleted")


class Suppression(models.Model):
    """An address that must never be mailed, kept only as an HMAC."""

    class Reason(models.TextChoices):
        UNSUBSCRIBED = "unsubscribed", "Unsubscribed"
        HARD_BOUNCE = "hard_bounce", "Hard bounce"
        COMPLAINT = "complaint", "Complaint"
        ERASED = "erased", "Erased on request"
        MANUAL = "manual", "Added by an operator"

    email_hmac = models.CharField(max_length=64, unique=True)
    reason = models.CharField(max_length=20, choices=Reason.choices)
    created_at = models.DateTimeField(default=timezone.now)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )

    def __str__(self) -> str:
        return f"Suppression #{self.pk} ({self.reason})"


class SuppressedDomain(models.Model):
    domain = models.CharField(max_length=253, unique=True)
    created_at = models.DateTimeField(default=timezone.now)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )

    def __str__(self) -> str:
        return self.domain
