"""The shared library's one table: figures kept for pages that must not count on every view."""

from __future__ import annotations

from django.db import models


class Snapshot(models.Model):
    """Figures counted at ``taken_at`` and kept for pages that must not count on every view
    (``lib/snapshots.py``): anonymous aggregates only, never personal data."""

    key = models.CharField(max_length=60, unique=True)
    taken_at = models.DateTimeField()
    data = models.JSONField()

    def __str__(self) -> str:
        return f"{self.key} at {self.taken_at:%Y-%m-%d %H:%M}"
