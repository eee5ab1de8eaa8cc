"""Counting attempts in a fixed window of Django's cache (see ``public_views.within_limit`` for
why not a rate-limiting library)."""

from __future__ import annotations

import time

from django.conf import settings
from django.core.cache import cache


def count_attempt(scope: str, who: str, setting: str, default: tuple[int, int]) -> bool:
    """Count one attempt by ``who`` (no personal data: an id or a hash) at ``scope``; False once
    there were more than the (count, seconds) that ``settings.<setting>`` allows."""
    count, window = getattr(settings, setting, default)
    key = f"tidings:limit:{scope}:{int(time.time() // window)}:{who}"
    cache.add(key, 0, timeout=window)
    try:
        return cache.incr(key) <= count
    except ValueError:  # expired between add and incr
        cache.set(key, 1, timeout=window)
        return True
