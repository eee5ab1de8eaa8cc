"""Calendar files (RFC 5545, built with icalendar): the invitation emailed to the visitor and
the feed of upcoming demos an operator's calendar subscribes to.

One booking is one event whose UID never changes; every change bumps SEQUENCE, so a calendar
replaces its copy on a reschedule (METHOD:REQUEST) and removes it on a cancellation
(METHOD:CANCEL, STATUS:CANCELLED).
"""

from __future__ import annotations

from collections.abc import Iterable
from email.utils import parseaddr

from django.conf import settings
from django.utils import timezone
from icalendar import Calendar, Event, vCalAddress, vText

from tidings.policy import get_policy

from .models import Booking

PRODID = "-//tidings//demo booking//EN"


def _domain() -> str:
    _, address = parseaddr(settings.DEFAULT_FROM_EMAIL)
    return address.rpartition("@")[2] or "tidings.invalid"


def _calendar(method: str | None = None) -> Calendar:
    calendar = Calendar()
    calendar.add("prodid", PRODID)
    calendar.add("version", "2.0")
    if method:
        calendar.add("method", method)
    return calendar


def _event(booking: Booking, *, for_host: bool) -> Event:
    controller = get_policy().controller.name
    contact = booking.enquiry.contact
    user = booking.host.user
    event = Event()
    event.add("uid", f"{booking.uid}@{_domain()}")
    event.add("dtstamp", timezone.now())
    event.add("dtstart", booking.start)
    event.add("dtend", booking.end)
    event.add("sequence", booking.sequence)
    if for_host:
        who = contact.name or contact.email
        company = f" ({contact.company})" if contact.company else ""
        event.add("summary", f"Demo: {who}{company}")
    else:
        event.add("summary", f"Demo with {controller}")
    cancelled = booking.status == Booking.Status.CANCELLED
    event.add("status", "CANCELLED" if cancelled else "CONFIRMED")
    organizer = vCalAddress(f"mailto:{user.email or parseaddr(settings.DEFAULT_FROM_EMAIL)[1]}")
    organizer.params["cn"] = vText(booking.host.display_name)
    event.add("organizer", organizer)
    attendee = vCalAddress(f"mailto:{contact.email}")
    if contact.name:
        attendee.params["cn"] = vText(contact.name)
    attendee.params["role"] = vText("REQ-PARTICIPANT")
    attendee.params["rsvp"] = vText("FALSE")
    event.add("attendee", attendee)
    return event


def invitation(booking: Booking) -> str:
    """The invitation for the booking as it now is: REQUEST, or CANCEL once cancelled."""
    cancelled = booking.status == Booking.Status.CANCELLED
    calendar = _calendar("CANCEL" if cancelled else "REQUEST")
    calendar.add_component(_event(booking, for_host=False))
    return calendar.to_ical().decode("utf-8")


def invitation_attachment(booking: Booking) -> dict[str, str]:
    cancelled = booking.status == Booking.Status.CANCELLED
    method = "CANCEL" if cancelled else "REQUEST"
    return {
        "filename": "cancel.ics" if cancelled else "invite.ics",
        "content_type": f"text/calendar; method={method}",
        "content": invitation(booking),
    }


def feed(bookings: Iterable[Booking], name: str) -> str:
    """A subscribable calendar of these bookings (no METHOD: it is published, not sent)."""
    calendar = _calendar()
    calendar.add("x-wr-calname", name)
    for booking in bookings:
        calendar.add_component(_event(booking, for_host=True))
    return calendar.to_ical().decode("utf-8")
