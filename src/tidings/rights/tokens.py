"""Signed links of data-subject requests: verify a request, download a copy of one's data.

Payloads are the request's id only (never an address), signed with SECRET_KEY and a salt per
purpose, and both expire: ``TIDINGS_RIGHTS_LINK_DAYS`` (default 7) for the verification link,
``TIDINGS_RIGHTS_DOWNLOAD_DAYS`` (default 7) for the download.  A verification link is a key to
the person's data (it releases a copy, or erases): a week is long enough to find the email, short
enough that an old mailbox's contents do not unlock anything for ever.
"""

from __future__ import annotations

from datetime import timedelta

from django.conf import settings
from django.core import signing
from django.urls import reverse

from tidings.audience.tokens import BadToken, ExpiredToken, absolute_url

SALT_VERIFY = "tidings.rights.verify"
SALT_DOWNLOAD = "tidings.rights.download"

__all__ = ["BadToken", "ExpiredToken", "download_url", "read_token", "verify_url"]


def link_days() -> int:
    return int(getattr(settings, "TIDINGS_RIGHTS_LINK_DAYS", 7))


def download_days() -> int:
    return int(getattr(settings, "TIDINGS_RIGHTS_DOWNLOAD_DAYS", 7))


def make_token(request_id: int, salt: str) -> str:
    return signing.dumps({"r": request_id}, salt=salt)


def read_token(token: str, salt: str) -> int:
    """The request id.  Raises ExpiredToken or BadToken."""
    days = link_days() if salt == SALT_VERIFY else download_days()
    try:
        payload = signing.loads(token, salt=salt, max_age=timedelta(days=days))
    except signing.SignatureExpired:
        raise ExpiredToken(None) from None
    except signing.BadSignature:
        raise BadToken("the link is not valid") from None
    try:
        return int(payload["r"])
    except (KeyError, TypeError, ValueError):
        raise BadToken("the link is not valid") from None


def verify_url(request_id: int) -> str:
    return absolute_url(reverse("rights:verify", args=[make_token(request_id, SALT_VERIFY)]))


def download_url(request_id: int) -> str:
    return absolute_url(reverse("rights:download", args=[make_token(request_id, SALT_DOWNLOAD)]))
