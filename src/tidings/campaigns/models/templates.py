"""Layouts (header and footer around every campaign) and reusable campaign bodies."""

from __future__ import annotations

from django.conf import settings
from django.db import models
from django.utils import timezone


class Layout(models.Model):
    """The frame of every message: must carry the unsubscribe and preference links and the
    controller's postal address.  ``{{ content }}`` marks where the campaign body goes."""

    name = models.CharField(max_length=200, unique=True)
    html = models.TextField(help_text="HTML with {{ content }} where the body goes.")
    text = models.TextField(blank=True, help_text="Plain-text frame; blank derives it from HTML.")
    created_at = models.DateTimeField(default=timezone.now)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["name"]

    def __str__(self) -> str:
        return self.name


class Template(models.Model):
    """A reusable campaign body: campaigns start from a copy of one."""

    class Format(models.TextChoices):
        BLOCKS = "blocks", "Blocks (visual editor)"
        MARKDOWN = "markdown", "Markdown"
        HTML = "html", "HTML"

    name = models.CharField(max_length=200, unique=True)
    layout = models.ForeignKey(Layout, on_delete=models.PROTECT, related_name="templates")
    format = models.CharField(max_length=10, choices=Format.choices, default=Format.MARKDOWN)
    subject = models.CharField(max_length=300, blank=True)
    body = models.TextField()
    text_body = models.TextField(blank=True, help_text="Blank: generated from the body.")
    created_at = models.DateTimeField(default=timezone.now)
    updated_at = models.DateTimeField(auto_now=True)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )

    class Meta:
        ordering = ["name"]

    def __str__(self) -> str:
        return self.name
