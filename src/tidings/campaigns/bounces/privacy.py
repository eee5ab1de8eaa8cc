"""Bounce and complaint reports as personal data: in the access package, removed by erasure.

A report points at the person it is about (``contact``) once matched; an unmatched one is found
by the HMAC of the address it names (``recipient_hmac``).  Erasure deletes both kinds: the
suppression entry (an HMAC, kept by erasure) is what keeps the address from being mailed again.
"""

from __future__ import annotations

from typing import Any

from django.db.models import Q

from ..models import InboundReport


def _reports_of(contact: Any):
    from tidings.audience.emails import email_hmac

    return InboundReport.objects.filter(
        Q(contact_id=contact.pk) | Q(recipient_hmac=email_hmac(contact.email))
    )


def export_reports(contact: Any) -> list[dict[str, Any]]:
    return [
        {
            "received_at": report.received_at.isoformat(),
            "source": report.source,
            "kind": report.get_kind_display(),
            "detail": report.detail,
            "status": report.status,
            "outcome": report.reason,
        }
        for report in _reports_of(contact).order_by("received_at", "pk")
    ]


def erase_reports(contact: Any) -> int:
    deleted, _ = _reports_of(contact).delete()
    return deleted
