"""Operator pages of the website statistics: the dashboard, the snippet, "don't count me"."""

from __future__ import annotations

from datetime import timedelta
from typing import Literal

from django.conf import settings
from django.contrib import messages
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.templatetags.static import static
from django.urls import reverse
from django.utils import timezone
from django.utils.html import format_html_join
from django.views.decorators.http import require_POST

from tidings.lib.access import operator_required
from tidings.lib.charts import bars, line_chart
from tidings.policy import get_policy

from . import reports
from .apps import ROLLUP_EVERY
from .forms import RangeForm
from .ingest import counted_sites
from .models import DailyRollup
from .visits import DONT_COUNT_COOKIE, consent_required, statistics_purposes

SECTIONS = [
    (DailyRollup.Dimension.PAGE, "Top pages", "Page"),
    (DailyRollup.Dimension.REFERRER, "Referrers", "Referring site"),
    (DailyRollup.Dimension.CAMPAIGN, "Newsletter campaigns (utm_campaign)", "Campaign"),
    (DailyRollup.Dimension.SOURCE, "Sources (utm_source)", "Source"),
    (DailyRollup.Dimension.BROWSER, "Browsers", "Browser"),
    (DailyRollup.Dimension.OS, "Operating systems", "Operating system"),
    (DailyRollup.Dimension.DEVICE, "Devices", "Device"),
]
BLANK_LABEL = {DailyRollup.Dimension.REFERRER: "(direct or unknown)"}


@operator_required(perm="reports")
def dashboard(request: HttpRequest) -> HttpResponse:
    form = RangeForm(request.GET or None, sites=reports.sites())
    if request.GET and not form.is_valid():
        return render(request, "analytics/dashboard.html", {"form": form}, status=400)
    if not request.GET:  # the last 30 days, shown in the form's fields
        today = timezone.localdate()
        default = {"start": today - timedelta(days=29), "end": today}
        form = RangeForm({k: v.isoformat() for k, v in default.items()}, sites=reports.sites())
        form.is_valid()
    start, end = form.cleaned_data["start"], form.cleaned_data["end"]
    site = form.cleaned_data.get("site") or None
    days = reports.over_time(start, end, site)
    chart = line_chart(
        [d.day for d in days],
        [
            ("Page views", [d.views for d in days], "series-views"),
            ("Visitors", [d.visitors for d in days], "series-visitors"),
        ],
    )
    sections = []
    for dimension, title, column in SECTIONS:
        rows = reports.top(dimension, start, end, site)
        blank = BLANK_LABEL.get(dimension, "(unknown)")
        sections.append(
            {
                "key": dimension,
                "title": title,
                "column": column,
                "rows": rows,
                "bars": bars([(r.value or blank, r.views) for r in rows]),
                "bars_height": 16 * len(rows),
                "blank": blank,
            }
        )
    # One row a day for up to 800 days: built here, not in the template loop (measured: the loop
    # and its date filter were two thirds of the page's time over 25 months).
    day_rows = format_html_join(
        "\n",
        '<tr><th scope="row">{}</th><td class="num">{}</td><td class="num">{}</td></tr>',
        ((d.day.strftime("%a %-d %b %Y"), d.views, d.visitors) for d in days),
    )
    context = {
        "form": form,
        "day_rows": day_rows,
        "start": start,
        "end": end,
        "site": site,
        "days": days,
        "total_views": sum(d.views for d in days),
        "total_visitors": sum(d.visitors for d in days),
        "chart": chart,
        "sections": sections,
        "counting_me": DONT_COUNT_COOKIE not in request.COOKIES,
        "rollup_minutes": int(ROLLUP_EVERY.total_seconds() // 60),
        "previous_start": start - timedelta(days=(end - start).days + 1),
        "previous_end": start - timedelta(days=1),
    }
    return render(request, "analytics/dashboard.html", context)


@operator_required(perm="reports")
def snippet(request: HttpRequest) -> HttpResponse:
    policy = get_policy()
    base = settings.TIDINGS_BASE_URL
    purposes = statistics_purposes(policy)
    context = {
        "base": base,
        "banner_src": base + static("analytics/banner.js"),
        "script_src": base + static("analytics/a.js"),
        "collect_url": base + reverse("analytics_public:collect"),
        "pixel_url": base + reverse("analytics_public:pixel"),
        "banner_json": base + reverse("analytics_public:banner"),
        "consent_purpose": purposes[0] if consent_required(policy) and purposes else "none",
        "needs_banner": bool(policy.consent_purposes_on_website()),
        "banner_purposes": policy.consent_purposes_on_website(),
        "banner_titles": [policy.purposes[k].title for k in policy.consent_purposes_on_website()],
        "policy": policy,
        "counted_sites": sorted(counted_sites()),
    }
    return render(request, "analytics/snippet.html", context)


@operator_required(perm="reports")
@require_POST
def dont_count_me(request: HttpRequest) -> HttpResponse:
    """Set or clear the cookie that keeps this browser's visits out of the statistics."""
    response = redirect(reverse("analytics:dashboard"))
    # The cookie must go with the statistics script's request from the company's website, which
    # is usually another site than tidings': a SameSite=Lax cookie never did (the operator's
    # visits were counted all the same).  SameSite=None needs Secure, so over plain HTTP (the
    # demo, where the site is on tidings' own host anyway) it stays Lax.
    samesite: Literal["None", "Lax"] = "None" if settings.USE_TLS else "Lax"
    if request.POST.get("count") == "no":
        response.set_cookie(
            DONT_COUNT_COOKIE,
            "1",
            max_age=5 * 365 * 86400,
            samesite=samesite,
            secure=settings.USE_TLS,
            httponly=True,
        )
        messages.success(request, "Your visits from this browser are no longer counted.")
    else:
        response.delete_cookie(DONT_COUNT_COOKIE, samesite=samesite)
        messages.success(request, "Your visits from this browser are counted again.")
    return response
