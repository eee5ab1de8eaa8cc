"""The shared library's tables: the audit log every app writes, and figures kept for pages that
must not count on every view."""

from __future__ import annotations

from typing import Any

from django.conf import settings
from django.db import models
from django.db.models.fields.json import KT
from django.utils import timezone


class Snapshot(models.Model):
    """Figures counted at ``taken_at`` and kept for pages that must not count on every view
    (``lib/snapshots.py``): anonymous aggregates only, never personal data."""

    key = models.CharField(max_length=60, unique=True)
    taken_at = models.DateTimeField()
    data = models.JSONField()

    def __str__(self) -> str:
        return f"{self.key} at {self.taken_at:%Y-%m-%d %H:%M}"


class AppendOnlyQuerySet(models.QuerySet[Any]):
    """For ledgers: rows are only ever inserted (erasure uses its own, audited path)."""

    def update(self, **kwargs: Any) -> int:
        raise TypeError(f"{self.model.__name__} rows are append-only: they are never updated")

    def delete(self) -> tuple[int, dict[str, int]]:
        raise TypeError(f"{self.model.__name__} rows are append-only: they are never deleted")


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
        # The table keeps the name it had when the model was rights' (lib migration 0002).
        db_table = "rights_auditentry"
        ordering = ["-at", "-pk"]
        verbose_name_plural = "audit entries"
        indexes = [
            # Erasure finds a person's entries by their object, ``details.contact`` and
            # ``details.delivery`` (rights/personal_data.py), thousands of people at a time.
            models.Index(fields=["object_type", "object_id"], name="audit_object"),
            models.Index(KT("details__contact"), name="audit_details_contact"),
            models.Index(KT("details__delivery"), name="audit_details_delivery"),
        ]

    def __str__(self) -> str:
        return f"AuditEntry #{self.pk} {self.action}"

    def save(self, *args: Any, **kwargs: Any) -> None:
        if self.pk is not None:
            raise TypeError("audit entries are append-only: they are never updated")
        kwargs["force_insert"] = True
        super().save(*args, **kwargs)

    def delete(self, *args: Any, **kwargs: Any) -> tuple[int, dict[str, int]]:
        raise TypeError("audit entries are append-only: they are never deleted")
