"""The campaign report page and its CSV export (permission ``reports``: numbers, no people)."""

from __future__ import annotations

from django.http import HttpRequest, HttpResponse, HttpResponseBase
from django.shortcuts import get_object_or_404, render

from tidings.lib.access import operator_required
from tidings.lib.csv_export import streamed_csv

from .models import Campaign
from .reports import (
    BOUNCE_ALARM,
    BOUNCE_WARN,
    COMPLAINT_ALARM,
    COMPLAINT_WARN,
    CSV_HEADER,
    campaign_report,
    level,
    report_rows,
)


@operator_required(perm="reports")
def campaign_report_page(request: HttpRequest, campaign_id: int) -> HttpResponse:
    campaign = get_object_or_404(Campaign, pk=campaign_id)
    report = campaign_report(campaign)
    return render(
        request,
        "campaigns/campaign_report.html",
        {
            "campaign": campaign,
            "report": report,
            "bounce_level": level(report.bounce_rate, BOUNCE_WARN, BOUNCE_ALARM),
            "complaint_level": level(report.complaint_rate, COMPLAINT_WARN, COMPLAINT_ALARM),
        },
    )


@operator_required(perm="reports")
def campaign_report_csv(request: HttpRequest, campaign_id: int) -> HttpResponseBase:
    campaign = get_object_or_404(Campaign, pk=campaign_id)
    report = campaign_report(campaign)
    return streamed_csv(f"campaign-{campaign.pk}-report.csv", CSV_HEADER, report_rows(report))
