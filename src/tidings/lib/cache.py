"""Django's Redis cache, kept working while Redis cannot be reached.

With ``TIDINGS_REDIS_URL`` the cache holds what several web processes share: the rate limits'
counts (``lib/ratelimit.py``: the public forms, the cookie banner, the API), the computed
``/metrics`` text and settled report counts.  Django's own ``RedisCache`` raises on every call
while Redis is down (a restart, a full disk, a network cut), so every public form and every API
call answered 500 with a traceback.  This backend answers from a process-local memory cache
instead until Redis is back: limits then count per process, as they do without Redis (up to that
many times looser; the README says so), and one warning a minute says why.

Hand-written rather than django-redis' ``IGNORE_EXCEPTIONS``: that is a second Redis cache
library with its own settings for one flag, and it answers "nothing stored" on every call, which
would turn every rate limit off instead of counting locally.
"""

from __future__ import annotations

import logging
import time
from typing import Any

from django.core.cache.backends.locmem import LocMemCache
from django.core.cache.backends.redis import RedisCache
from redis import exceptions as redis_errors

log = logging.getLogger(__name__)

#: How long a request may wait for Redis before the local cache answers (seconds).
CONNECT_TIMEOUT = 1
READ_TIMEOUT = 2
LOG_EVERY_SECONDS = 60

# Redis cannot serve us: down, slow, refusing our password (ConnectionError's subclasses), not
# Redis at all (another service on that port answers: InvalidResponse), out of memory, a replica
# that only reads after a fail-over, an ACL without our commands, or refusing writes after a
# failed save to a full disk (MISCONF, a plain ResponseError).
_UNREACHABLE = (
    redis_errors.ConnectionError,
    redis_errors.TimeoutError,
    redis_errors.InvalidResponse,
    redis_errors.OutOfMemoryError,
    redis_errors.ReadOnlyError,
    redis_errors.NoPermissionError,
)


def _cannot_serve(exc: Exception) -> bool:
    return isinstance(exc, _UNREACHABLE) or (
        isinstance(exc, redis_errors.ResponseError) and str(exc).startswith("MISCONF")
    )


class RedisCacheWithFallback(RedisCache):
    def __init__(self, server: str, params: dict[str, Any]) -> None:
        params = {**params}
        options = {
            "socket_connect_timeout": CONNECT_TIMEOUT,
            "socket_timeout": READ_TIMEOUT,
            **params.get("OPTIONS", {}),
        }
        params["OPTIONS"] = options
        super().__init__(server, params)
        local = {key: params[key] for key in ("TIMEOUT",) if key in params}
        self._local = LocMemCache("tidings-redis-fallback", local)
        self._logged_at = 0.0

    def _unreachable(self, operation: str) -> None:
        now = time.monotonic()
        if not self._logged_at or now - self._logged_at >= LOG_EVERY_SECONDS:
            self._logged_at = now
            log.warning(
                "cache: Redis is unreachable (%s); this process counts rate limits and caches "
                "in its own memory until it is back",
                operation,
            )


def _with_fallback(name: str) -> Any:
    redis_method = getattr(RedisCache, name)

    def method(self: RedisCacheWithFallback, *args: Any, **kwargs: Any) -> Any:
        try:
            return redis_method(self, *args, **kwargs)
        except redis_errors.RedisError as exc:
            if not _cannot_serve(exc):
                raise
            self._unreachable(name)
            return getattr(self._local, name)(*args, **kwargs)

    method.__name__ = name
    method.__doc__ = redis_method.__doc__
    return method


for _name in (
    "add",
    "get",
    "set",
    "touch",
    "delete",
    "get_many",
    "has_key",
    "incr",
    "set_many",
    "delete_many",
    "clear",
):
    setattr(RedisCacheWithFallback, _name, _with_fallback(_name))
