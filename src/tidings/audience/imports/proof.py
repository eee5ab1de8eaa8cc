"""Reading the proof of consent from a row: when and from where the person opted in and
confirmed, and whether the earlier tool says they left.

A value that cannot be what its column says (a "date" that is text, an IP address that is
not one) makes the row bad: its consent could not be proved as the file claims.  What is said
about a bad value is its kind ("text", "a number", "a date in the future"...), never the value.
"""

from __future__ import annotations

import email.utils
import ipaddress
import re
from collections.abc import Iterable
from datetime import UTC, datetime, timedelta, tzinfo

from django.utils import timezone

from .exporters import (
    BOUNCED,
    CLEANED,
    CLEANED_FILE,
    CONFIRMATION,
    FALSE_WORDS,
    LEFT_WORDS,
    NEVER_WORDS,
    PENDING_WORDS,
    STATUS,
    SUBSCRIBED,
    TRUE_WORDS,
    UNSUBSCRIBED_FILE,
)

# Go's time.Time.String() (listmonk): "2024-03-14 09:12:31.436217 +0100 CET", fraction optional,
# up to nine digits; the zone's abbreviation after the offset says nothing more.
_GO = re.compile(
    r"^(\d{4}-\d{2}-\d{2}) (\d{2}:\d{2}:\d{2})(?:\.(\d{1,9}))? ([+-]\d{4})(?: [A-Za-z0-9+-]+)?$"
)
# Day or month first with dashes, dots or slashes: Brevo writes 14-03-2024 09:12, and a file
# opened and saved again in a spreadsheet has the spreadsheet's locale: 14/03/2024 09:12 in
# Europe, 3/14/2024 9:12 (or 3/14/24 9:12 AM) in the US.  Which of the two comes first is the
# file's own convention (see date_order).
_DAY_FIRST = re.compile(
    r"^(\d{1,2})[-./](\d{1,2})[-./](\d{4}|\d{2})"
    r"(?:[ T](\d{1,2}):(\d{2})(?::(\d{2}))?(?:\s*([AaPp])\.?[Mm]\.?)?)?$"
)
# Year first with slashes or dots (spreadsheets in East Asia, some exports): 2024/03/14 09:12.
_YEAR_FIRST = re.compile(
    r"^(\d{4})[./](\d{1,2})[./](\d{1,2})(?:[ T](\d{1,2}):(\d{2})(?::(\d{2}))?)?$"
)
_DATEISH = re.compile(r"^[\d\s:./T+\-Z]+$")
# A time named as UTC after it, as Rails' Time#to_s (Kit) and others write: 2024-03-14 09:12:31
# UTC.  Other zone names (CET, EST...) are ambiguous and stay unread.
_UTC_NAMED = re.compile(r"^(.*\d)\s+(?:UTC|GMT)$")
# A spreadsheet's long and medium date formats, in English: Apr 5, 2023 / April 5, 2023 2:03 PM
# / 5 Apr 2023 14:03 / 05-Apr-23; the month's name leaves no doubt which number is the day.
_CLOCK = r"(?:,?\s+(\d{1,2}):(\d{2})(?::(\d{2}))?(?:\s*([AaPp])\.?[Mm]\.?)?)?"
_MONTH_FIRST_NAMED = re.compile(r"^([A-Za-z]{3,9})\.?\s+(\d{1,2}),?\s+(\d{4})" + _CLOCK + "$")
_DAY_FIRST_NAMED = re.compile(r"^(\d{1,2})[\s-]([A-Za-z]{3,9})\.?[\s-](\d{4}|\d{2})" + _CLOCK + "$")
_RFC2822 = re.compile(r"^[A-Za-z]{3}, \d{1,2} [A-Za-z]{3} \d{4} \d{2}:\d{2}(?::\d{2})? ")
MONTHS = {
    name: number
    for number, names in enumerate(
        (
            ("jan", "january"),
            ("feb", "february"),
            ("mar", "march"),
            ("apr", "april"),
            ("may",),
            ("jun", "june"),
            ("jul", "july"),
            ("aug", "august"),
            ("sep", "sept", "september"),
            ("oct", "october"),
            ("nov", "november"),
            ("dec", "december"),
        ),
        start=1,
    )
    for name in names
}
EARLIEST = datetime(1990, 1, 1, tzinfo=UTC)  # before the web: not a newsletter opt-in
FUTURE_SLACK = timedelta(days=1)  # clocks and time zones; later than this is not a past event


def value_kind(text: str) -> str:
    """What a value that is not a date looks like, in words, without the value."""
    if text.isdigit():
        return "a number"
    if _DATEISH.match(text):
        return "not a real date"
    return "text"


# Five digits, perhaps with a fraction of a day (45123, 45123.5417): the number a spreadsheet
# keeps a date as (days since 30 December 1899; since 1 January 1904 in a workbook from an old
# Excel for Mac), written out as it is when the column was not formatted as a date before the
# sheet was saved as CSV.  Not read as a date: which epoch the workbook had is not in the CSV,
# and the two are four years and a day apart.
_SPREADSHEET_NUMBER = re.compile(r"^\d{5}(?:\.\d+)?$")
SPREADSHEET_NUMBER = (
    "looks like a spreadsheet date number; format the column as a date before exporting"
)


def date_kind(text: str) -> str:
    """What a value of a column of dates that is not a date looks like (value_kind), a
    spreadsheet's date number said as such."""
    if _SPREADSHEET_NUMBER.match(text):
        return SPREADSHEET_NUMBER
    return value_kind(text)


# What a file's numeric consent dates say about their order (date_order).
DAY_FIRST = "day first"
MONTH_FIRST = "month first"
EITHER = "either"  # every date that reads two ways could be either (01/02/2024): read day first
BOTH = "both"  # some dates only day first, others only month first: read day first
NONE_TELLS = "none tells"  # no date reads differently either way (none, or 05/05/2024): day first


def date_order(values: Iterable[str]) -> str:
    """How the file writes its dates, judged by the dates in ``values`` that can be read only one
    way.  Day first (14/03/2024, Brevo's and Europe's way) unless some date has a number over 12
    in second place and none has one in first place: a file saved by a spreadsheet in the US
    would otherwise import 3/4/2024 as the 3rd of April and make 3/14/2024 a bad row.  EITHER
    when no date tells and some read differently either way (01/02/2024: the 1st of February
    or the 2nd of January), BOTH when dates say both: those files are read day first, and the
    import says so rather than pick silently (run.DATES_EITHER_NOTE, DATES_BOTH_NOTE).
    NONE_TELLS when no date reads differently either way (read day first: it does not matter)."""
    day_first = month_first = two_ways = False
    for text in values:
        match = _DAY_FIRST.match(text)
        if match is None:
            continue
        first, second = int(match[1]), int(match[2])
        day_first = day_first or (first > 12 and second <= 12)
        month_first = month_first or (second > 12 and first <= 12)
        two_ways = two_ways or (first != second and first <= 12 and second <= 12)
        if day_first and month_first:
            return BOTH
    if day_first:
        return DAY_FIRST
    if month_first:
        return MONTH_FIRST
    return EITHER if two_ways else NONE_TELLS


def _clock(hour: int, marker: str | None) -> int:
    """The hour on a 24-hour clock from a 12-hour one (9 PM is 21); -1 when it cannot be one."""
    if marker is None:
        return hour
    if not 1 <= hour <= 12:
        return -1
    return hour % 12 + (12 if marker in "Pp" else 0)


def parse_moment(
    text: str, naive_zone: tzinfo, latest: datetime | None = None, month_first: bool = False
) -> datetime | str:
    """An aware datetime, or the kind of value it is when it is not a date.  ``latest`` is the
    latest moment accepted (by default a day from now); ``month_first`` reads 3/4/2024 as the
    4th of March (see date_order)."""
    named = _UTC_NAMED.match(text)
    if named:
        return parse_moment(named[1], UTC, latest, month_first)
    if _RFC2822.match(text):
        try:
            return _in_range(email.utils.parsedate_to_datetime(text), naive_zone, latest)
        except (TypeError, ValueError):
            return "not a real date"
    if len(text) == 13 and text.isdigit():
        # Milliseconds since 1970, in UTC, as JavaScript and HubSpot's API write times: thirteen
        # digits span 2001 to 2286.  Ten digits (seconds) stay "a number": too easily a phone
        # number or an ID in the wrong column.
        since = datetime.fromtimestamp(int(text) / 1000, UTC)
        if since > (latest or timezone.now() + FUTURE_SLACK):
            return "a date in the future"
        return since
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
        if match:
            d, m, y, hh, mm, ss = (int(g or 0) for g in match.groups()[:6])
            if month_first:
                d, m = m, d
            if len(match[3]) == 2:  # a spreadsheet's short year: 24 is 2024, 98 is 1998
                y += 2000 if y < 70 else 1900
            hh = _clock(hh, match[7])
        elif match := _YEAR_FIRST.match(text):
            y, m, d, hh, mm, ss = (int(g or 0) for g in match.groups())
        elif match := _MONTH_FIRST_NAMED.match(text) or _DAY_FIRST_NAMED.match(text):
            month_name = match[1] if match.re is _MONTH_FIRST_NAMED else match[2]
            m = MONTHS.get(month_name.casefold(), 0)
            if not m:
                return value_kind(text)
            d = int(match[2] if match.re is _MONTH_FIRST_NAMED else match[1])
            y = int(match[3])
            if len(match[3]) == 2:
                y += 2000 if y < 70 else 1900
            hh, mm, ss = (int(g or 0) for g in match.groups()[3:6])
            hh = _clock(hh, match[7])
        else:
            return date_kind(text)
        try:
            moment = datetime(y, m, d, hh, mm, ss, tzinfo=naive_zone)
        except ValueError:
            return "not a real date"
    return _in_range(moment, naive_zone, latest)


def _in_range(moment: datetime, naive_zone: tzinfo, latest: datetime | None) -> datetime | str:
    """The moment, aware, or why it cannot be a past opt-in."""
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=naive_zone)
    if moment < EARLIEST:
        return "a date before 1990"
    if moment > (latest or timezone.now() + FUTURE_SLACK):
        return "a date in the future"
    return moment


_IPISH = re.compile(r"^\[?[0-9A-Fa-f.:]+\]?$")


def ip_kind(text: str) -> str:
    """What a value that is not an IP address looks like, in words, without the value: an
    address's digits that make none (300.1.2.3) are "not a real IP address", not a date."""
    if _IPISH.match(text) and not text.isdigit():
        return "not a real IP address"
    return value_kind(text)


def parse_ip(text: str) -> str | None:
    """The address in its compressed form, or None when the text is not an IP address."""
    try:
        return ipaddress.ip_address(text.strip("[]")).compressed
    except ValueError:
        return None


# left_reason's answer for a yes/no column's value that is neither yes, no nor a date.
UNREADABLE = "unreadable"


def _is_date(text: str) -> bool:
    """Whether the text is a date (in range or not; either order of day and month)."""
    for month_first in (False, True):
        moment = parse_moment(text, UTC, None, month_first)
        if isinstance(moment, datetime) or moment in ("a date before 1990", "a date in the future"):
            return True
    return False


def left_reason(use: str, value: str, subscribed_words: frozenset[str] = frozenset()) -> str:
    """Why the earlier tool says this person is off the list ("" when they are subscribed, or
    "pending" when they never confirmed, "never" when they never subscribed): the value of a
    status column of the kind ``use``.  A yes/no column (subscribed, unsubscribed) holding a
    value that is neither yes, no, a date nor one of the status words gives UNREADABLE: "maybe"
    or "2" is no answer, and taking it for either would be a guess about consent.
    ``subscribed_words`` are status words that mean subscribed in the file's tool
    (exporters.Exporter.subscribed_words).  A column of Mailchimp's unsubscribed or cleaned file
    (UNSUBSCRIBED_FILE, CLEANED_FILE) says its row left, whatever it holds: blank included."""
    if use == UNSUBSCRIBED_FILE:
        return "unsubscribed"
    if use == CLEANED_FILE:
        return "cleaned"
    if not value:
        return ""
    if use == STATUS:
        word = re.sub(r"[\W_]+", "", value.casefold())
        if word in subscribed_words:
            return ""
        if word in PENDING_WORDS:
            return "pending"
        return "never" if word in NEVER_WORDS else LEFT_WORDS.get(word, "")
    if use == CONFIRMATION:
        return "pending" if "pending" in value.casefold() else ""
    if use in (CLEANED, BOUNCED):
        return "cleaned" if use == CLEANED else "bounced"
    word = value.strip().casefold()
    if use == SUBSCRIBED:
        # An explicit no is no consent; yes or a date (when they opted in) says they opted in.
        if word in FALSE_WORDS:
            return "never"
        return "" if word in TRUE_WORDS or _is_date(word) else UNREADABLE
    # UNSUBSCRIBED: no/false/0 say they stayed; yes/true/1, a date (Mailchimp's UNSUB_TIME) or a
    # status word (Unsubscribed, Cleaned...) say they left.
    if word in FALSE_WORDS:
        return ""
    if word in TRUE_WORDS or _is_date(word):
        return "unsubscribed"
    return LEFT_WORDS.get(re.sub(r"[\W_]+", "", word), UNREADABLE)
