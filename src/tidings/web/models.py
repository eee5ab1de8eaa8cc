"""Bookkeeping of the background worker."""

from django.db import models


class ScheduledJob(models.Model):
    """When a periodic job next runs.  Workers claim a run with one conditional UPDATE."""

    name = models.CharField(max_length=100, unique=True)
    next_run_at = models.DateTimeField()
    last_run_at = models.DateTimeField(null=True, blank=True)

    def __str__(self) -> str:
        return self.name
