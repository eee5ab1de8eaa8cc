"""What the dashboard shows, read from the daily rollups only (never from page views).

"Visitors" over a range is the sum of each day's distinct visitors: visitor hashes change every
day by design, so the same person on two days cannot be told apart from two people.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, timedelta

from django.db.models import Sum

from .models import DailyRollup

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


def _rollups(start: date, end: date, site: str | None):
    rows = DailyRollup.objects.filter(day__gte=start, day__lte=end)
    return rows.filter(site=site) if site else rows


def over_time(start: date, end: date, site: str | None = None) -> list[Day]:
    """Page views and visitors per day, every day of the range (0 where there were none)."""
    found = {
        item["day"]: item
        for item in _rollups(start, end, site)
        .filter(dimension=DailyRollup.Dimension.TOTAL)
        .values("day")
        .annotate(views=Sum("views"), visitors=Sum("visitors"))
        .order_by()
    }
    days = []
    day = start
    while day <= end:
        item = found.get(day)
        days.append(Day(day, item["views"] if item else 0, item["visitors"] if item else 0))
        day += timedelta(days=1)
    return days


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
        DailyRollup.objects.filter(dimension=DailyRollup.Dimension.TOTAL)
        .values_list("site", flat=True)
        .distinct()
        .order_by("site")
    )
