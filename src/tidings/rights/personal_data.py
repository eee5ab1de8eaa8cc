"""The person's own privacy requests, as a source of the access package and erasure.

Erasure keeps each request (a controller must be able to show it answered), with nothing in it
that names the person: no contact, no address, no details.  The keyed hash stays."""

from __future__ import annotations

from typing import Any

from django.db.models import Q

from .models import RightsRequest
from .sources import model_source, register


def _requests_of(contact: Any):
    from tidings.audience.emails import email_hmac

    return RightsRequest.objects.filter(
        Q(contact=contact) | Q(email_hmac=email_hmac(contact.email))
    )


def erase_requests(contact: Any) -> int:
    return (
        _requests_of(contact)
        .filter(Q(contact__isnull=False) | ~Q(email="") | ~Q(details=""))
        .update(contact=None, email="", details="")
    )


def register_sources() -> None:
    register(
        model_source(
            "privacy_requests",
            RightsRequest,
            of=_requests_of,
            title="Your privacy requests",
            record_kind=None,
            columns=(
                ("reference", "pk"),
                "kind",
                "state",
                "received_at",
                "due_on",
                "extended_to",
                "extension_reason",
                "closed_at",
                "refusal_reason",
            ),
            order_by=("received_at", "pk"),
            erase=erase_requests,
            order=40,
            about=(
                "The requests you made under data-protection law, kept to show that we "
                "answered them (a legal obligation); erasure removes what names you."
            ),
        )
    )
