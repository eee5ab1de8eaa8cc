"""Which demo slots are free: a pure calculation over the booking rules and the busy times.

No database, no clock: ``free_slots(rules, hosts, busy, now)`` is given everything.  Hours are
wall-clock times in the rules' timezone, so a demo "at 09:00" stays at 09:00 local time on both
sides of a daylight-saving change (08:00 UTC in summer, 09:00 UTC in winter, for London).  A
wall-clock time that does not exist (the hour skipped in spring) is not offered; one that
happens twice (autumn) is offered once, at its first occurrence.  Slots start at the beginning
of each window and follow each other every slot length plus buffer.

A slot is free for a host when none of the host's meetings overlaps it, counting the buffer on
both sides, and the host has fewer than the per-day limit of meetings that day (local date);
a slot is offered when at least one host is free for it.
"""

from __future__ import annotations

import itertools
from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo


@dataclass(frozen=True)
class Rules:
    zone: ZoneInfo
    # weekday (Monday 0) -> [(start, end)] wall-clock windows
    weekly: Mapping[int, Sequence[tuple[time, time]]]
    slot: timedelta = timedelta(minutes=45)
    buffer: timedelta = timedelta(minutes=15)
    notice: timedelta = timedelta(hours=24)
    horizon_days: int = 30
    per_day_limit: int = 4
    blocked: frozenset[date] = field(default_factory=frozenset)


@dataclass(frozen=True)
class Busy:
    """A host's meeting (UTC-aware)."""

    host: int
    start: datetime
    end: datetime


@dataclass(frozen=True)
class Slot:
    start: datetime  # aware, UTC
    end: datetime
    hosts: tuple[int, ...]  # the hosts free for it

    @property
    def key(self) -> str:
        """The slot's value in a form: its UTC start, to the minute."""
        return self.start.astimezone(UTC).strftime("%Y-%m-%dT%H:%MZ")


def parse_key(value: str) -> datetime | None:
    """The UTC start a form's slot value stands for, or None."""
    try:
        return datetime.strptime(value, "%Y-%m-%dT%H:%MZ").replace(tzinfo=UTC)
    except (TypeError, ValueError):
        return None


def parse_windows(text: str) -> list[tuple[time, time]]:
    """ "09:00-12:30, 13:30-17:00" -> windows.  Raises ValueError with a readable message."""
    windows: list[tuple[time, time]] = []
    for part in text.replace(";", ",").split(","):
        part = part.strip()
        if not part:
            continue
        try:
            start_text, end_text = (p.strip() for p in part.split("-"))
            start, end = time.fromisoformat(start_text), time.fromisoformat(end_text)
        except ValueError:
            raise ValueError(f'"{part}": write hours as 09:00-12:30') from None
        if end <= start:
            raise ValueError(f'"{part}": the end must be after the start')
        windows.append((start, end))
    windows.sort()
    for (_, end), (start, _) in itertools.pairwise(windows):
        if start < end:
            raise ValueError("the hours overlap")
    return windows


def format_windows(windows: Iterable[Sequence[time]]) -> str:
    return ", ".join(f"{s.strftime('%H:%M')}-{e.strftime('%H:%M')}" for s, e in windows)


def local_instant(day: date, at: time, zone: ZoneInfo) -> datetime | None:
    """``day`` at wall-clock ``at`` in ``zone`` as UTC, or None when that time does not exist
    there (skipped by a daylight-saving change).  An ambiguous time is its first occurrence."""
    local = datetime.combine(day, at, tzinfo=zone)  # fold=0: the first occurrence
    utc = local.astimezone(UTC)
    if utc.astimezone(zone).replace(tzinfo=None) != local.replace(tzinfo=None):
        return None
    return utc


def candidate_slots(rules: Rules, now: datetime) -> list[tuple[datetime, datetime]]:
    """Every slot the weekly hours give, from ``now`` + notice to the horizon (UTC)."""
    earliest = now + rules.notice
    today = now.astimezone(rules.zone).date()
    step = rules.slot + rules.buffer
    slots = []
    for offset in range(rules.horizon_days + 1):
        day = today + timedelta(days=offset)
        if day in rules.blocked:
            continue
        for window_start, window_end in rules.weekly.get(day.weekday(), ()):
            end_at = local_instant(day, window_end, rules.zone)
            wall = datetime.combine(day, window_start)
            while wall.date() == day and wall.time() < window_end:
                start = local_instant(day, wall.time(), rules.zone)
                wall += step
                if start is None:
                    continue
                end = start + rules.slot
                if end_at is not None and end > end_at:
                    break
                if start >= earliest:
                    slots.append((start, end))
    return slots


def free_slots(
    rules: Rules, hosts: Sequence[int], busy: Iterable[Busy], now: datetime
) -> list[Slot]:
    """The slots at least one of ``hosts`` is free for, in time order."""
    if not hosts:
        return []
    by_host: dict[int, list[Busy]] = defaultdict(list)
    per_day: dict[tuple[int, date], int] = defaultdict(int)
    for meeting in busy:
        by_host[meeting.host].append(meeting)
        per_day[(meeting.host, meeting.start.astimezone(rules.zone).date())] += 1
    slots = []
    for start, end in candidate_slots(rules, now):
        day = start.astimezone(rules.zone).date()
        free = tuple(
            host
            for host in hosts
            if per_day[(host, day)] < rules.per_day_limit
            and not any(
                m.start < end + rules.buffer and start - rules.buffer < m.end for m in by_host[host]
            )
        )
        if free:
            slots.append(Slot(start, end, free))
    return slots


def by_day(slots: Iterable[Slot], zone: ZoneInfo) -> list[tuple[date, list[Slot]]]:
    """Slots grouped by their date in ``zone`` (the visitor's), in order."""
    days: dict[date, list[Slot]] = {}
    for slot in slots:
        days.setdefault(slot.start.astimezone(zone).date(), []).append(slot)
    return list(days.items())
