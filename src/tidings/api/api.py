"""The REST API (django-ninja): one router per resource, OpenAPI at /api/docs.

Endpoints authorise (``auth.need(scope, page=...)``: the permission of the operator page that
does the same), parse (the schemas), call the same action the operator pages call, and respond;
domain errors become problem documents (``errors.py``).
"""

from __future__ import annotations

import functools
import json
import math
import re
from typing import Any

from django.http import HttpRequest
from ninja import NinjaAPI
from ninja.parser import Parser

from . import conditional, errors
from .routers import (
    campaigns,
    contacts,
    imports,
    journeys,
    lists,
    rights,
    segments,
    suppression,
    transactional,
)


def _one_value_per_key(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    keys = [key for key, _ in pairs]
    if len(set(keys)) != len(keys):
        raise ValueError("a key appears twice in one object")
    return dict(pairs)


def _not_json(constant: str) -> float:
    raise ValueError(f"{constant} is not JSON")


def _finite(text: str) -> float:
    number = float(text)
    if not math.isfinite(number):  # 1e400: valid JSON, but no number a database can store
        raise ValueError("a number too large")
    return number


class BodyParser(Parser):
    """Request bodies are JSON objects with each key once.  django-ninja took any JSON: an array,
    a string or null became an empty object (a PATCH answered 200 and did nothing), and of a key
    given twice the last won silently.  Either is now 400 "Cannot parse request body".  So are
    Python's extensions NaN and Infinity and a number beyond a double (1e400 became infinity:
    an event's properties went on to journeys and webhooks as "Infinity", which no JSON reader
    accepts).  The 400's detail says which, and where (it was "Cannot parse request body" for
    every one of them)."""

    def parse_body(self, request: HttpRequest) -> dict[str, Any]:
        media_type = (request.content_type or "").lower()
        if media_type and media_type != "application/json" and not media_type.endswith("+json"):
            raise errors.NotJson(media_type[:100])
        if b"\x00" in request.body:
            raise errors.Unreadable(errors.NOT_UTF8)
        try:
            data = json.loads(
                request.body,
                object_pairs_hook=_one_value_per_key,
                parse_constant=_not_json,
                parse_float=_finite,
            )
        except json.JSONDecodeError as exc:  # says where, never what was there
            raise errors.Unreadable(
                f"it is not valid JSON ({exc.msg} at line {exc.lineno}, column {exc.colno})"
            ) from None
        except UnicodeDecodeError:
            raise errors.Unreadable("it is not UTF-8 text") from None
        except RecursionError:
            raise errors.Unreadable("it is nested too deeply") from None
        except ValueError as exc:  # the hooks above: a key twice, NaN, 1e400
            raise errors.Unreadable(str(exc)) from None
        if not isinstance(data, dict):
            raise errors.Unreadable(f"it is {_kind(data)}, not a JSON object")
        if _SURROGATE_ESCAPE.search(request.body) and not _is_text(data):
            raise errors.Unreadable(
                "it holds a lone UTF-16 surrogate (a \\ud800-\\udfff escape not in a pair), "
                "which is no character"
            )
        return data


# A \uD800-\uDFFF escape: half of a pair (an emoji written as \ud83d\ude00) or a lone one,
# which JSON parses into a Python string that cannot be encoded: a value that reached the
# database or a rendered message failed there, as a 500.
_SURROGATE_ESCAPE = re.compile(rb"\\u[dD][89a-fA-F]")


def _is_text(data: Any) -> bool:
    try:
        json.dumps(data, ensure_ascii=False).encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def _kind(value: Any) -> str:
    if value is None:
        return "null"
    return {list: "an array", str: "a string", bool: "true or false"}.get(type(value), "a number")


class TidingsApi(NinjaAPI):
    def get_openapi_schema(self, **kwargs: Any) -> Any:
        return conditional.document(errors.document_problems(super().get_openapi_schema(**kwargs)))


api = TidingsApi(
    title="tidings API",
    version="1",
    description=(
        "Send `Authorization: Bearer <token>` (tokens are made under Settings → API tokens). "
        "Each endpoint names the scope and the operator permission it needs. Lists are "
        "paginated with cursors: pass a page's `next` as `cursor`. Errors are "
        "`application/problem+json`. Every GET also answers HEAD; a GET's answer carries an "
        "`ETag` (send it as `If-None-Match` for a 304, or as `If-Match` on a PATCH or DELETE "
        "of the same address for a 412 if it changed meanwhile)."
    ),
    urls_namespace="api",
    docs_url="/docs",
    openapi_url="/openapi.json",
    parser=BodyParser(),
)
errors.install(api)


def _query_names(operation: Any) -> frozenset[str]:
    """The query parameters an operation takes (what its OpenAPI lists)."""
    names: set[str] = set()
    for model in operation.models:
        if getattr(model, "__ninja_param_source__", None) != "query":
            continue
        flat = getattr(model, "__ninja_flatten_map__", None)
        names.update(flat or (f.alias or n for n, f in model.model_fields.items()))
    return frozenset(names)


def _unknown_query_refused(run: Any) -> Any:
    """A query parameter the operation does not take (``?serch=ada``) is a 422 naming it, as an
    unknown body field is, rather than being ignored: the client learns its filter did nothing.
    Checked after authentication and validation (it wraps the endpoint itself)."""
    operation = run.__self__
    takes = _query_names(operation)
    endpoint = operation.view_func

    @functools.wraps(endpoint)
    def checked(request: HttpRequest, *args: Any, **kwargs: Any) -> Any:
        unknown = [name for name in dict.fromkeys(request.GET) if name not in takes]
        if unknown:
            listed = [name[:60] for name in unknown[:10]]
            raise errors.Problem(
                422,
                f"The request has invalid or missing fields: "
                f"{', '.join('query.' + n for n in listed)}.",
                errors=[
                    {
                        "field": f"query.{name}",
                        "message": "this endpoint takes no such query parameter (a "
                        "misspelling?); see /api/openapi.json",
                    }
                    for name in listed
                ],
            )
        return endpoint(request, *args, **kwargs)

    operation.view_func = checked
    return run


api.add_decorator(_unknown_query_refused, mode="view")

api.add_router("/contacts", contacts.router, tags=["contacts"])
api.add_router("/lists", lists.router, tags=["lists and subscriptions"])
api.add_router("/imports", imports.router, tags=["imports"])
api.add_router("/segments", segments.router, tags=["segments"])
api.add_router("/campaigns", campaigns.router, tags=["campaigns"])
api.add_router("/tx", transactional.router, tags=["transactional"])
api.add_router("/suppressions", suppression.router, tags=["suppression"])
api.add_router("/rights-requests", rights.router, tags=["rights requests"])
api.add_router("/journeys", journeys.router, tags=["journeys"])
api.add_router("/events", journeys.events_router, tags=["journeys"])
