"""Events as personal data: what the access package shows and what erasure removes.

Registered with ``tidings.audience.sources`` in ``CampaignsConfig.ready()``.  Erasure deletes the
person's events; the campaign's ``EventCounter`` rows are anonymous totals and stay, so reports
keep their numbers.  The retention sweep removes events by the policy's ``email_event`` rule
(``rights/retention.py``).
"""

from __future__ import annotations

from typing import Any

from .models import Event, TrackedLink


def export_events(contact: Any) -> list[dict[str, Any]]:
    """The contact's events, oldest first: campaign, what, when, which link, person or machine."""
    events = list(
        Event.objects.filter(delivery__contact=contact)
        .order_by("at", "pk")
        .values_list("campaign_id", "campaign__name", "kind", "at", "link", "machine")
    )
    links = {
        (campaign_id, index): url
        for campaign_id, index, url in TrackedLink.objects.filter(
            campaign_id__in={e[0] for e in events}
        ).values_list("campaign_id", "index", "url")
    }
    return [
        {
            "campaign": name,
            "event": kind,
            "at": at.isoformat(),
            "link": links.get((campaign_id, link), "") if link is not None else "",
            "by": "a machine (image proxy or link scanner)" if machine else "you",
        }
        for campaign_id, name, kind, at, link, machine in events
    ]


def register_sources() -> None:
    from tidings.audience.sources import model_source, register

    register(
        model_source(
            "email_events",
            Event,
            of="delivery__contact",  # erasure deletes them; the anonymous counters stay
            record_kind="email_event",
            export=export_events,
        )
    )
