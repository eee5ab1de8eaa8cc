"""Helpers for the demo-booking tests: a fixed Monday, one or more hosts, a booked demo."""

from __future__ import annotations

from datetime import UTC, datetime
from email import policy
from email.parser import BytesParser

from icalendar import Calendar

from tests.operators import make_operator
from tidings.booking.actions import do_book_demo, do_set_demo_hosts
from tidings.booking.models import Availability, Booking, DemoHost

# Monday 23 November 2026, 07:00 UTC (London is on GMT): with the default rules (24 h notice,
# 09:00-12:30 and 13:30-17:00 on weekdays, 45 minutes + 15 buffer) the first free time is
# Tuesday 24 November at 09:00.
NOW = datetime(2026, 11, 23, 7, 0, tzinfo=UTC)
TUESDAY_9 = datetime(2026, 11, 24, 9, 0, tzinfo=UTC)
TUESDAY_10 = datetime(2026, 11, 24, 10, 0, tzinfo=UTC)
TUESDAY_11 = datetime(2026, 11, 24, 11, 0, tzinfo=UTC)

PERSON = {"name": "Ada Lovelace", "email": "ada@example.com", "company": "Analytical Engines"}


def key(start: datetime) -> str:
    return start.strftime("%Y-%m-%dT%H:%MZ")


def hosts(*names: str) -> list[DemoHost]:
    users = [make_operator(name, "editor") for name in names]
    for user, name in zip(users, names, strict=True):
        user.first_name = name.capitalize()
        user.save()
    Availability.current()
    do_set_demo_hosts(users, actor=None)
    return [DemoHost.objects.get(user=u) for u in users]


def book(start: datetime = TUESDAY_9, person=None, **extra) -> Booking:
    return do_book_demo(
        person or PERSON, start=start, visitor_timezone=extra.pop("tz", "Europe/London"), **extra
    )


def calendar_parts(message) -> list[Calendar]:
    """The text/calendar attachments of an outbox message, parsed."""
    parsed = BytesParser(policy=policy.default).parsebytes(bytes(message.message))
    return [
        Calendar.from_ical(part.get_content())
        for part in parsed.iter_attachments()
        if part.get_content_type() == "text/calendar"
    ]


def event_of(message):
    (calendar,) = calendar_parts(message)
    (event,) = calendar.walk("VEVENT")
    return calendar, event
