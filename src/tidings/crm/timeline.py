"""One timeline of everything we hold about a person, or about an organisation's dealings, under
every purpose: newest first, each line labelled with its purpose and when it will be erased.

Dates of erasure come from the retention rules themselves (``rights.retention.expiry`` for a
record, ``Policy.expires_at`` for email events), so the timeline and the sweep never disagree.
Campaigns received count what the person did, not machines: opens and clicks fetched by
privacy proxies and link scanners (``Event.machine``) are left out.  Each kind is read newest
first and capped (``PER_KIND``), so a person with years of newsletters costs a few queries.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any

from django.db.models import Q
from django.urls import reverse
from django.utils import timezone

from tidings.policy import get_policy
from tidings.rights.retention import expiry

from .models import (
    ConversationMessage,
    Enquiry,
    Order,
    Organisation,
    SupportContact,
    SupportRequest,
)

PER_KIND = 100
LIMIT = 300


@dataclass(frozen=True)
class Line:
    at: datetime
    what: str
    purpose: str
    erased: str  # "Erased on 2027-03-01" or how long it is kept
    link: str = ""


def _when(moment: Any) -> datetime:
    if isinstance(moment, datetime):
        return moment
    return datetime.combine(moment, datetime.min.time(), tzinfo=timezone.get_current_timezone())


def _erase_text(moment: Any) -> str:
    if moment is None:
        return "No erasure date yet"
    day = timezone.localtime(moment).date() if isinstance(moment, datetime) else moment
    return f"Erased on {day.isoformat()}"


def _title(purpose: str) -> str:
    policy = get_policy()
    return policy.purposes[purpose].title if purpose in policy.purposes else purpose


def _subscription_purpose() -> str:
    keys = get_policy().purposes_for_record("subscription")
    return keys[0] if keys else "newsletter"


def _request_lines(
    role: Any,
    sender: str,
    support: str,
    role_erased: str,
    erased: dict[tuple[str, int], str],
    requests: list[SupportRequest],
) -> list[Line]:
    """A support role's latest requests as lines (``sender``: " from <who>" or ""); each request
    is noted in ``requests`` and ``erased`` for its messages' lines."""
    lines = []
    for r in role.requests.order_by("-created_at")[:PER_KIND]:
        erased[("r", r.pk)] = role_erased
        requests.append(r)
        lines.append(
            Line(
                r.created_at,
                f"Support request R-{r.pk}{sender}: {r.subject}",
                support,
                role_erased,
                reverse("crm:support-request", args=[r.pk]),
            )
        )
    return lines


def _messages(
    records: Iterable[Enquiry | SupportRequest], purpose: str, erased: dict
) -> list[Line]:
    lines = []
    enquiries = [r.pk for r in records if isinstance(r, Enquiry)]
    requests = [r.pk for r in records if isinstance(r, SupportRequest)]
    messages = ConversationMessage.objects.filter(
        Q(enquiry_id__in=enquiries) | Q(support_request_id__in=requests)
    ).order_by("-created_at")[:PER_KIND]
    for m in messages:
        key = ("e", m.enquiry_id) if m.enquiry_id else ("r", m.support_request_id)
        who = {"in": "Message from them", "out": "Message from us", "note": "Internal note"}[
            m.direction
        ]
        if m.automatic:
            who += " (automatic)"
        where = f"enquiry E-{m.enquiry_id}" if m.enquiry_id else f"request R-{m.support_request_id}"
        link = (
            reverse("crm:enquiry", args=[m.enquiry_id])
            if m.enquiry_id
            else reverse("crm:support-request", args=[m.support_request_id])
        )
        lines.append(
            Line(
                m.created_at, f"{who} about {where}", purpose, erased[key], f"{link}#message-{m.pk}"
            )
        )
    return lines


def contact_timeline(contact: Any) -> list[Line]:
    """Everything held about ``contact``, newest first."""
    from tidings.audience.models import ConsentEvent, Subscription
    from tidings.campaigns.models import Delivery, Event

    lines: list[Line] = []
    enquiries = list(contact.enquiries.order_by("-created_at")[:PER_KIND])
    erased: dict[tuple[str, int], str] = {}
    enquiry_purpose = _title("enquiry")
    for e in enquiries:
        erased[("e", e.pk)] = _erase_text(expiry(e))
        lines.append(
            Line(
                e.created_at,
                f"Enquiry E-{e.pk} received ({e.channel}): {e.get_status_display().lower()}",
                enquiry_purpose,
                erased[("e", e.pk)],
                reverse("crm:enquiry", args=[e.pk]),
            )
        )
        for booking in e.bookings.all():  # booking.Booking, kept with its enquiry
            lines.append(
                Line(
                    booking.created_at,
                    f"Demo booked for {timezone.localtime(booking.start):%-d %b %Y %H:%M}"
                    f" ({booking.get_status_display().lower()})",
                    enquiry_purpose,
                    erased[("e", e.pk)],
                )
            )
    lines += _messages(enquiries, enquiry_purpose, erased)
    for o in contact.orders.select_related("organisation").order_by("-created_at")[:PER_KIND]:
        lines.append(
            Line(
                o.created_at,
                f"Order {o.order_reference or f'#{o.pk}'} placed",
                _title("order"),
                _erase_text(expiry(o)) + " (legal minimum)",
                reverse("crm:order", args=[o.pk]),
            )
        )
    support = _title("contract_support")
    roles = list(contact.support_roles.select_related("organisation"))
    requests: list[SupportRequest] = []
    for role in roles:
        role_erased = _erase_text(expiry(role))
        lines.append(
            Line(
                role.created_at,
                f"Support contact at {role.organisation.name}",
                support,
                role_erased,
                reverse("crm:support-contact", args=[role.pk]),
            )
        )
        if role.left_employer:
            lines.append(
                Line(
                    _when(role.left_employer),
                    f"Left {role.organisation.name}",
                    support,
                    role_erased,
                )
            )
        lines += _request_lines(role, "", support, role_erased, erased, requests)
    lines += _messages(requests, support, erased)
    newsletter = _title(_subscription_purpose())
    for s in Subscription.objects.filter(contact=contact).select_related("mailing_list"):
        lines.append(
            Line(
                s.created_at,
                f"Subscription to {s.mailing_list.name}: {s.get_status_display().lower()}",
                newsletter,
                _erase_text(expiry(s)) if s.unsubscribed_at else "Kept while subscribed",
            )
        )
    for event in ConsentEvent.objects.filter(contact=contact).order_by("-at")[:PER_KIND]:
        lines.append(
            Line(
                event.at,
                f"Consent {event.get_action_display().lower()}: {event.purpose}"
                + (f", {event.channel}" if event.channel else "")
                + (f" ({event.topic})" if event.topic else ""),
                _title(event.purpose),
                "Kept while we hold your details (then anonymised)",
            )
        )
    lines += _campaigns(contact, Delivery, Event, newsletter)
    lines.sort(key=lambda line: line.at, reverse=True)
    return lines[:LIMIT]


def _campaigns(contact: Any, delivery_model: Any, event_model: Any, purpose: str) -> list[Line]:
    policy = get_policy()
    deliveries = list(
        delivery_model.objects.filter(contact=contact, sent_at__isnull=False)
        .select_related("campaign")
        .order_by("-sent_at")[:PER_KIND]
    )
    human: dict[int, set[str]] = {}
    for delivery_id, kind in event_model.objects.filter(
        delivery__in=[d.pk for d in deliveries], machine=False, kind__in=("open", "click")
    ).values_list("delivery_id", "kind"):
        human.setdefault(delivery_id, set()).add(kind)
    lines = []
    for d in deliveries:
        did = human.get(d.pk, set())
        done = " and ".join(w for w, k in (("opened", "open"), ("clicked", "click")) if k in did)
        events_end = (
            policy.expires_at("email_event", {"sent": d.sent_at, "created": d.sent_at})
            if "email_event" in policy.retention
            else None
        )
        lines.append(
            Line(
                d.sent_at,
                f"Received campaign {d.campaign.name}" + (f"; {done} by them" if done else ""),
                purpose,
                f"Opens and clicks: {_erase_text(events_end).lower()}",
            )
        )
    return lines


def organisation_timeline(organisation: Organisation, today: date | None = None) -> list[Line]:
    """Contracts (and renewals due), support contacts (added, left), requests and their
    messages, orders: newest first."""
    today = today or timezone.localdate()
    lines: list[Line] = []
    support = _title("contract_support")
    for c in organisation.contracts.all():
        lines.append(
            Line(_when(c.start), f"Contract {c.reference or c.pk} starts", "", "Not personal data")
        )
        if c.end:
            due = (c.end - today).days
            renewal = f" — renewal due in {due} days" if 0 <= due <= 60 else ""
            lines.append(
                Line(
                    _when(c.end),
                    f"Contract {c.reference or c.pk} ends{renewal}",
                    "",
                    "Not personal data",
                    reverse("crm:contract", args=[c.pk]),
                )
            )
    erased: dict[tuple[str, int], str] = {}
    requests: list[SupportRequest] = []
    for role in SupportContact.objects.filter(organisation=organisation).select_related("contact"):
        role_erased = _erase_text(expiry(role))
        who = role.contact.display_name
        lines.append(
            Line(
                role.created_at,
                f"{who} became a support contact",
                support,
                role_erased,
                reverse("crm:support-contact", args=[role.pk]),
            )
        )
        if role.left_employer:
            lines.append(Line(_when(role.left_employer), f"{who} left", support, role_erased))
        lines += _request_lines(role, f" from {who}", support, role_erased, erased, requests)
    lines += _messages(requests, support, erased)
    for o in Order.objects.filter(organisation=organisation).order_by("-created_at")[:PER_KIND]:
        lines.append(
            Line(
                o.created_at,
                f"Order {o.order_reference or f'#{o.pk}'} placed",
                _title("order"),
                _erase_text(expiry(o)) + " (legal minimum)",
                reverse("crm:order", args=[o.pk]),
            )
        )
    lines.sort(key=lambda line: line.at, reverse=True)
    return lines[:LIMIT]
