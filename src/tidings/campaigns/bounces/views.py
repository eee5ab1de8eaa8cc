"""The operator's list of inbound reports (bounces and complaints), unprocessed ones first,
with "retry matching".  Privacy officers and owners: the list says who complained."""

from __future__ import annotations

from django.contrib import messages
from django.core.paginator import Paginator
from django.db.models import Case, IntegerField, Value, When
from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.views.decorators.http import require_POST

from tidings.lib.access import operator_required

from ..models import InboundReport
from . import processing

PAGE_SIZE = 50


@operator_required(perm="privacy")
def report_index(request: HttpRequest) -> HttpResponse:
    reports = (
        InboundReport.objects.select_related("delivery__campaign")
        .defer("raw")
        .annotate(
            unprocessed_first=Case(
                When(status=InboundReport.Status.UNPROCESSED, then=Value(0)),
                default=Value(1),
                output_field=IntegerField(),
            )
        )
        .order_by("unprocessed_first", "-received_at", "-pk")
    )
    page = Paginator(reports, PAGE_SIZE).get_page(request.GET.get("page"))
    unprocessed = InboundReport.objects.filter(status=InboundReport.Status.UNPROCESSED).count()
    return render(
        request, "campaigns/bounces/index.html", {"page": page, "unprocessed": unprocessed}
    )


@require_POST
@operator_required(perm="privacy")
def report_retry(request: HttpRequest, report_id: int) -> HttpResponse:
    report = processing.do_retry_inbound_report(get_object_or_404(InboundReport, pk=report_id))
    if report.status == InboundReport.Status.PROCESSED:
        messages.success(request, f"Report #{report.pk} matched and processed: {report.reason}.")
    else:
        messages.error(request, f"Report #{report.pk} is still unprocessed: {report.reason}.")
    return redirect("bounces:index")


@require_POST
@operator_required(perm="privacy")
def report_retry_all(request: HttpRequest) -> HttpResponse:
    tried, processed = processing.retry_unprocessed()
    messages.info(request, f"{tried} unprocessed report(s) tried again: {processed} processed.")
    return redirect("bounces:index")
