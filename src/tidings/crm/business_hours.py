"""Business hours: when a first-response target of "8 hours" runs out, and how much is left.

The hours are the company's (``TIDINGS_SUPPORT_HOURS``, e.g. ``mon-fri 09:00-17:30`` or
``mon-thu 09:00-17:30, fri 09:00-16:00``) in its time zone (``TIME_ZONE``), less the days it
is shut (``TIDINGS_SUPPORT_CLOSED``).  Hand-written because it is small and the libraries that
do it (businesstimedelta, businesstime) are unmaintained since 2019 and pytz-based; the
arithmetic walks the calendar a day at a time in the local zone, so a clock change shortens or
lengthens nothing (09:00-17:30 is 8.5 hours on the day the clocks go forward too).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from functools import cache
from zoneinfo import ZoneInfo

from django.conf import settings

DAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
_GROUP = re.compile(
    r"^\s*(?P<first>[a-z]{3})(?:\s*-\s*(?P<last>[a-z]{3}))?\s+"
    r"(?P<open>\d{1,2}:\d{2})\s*-\s*(?P<close>\d{1,2}:\d{2})\s*$"
)
MAX_DAYS = 3 * 366  # no target reaches further; a schedule with no hours at all stops here


class BadHours(ValueError):
    """``TIDINGS_SUPPORT_HOURS`` or ``TIDINGS_SUPPORT_CLOSED`` cannot be read."""


def _time(text: str) -> time:
    hours, minutes = (int(part) for part in text.split(":"))
    if hours == 24 and minutes == 0:
        return time.max
    if not (0 <= hours < 24 and 0 <= minutes < 60):
        raise BadHours(f"{text} is not a time of day")
    return time(hours, minutes)


@dataclass(frozen=True)
class Schedule:
    """Opening hours per weekday (0 Monday), a zone, and the dates it is shut."""

    hours: tuple[tuple[time, time] | None, ...]
    zone: ZoneInfo
    closed: frozenset[date] = frozenset()

    def opening(self, day: date) -> tuple[datetime, datetime] | None:
        if day in self.closed:
            return None
        hours = self.hours[day.weekday()]
        if hours is None:
            return None
        return (
            datetime.combine(day, hours[0], tzinfo=self.zone),
            datetime.combine(day, hours[1], tzinfo=self.zone),
        )

    def add(self, start: datetime, hours: float) -> datetime:
        """The moment ``hours`` business hours after ``start``."""
        left = timedelta(hours=hours)
        day = start.astimezone(self.zone).date()
        for _ in range(MAX_DAYS):
            window = self.opening(day)
            if window is not None:
                begin = max(window[0], start)
                if begin < window[1]:
                    available = window[1] - begin
                    if left <= available:
                        return begin + left
                    left -= available
            day += timedelta(days=1)
        raise BadHours("the business hours leave no time to count in")

    def between(self, start: datetime, end: datetime) -> timedelta:
        """Business time from ``start`` to ``end`` (negative when ``end`` is earlier)."""
        if end < start:
            return -self.between(end, start)
        total = timedelta()
        day = start.astimezone(self.zone).date()
        last = end.astimezone(self.zone).date()
        while day <= last:
            window = self.opening(day)
            if window is not None:
                low, high = max(window[0], start), min(window[1], end)
                if high > low:
                    total += high - low
            day += timedelta(days=1)
        return total


def parse(spec: str, zone: str, closed: list[str] | tuple[str, ...] = ()) -> Schedule:
    """The schedule of ``spec`` ("mon-fri 09:00-17:30, sat 10:00-12:00"); raises BadHours."""
    hours: list[tuple[time, time] | None] = [None] * 7
    for group in filter(None, (g.strip().lower() for g in spec.split(","))):
        match = _GROUP.match(group)
        if not match or match["first"] not in DAYS or (match["last"] or "mon") not in DAYS:
            raise BadHours(f'"{group}": write days and hours like "mon-fri 09:00-17:30"')
        first = DAYS.index(match["first"])
        last = DAYS.index(match["last"]) if match["last"] else first
        if last < first:
            raise BadHours(f'"{group}": the days run backwards')
        opens, closes = _time(match["open"]), _time(match["close"])
        if closes <= opens:
            raise BadHours(f'"{group}": it closes before it opens')
        for weekday in range(first, last + 1):
            hours[weekday] = (opens, closes)
    if not any(hours):
        raise BadHours("no business hours at all")
    dates = set()
    for text in closed:
        try:
            dates.add(date.fromisoformat(text.strip()))
        except ValueError:
            raise BadHours(f'"{text}" is not a date (write 2026-12-25)') from None
    return Schedule(tuple(hours), ZoneInfo(zone), frozenset(dates))


@cache
def _configured(spec: str, zone: str, closed: tuple[str, ...]) -> Schedule:
    return parse(spec, zone, closed)


def schedule() -> Schedule:
    """The installation's business hours (raises BadHours; the system check reports it)."""
    return _configured(
        str(getattr(settings, "TIDINGS_SUPPORT_HOURS", "") or "mon-fri 09:00-17:30"),
        settings.TIME_ZONE,
        tuple(getattr(settings, "TIDINGS_SUPPORT_CLOSED", ()) or ()),
    )
