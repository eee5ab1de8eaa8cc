"""Data-subject rights requests (the audit log is ``lib.models.AuditEntry``)."""

from __future__ import annotations

from django.conf import settings
from django.db import models
from django.utils import timezone


class RightsRequest(models.Model):
    """A data-subject request (access, rectification, erasure, objection to marketing).

    The address is kept in clear only while the request is open (the verification link, an
    extension notice and the receipt go to it); ``email_hmac`` (the suppression list's keyed
    hash) is what stays to say whose request it was.  ``contact`` is the person we hold under
    that address when there is one; it is never shown to the requester, who sees the same pages
    whether or not we know them.  States change only through ``rights/actions.py``.
    """

    class Kind(models.TextChoices):
        ACCESS = "access", "Access: a copy of my data"
        RECTIFY = "rectify", "Rectification: correct my data"
        ERASE = "erase", "Erasure: delete my data"
        OBJECT = "object", "Objection: stop all marketing"

    class State(models.TextChoices):
        RECEIVED = "received", "Received (identity not verified)"
        VERIFIED = "verified", "Verified"
        IN_PROGRESS = "in_progress", "In progress"
        COMPLETED = "completed", "Completed"
        REFUSED = "refused", "Refused"

    OPEN_STATES = (State.RECEIVED, State.VERIFIED, State.IN_PROGRESS)

    kind = models.CharField(max_length=10, choices=Kind.choices)
    state = models.CharField(max_length=12, choices=State.choices, default=State.RECEIVED)
    received_at = models.DateTimeField(default=timezone.now, db_index=True)
    due_on = models.DateField(help_text="One month from receipt.")
    extended_to = models.DateField(null=True, blank=True)
    extension_reason = models.TextField(blank=True)
    contact = models.ForeignKey(
        "audience.Contact",
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="rights_requests",
    )
    email_hmac = models.CharField(max_length=64, db_index=True)
    email = models.EmailField(
        max_length=254, blank=True, help_text="Kept only until the request is closed."
    )
    details = models.TextField(
        blank=True, help_text="What the person asked to correct; cleared when closed."
    )
    channel = models.CharField(
        max_length=20, default="web", help_text="web, or how an operator received it."
    )
    verified_at = models.DateTimeField(null=True, blank=True)
    verified_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )
    closed_at = models.DateTimeField(null=True, blank=True)
    refusal_reason = models.TextField(blank=True)
    # What was done: counts per source, fields changed (names), records kept and until when.
    outcome = models.JSONField(default=dict, blank=True)
    reminded_for = models.DateField(
        null=True, blank=True, help_text="The due date a near-due reminder was sent for."
    )

    class Meta:
        ordering = ["due_on", "pk"]
        indexes = [models.Index(fields=["state", "due_on"])]

    def __str__(self) -> str:
        return f"Rights request #{self.pk} ({self.kind}, {self.state})"

    @property
    def due(self):
        """The date the answer is due: the extended date when there is one."""
        return self.extended_to or self.due_on

    @property
    def is_open(self) -> bool:
        return self.state in self.OPEN_STATES
