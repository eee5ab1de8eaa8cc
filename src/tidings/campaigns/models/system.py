"""Emails tidings sends on its own: confirmations, welcomes, links."""

from __future__ import annotations

from django.conf import settings
from django.db import models


class SystemEmailTemplate(models.Model):
    """An operator's version of one of the emails tidings sends on its own (confirmation...).

    Without a row, the default shipped in ``campaigns.mail.DEFAULT_SYSTEM_EMAILS`` is used.  The
    bodies are Jinja templates rendered in a sandbox with a fixed set of variables.
    """

    class Key(models.TextChoices):
        CONFIRMATION = "confirmation", "Sign-up confirmation"
        WELCOME = "welcome", "Welcome"
        PREFERENCES_LINK = "preferences_link", "Link to the preference centre"
        # The CRM's (crm/emails.py registers their defaults).
        CRM_ACKNOWLEDGEMENT = "crm_acknowledgement", "Acknowledgement of an enquiry or request"
        CRM_HELD = "crm_held", "Support request held for a check"
        CRM_ATTACHMENTS = "crm_attachments", "Attachments not kept"

    key = models.CharField(max_length=30, choices=Key.choices, unique=True)
    subject = models.CharField(max_length=300)
    text_body = models.TextField()
    html_body = models.TextField(blank=True, help_text="Optional: blank sends plain text only.")
    updated_at = models.DateTimeField(auto_now=True)
    updated_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )

    class Meta:
        ordering = ["key"]

    def __str__(self) -> str:
        return self.get_key_display()
