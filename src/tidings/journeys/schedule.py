"""When a wait ends.  "Wait until 09:00" is a local time in the company's time zone
(``TIME_ZONE``), or with ``zone = "contact"`` in the person's own (the ``time_zone`` field, an
IANA name such as "Europe/Paris", held as an attribute) where the policy lets the journey's
purpose hold it; otherwise, or when the person has none, the company's.  It is found with
zoneinfo on calendar dates, never by adding 24 hours, so a change to or from summer time neither
skips nor doubles it: the wait is computed once, when the step runs, and stored as an instant
(``Enrolment.next_run_at``, UTC)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import UTC, date, datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from django.conf import settings

from .steps import WEEKDAYS, parse_duration, parse_time


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


def wait_ends(
    step: Mapping[str, Any], now: datetime, contact: Any = None, purpose: str = ""
) -> datetime:
    """When a wait or wait_until step started at ``now`` lets the person go on (``contact``
    and the journey's ``purpose``: for a wait_until in the person's time zone)."""
    if step["kind"] == "wait":
        return now + parse_duration(step["duration"])
    if step["kind"] in ("wait_event", "wait_click"):
        return now + parse_duration(step["timeout"])
    zone = step_zone(step, contact, purpose)
    return next_time_of_day(now, parse_time(step["time"]), step.get("weekdays") or (), zone)
