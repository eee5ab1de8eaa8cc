"""Data-subject rights and the audit log."""

from __future__ import annotations

from django.conf import settings
from django.db import models
from django.utils import timezone

from tidings.audience.models import AppendOnlyQuerySet


class AuditEntry(models.Model):
    """One privacy-relevant action.  Append-only; holds internal ids, never personal data."""

    at = models.DateTimeField(default=timezone.now, db_index=True)
    actor = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )
    actor_label = models.CharField(
        max_length=100, blank=True, help_text="'system', 'worker', 'api:<token id>', 'cli'..."
    )
    action = models.CharField(max_length=60, db_index=True)  # "suppression.added"
    object_type = models.CharField(max_length=60, blank=True)
    object_id = models.CharField(max_length=64, blank=True)
    details = models.JSONField(default=dict, blank=True)

    objects = AppendOnlyQuerySet.as_manager()

    class Meta:
        ordering = ["-at", "-pk"]
        verbose_name_plural = "audit entries"

    def __str__(self) -> str:
        return f"AuditEntry #{self.pk} {self.action}"

    def save(self, *args, **kwargs):
        if self.pk is not None:
            raise TypeError("audit entries are append-only: they are never updated")
        kwargs["force_insert"] = True
        super().save(*args, **kwargs)

    def delete(self, *args, **kwargs):
        raise TypeError("audit entries are append-only: they are never deleted")
