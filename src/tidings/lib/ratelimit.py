"""The one rate limiter: attempts counted in a fixed window of Django's cache.

settings.CACHES decides where the counts live: local memory for one process, Redis (with
TIDINGS_REDIS_URL) for several.  Not django-ratelimit: its last release (4.1, 2023) declares no
Django version beyond the 4.x series, and its system check makes LocMemCache (our default cache)
and Django's own RedisCache an error or a warning.  This is the dozen lines we need.

Used by the public forms (sign-up, preference links, contact form, booking, rights requests:
``within_limit``, keyed by a hash of the visitor's address), by the confirmation and
verification emails (``count_attempt``, keyed by a contact id or an address hash), and by the
API (``hit``, keyed by the token's hash).  A key never holds personal data.
"""

from __future__ import annotations

import hashlib
import ipaddress
import math
import time
from dataclasses import dataclass

from django.conf import settings
from django.core.cache import cache
from django.http import HttpRequest, HttpResponse
from django.shortcuts import render

from .client_ip import client_ip

Limit = tuple[int, int]  # (attempts, per seconds)


@dataclass(frozen=True)
class Verdict:
    allowed: bool
    retry_after: int  # whole seconds until the current window ends (at least 1)


def hit(scope: str, who: str, limit: Limit) -> Verdict:
    """Count one attempt by ``who`` (an id or a hash, never personal data) at ``scope``."""
    count, window = limit
    now = time.time()
    slot = int(now // window)
    key = f"tidings:limit:{scope}:{slot}:{who}"
    cache.add(key, 0, timeout=window + 1)
    try:
        hits = cache.incr(key)
    except ValueError:  # expired between add and incr
        cache.set(key, 1, timeout=window + 1)
        hits = 1
    return Verdict(hits <= count, max(1, math.ceil((slot + 1) * window - now)))


def setting_limit(name: str, default: Limit) -> Limit:
    """The (attempts, seconds) that ``settings.<name>`` allows, ``default`` when unset."""
    count, seconds = getattr(settings, name, default)
    return int(count), int(seconds)


def count_attempt(scope: str, who: str, setting: str, default: Limit) -> bool:
    """Count one attempt; False once there were more than ``settings.<setting>`` allows."""
    return hit(scope, who, setting_limit(setting, default)).allowed


def visitor_network(address: str | None) -> str:
    """What one visitor is, for counting: an IPv4 address, or the /64 network of an IPv6 one.

    One IPv6 customer is given a whole /64 (2^64 addresses; RFC 6177): counted by the address,
    each visitor could take a fresh one for every attempt and never reach a limit."""
    try:
        ip = ipaddress.ip_address((address or "").strip())
    except ValueError:
        return address or "unknown"
    if isinstance(ip, ipaddress.IPv6Address):
        if ip.ipv4_mapped is not None:
            return str(ip.ipv4_mapped)
        # The network's first address: still an address (axes stores it as one).
        return str(ipaddress.IPv6Network((ip, 64), strict=False).network_address)
    return str(ip)


def lockout_address(request: HttpRequest) -> str | None:
    """The address django-axes counts failed sign-ins by (``AXES_CLIENT_IP_CALLABLE``): the
    visitor as the rate limits see them, behind a proxy too.  Without it axes read REMOTE_ADDR,
    the proxy's own address, for everyone.  None when there is no address (axes stores it in an
    address column: PostgreSQL refuses anything else)."""
    address = client_ip(request)
    if address is None:
        return None
    try:
        ipaddress.ip_address(address.strip())
    except ValueError:
        return None
    return visitor_network(address)


def visitor(request: HttpRequest) -> str:
    """The key for a visitor (``visitor_network``): a hash, so the cache keeps no personal data."""
    return hashlib.sha256(visitor_network(client_ip(request)).encode()).hexdigest()[:32]


def within_limit(request: HttpRequest, scope: str, limit: Limit) -> bool:
    """Count one attempt from this visitor; False once there were more than allowed."""
    return hit(scope, visitor(request), limit).allowed


def too_many(request: HttpRequest, limit: Limit) -> HttpResponse:
    """The public 429 page: how many minutes to wait, and Retry-After."""
    minutes = max(1, limit[1] // 60)
    response = render(request, "audience/public/too_many.html", {"minutes": minutes}, status=429)
    response["Retry-After"] = str(limit[1])
    return response
