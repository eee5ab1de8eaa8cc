"""Daily-rotating salts: the only way two page views of one visitor can be related is within a day.

``visitor_hash(site, ip, user_agent)`` is SHA-256 over (today's salt, site, IP, user agent),
truncated to 64 bits: enough to count distinct visitors of a day (collisions are one in ~10^9 at
100,000 visitors a day), too short to be worth attacking.  The salt is 32 random bytes made the
first time a day needs it; ``delete_past_salts`` (run hourly by the scheduler) deletes every salt of
a day that is over, so a hash stored yesterday can never be recomputed: not from the database,
not by us.  Days are the controller's (``TIDINGS_TIME_ZONE``), like the dashboard's days: a
visitor is counted once per day as the company reads its calendar.

Each process keeps today's salt in memory (a read per page view would cost more than the rest of
the ingest); it forgets it as soon as the date changes, so a process never hashes with a salt
whose day is over.
"""

from __future__ import annotations

import hashlib
import secrets
import threading
from datetime import date, datetime

from django.db import IntegrityError, transaction
from django.utils import timezone

from .models import Salt

_lock = threading.Lock()
_current: tuple[date, bytes] | None = None


def local_day(now: datetime | None = None) -> date:
    """The date in the controller's time zone (TIDINGS_TIME_ZONE) at ``now``."""
    return timezone.localdate(now or timezone.now())


def salt_for_today(now: datetime | None = None) -> bytes:
    """Today's salt: from memory, else the database, else a new random one (first writer wins)."""
    global _current
    day = local_day(now)
    current = _current
    if current is not None and current[0] == day:
        return current[1]
    with _lock:
        row = Salt.objects.filter(day=day).first()
        if row is None:
            try:
                with transaction.atomic():
                    row = Salt.objects.create(day=day, value=secrets.token_bytes(32))
            except IntegrityError:  # another process made it first: use theirs
                row = Salt.objects.get(day=day)
        _current = (day, bytes(row.value))
        return _current[1]


def visitor_hash(site: str, ip: str, user_agent: str, now: datetime | None = None) -> str:
    digest = hashlib.sha256()
    digest.update(salt_for_today(now))
    for part in (site, ip, user_agent):
        digest.update(b"\x00")
        digest.update(part.encode("utf-8", "replace"))
    return digest.hexdigest()[:16]


def delete_past_salts(now: datetime | None = None) -> int:
    """Delete the salt of every day before today (the controller's); returns how many went."""
    global _current
    day = local_day(now)
    deleted, _ = Salt.objects.filter(day__lt=day).delete()
    with _lock:
        if _current is not None and _current[0] < day:
            _current = None
    return deleted


def forget_cached_salt() -> None:
    """Drop this process's copy (tests, and after a database restore)."""
    global _current
    with _lock:
        _current = None
