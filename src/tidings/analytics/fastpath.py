"""The page-view endpoint without Django's middleware stack: a WSGI wrapper around tidings.

``POST /a/collect`` is the one request of tidings that every page of the website makes.  Through
the full stack it costs ~1 ms more than its own work (nine middlewares and the URL resolver;
measured with bench/analytics.py), which would cap ingest well below the 3,000 events/s target on
two cores.  The view itself needs none of the middlewares for such a request: it is CSRF-exempt,
sets no cookie, and reads the session only to spot a signed-in operator.  So a request to that
path that carries no session cookie goes straight to the same view function; everything else,
including a request with a session cookie (it may be an operator, who must not be counted), takes
the normal path.  The host is still checked against ALLOWED_HOSTS.  request_started and
request_finished (which only manage database connections) fire only when the view used the
database.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable

from django.conf import settings
from django.core.exceptions import DisallowedHost
from django.core.handlers.wsgi import WSGIHandler, WSGIRequest
from django.db import connections
from django.http import HttpResponse

PATH = "/a/collect"


def wrap(application: Callable) -> Callable:
    from .public_views import collect

    session_cookie = f"{settings.SESSION_COOKIE_NAME}="

    def tidings_with_fast_page_views(environ: dict, start_response: Callable) -> Iterable[bytes]:
        if (
            environ.get("PATH_INFO") != PATH
            or environ.get("REQUEST_METHOD") != "POST"
            or session_cookie in environ.get("HTTP_COOKIE", "")
        ):
            return application(environ, start_response)
        request = WSGIRequest(environ)
        try:
            request.get_host()
        except DisallowedHost:
            response = HttpResponse(status=400)
        else:
            response = collect(request)
        start_response(f"{response.status_code} {response.reason_phrase}", list(response.items()))
        if connections["default"].connection is not None:
            # The view touched the database (the day's salt, once a day per process): its
            # close() sends request_finished, which closes or keeps the connection as the normal
            # path would.  Otherwise there is nothing to clean up, and the signal would cost a
            # sixth of the request.
            response._handler_class = WSGIHandler
            return response
        return [response.content]

    return tidings_with_fast_page_views
