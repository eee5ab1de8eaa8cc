"""Bounce and complaint reports as personal data: in the access package, removed by erasure.

A report points at the person it is about (``contact``) once matched; an unmatched one is found
by the HMAC of the address it names (``recipient_hmac``).  Erasure deletes both kinds: the
suppression entry (an HMAC, kept by erasure) is what keeps the address from being mailed again.
"""

from __future__ import annotations

from typing import Any

from django.db.models import Q

from tidings.rights.sources import model_source, register

from ..models import InboundReport


def _reports_of(contact: Any):
    from tidings.audience.emails import email_hmac

    return InboundReport.objects.filter(
        Q(contact_id=contact.pk) | Q(recipient_hmac=email_hmac(contact.email))
    )


def register_sources() -> None:
    register(
        model_source(
            "bounce_reports",
            InboundReport,
            of=_reports_of,
            record_kind=None,
            columns=(
                "received_at",
                "source",
                ("kind", InboundReport.get_kind_display),
                "detail",
                "status",
                ("outcome", "reason"),
            ),
            order_by=("received_at", "pk"),
        )
    )
