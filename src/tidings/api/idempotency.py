"""``Idempotency-Key`` on ``POST /api/tx``: a retried request sends nothing twice.

As integrators know it from Stripe and draft-ietf-httpapi-idempotency-key-header: the same key
from the same token with the same body within ``KEPT`` gets the first answer again (status and
body, with ``Idempotent-Replayed: true``) and nothing is sent; the same key with another body is
a 422; a key whose first request is still being processed is a 409.  The key is claimed by
inserting its row (a unique constraint on token and key, so two racing requests cannot both
win, on PostgreSQL as on SQLite) before the work; the answer is written in the same transaction
as the message, so a request that failed leaves no answer behind and its key is released: a
retry does the work (nothing was sent).  Only a successful answer is kept.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from django.db import IntegrityError, transaction
from django.db.models import Q
from django.http import HttpRequest
from django.utils import timezone
from django.utils.crypto import constant_time_compare, salted_hmac

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
    """A keyed hash of the method, address and body: tells a different request under the same key
    without keeping the body (whose ``context`` may hold personal data)."""
    what = f"{request.method} {request.path}\n".encode() + request.body
    return salted_hmac("tidings.api.idempotency", what, algorithm="sha256").hexdigest()


def claim(request: HttpRequest, token: ApiToken) -> IdempotencyKey | Replay | None:
    """Claim the request's key for ``token``: its new row (do the work, then ``answer`` or
    ``release`` it), the first answer to give again, or None without a key.  Raises a 422
    problem for the key used with another request, a 409 while its first request runs."""
    key = key_of(request)
    if key is None:
        return None
    digest = fingerprint(request)
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
        if not constant_time_compare(row.fingerprint, digest):
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
