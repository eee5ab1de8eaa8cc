"""Bounce and complaint reports as personal data: in the access package, removed by erasure.

A report points at the person it is about (``contact``) once matched; an unmatched one is found
by the HMAC of the address it names (``recipient_hmac``).  Erasure deletes both kinds: the
suppression entry (an HMAC, kept by erasure) is what keeps the address from being mailed again.
"""

from __future__ import annotations

from django.db.models import Q

from tidings.audience.sources import AnyOf, People, model_source, register

from ..models import InboundReport


def _reports_of(people: People):
    """Reports matched to the people, or naming one of their addresses (by its HMAC)."""
    return InboundReport.objects.filter(
        Q(AnyOf("contact_id", people.contact_ids)) | Q(AnyOf("recipient_hmac", people.hmacs))
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
            title="Bounce and complaint reports",
            about="Reports that an email to you bounced or was marked as spam, and what we did "
            "about them (stop or pause sending).",
            retention="The report's message itself is deleted once it has been dealt with; "
            "the facts stay with your other records, and are erased with them.",
        )
    )
