"""HEAD and conditional requests (RFC 9110 §9.3.2, §8.8.3, §13).

Every ``GET`` answers ``HEAD`` too: the same status and headers, no body.  Every ``200`` JSON
answer to a ``GET`` (and a ``PATCH``'s, which is the resource as it now is) carries an
``ETag``: a hash of the representation it sent, as canonical JSON (keys sorted, no spaces), so
it changes when, and only when, what a client reads changes (the same contact read twice has
the same tag; a contact rectified in between does not).  ``GET`` with ``If-None-Match`` naming
the current tag is a ``304`` with no body (Django's ``get_conditional_response`` decides it).
``PATCH`` and ``DELETE`` take ``If-Match``: the endpoint computes the tag of what a ``GET``
would answer now, under a row lock, and a tag that is not it is a ``412`` (without ``If-Match``
nothing changes: a client that does not send it updates as before).  The tags are strong: the
JSON renderer is deterministic, so one state has one representation, byte for byte.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable
from functools import wraps
from typing import Any

from django.http import HttpRequest, HttpResponse, StreamingHttpResponse
from django.http.response import HttpResponseBase
from django.utils.cache import get_conditional_response
from django.utils.http import parse_etags
from ninja import Schema
from ninja.responses import NinjaJSONEncoder

from .errors import Problem, problem_response

IF_MATCH = "If-Match"

#: Set on a request that came as HEAD (and runs as the GET it stands for): an endpoint that
#: records what it handed out (an export) records nothing for a HEAD.
HEAD_ONLY = "tidings_head_only"


def canonical_json(data: Any) -> bytes:
    """One byte string for one JSON value: keys sorted, no spaces (ETags here, and the
    idempotency fingerprint of a request body)."""
    return json.dumps(data, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()


def rendered(schema: type[Schema], data: Any) -> Any:
    """``data`` as the client reads it: through ``schema`` and django-ninja's JSON encoder
    (which writes times to the millisecond)."""
    dumped = schema.model_validate(data, from_attributes=True).model_dump()
    return json.loads(json.dumps(dumped, cls=NinjaJSONEncoder))


def etag_of(body: Any) -> str:
    """The strong ETag of a JSON representation (parsed): a hash of its canonical form."""
    return '"' + hashlib.sha256(canonical_json(body)).hexdigest()[:32] + '"'


def etag_for(schema: type[Schema], data: Any) -> str:
    """The ETag a ``GET`` answering ``data`` as ``schema`` carries: rendered as the answer is,
    then hashed as ``etag_of`` hashes the answer's body."""
    return etag_of(rendered(schema, data))


def require_match(request: HttpRequest, current: str | None, what: str) -> None:
    """Honour ``If-Match``: a 412 unless it names ``current`` (the tag a GET would answer now;
    None: the resource is not there) or is ``*`` and the resource is.  Call it with the row
    locked (``select_for_update``), in the transaction that changes it."""
    header = request.headers.get(IF_MATCH)
    if header is None:
        return
    tags = parse_etags(header)
    if tags == ["*"]:
        if current is not None:
            return
    elif current is not None and current in tags:  # strong comparison: W/ tags never match
        return
    raise Problem(
        412,
        f"The {what} changed since you read it (If-Match names another version); read it again "
        "and send its new ETag in If-Match.",
        headers={"ETag": current} if current else None,
    )


def _without_body(response: HttpResponseBase) -> HttpResponseBase:
    """The answer to a HEAD: the GET's status and headers, with its Content-Length, no body."""
    if isinstance(response, StreamingHttpResponse):
        # Nothing streamed; the file a FileResponse opened (and its Content-Length) stays, and
        # is closed with the response when the request ends, as any response is: closing it
        # here would signal the end of the request early (and close the database connection).
        response.streaming_content = iter(())
        return response
    assert isinstance(response, HttpResponse)
    response["Content-Length"] = str(len(response.content))
    response.content = b""
    return response


def _tagged(
    request: HttpRequest, response: HttpResponseBase, *, evaluate: bool
) -> HttpResponseBase:
    if (
        response.status_code != 200
        or response.streaming
        or not response.get("Content-Type", "").startswith("application/json")
    ):
        return response
    assert isinstance(response, HttpResponse)
    try:
        body = json.loads(response.content)
    except ValueError:  # not ours to tag
        return response
    response["ETag"] = etag_of(body)
    if not evaluate:  # a PATCH's answer: the new version's tag, for the next If-Match
        return response
    conditional = get_conditional_response(request, etag=response["ETag"], response=response)
    if conditional is not None and conditional.status_code == 412:  # a GET with If-Match
        return problem_response(
            412,
            "The resource changed since you read it (If-Match names another version).",
            headers={"ETag": response["ETag"]},
        )
    return conditional or response


def conditional(view: Callable[..., Any]) -> Callable[..., Any]:
    """Wrap an API view: HEAD as its GET without the body, and ETags with If-None-Match."""

    @wraps(view)
    def wrapper(request: HttpRequest, *args: Any, **kwargs: Any) -> Any:
        head = request.method == "HEAD"
        if head:
            request.method = "GET"
            setattr(request, HEAD_ONLY, True)
        try:
            response = view(request, *args, **kwargs)
        finally:
            if head:
                request.method = "HEAD"
        if request.method in ("GET", "HEAD", "PATCH", "PUT"):
            response = _tagged(request, response, evaluate=request.method in ("GET", "HEAD"))
        return _without_body(response) if head else response

    return wrapper


def _header(name: str, description: str) -> dict[str, Any]:
    return {
        "name": name,
        "in": "header",
        "required": False,
        "description": description,
        "schema": {"type": "string"},
    }


def document(schema: dict[str, Any]) -> dict[str, Any]:
    """Say all this in the OpenAPI ``schema``: a HEAD beside every GET, the ETag on a GET's
    200 with If-None-Match and its 304, and If-Match with its 412 on every PATCH, PUT and
    DELETE (each of which honours it)."""
    for operations in schema.get("paths", {}).values():
        get = operations.get("get")
        if get is not None:
            ok = get.get("responses", {}).get("200")
            if ok is not None:
                ok.setdefault("headers", {})["ETag"] = {
                    "description": "The representation's strong ETag: send it as If-None-Match "
                    "(a 304 while it is current) or as If-Match on a PATCH or DELETE.",
                    "schema": {"type": "string"},
                }
                get.setdefault("parameters", []).append(
                    _header(
                        "If-None-Match",
                        "An ETag from an earlier answer: 304, with no "
                        "body, while it is still the current one.",
                    )
                )
                get["responses"]["304"] = {
                    "description": "Not modified: the ETag sent in If-None-Match is current.",
                    "headers": {"ETag": {"schema": {"type": "string"}}},
                }
            head = json.loads(json.dumps(get))
            head["operationId"] = f"{get.get('operationId', 'get')}_head"
            head["summary"] = f"{get.get('summary') or 'GET'}: headers only (HEAD)"
            for response in head.get("responses", {}).values():
                response.pop("content", None)
            operations["head"] = head
        for method in ("patch", "put", "delete"):
            change = operations.get(method)
            if change is None:
                continue
            change.setdefault("parameters", []).append(
                _header(
                    IF_MATCH,
                    "Optional: the ETag of the version you read (or *). If it "
                    "is no longer current the answer is 412 and nothing changes.",
                )
            )
            change.setdefault("responses", {})["412"] = {
                "description": "If-Match names a version that is no longer current; nothing "
                "changed.",
                "content": {
                    "application/problem+json": {"schema": {"$ref": "#/components/schemas/Problem"}}
                },
            }
    return schema
