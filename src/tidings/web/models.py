"""Bookkeeping of the background worker."""

from django.conf import settings
from django.db import models


class ScheduledJob(models.Model):
    """When a periodic job next runs.  Workers claim a run with one conditional UPDATE."""

    name = models.CharField(max_length=100, unique=True)
    next_run_at = models.DateTimeField()
    last_run_at = models.DateTimeField(null=True, blank=True)

    def __str__(self) -> str:
        return self.name


class NoticeReview(models.Model):
    """An operator read the generated privacy notice of one version of the policy (the
    getting-started checklist asks for it again when the policy changes)."""

    policy_sha256 = models.CharField(max_length=64)
    reviewed_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, related_name="+"
    )
    reviewed_at = models.DateTimeField()

    class Meta:
        indexes = [models.Index(fields=["policy_sha256"])]

    def __str__(self) -> str:
        return f"Privacy notice {self.policy_sha256[:12]} reviewed"


class Branding(models.Model):
    """How the public pages look (one row): the company's logo, colours and font.  Saved only
    when the colours meet WCAG AA contrast (``branding.py``)."""

    # The media library picture's key, not a foreign key: a logo is nobody's personal data,
    # and a deleted picture just leaves the name in text.
    logo_key = models.CharField(max_length=32, blank=True)
    background = models.CharField(max_length=7, default="#ffffff")
    text = models.CharField(max_length=7, default="#1b1f24")
    accent = models.CharField(max_length=7, default="#1f5fb8")
    font = models.CharField(max_length=20, default="system")
    updated_at = models.DateTimeField(auto_now=True)
    updated_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )

    def __str__(self) -> str:
        return "Branding"


class Snapshot(models.Model):
    """Figures counted at ``taken_at`` and kept for pages that must not count on every view
    (``web/snapshots.py``): anonymous aggregates only, never personal data."""

    key = models.CharField(max_length=60, unique=True)
    taken_at = models.DateTimeField()
    data = models.JSONField()

    def __str__(self) -> str:
        return f"{self.key} at {self.taken_at:%Y-%m-%d %H:%M}"
