"""The "Campaigns received" section of the operator's contact page (``audience.contact_panels``)."""

from __future__ import annotations

from typing import Any

from tidings.audience.models import Contact

from .models import Delivery


def deliveries_panel(contact: Contact) -> dict[str, Any]:
    """The last 100 campaign messages to ``contact``, newest first."""
    deliveries = (
        Delivery.objects.filter(contact=contact)
        .select_related("campaign")
        .only("status", "sent_at", "error", "campaign__name", "campaign__id")
        .order_by("-pk")[:100]
    )
    return {"deliveries": deliveries}
