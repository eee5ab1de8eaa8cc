"""Figures too slow to count on every view, kept in a ``Snapshot`` row and retaken by the worker.

A page asks ``read(key, compute, max_age=...)``: the kept figures when they are younger than
``max_age``; otherwise (none yet, or the worker is not running) it computes them now, keeps them
for the next view, and says so (``live``).  The worker's periodic job calls ``take`` so that, while
it runs, no view pays for the count.  Recounting from the tables rather than keeping counters in
every action means a snapshot is at worst late, never wrong.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from django.utils import timezone

from .models import Snapshot


@dataclass(frozen=True)
class Figures:
    data: Any  # JSON: what ``compute`` returned
    taken_at: datetime
    live: bool  # computed for this view


def take(key: str, compute: Callable[[], Any]) -> Figures:
    """Compute now and keep (``compute`` returns JSON-serialisable data)."""
    now = timezone.now()
    data = compute()
    Snapshot.objects.update_or_create(key=key, defaults={"taken_at": now, "data": data})
    return Figures(data, now, live=True)


def read(key: str, compute: Callable[[], Any], *, max_age: timedelta) -> Figures:
    """The kept figures if younger than ``max_age``, else ``take`` them now."""
    row = Snapshot.objects.filter(key=key).only("taken_at", "data").first()
    if row is not None and timezone.now() - row.taken_at <= max_age:
        return Figures(row.data, row.taken_at, live=False)
    return take(key, compute)


def forget(key: str) -> None:
    """Drop the kept figures (what they count has just changed): the next view counts."""
    Snapshot.objects.filter(key=key).delete()
