"""Reading the proof of consent from a row: when and from where the person opted in and
confirmed, and whether the earlier tool says they left.

A value that cannot be what its column says (a "date" that is text, an IP address that is
not one) makes the row bad: its consent could not be proved as the file claims.  What is said
about a bad value is its kind ("text", "a number", "a date in the future"...), never the value.
"""

from __future__ import annotations

import ipaddress
import re
from datetime import UTC, datetime, timedelta, tzinfo

from django.utils import timezone

from .exporters import BOUNCED, CLEANED, CONFIRMATION, FALSE_WORDS, LEFT_WORDS, STATUS

# Go's time.Time.String() (listmonk): "2024-03-14 09:12:31.436217 +0100 CET", fraction optional,
# up to nine digits; the zone's abbreviation after the offset says nothing more.
_GO = re.compile(
    r"^(\d{4}-\d{2}-\d{2}) (\d{2}:\d{2}:\d{2})(?:\.(\d{1,9}))? ([+-]\d{4})(?: [A-Za-z0-9+-]+)?$"
)
# Day first with dashes, dots or slashes (Brevo, and spreadsheets in Europe): 14-03-2024 09:12.
_DAY_FIRST = re.compile(
    r"^(\d{1,2})[-./](\d{1,2})[-./](\d{4})(?:[ T](\d{1,2}):(\d{2})(?::(\d{2}))?)?$"
)
_DATEISH = re.compile(r"^[\d\s:./T+\-Z]+$")
EARLIEST = datetime(1990, 1, 1, tzinfo=UTC)  # before the web: not a newsletter opt-in
FUTURE_SLACK = timedelta(days=1)  # clocks and time zones; later than this is not a past event


def value_kind(text: str) -> str:
    """What a value that is not a date looks like, in words, without the value."""
    if text.isdigit():
        return "a number"
    if _DATEISH.match(text):
        return "not a real date"
    return "text"


def parse_moment(text: str, naive_zone: tzinfo, latest: datetime | None = None) -> datetime | str:
    """An aware datetime, or the kind of value it is when it is not a date.  ``latest`` is the
    latest moment accepted (by default a day from now)."""
    try:
        # ISO 8601, as Mailchimp and most tools write (C, and tried first: the usual case).
        moment = datetime.fromisoformat(text)
    except ValueError:
        moment = None
    if moment is None:
        match = _GO.match(text)
        if match:
            day, clock, fraction, offset = match.groups()
            micro = (fraction or "0")[:6].ljust(6, "0")
            try:
                moment = datetime.fromisoformat(f"{day}T{clock}.{micro}{offset[:3]}:{offset[3:]}")
            except ValueError:
                return "not a real date"
    if moment is None:
        match = _DAY_FIRST.match(text)
        if not match:
            return value_kind(text)
        d, m, y, hh, mm, ss = (int(g or 0) for g in match.groups())
        try:
            moment = datetime(y, m, d, hh, mm, ss, tzinfo=naive_zone)
        except ValueError:
            return "not a real date"
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=naive_zone)
    if moment < EARLIEST:
        return "a date before 1990"
    if moment > (latest or timezone.now() + FUTURE_SLACK):
        return "a date in the future"
    return moment


def parse_ip(text: str) -> str | None:
    """The address in its compressed form, or None when the text is not an IP address."""
    try:
        return ipaddress.ip_address(text.strip("[]")).compressed
    except ValueError:
        return None


def left_reason(use: str, value: str) -> str:
    """Why the earlier tool says this person is off the list ("" when they are subscribed, or
    "pending" when they never confirmed): the value of a status column of the kind ``use``."""
    if not value:
        return ""
    if use == STATUS:
        return LEFT_WORDS.get(re.sub(r"[\W_]+", "", value.casefold()), "")
    if use == CONFIRMATION:
        return "pending" if "pending" in value.casefold() else ""
    if use in (CLEANED, BOUNCED):
        return "cleaned" if use == CLEANED else "bounced"
    # UNSUBSCRIBED: no/false/0 say they stayed; yes/true/1, a date (Mailchimp's UNSUB_TIME) or
    # any other word say they left: a file that may say so is never taken for consent.
    word = value.strip().casefold()
    if word in FALSE_WORDS:
        return ""
    return LEFT_WORDS.get(re.sub(r"[\W_]+", "", word), "unsubscribed")
