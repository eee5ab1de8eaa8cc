from functools import wraps
from typing import Any

from django.http import HttpRequest, HttpResponseNotAllowed
from django.urls import URLPattern, path, re_path

from .api import api
from .conditional import HEAD_ONLY, conditional
from .errors import not_found, problem_response


def _problem_when_not_allowed(view: Any) -> Any:
    """django-ninja answers a method an endpoint does not take with a plain-text 405; make it a
    problem document like every other error, keeping its Allow header."""

    @wraps(view)
    def wrapper(request: HttpRequest, *args: Any, **kwargs: Any) -> Any:
        response = view(request, *args, **kwargs)
        if isinstance(response, HttpResponseNotAllowed):
            methods = set(response["Allow"].split(", "))
            if "GET" in methods:  # see conditional: HEAD wherever GET
                methods.add("HEAD")
            allowed = ", ".join(sorted(methods))
            method = "HEAD" if getattr(request, HEAD_ONLY, False) else request.method
            return problem_response(
                405,
                f"This endpoint does not take {method}; it takes {allowed}.",
                headers={"Allow": allowed},
            )
        return response

    return wrapper


def _root(request: HttpRequest, **kwargs: Any) -> Any:
    """``/api/`` itself: django-ninja's root view raised Django's 404, so the one address every
    client tries first answered with the HTML error page."""
    return problem_response(
        404,
        "There is no API endpoint at this address; the endpoints are listed at /api/docs and "
        "/api/openapi.json.",
    )


def _api_patterns() -> tuple[list[Any], str, str]:
    patterns, app_name, namespace = api.urls
    for pattern in patterns:
        if isinstance(pattern, URLPattern):
            if pattern.name == "api-root":  # kept: django-ninja reverses it to find its prefix
                pattern.callback = _root
            pattern.callback = conditional(_problem_when_not_allowed(pattern.callback))
    return patterns, app_name, namespace


urlpatterns = [
    path("", _api_patterns()),
    re_path(r"^(?P<rest>.*)$", not_found),
]
