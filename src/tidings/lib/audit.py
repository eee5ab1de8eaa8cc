"""Writing the audit log.  Callers pass ids and counts only: never names or addresses."""

from __future__ import annotations

from typing import Any

from django.db import models

from .models import AuditEntry


def audit(
    action: str,
    *,
    actor: Any = None,
    actor_label: str = "",
    obj: models.Model | None = None,
    **details: Any,
) -> AuditEntry:
    """One audit entry.  ``actor`` is an operator (a user), or a label for who acted without an
    account (``"cli"`` for the command line); ``actor_label`` overrides either."""
    user = actor if getattr(actor, "is_authenticated", False) else None
    named = actor if isinstance(actor, str) else ""
    return AuditEntry.objects.create(
        action=action,
        actor=user,
        actor_label=actor_label or named or ("operator" if user else "system"),
        object_type=obj._meta.label_lower if obj is not None else "",
        object_id=str(obj.pk) if obj is not None else "",
        details=details,
    )
