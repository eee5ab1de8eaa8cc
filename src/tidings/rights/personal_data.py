"""The person's own privacy requests, as a source of the access package and erasure.

Erasure keeps each request (a controller must be able to show it answered), with nothing in it
that names the person: no contact, no address, no details.  The keyed hash stays."""

from __future__ import annotations

from typing import Any

from django.db.models import Q

from .models import RightsRequest
from .sources import PersonalData, plain, register


def _requests_of(contact: Any):
    from tidings.audience.emails import email_hmac

    return RightsRequest.objects.filter(
        Q(contact=contact) | Q(email_hmac=email_hmac(contact.email))
    )


def export_requests(contact: Any) -> list[dict[str, Any]]:
    return [
        plain(
            {
                "reference": r.pk,
                "kind": r.kind,
                "state": r.state,
                "received_at": r.received_at,
                "due_on": r.due_on,
                "extended_to": r.extended_to,
                "extension_reason": r.extension_reason,
                "closed_at": r.closed_at,
                "refusal_reason": r.refusal_reason,
            }
        )
        for r in _requests_of(contact).order_by("received_at", "pk")
    ]


def erase_requests(contact: Any) -> int:
    return (
        _requests_of(contact)
        .filter(Q(contact__isnull=False) | ~Q(email="") | ~Q(details=""))
        .update(contact=None, email="", details="")
    )


def register_sources() -> None:
    register(
        PersonalData(
            name="privacy_requests",
            title="Your privacy requests",
            record_kind=None,
            models=(RightsRequest,),
            export=export_requests,
            erase=erase_requests,
            order=40,
            about=(
                "The requests you made under data-protection law, kept to show that we "
                "answered them (a legal obligation); erasure removes what names you."
            ),
        )
    )
