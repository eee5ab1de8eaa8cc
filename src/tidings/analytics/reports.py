"""What the dashboard shows, read from the daily rollups only (never from page views).

"Visitors" over a range is the sum of each day's distinct visitors: visitor hashes change every
day by design, so the same person on two days cannot be told apart from two people.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, timedelta

from django.db.models import Q, Sum

from .models import DailyRollup
from .rollups import month_of

TOP = 10


@dataclass(frozen=True)
class Day:
    day: date
    views: int
    visitors: int


@dataclass(frozen=True)
class Row:
    value: str
    views: int
    visitors: int


def split(start: date, end: date) -> tuple[list[tuple[date, date]], tuple[date, date] | None]:
    """The range as daily spans (the partial months at its ends) and the first days of its
    whole months (first, last), or None when it holds no whole month."""
    first_full = start if start.day == 1 else month_of(start)[1] + timedelta(days=1)
    last_full = end if end == month_of(end)[1] else end.replace(day=1) - timedelta(days=1)
    if first_full > last_full:
        return [(start, end)], None
    spans = []
    if start < first_full:
        spans.append((start, first_full - timedelta(days=1)))
    if last_full < end:
        spans.append((last_full + timedelta(days=1), end))
    return spans, (first_full, last_full.replace(day=1))


def _rollups(start: date, end: date, site: str | None):
    """The rollup rows covering the range: month rows for its whole months, day rows for the
    rest (a range of 25 months reads ~25 rows per value instead of ~760)."""
    spans, months = split(start, end)
    condition = Q()
    for low, high in spans:
        condition |= Q(period=DailyRollup.Period.DAY, day__gte=low, day__lte=high)
    if months:
        condition |= Q(period=DailyRollup.Period.MONTH, day__gte=months[0], day__lte=months[1])
    rows = DailyRollup.objects.filter(condition)
    return rows.filter(site=site) if site else rows


def over_time(start: date, end: date, site: str | None = None) -> list[Day]:
    """Page views and visitors per day, every day of the range (0 where there were none)."""
    days = DailyRollup.objects.filter(period=DailyRollup.Period.DAY, day__gte=start, day__lte=end)
    found = {
        item["day"]: item
        for item in (days.filter(site=site) if site else days)
        .filter(dimension=DailyRollup.Dimension.TOTAL)
        .values("day")
        .annotate(views=Sum("views"), visitors=Sum("visitors"))
        .order_by()
    }
    out: list[Day] = []
    day = start
    while day <= end:
        item = found.get(day)
        out.append(Day(day, item["views"] if item else 0, item["visitors"] if item else 0))
        day += timedelta(days=1)
    return out


def top(
    dimension: str, start: date, end: date, site: str | None = None, limit: int = TOP
) -> list[Row]:
    """The values of a dimension with the most page views in the range."""
    items = (
        _rollups(start, end, site)
        .filter(dimension=dimension)
        .values("value")
        .annotate(views=Sum("views"), visitors=Sum("visitors"))
        .order_by("-views", "value")[:limit]
    )
    return [Row(i["value"], i["views"], i["visitors"]) for i in items]


def sites() -> list[str]:
    return list(
        DailyRollup.objects.filter(
            period=DailyRollup.Period.MONTH, dimension=DailyRollup.Dimension.TOTAL
        )
        .values_list("site", flat=True)
        .distinct()
        .order_by("site")
    )
