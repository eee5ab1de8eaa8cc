"""``/healthz``, ``/readyz`` and ``/metrics``, answered in front of Django (``tidings.wsgi``).

* ``GET /healthz``: 200 ``ok`` while the process answers.  No database, no authentication.
* ``GET /readyz``: 200 when the database (and Redis, when ``TIDINGS_REDIS_URL`` is set) answers,
  else 503; the body names each dependency and whether it is ``ok`` or ``unreachable``, nothing
  more (no error text: it could describe the network).
* ``GET /metrics``: Prometheus' text format (``ops.metrics``), only with
  ``Authorization: Bearer <TIDINGS_METRICS_TOKEN>``: 401 without it or with a wrong one; 404 when
  no token is configured (the endpoint is off); 503 while the database is unreachable.  With
  Redis unreachable it still answers (the ingest figures are then this process's own).

They run before Django's middleware, like the tracking fast path: a load balancer's probe carries
whatever Host header it likes (so ALLOWED_HOSTS does not apply), needs no session or CSRF, and
must stay cheap.  None of them reads or returns personal data.
"""

from __future__ import annotations

import hmac
import json
import logging
from collections.abc import Callable, Iterable

from django.conf import settings
from django.core import signals
from django.db import connection

logger = logging.getLogger(__name__)

_NO_STORE = [("Cache-Control", "no-store"), ("X-Content-Type-Options", "nosniff")]
PATHS = frozenset({"/healthz", "/readyz", "/metrics"})


def healthz() -> tuple[str, list[tuple[str, str]], bytes]:
    return "200 OK", [("Content-Type", "text/plain; charset=utf-8")], b"ok\n"


def readiness() -> dict[str, str]:
    """Each dependency: "ok" or "unreachable"."""
    checks: dict[str, str] = {}
    try:
        with connection.cursor() as cursor:
            cursor.execute("SELECT 1")
            cursor.fetchone()
        checks["database"] = "ok"
    except Exception:
        logger.warning("readyz: the database is unreachable")
        connection.close_if_unusable_or_obsolete()
        checks["database"] = "unreachable"
    if checks["database"] == "ok":
        # An empty database answers SELECT 1 too: a lost SQLite file (opening it makes a new,
        # empty one) or a DATABASE_URL naming the wrong database, where every page is an error.
        try:
            with connection.cursor() as cursor:
                cursor.execute("SELECT 1 FROM django_migrations LIMIT 1")
                cursor.fetchone()
        except Exception:
            logger.warning("readyz: the database has no tables (not migrated, or the wrong one)")
            connection.close_if_unusable_or_obsolete()
            checks["database"] = "not migrated"
    if getattr(settings, "TIDINGS_REDIS_URL", ""):
        import redis

        try:
            client = redis.Redis.from_url(
                settings.TIDINGS_REDIS_URL, socket_connect_timeout=2, socket_timeout=2
            )
            client.ping()
            client.close()
            checks["redis"] = "ok"
        except redis.RedisError:
            logger.warning("readyz: Redis is unreachable")
            checks["redis"] = "unreachable"
    return checks


def readyz() -> tuple[str, list[tuple[str, str]], bytes]:
    checks = readiness()
    ready = all(value == "ok" for value in checks.values())
    body = json.dumps({"status": "ready" if ready else "not ready", "checks": checks})
    status = "200 OK" if ready else "503 Service Unavailable"
    return status, [("Content-Type", "application/json")], body.encode() + b"\n"


def metrics(authorization: str) -> tuple[str, list[tuple[str, str]], bytes]:
    token = getattr(settings, "TIDINGS_METRICS_TOKEN", "")
    if not token:
        return "404 Not Found", [("Content-Type", "text/plain; charset=utf-8")], b"Not Found\n"
    scheme, _, given = authorization.partition(" ")
    if scheme.lower() != "bearer" or not hmac.compare_digest(
        given.strip().encode(), token.encode()
    ):
        return (
            "401 Unauthorized",
            [
                ("Content-Type", "text/plain; charset=utf-8"),
                ("WWW-Authenticate", 'Bearer realm="tidings metrics"'),
            ],
            b"Unauthorized: send Authorization: Bearer <TIDINGS_METRICS_TOKEN>\n",
        )
    from django.db import DatabaseError
    from prometheus_client import CONTENT_TYPE_LATEST

    from .metrics import render

    try:
        text = render()
    except DatabaseError:
        # Every figure comes from the database: none can be given.  One line, not a traceback
        # and an empty 500 (Prometheus marks the target down, `up == 0`, either way).
        logger.warning("metrics: the database is unreachable")
        connection.close_if_unusable_or_obsolete()
        return (
            "503 Service Unavailable",
            [("Content-Type", "text/plain; charset=utf-8")],
            b"Service Unavailable: the database is unreachable\n",
        )
    return "200 OK", [("Content-Type", CONTENT_TYPE_LATEST)], text


def answer(path: str, method: str, authorization: str = ""):
    """(status, headers, body) for one of ``PATHS``."""
    if method not in ("GET", "HEAD"):
        return "405 Method Not Allowed", [("Allow", "GET, HEAD")], b""
    # As Django's handler does around a request: connections past their age are closed
    # (close_old_connections listens to these signals; Django's test client unhooks it).
    signals.request_started.send(sender=__name__)
    try:
        if path == "/healthz":
            return healthz()
        if path == "/readyz":
            return readyz()
        return metrics(authorization)
    finally:
        signals.request_finished.send(sender=__name__)


def with_ops_endpoints(app: Callable) -> Callable:
    """Wrap a WSGI application: the three paths are answered here, the rest goes to ``app``."""

    def application(environ: dict, start_response: Callable) -> Iterable[bytes]:
        path = environ.get("PATH_INFO", "")
        if path not in PATHS:
            return app(environ, start_response)
        method = environ.get("REQUEST_METHOD", "")
        status, headers, body = answer(path, method, environ.get("HTTP_AUTHORIZATION", ""))
        start_response(status, [*headers, ("Content-Length", str(len(body))), *_NO_STORE])
        return [b""] if method == "HEAD" else [body]

    return application
