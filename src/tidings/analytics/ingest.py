"""Page views go through the shared buffered ingest (tidings.lib.ingest), like campaign tracking:
the request only parses and decides; a sink writes the rows in bulk, off the request."""

from __future__ import annotations

import logging
from datetime import datetime
from functools import cache

from django.conf import settings
from django.db import connection, transaction
from django.http import HttpRequest
from django.utils import timezone

from tidings.lib import ingest as buffer
from tidings.lib.client_ip import client_ip
from tidings.lib.ratelimit import hit, setting_limit
from tidings.policy import get_policy

from .models import PageView
from .salts import visitor_hash
from .visits import Refused, Visit, page_view_row

logger = logging.getLogger(__name__)

SINK = "analytics.page_view"
# Page views counted per visitor (the day's hash of site, IP address and browser) and window: far
# above anyone reading pages, far below a script reloading one in a loop, which would otherwise
# be counted thousands of times (TIDINGS_ANALYTICS_LIMIT, "COUNT/SECONDS").
FLOOD_LIMIT = (60, 60)


COLUMNS: list[str] = [
    f.column for f in PageView._meta.concrete_fields if f.column and not f.primary_key
]
# Names from the model's own metadata, values as parameters: nothing from a request is in it.
_INSERT = (
    f"INSERT INTO {PageView._meta.db_table} ({', '.join(COLUMNS)}) "  # noqa: S608
    f"VALUES ({', '.join(['%s'] * len(COLUMNS))})"
)


def write_page_views(rows: list[dict]) -> None:
    """The sink: the rows in one ``executemany`` (psycopg 3 pipelines it on PostgreSQL).

    Not ``bulk_create``: building a model instance per row cost ~0.3 ms, as much as the whole
    request that produced it (measured with bench/analytics.py); the rows are already clean.
    """
    adapt = connection.ops.adapt_datetimefield_value  # naive UTC on SQLite, as the ORM stores
    values = []
    for row in rows:
        row = {**row, "created": adapt(datetime.fromisoformat(row["created"]))}
        values.append([row.get(column, "") for column in COLUMNS])
    with transaction.atomic(), connection.cursor() as cursor:
        cursor.executemany(_INSERT, values)


def register_sinks() -> None:
    buffer.register_sink(SINK, write_page_views)


@cache
def _sites(configured: tuple[str, ...], website: str | None) -> frozenset[str]:
    from urllib.parse import urlsplit

    sites = {s.lower().removeprefix("www.") for s in configured}
    if not sites and website:
        sites.add((urlsplit(website).hostname or "").removeprefix("www."))
    sites.add((urlsplit(settings.TIDINGS_BASE_URL).hostname or "").removeprefix("www."))
    return frozenset(s for s in sites if s)


def counted_sites() -> frozenset[str]:
    """The host names whose pages are counted: TIDINGS_ANALYTICS_SITES, else the policy's
    website; tidings' own host always (its public pages can carry the snippet)."""
    return _sites(
        tuple(getattr(settings, "TIDINGS_ANALYTICS_SITES", ())),
        get_policy().controller.website,
    )


def _is_operator(request: HttpRequest) -> bool:
    # Only a request that carries a session cookie can be a signed-in operator: the others
    # never touch the session (no query, no cookie set).
    if settings.SESSION_COOKIE_NAME not in request.COOKIES:
        return False
    user = getattr(request, "user", None)
    return bool(user is not None and user.is_authenticated and user.is_staff)


def count_page_view(request: HttpRequest, *, url: str, referrer: str, consent_value: str) -> bool:
    """Decide, and submit the row when the view counts; True if it was submitted."""
    return count_from_meta(
        request.META,
        request.COOKIES,
        url=url,
        referrer=referrer,
        consent_value=consent_value,
        operator=_is_operator(request),
    )


def within_flood_limit(visitor: str) -> bool:
    """Count one page view of this visitor hash (no IP address in the key); False past the limit."""
    return hit("analytics", visitor, setting_limit("TIDINGS_ANALYTICS_LIMIT", FLOOD_LIMIT)).allowed


def is_prefetch(meta: dict) -> bool:
    """A request the browser makes for a page it loads ahead of the visitor (speculation rules,
    ``<link rel=prefetch|prerender>``): nobody has seen that page yet."""
    for key in ("HTTP_SEC_PURPOSE", "HTTP_PURPOSE", "HTTP_X_MOZ", "HTTP_X_PURPOSE"):
        value = meta.get(key, "").lower()
        if "prefetch" in value or "prerender" in value or "preview" in value:
            return True
    return False


class _Meta:
    """What ``client_ip`` reads of a request: its META (the WSGI environ)."""

    __slots__ = ("META",)

    def __init__(self, meta: dict):
        self.META = meta


def count_from_meta(
    meta: dict,
    cookies: dict[str, str],
    *,
    url: str,
    referrer: str,
    consent_value: str,
    operator: bool,
) -> bool:
    """``count_page_view`` from the WSGI environ and the parsed cookies (the fast path has no
    HttpRequest); ``operator``: the request came with a signed-in staff session."""
    visit = Visit(
        url=url,
        referrer=referrer,
        user_agent=meta.get("HTTP_USER_AGENT", ""),
        ip=client_ip(_Meta(meta)) or "",
        at=timezone.now(),
        cookies=cookies,
        gpc=meta.get("HTTP_SEC_GPC", "").strip() == "1",
        dnt=meta.get("HTTP_DNT", "").strip() == "1",
        operator=operator,
        consent_value=consent_value,
        prefetch=is_prefetch(meta),
    )
    try:
        row = page_view_row(visit, get_policy(), counted_sites(), visitor_hash)
        if row["visitor"] and not within_flood_limit(row["visitor"]):
            raise Refused("too many page views from one visitor")
    except Refused as refused:
        logger.debug("page view not counted: %s", refused.reason)  # the reason only, no data
        return False
    row["created"] = row["created"].isoformat()
    buffer.submit(SINK, row)
    return True
