"""Campaigns → Deliverability: the bulk-sender checklist, DMARC reports (who sends as our
domains, and whether it passes), and "why didn't they get it?"."""

from __future__ import annotations

from django import forms
from django.contrib import messages
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.views.decorators.http import require_POST

from tidings.audience.emails import InvalidEmail
from tidings.audience.fields import EmailAddressInput
from tidings.lib.access import has_permission, operator_required
from tidings.lib.charts import svg_line_chart

from ..models import DmarcReport
from ..queue import deferral_texts
from . import dmarc
from .checklist import bulk_sender_checklist
from .lookup import DAYS, do_look_up_messages

REPORTS_SHOWN = 50


class DmarcUploadForm(forms.Form):
    report = forms.FileField(
        help_text="An aggregate report as a receiver sends it: .xml.gz, .zip, .xml, or the mail."
    )


class LookupForm(forms.Form):
    address = forms.CharField(
        max_length=320,
        label="Email address",
        # Not type="email": a browser refuses a non-ASCII local part there (fields.py).
        widget=EmailAddressInput(attrs={"autocomplete": "off"}),
    )


@operator_required(perm="reports")
def deliverability_index(request: HttpRequest) -> HttpResponse:
    calendar, passed, failed = dmarc.daily(30)
    chart = svg_line_chart(
        [d.strftime("%d %b") for d in calendar],
        [
            ("Passed DMARC", passed, "series-opens"),
            ("Failed DMARC", failed, "series-machine"),
        ],
        title="Messages sent as your domains, by DMARC result, per day",
    )
    return render(
        request,
        "campaigns/deliverability/index.html",
        {
            "checklist": bulk_sender_checklist(),
            "deferring": deferral_texts(),
            "sources": dmarc.sources(30),
            "chart": chart,
            "daily": list(zip(calendar, passed, failed, strict=True)),
            "reports": DmarcReport.objects.order_by("-received_at", "-pk")[:REPORTS_SHOWN],
            "upload": DmarcUploadForm() if has_permission(request.user, "settings") else None,
        },
    )


@require_POST
@operator_required(perm="settings")
def dmarc_upload(request: HttpRequest) -> HttpResponse:
    form = DmarcUploadForm(request.POST, request.FILES)
    if not form.is_valid():
        messages.error(request, "Choose a report file to upload.")
        return redirect("campaigns:deliverability")
    upload = form.cleaned_data["report"]
    if upload.size > dmarc.MAX_BYTES:
        messages.error(request, f"That file is larger than {dmarc.MAX_BYTES // 2**20} MB.")
        return redirect("campaigns:deliverability")
    report = dmarc.do_record_dmarc_report(upload.read(), source="upload")
    if report.status == DmarcReport.Status.PROCESSED:
        messages.success(request, f"Report from {report.org_name or 'unknown'}: {report.reason}.")
    else:
        messages.error(request, f"The report was kept unprocessed: {report.reason}.")
    return redirect("campaigns:deliverability")


@operator_required(perm="people")
def lookup(request: HttpRequest) -> HttpResponse:
    """The address comes in a POST body and the answer is rendered in place: it is never in a
    URL (no redirect), and the audit log has its keyed hash only."""
    form = LookupForm(request.POST or None)
    result = None
    if request.method == "POST" and form.is_valid():
        try:
            result = do_look_up_messages(form.cleaned_data["address"], actor=request.user)
        except InvalidEmail as exc:
            form.add_error("address", f"Not an email address: {exc}")
    return render(
        request,
        "campaigns/deliverability/lookup.html",
        {"form": form, "result": result, "days": DAYS},
    )
