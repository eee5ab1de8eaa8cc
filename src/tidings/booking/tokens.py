"""Signed links in demo emails: move or cancel a booking.

The payload is the booking's id and its ``sequence``: when a booking is moved, the links of the
earlier emails stop working (the latest email has the links that count).  A link expires when
the meeting is over, which the view checks against the booking itself (so a moved meeting moves
the expiry too).  No address or name is in the link.
"""

from __future__ import annotations

from dataclasses import dataclass

from django.core import signing
from django.urls import reverse

from tidings.audience.tokens import BadToken, absolute_url

SALT_MANAGE = "tidings.booking.manage"


@dataclass(frozen=True)
class ManageRequest:
    booking_id: int
    sequence: int


def make_manage_token(booking) -> str:
    return signing.Signer(salt=SALT_MANAGE).sign_object({"b": booking.pk, "s": booking.sequence})


def read_manage_token(token: str) -> ManageRequest:
    try:
        payload = signing.Signer(salt=SALT_MANAGE).unsign_object(token)
        return ManageRequest(int(payload["b"]), int(payload["s"]))
    except (signing.BadSignature, KeyError, TypeError, ValueError):
        raise BadToken("the link is not valid") from None


def reschedule_url(booking) -> str:
    return absolute_url(reverse("booking_public:reschedule", args=[make_manage_token(booking)]))


def cancel_url(booking) -> str:
    return absolute_url(reverse("booking_public:cancel", args=[make_manage_token(booking)]))
