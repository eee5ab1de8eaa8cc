"""Daily rollups: the dashboard reads these, never the page views.  Days are the controller's
(``TIDINGS_TIME_ZONE``), as the salts' are.

One row per (day, site, dimension, value) with its page views and distinct visitors (visitor
hashes of that day; a visitor on two days counts on each, since nothing links them).  A day is
rebuilt whole (delete, then insert its aggregates) in one transaction, so running the job twice,
or late page views arriving through the ingest buffer, never double-count.  The job
(every 5 minutes) rebuilds today and yesterday, plus any day since the last one rolled up
(a worker that was down).
Then the months those days fall in are summed again from their daily rows (month rows, so that a
long range reads one row per month).  Rollups hold no person; they are kept when the page views
themselves are swept.
"""

from __future__ import annotations

from datetime import date, datetime, time, timedelta

from django.db import transaction
from django.db.models import Count, Max, Min, Q, Sum
from django.utils import timezone

from .models import DailyRollup, PageView

# dimension -> the PageView field it groups by (None: one row for the whole site)
DIMENSIONS: dict[str, str | None] = {
    DailyRollup.Dimension.TOTAL: None,
    DailyRollup.Dimension.PAGE: "path",
    DailyRollup.Dimension.REFERRER: "referrer",
    DailyRollup.Dimension.BROWSER: "browser",
    DailyRollup.Dimension.OS: "os",
    DailyRollup.Dimension.DEVICE: "device",
    DailyRollup.Dimension.CAMPAIGN: "utm_campaign",
    DailyRollup.Dimension.SOURCE: "utm_source",
}
SKIP_BLANK = {DailyRollup.Dimension.CAMPAIGN, DailyRollup.Dimension.SOURCE}
CATCH_UP_DAYS = 62  # at most this far back when the job was not run for a while


def day_bounds(day: date) -> tuple[datetime, datetime]:
    """The instants a day of the controller's calendar (TIDINGS_TIME_ZONE) starts and ends:
    23 or 25 hours apart on the days the clocks change."""
    zone = timezone.get_default_timezone()
    return (
        datetime.combine(day, time.min, tzinfo=zone),
        datetime.combine(day + timedelta(days=1), time.min, tzinfo=zone),
    )


@transaction.atomic
def rollup_day(day: date) -> int:
    """Rebuild the rollups of one day (the controller's) from its page views; returns rows
    written."""
    start, end = day_bounds(day)
    views = PageView.objects.filter(created__gte=start, created__lt=end).order_by()
    DailyRollup.objects.filter(period=DailyRollup.Period.DAY, day=day).delete()
    visitors = Count("visitor", distinct=True, filter=~Q(visitor=""))
    rows = []
    for dimension, field in DIMENSIONS.items():
        grouped = views.values("site", *([field] if field else []))
        if dimension in SKIP_BLANK and field:
            grouped = grouped.exclude(**{field: ""})
        for item in grouped.annotate(n=Count("id"), v=visitors):
            rows.append(
                DailyRollup(
                    day=day,
                    site=item["site"],
                    dimension=dimension,
                    value=item[field] if field else "",
                    views=item["n"],
                    visitors=item["v"],
                )
            )
    DailyRollup.objects.bulk_create(rows, batch_size=2000)
    return len(rows)


def month_of(day: date) -> tuple[date, date]:
    """First and last day of the month ``day`` is in."""
    first = day.replace(day=1)
    following = (first + timedelta(days=32)).replace(day=1)
    return first, following - timedelta(days=1)


@transaction.atomic
def rollup_month(day: date) -> int:
    """Rebuild the month rows of ``day``'s month from its daily rows; returns rows written."""
    first, last = month_of(day)
    DailyRollup.objects.filter(period=DailyRollup.Period.MONTH, day=first).delete()
    sums = (
        DailyRollup.objects.filter(period=DailyRollup.Period.DAY, day__gte=first, day__lte=last)
        .values("site", "dimension", "value")
        .annotate(v=Sum("views"), u=Sum("visitors"))
        .order_by()
    )
    rows = [
        DailyRollup(
            period=DailyRollup.Period.MONTH,
            day=first,
            site=item["site"],
            dimension=item["dimension"],
            value=item["value"],
            views=item["v"],
            visitors=item["u"],
        )
        for item in sums
    ]
    DailyRollup.objects.bulk_create(rows, batch_size=2000)
    return len(rows)


def days_to_roll_up(now: datetime | None = None) -> list[date]:
    today = timezone.localdate(now or timezone.now())
    first = today - timedelta(days=1)
    last_done = DailyRollup.objects.filter(period=DailyRollup.Period.DAY).aggregate(d=Max("day"))[
        "d"
    ]
    if last_done is None:
        oldest = PageView.objects.aggregate(c=Min("created"))["c"]
        if oldest is not None:
            first = min(first, timezone.localdate(oldest))
    else:
        first = min(first, last_done)
    first = max(first, today - timedelta(days=CATCH_UP_DAYS))
    return [first + timedelta(days=n) for n in range((today - first).days + 1)]


def rollup_recent(now: datetime | None = None) -> dict[str, int]:
    days = days_to_roll_up(now)
    rows = sum(rollup_day(day) for day in days)
    months = sorted({month_of(day)[0] for day in days})
    rows += sum(rollup_month(month) for month in months)
    return {"days": len(days), "months": len(months), "rows": rows}
