"""The tracking endpoints' fast path, in front of Django (``tidings.wsgi`` wraps the app in it).

A pixel or a click with a valid token is answered here, before Django's middleware: neither
needs a session, a user, CSRF, messages or a template, and skipping them (with their dozen
header and settings look-ups) roughly triples what one core can answer (``bench/tracking.py``).
The decisions are the views' own functions (``tracking.read_token``, ``is_machine_request``,
``submit_event``), so both ways behave the same.

Everything else goes on to Django untouched: another path, a token that does not verify (Django's
views then give the 404 page), a click whose campaign's links this process has not cached yet
(the view loads them from the database; later clicks come here), and any method but GET/HEAD.
Host is not checked here as Django does (ALLOWED_HOSTS): these answers do not depend on it.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable

from django.utils.encoding import iri_to_uri

from .tracking import OPEN, cached_link_url, is_machine_request, read_token, submit_event
from .tracking_views import NO_CACHE, PIXEL_GIF

_TOKEN_PATH = len("/t/o/") + 35
_COMMON = [
    *NO_CACHE.items(),
    ("X-Content-Type-Options", "nosniff"),
    ("Referrer-Policy", "same-origin"),
]
_PIXEL = [
    ("Content-Type", "image/gif"),
    ("Content-Length", str(len(PIXEL_GIF))),
    *_COMMON,
]


def with_tracking_fast_path(app: Callable) -> Callable:
    def application(environ: dict, start_response: Callable) -> Iterable[bytes]:
        path = environ.get("PATH_INFO", "")
        method = environ.get("REQUEST_METHOD", "")
        if (
            len(path) == _TOKEN_PATH
            and path.startswith("/t/")
            and path[4] == "/"
            and method in ("GET", "HEAD")
        ):
            kind = path[3]
            parsed = read_token(path[5:])
            if parsed is not None:
                delivery_id, campaign_id, index = parsed
                agent = environ.get("HTTP_USER_AGENT", "")
                if kind == "o" and index == OPEN:
                    submit_event(delivery_id, OPEN, machine=is_machine_request(method, agent))
                    start_response("200 OK", _PIXEL)
                    return [b""] if method == "HEAD" else [PIXEL_GIF]
                if kind == "c" and index != OPEN:
                    url = cached_link_url(campaign_id, index)
                    if url is not None:
                        submit_event(delivery_id, index, machine=is_machine_request(method, agent))
                        start_response(
                            "302 Found",
                            # ASCII, as Django's redirect writes it: a link to
                            # "https://例え.jp/パス" went out as raw UTF-8 bytes, which a
                            # strict server refuses and a mail scanner may mangle.
                            [("Location", iri_to_uri(url)), ("Content-Length", "0"), *_COMMON],
                        )
                        return [b""]
        return app(environ, start_response)

    return application
