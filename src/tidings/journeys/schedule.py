"""When a wait ends.  "Wait until 09:00" is a local time in the company's time zone
(``TIME_ZONE``), or with ``zone = "contact"`` in the person's own (the ``time_zone`` field, an
IANA name such as "Europe/Paris", held as an attribute) where the policy lets the journey's
purpose hold it; otherwise, or when the person has none, the company's.  It is found with
zoneinfo on calendar dates, never by adding 24 hours, so a change to or from summer time neither
skips nor doubles it: the wait is computed once, when the step runs, and stored as an instant
(``Enrolment.next_run_at``, UTC).

"Wait 2 days" (and a wait_event's "3 days" timeout) counts calendar days in the company's zone:
it ends at the same local wall-clock time two dates later, so a mail sent at 09:00 is followed
at 09:00 even when the clocks changed in between (47 or 49 hours).  In a journey that times its
mail in the person's zone (a wait_until with ``zone = "contact"``) they count in the person's
zone instead, where we hold it: their 09:00 mail is followed at their 09:00 a week later, also
in the weeks when their clocks and the company's change on different dates (New York and London
in March and October).  Minutes and hours are elapsed time.

The step after a "wait until" is meant for that time of day.  If it runs much later (the
worker was down over the time), it goes if it is less than ``missed_time_grace()`` late
(``TIDINGS_JOURNEY_MISSED_TIME_GRACE_HOURS``, default 6: the morning's mail still goes before
the afternoon); later than that it waits for the next occurrence (the next 09:00 on an allowed
day), and the history says so (outcome "deferred"), never "sent"."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import UTC, date, datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from django.conf import settings

from .steps import WEEKDAYS, duration_parts, parse_duration, parse_time


def company_zone() -> ZoneInfo:
    return ZoneInfo(settings.TIME_ZONE)


def local_instant(day: date, at: time, zone: ZoneInfo) -> datetime:
    """``at`` on ``day`` in ``zone`` as an aware UTC instant.  A time that does not exist that
    day (the hour skipped in spring) is taken as the same wall time before the change (so 02:30
    becomes 03:30 summer time); a time that happens twice (autumn) is the first of the two."""
    # fold=0 (the default) is PEP 495's "before the change" reading of both cases.
    return datetime.combine(day, at, tzinfo=zone).astimezone(UTC)


def next_time_of_day(
    now: datetime, at: time, weekdays: Sequence[str] = (), zone: ZoneInfo | None = None
) -> datetime:
    """The first ``at`` (local) strictly after ``now`` on one of ``weekdays`` (all: empty)."""
    zone = zone or company_zone()
    allowed = {WEEKDAYS.index(d) for d in weekdays} or set(range(7))
    day = now.astimezone(zone).date()
    for offset in range(8):
        candidate = day + timedelta(days=offset)
        if candidate.weekday() not in allowed:
            continue
        instant = local_instant(candidate, at, zone)
        if instant > now:
            return instant
    raise AssertionError("a week always has an allowed day")  # pragma: no cover


def contact_zone(contact: Any, purpose: str) -> ZoneInfo | None:
    """The person's own time zone, if the policy lets ``purpose`` hold it and it is valid."""
    from tidings.audience.actions import TIME_ZONE_FIELD, allowed_contact_fields, parse_time_zone

    if contact is None or TIME_ZONE_FIELD not in allowed_contact_fields(purpose):
        return None
    return parse_time_zone((contact.attributes or {}).get(TIME_ZONE_FIELD))


def step_zone(step: Mapping[str, Any], contact: Any = None, purpose: str = "") -> ZoneInfo:
    """The zone a wait_until step counts in: the person's when it asks for it and we may hold
    it, else the company's."""
    if step.get("zone") == "contact" and purpose:
        zone = contact_zone(contact, purpose)
        if zone is not None:
            return zone
    return company_zone()


def in_contact_zone(steps: Sequence[Mapping[str, Any]]) -> bool:
    """Whether a journey's steps time its mail in the person's zone (a wait_until asks for it)."""
    return any(
        isinstance(s, Mapping) and s.get("kind") == "wait_until" and s.get("zone") == "contact"
        for s in steps
    )


def wait_ends(
    step: Mapping[str, Any],
    now: datetime,
    contact: Any = None,
    purpose: str = "",
    steps: Sequence[Mapping[str, Any]] = (),
) -> datetime:
    """When a wait or wait_until step started at ``now`` lets the person go on (``contact``
    and the journey's ``purpose``: for a wait_until in the person's time zone; ``steps``, the
    version's: days and weeks count in the person's zone when the journey uses it)."""
    if step["kind"] in ("wait", "wait_event", "wait_click"):
        zone = contact_zone(contact, purpose) if purpose and in_contact_zone(steps) else None
        text = step["duration"] if step["kind"] == "wait" else step["timeout"]
        return add_duration(now, text, zone)
    zone = step_zone(step, contact, purpose)
    return next_time_of_day(now, parse_time(step["time"]), step.get("weekdays") or (), zone)


MISSED_TIME_GRACE_HOURS = 6  # default of settings.TIDINGS_JOURNEY_MISSED_TIME_GRACE_HOURS


def missed_time_grace() -> timedelta:
    """How late a step after a "wait until" may still run (see the module's docstring)."""
    hours = getattr(settings, "TIDINGS_JOURNEY_MISSED_TIME_GRACE_HOURS", MISSED_TIME_GRACE_HOURS)
    return timedelta(hours=float(hours))


def add_duration(now: datetime, text: Any, zone: ZoneInfo | None = None) -> datetime:
    """``now`` plus a duration: minutes and hours elapsed; days and weeks on the calendar of
    ``zone`` (default: the company's), to the same local wall-clock time (a time the clocks
    skip that day is read as local_instant reads it)."""
    count, unit = duration_parts(text)
    if unit not in ("day", "week"):
        return now + parse_duration(text)
    zone = zone or company_zone()
    local = now.astimezone(zone)
    day = local.date() + timedelta(days=count * (7 if unit == "week" else 1))
    wall = local.time().replace(fold=local.fold)
    return datetime.combine(day, wall, tzinfo=zone).astimezone(UTC)
