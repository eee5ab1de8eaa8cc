"""``Idempotency-Key`` on every POST that creates something: a retried request does nothing twice.

As integrators know it from Stripe and draft-ietf-httpapi-idempotency-key-header: the same key
from the same token with the same request within ``KEPT`` gets the first answer again (status
and body, with ``Idempotent-Replayed: true``) and nothing is done; the same key with another
request is a 422; a key whose first request is still being processed is a 409.  The key is
claimed by inserting its row (a unique constraint on token and key, so two racing requests
cannot both win, on PostgreSQL as on SQLite) before the work; the answer is written in the same
transaction as the work, so a request that failed leaves no answer behind and its key is
released: a retry does the work (nothing was done).  Only a successful answer is kept.

"The same request" is the same method, address and body *as the endpoint reads it*: a JSON body
is compared in its canonical form (keys sorted, no spaces, parsed as the API parses it), so a
client that re-serialises its body (another key order, other whitespace, ``\u00e9`` for ``é``)
is still retrying; a form upload by its fields and each file's name and content (a multipart
boundary is new on every send).  Two bodies with one canonical form are indistinguishable to
every endpoint, which sees only the parsed values.

Which endpoints take it: every POST that creates something (``CREATES``, each of which calls
``run``).  The POSTs that change a state (a campaign's schedule, pause, resume; a journey's
activate, pause, resume) ignore it: a retry of one finds the state already changed and answers
409 (or does nothing), so it never acts twice; nor do the ones that only read
(``/segments/count``, ``/suppressions/check``) or whose retry is harmless
(``/suppressions/remove``).
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from django.db import IntegrityError, transaction
from django.db.models import Q
from django.http import HttpRequest, HttpResponse
from django.utils import timezone
from django.utils.crypto import constant_time_compare, salted_hmac
from ninja import Schema, Status

from .conditional import canonical_json, rendered
from .errors import Problem
from .models import ApiToken, IdempotencyKey

HEADER = "Idempotency-Key"
#: How long a key and its answer are kept (and a retry answered from them).
KEPT = timedelta(hours=24)
#: A claim still unanswered after this belongs to a request that died (its work would have been
#: committed with its answer): another request with the key may take it over.
ABANDONED = timedelta(minutes=5)
MAX_LENGTH = 255


@dataclass(frozen=True)
class Replay:
    """The first answer to a key, to be given again."""

    status: int
    body: Any


def key_of(request: HttpRequest) -> str | None:
    """The request's key (None without the header); a 400 for one that is empty or too long.

    Taken as Stripe sends it (the bare text) or as the IETF draft does (a Structured Field
    string, in double quotes)."""
    raw = request.headers.get(HEADER)
    if raw is None:
        return None
    key = raw.strip()
    if len(key) >= 2 and key[0] == key[-1] == '"':
        key = key[1:-1]
    if not 1 <= len(key) <= MAX_LENGTH or not (key.isascii() and key.isprintable()):
        raise Problem(
            400,
            f"The {HEADER} header must be 1 to {MAX_LENGTH} printable ASCII characters "
            "(a UUID, say).",
            errors=[{"field": HEADER, "message": f"1 to {MAX_LENGTH} printable ASCII characters"}],
        )
    return key


def fingerprint(request: HttpRequest) -> str:
    """A keyed hash of the method, address and body (in its canonical form): tells a different
    request under the same key without keeping the body (which may hold personal data)."""
    what = f"{request.method} {request.path}\n".encode() + _canonical(request)
    return salted_hmac("tidings.api.idempotency", what, algorithm="sha256").hexdigest()


def _raw_fingerprint(request: HttpRequest) -> str:
    """The fingerprint as it was before bodies were canonical: a key claimed by then (within
    ``KEPT`` of an upgrade) still recognises its retry."""
    if request.content_type == "multipart/form-data":  # only POST /tx took keys then
        return ""
    what = f"{request.method} {request.path}\n".encode() + request.body
    return salted_hmac("tidings.api.idempotency", what, algorithm="sha256").hexdigest()


def _canonical(request: HttpRequest) -> bytes:
    if request.content_type == "multipart/form-data":
        fields = sorted((name, request.POST.getlist(name)) for name in request.POST)
        files = []
        for name in sorted(request.FILES):
            for upload in request.FILES.getlist(name):
                digest = hashlib.sha256()
                for chunk in upload.chunks():
                    digest.update(chunk)
                upload.seek(0)  # the endpoint reads it next
                files.append((name, upload.name, digest.hexdigest()))
        return json.dumps({"fields": fields, "files": files}, ensure_ascii=False).encode()
    from .api import BodyParser  # the API's own reading of a body (api imports the routers)

    try:
        data = BodyParser().parse_body(request)
    except ValueError:  # not a body an endpoint would have read: compare it as it came
        return request.body
    return canonical_json(data)


def claim(request: HttpRequest, token: ApiToken) -> IdempotencyKey | Replay | None:
    """Claim the request's key for ``token``: its new row (do the work, then ``answer`` or
    ``release`` it), the first answer to give again, or None without a key.  Raises a 422
    problem for the key used with another request, a 409 while its first request runs."""
    key = key_of(request)
    if key is None:
        return None
    digest = fingerprint(request)
    raw_digest = _raw_fingerprint(request)
    for _attempt in range(3):
        now = timezone.now()
        try:
            with transaction.atomic():
                return IdempotencyKey.objects.create(
                    token=token, key=key, fingerprint=digest, created_at=now
                )
        except IntegrityError:
            pass
        row = IdempotencyKey.objects.filter(token=token, key=key).first()
        if row is None:  # released (its request failed) or pruned since: claim it again
            continue
        if row.created_at <= now - KEPT or (
            row.status_code is None and row.created_at <= now - ABANDONED
        ):
            # Expired, or its request died: gone, unless another request just took it over.
            IdempotencyKey.objects.filter(pk=row.pk).filter(
                Q(created_at__lte=now - KEPT)
                | Q(status_code__isnull=True, created_at__lte=now - ABANDONED)
            ).delete()
            continue
        if not (
            constant_time_compare(row.fingerprint, digest)
            or (raw_digest and constant_time_compare(row.fingerprint, raw_digest))
        ):
            raise Problem(
                422,
                f"This {HEADER} was used with a different request; a retry must send the same "
                "body, and a new request a new key.",
                errors=[{"field": HEADER, "message": "already used with a different request"}],
            )
        if row.status_code is None:
            raise in_progress()
        return Replay(row.status_code, row.response)
    raise in_progress()


def in_progress() -> Problem:
    return Problem(
        409,
        f"A request with this {HEADER} is still being processed; retry in a moment.",
        headers={"Retry-After": "1"},
    )


def answer(row: IdempotencyKey, status: int, body: Any, *, message: Any = None) -> None:
    """Keep the first answer: call inside the transaction that did the work."""
    IdempotencyKey.objects.filter(pk=row.pk).update(
        status_code=status, response=body, message=message
    )


def release(row: IdempotencyKey) -> None:
    """The request failed and nothing was done: a retry with the key does the work."""
    IdempotencyKey.objects.filter(pk=row.pk, status_code__isnull=True).delete()


def prune() -> int:
    """Forget the keys older than ``KEPT`` (hourly: ``api.idempotency-keys``)."""
    return IdempotencyKey.objects.filter(created_at__lt=timezone.now() - KEPT).delete()[0]


def replayed(first: Replay) -> HttpResponse:
    """The first answer again, marked as such."""
    response = HttpResponse(
        json.dumps(first.body),
        status=first.status,
        content_type="application/json; charset=utf-8",  # as django-ninja answered it first
    )
    response["Idempotent-Replayed"] = "true"
    return response


def run(
    request: HttpRequest,
    schema: type[Schema],
    work: Callable[[], Any],
    *,
    keep: Callable[[Any], Any] | None = None,
    again: Callable[[Any], Any] | None = None,
) -> Any:
    """Do ``work`` (an endpoint's body, returning what the endpoint returns: the ``schema``'s
    data, or a ``Status`` with it) once per ``Idempotency-Key``: in one transaction with its
    answer, kept as the client will read it; a retry gets that answer again.

    An answer that holds a person's data is not kept as it is (it would outlive an erasure by
    up to a day): ``keep`` reduces it to ids, and ``again`` makes the answer from them at the
    retry (the person as they are then)."""
    from .auth import token_of

    claimed = claim(request, token_of(request))
    if isinstance(claimed, Replay):
        if again is not None:
            claimed = Replay(claimed.status, rendered(schema, again(claimed.body)))
        return replayed(claimed)
    if claimed is None:
        return work()
    try:
        with transaction.atomic():
            result = work()
            status, data = (
                (result.status_code, result.value) if isinstance(result, Status) else (200, result)
            )
            body = rendered(schema, data)
            answer(claimed, status, keep(body) if keep is not None else body)
    except BaseException:
        release(claimed)
        raise
    return result


def openapi() -> dict[str, Any]:
    """The header, for the ``openapi_extra`` of each endpoint that calls ``run`` (or claims)."""
    return json.loads(json.dumps(OPENAPI))  # a copy each: django-ninja merges into it


#: The parameter each endpoint that calls ``run`` documents.
DOC = (
    "Optional. A key of your choosing (a UUID; 1-255 printable ASCII characters) that makes a "
    "retry safe: the same key with the same body within 24 hours answers the first answer again "
    "(with `Idempotent-Replayed: true`) and does nothing; with a different body it is a 422, "
    "and while the first request is still being processed a 409. Keys are per token; the body "
    "is compared as JSON (key order and whitespace do not matter). Only a success is kept "
    "(after an error, a retry with the key is tried afresh)."
)
OPENAPI: dict[str, Any] = {
    "parameters": [
        {
            "name": HEADER,
            "in": "header",
            "required": False,
            "description": DOC,
            "schema": {"type": "string", "minLength": 1, "maxLength": MAX_LENGTH},
        }
    ]
}
