"""Errors as RFC 9457 problem details (``application/problem+json``).

Every error the API returns has ``type``, ``title``, ``status`` and a ``detail`` sentence;
validation errors add ``errors``: one ``{"field": "body.email", "message": "..."}`` per
problem.  Details never repeat the personal data that was sent.
"""

from __future__ import annotations

import json
from typing import Any

from django.db.models import Manager, QuerySet
from django.http import Http404, HttpRequest, HttpResponse
from ninja import NinjaAPI
from ninja.errors import AuthenticationError, HttpError, ValidationError

CONTENT_TYPE = "application/problem+json"

TITLES = {
    400: "Bad request",
    401: "Not authenticated",
    403: "Forbidden",
    404: "Not found",
    405: "Method not allowed",
    409: "Conflict",
    412: "Precondition failed",
    413: "Too large",
    415: "Unsupported media type",
    422: "Invalid request",
    429: "Too many requests",
    500: "Server error",
}


class Problem(Exception):
    """Raise from an endpoint to answer with a problem document."""

    def __init__(
        self,
        status: int,
        detail: str,
        *,
        errors: list[dict[str, str]] | None = None,
        headers: dict[str, str] | None = None,
    ) -> None:
        super().__init__(detail)
        self.status = status
        self.detail = detail
        self.errors = errors
        self.headers = headers or {}


class NotJson(ValueError):
    """A body sent as something other than JSON (a form, text): 415, not "cannot parse"."""


#: Why a body with NUL bytes is unreadable: JSON text holds no raw control characters, so they are
#: the zero halves of UTF-16 or UTF-32 (which Python's json would otherwise read without a word).
NOT_UTF8 = "it is not UTF-8 text (it holds NUL bytes, as UTF-16 and UTF-32 do)"


class Unreadable(ValueError):
    """A JSON body that cannot be read; ``str()`` says why in words, never quoting the body."""


def found(queryset: QuerySet[Any, Any] | Manager[Any], pk: int, what: str) -> Any:
    """The row ``pk`` of ``queryset`` that the path names, or a 404 problem ("There is no …")."""
    row = queryset.filter(pk=pk).first()
    if row is None:
        raise Problem(404, f"There is no {what} {pk}.")
    return row


def named(
    queryset: QuerySet[Any, Any] | Manager[Any],
    pk: int,
    what: str,
    *,
    field: str,
    message: str = "",
) -> Any:
    """The row ``pk`` of ``queryset`` that the request's ``field`` names, or a 422 problem about
    that field (``message``, by default "unknown <what>")."""
    row = queryset.filter(pk=pk).first()
    if row is None:
        raise Problem(
            422,
            f"There is no {what} {pk}.",
            errors=[{"field": field, "message": message or f"unknown {what}"}],
        )
    return row


def problem_response(
    status: int,
    detail: str,
    *,
    errors: list[dict[str, str]] | None = None,
    headers: dict[str, str] | None = None,
) -> HttpResponse:
    body: dict[str, Any] = {
        "type": "about:blank",
        "title": TITLES.get(status, "Error"),
        "status": status,
        "detail": detail,
    }
    if errors is not None:
        body["errors"] = errors
    response = HttpResponse(json.dumps(body), status=status, content_type=CONTENT_TYPE)
    for name, value in (headers or {}).items():
        response[name] = value
    return response


def _field(loc: Any) -> str:
    # A field name may be one the client made up (a misspelt key): cut short, as it is quoted.
    parts = [str(p)[:60] for p in loc if p not in ("body", "payload")] if loc else []
    return ".".join(parts) or "body"


def _message(error: dict[str, Any]) -> str:
    # pydantic's messages describe the rule ("Field required"), not the value that broke it.
    if error.get("type") == "extra_forbidden":
        return "this endpoint takes no such field (a misspelling?); see /api/openapi.json"
    message = str(error.get("msg") or "invalid value")
    return message.removeprefix("Value error, ")


def install(api: NinjaAPI) -> None:
    def on_validation(request: HttpRequest, exc: ValidationError) -> HttpResponse:
        errors = [{"field": _field(e.get("loc")), "message": _message(e)} for e in exc.errors]
        fields = ", ".join(dict.fromkeys(e["field"] for e in errors))
        return problem_response(
            422, f"The request has invalid or missing fields: {fields}.", errors=errors
        )

    def on_problem(request: HttpRequest, exc: Problem) -> HttpResponse:
        return problem_response(exc.status, exc.detail, errors=exc.errors, headers=exc.headers)

    def on_authentication(request: HttpRequest, exc: AuthenticationError) -> HttpResponse:
        return problem_response(
            401,
            "Send a valid API token as 'Authorization: Bearer <token>'.",
            headers={"WWW-Authenticate": 'Bearer realm="tidings"'},
        )

    def on_http_error(request: HttpRequest, exc: HttpError) -> HttpResponse:
        # django-ninja wraps whatever the body parser raised in a 400 "Cannot parse request body".
        if isinstance(exc.__cause__, NotJson):
            return problem_response(
                415,
                f"The body was sent as {exc.__cause__}; send it as JSON, with "
                "Content-Type: application/json.",
            )
        if isinstance(exc.__cause__, Unreadable):
            return problem_response(
                400,
                f"The body cannot be read: {exc.__cause__}. Send one JSON object in UTF-8, "
                "with each key once.",
            )
        return problem_response(exc.status_code, str(exc))

    def on_404(request: HttpRequest, exc: Http404) -> HttpResponse:
        return problem_response(404, str(exc) or "No such object.")

    api.add_exception_handler(ValidationError, on_validation)  # type: ignore[arg-type]  # ninja's stub wants Exc | type[Exc]
    api.add_exception_handler(Problem, on_problem)  # type: ignore[arg-type]  # ninja's stub wants Exc | type[Exc]
    api.add_exception_handler(AuthenticationError, on_authentication)  # type: ignore[arg-type]  # ninja's stub wants Exc | type[Exc]
    api.add_exception_handler(HttpError, on_http_error)  # type: ignore[arg-type]  # ninja's stub wants Exc | type[Exc]
    api.add_exception_handler(Http404, on_404)  # type: ignore[arg-type]  # ninja's stub wants Exc | type[Exc]


def not_found(request: HttpRequest, rest: str = "") -> HttpResponse:
    """Any other address under /api/: a problem document rather than the HTML 404 page; for
    an endpoint's address with a slash added (``/api/contacts/``, the usual slip), one that
    names the address meant."""
    from django.urls import Resolver404, resolve

    detail = "There is no API endpoint at this address."
    if request.path.endswith("/") and rest.strip("/"):
        meant = request.path.rstrip("/")
        try:
            match = resolve(meant)
        except Resolver404:
            match = None
        if match is not None and match.func is not not_found:
            detail = (
                "There is no API endpoint at this address; the addresses end without a slash: "
                f"{meant}"
            )
    return problem_response(404, detail)


PROBLEM_SCHEMA: dict[str, Any] = {
    "type": "object",
    "title": "Problem",
    "description": "RFC 9457 problem details.",
    "required": ["type", "title", "status", "detail"],
    "properties": {
        "type": {"type": "string"},
        "title": {"type": "string"},
        "status": {"type": "integer"},
        "detail": {"type": "string"},
        "errors": {
            "type": "array",
            "description": "One entry per invalid field (422).",
            "items": {
                "type": "object",
                "required": ["field", "message"],
                "properties": {"field": {"type": "string"}, "message": {"type": "string"}},
            },
        },
    },
}


def _problem(description: str, headers: dict[str, str] | None = None) -> dict[str, Any]:
    response: dict[str, Any] = {
        "description": description,
        "content": {CONTENT_TYPE: {"schema": {"$ref": "#/components/schemas/Problem"}}},
    }
    if headers:
        response["headers"] = {
            name: {"description": text, "schema": {"type": "string"}}
            for name, text in headers.items()
        }
    return response


ERROR_RESPONSES: dict[str, dict[str, Any]] = {
    "401": _problem("No valid API token.", {"WWW-Authenticate": 'Bearer realm="tidings"'}),
    "429": _problem(
        "Too many requests with this token.",
        {"Retry-After": "Seconds until the token's window starts again."},
    ),
    "4XX": _problem(
        "The request cannot be done: 400 unreadable body, 403 scope or role, 404 no such "
        "object, 409 conflict with its state, 413 too large, 415 a body that is not JSON, "
        "422 invalid fields."
    ),
    "5XX": _problem("The server failed; it has been logged."),
}


def document_problems(schema: dict[str, Any]) -> dict[str, Any]:
    """Add the problem documents every operation may answer to the OpenAPI ``schema``: django-
    ninja lists only the success responses, so generated clients knew nothing of the errors."""
    schema.setdefault("components", {}).setdefault("schemas", {})["Problem"] = PROBLEM_SCHEMA
    for operations in schema.get("paths", {}).values():
        for operation in operations.values():
            responses = operation.setdefault("responses", {})
            for status, response in ERROR_RESPONSES.items():
                responses.setdefault(status, response)
    return schema
