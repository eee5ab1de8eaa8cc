"""The page-view endpoint without Django's request machinery: a WSGI wrapper around tidings.

``POST /a/collect`` is the one request of tidings that every page of the website makes.  Through
the full stack (nine middlewares, the URL resolver, request and response objects) it answered at
about a third of the rate of a static file, far below the 3,000 events/s target on two cores
(bench/analytics.py).  The view needs none of that for such a request: it is CSRF-exempt, sets no
cookie, and reads the session only to spot a signed-in operator.  So a request to that path that
carries no session cookie is answered here from the WSGI environ, with the same parsing
(``public_views.parse_collect``) and the same decision (``ingest.count_from_meta``) as the view;
everything else, including a request with a session cookie (it may be an operator, who must not
be counted), takes the normal path.  The Host header is still checked against ALLOWED_HOSTS.
request_finished (which only manages database connections) is sent when the request used the
database: the day's salt, once a day per process.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable

from django.conf import settings
from django.core import signals
from django.core.handlers.wsgi import WSGIHandler
from django.db import connections
from django.http import parse_cookie
from django.http.request import split_domain_port, validate_host

PATH = "/a/collect"
NO_CONTENT = [
    ("Cache-Control", "max-age=0, no-store"),
    ("Access-Control-Allow-Origin", "*"),
    ("X-Content-Type-Options", "nosniff"),
]


def _host_allowed(environ: dict) -> bool:
    host = environ.get("HTTP_HOST") or f"{environ.get('SERVER_NAME')}:{environ.get('SERVER_PORT')}"
    domain, _ = split_domain_port(host)
    return bool(domain) and validate_host(domain, settings.ALLOWED_HOSTS)


def _body(environ: dict, limit: int) -> bytes:
    try:
        length = int(environ.get("CONTENT_LENGTH") or 0)
    except ValueError:
        length = 0
    return environ["wsgi.input"].read(min(max(length, 0), limit + 1))


def wrap(application: Callable) -> Callable:
    from .ingest import count_from_meta
    from .public_views import MAX_BODY, _problem, parse_collect

    session_cookie = f"{settings.SESSION_COOKIE_NAME}="

    def tidings_with_fast_page_views(environ: dict, start_response: Callable) -> Iterable[bytes]:
        if (
            environ.get("PATH_INFO") != PATH
            or environ.get("REQUEST_METHOD") != "POST"
            or session_cookie in environ.get("HTTP_COOKIE", "")
        ):
            return application(environ, start_response)
        if not _host_allowed(environ):
            start_response("400 Bad Request", [("Content-Type", "text/plain")])
            return [b"Bad Request"]
        try:
            url, referrer, consent_value = parse_collect(_body(environ, MAX_BODY))
        except ValueError as exc:
            problem = _problem(400, str(exc))
            start_response("400 Bad Request", list(problem.items()))
            return [problem.content]
        count_from_meta(
            environ,
            parse_cookie(environ.get("HTTP_COOKIE", "")),
            url=url,
            referrer=referrer,
            consent_value=consent_value,
            operator=False,  # no session cookie: not signed in
        )
        start_response("204 No Content", NO_CONTENT)
        if connections["default"].connection is not None:
            signals.request_finished.send(sender=WSGIHandler)
        return []

    return tidings_with_fast_page_views
