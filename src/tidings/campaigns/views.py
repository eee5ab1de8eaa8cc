"""Operator pages for campaigns and senders: authorise, parse, one action (lifecycle.py), respond.

Domain errors become HTTP here and nowhere else: ``InvalidTransition`` (a button pressed on a
campaign whose state no longer allows it) is a 409 page saying why; ``CampaignNotReady`` is
shown as form errors on the page the operator was on.
"""

from __future__ import annotations

from collections import defaultdict
from datetime import timedelta

from django.contrib import messages
from django.core.exceptions import ImproperlyConfigured
from django.db.models import Count
from django.forms import HiddenInput
from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.utils import timezone
from django.views.decorators.http import require_POST

from tidings.audience.segments import SegmentError
from tidings.lib.access import operator_required
from tidings.lib.stale import EditedMeanwhile, version_of

from . import lifecycle, samples, second_operator
from .blocks import pages
from .confirmation import describe_when, send_summary
from .followups import suggested_time
from .forms import (
    CampaignCreateForm,
    CampaignEditForm,
    PreviewForm,
    ScheduleForm,
    TestSendForm,
)
from .lifecycle import CampaignNotReady, InvalidTransition
from .models import Campaign, Delivery, Layout
from .queue import deferral_texts, delivery_counts, failed_deliveries
from .targeting import audience_count
from .transports.config import transport_configs

FAILED_ROWS_SHOWN = 100
STATUSES = [s.value for s in Delivery.Status]


def _campaign_or_404(campaign_id: int) -> Campaign:
    return get_object_or_404(
        Campaign.objects.select_related("sender", "layout", "template"), pk=campaign_id
    )


def _conflict(request: HttpRequest, campaign: Campaign, error: InvalidTransition) -> HttpResponse:
    """The 409 page: the action no longer fits the campaign's state (shown as it is now)."""
    campaign.status = (
        Campaign.objects.filter(pk=campaign.pk).values_list("status", flat=True).first()
        or campaign.status
    )
    return render(
        request,
        "campaigns/conflict.html",
        {"campaign": campaign, "error": error},
        status=409,
    )


def _delivery_counts(campaign_ids: list[int]) -> dict[int, dict[str, int]]:
    """Rows per status for each campaign: one GROUP BY over the (campaign, status) index."""
    counts: dict[int, dict[str, int]] = defaultdict(lambda: dict.fromkeys(STATUSES, 0))
    rows = (
        Delivery.objects.filter(campaign_id__in=campaign_ids)
        .values_list("campaign_id", "status")
        .annotate(n=Count("pk"))
        .order_by()
    )
    for campaign_id, status, n in rows:
        counts[campaign_id][status] = n
    return counts


# --- campaigns ----------------------------------------------------------------------------------
@operator_required(perm="content")
def campaign_index(request: HttpRequest) -> HttpResponse:
    campaigns = list(Campaign.objects.select_related("sender")[:500])
    counts = _delivery_counts([c.pk for c in campaigns])
    rows = [(c, counts[c.pk]) for c in campaigns]
    return render(request, "campaigns/campaign_index.html", {"rows": rows})


@operator_required(perm="content")
def campaign_new(request: HttpRequest) -> HttpResponse:
    form = CampaignCreateForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        data = form.cleaned_data
        try:
            campaign = lifecycle.do_create_campaign(
                data["template"],
                name=data["name"],
                topic=data["topic"],
                sender=data["sender"],
                lists=data["lists"],
                segments=data["segments"],
                actor=request.user,
            )
        except CampaignNotReady as exc:
            form.add_problems(exc)
        else:
            messages.success(request, "Draft created: write it, preview it, then schedule it.")
            return redirect("campaigns:edit", campaign_id=campaign.pk)
    return render(request, "campaigns/campaign_new.html", {"form": form})


@operator_required(perm="content")
def campaign_detail(request: HttpRequest, campaign_id: int) -> HttpResponse:
    campaign = _campaign_or_404(campaign_id)
    counts = delivery_counts(campaign)
    total = sum(counts.values())
    done = counts["sent"] + counts["failed"] + counts["skipped"]
    audience = audience_error = None
    if campaign.status in {Campaign.Status.DRAFT, Campaign.Status.SCHEDULED}:
        try:
            audience = audience_count(campaign)
        except SegmentError as exc:
            audience_error = str(exc)
    failed = failed_deliveries(campaign).select_related("contact")[:FAILED_ROWS_SHOWN]
    return render(
        request,
        "campaigns/campaign_detail.html",
        {
            "campaign": campaign,
            "counts": counts,
            "total": total,
            "done": done,
            "rate": _rates(campaign, counts["sent"]),
            "configured_rates": configured_rates(),
            "audience": audience,
            "audience_error": audience_error,
            "failed": failed,
            "allowed": lifecycle.allowed_actions(campaign),
            "problems": (
                lifecycle.schedule_problems(campaign)
                if campaign.status == Campaign.Status.DRAFT
                else []
            ),
            "refresh": campaign.status == Campaign.Status.SENDING,
            "may_ask": second_operator.may_ask(campaign, request.user),
            "asked": second_operator.last_request(campaign),
            "deferring": (
                deferral_texts()
                if campaign.status in (Campaign.Status.SENDING, Campaign.Status.PAUSED)
                else []
            ),
        },
    )


_UNITS = {1.0: "s", 60.0: "min", 3600.0: "h", 86400.0: "d"}


def configured_rates() -> list[str]:
    """Each transport's sending limits, as configured: "default: 50/s, 20000/h"."""
    try:
        configs = transport_configs()
    except ImproperlyConfigured:
        return []
    return [
        f"{config.name}: "
        + (
            ", ".join(f"{n}/{_UNITS.get(seconds, f'{seconds:g}s')}" for n, seconds in config.limits)
            or "no limit"
        )
        for config in configs
    ]


def _rates(campaign: Campaign, sent: int) -> dict[str, float | None]:
    """Messages a second: over the last minute, and on average since the start."""
    if campaign.started_at is None:
        return {"recent": None, "average": None}
    now = timezone.now()
    end = campaign.finished_at or now
    elapsed = max((end - campaign.started_at).total_seconds(), 1.0)
    recent = None
    if campaign.status == Campaign.Status.SENDING:
        # Scans the campaign's sent rows through the (campaign, status) index.
        last_minute = Delivery.objects.filter(
            campaign=campaign, status=Delivery.Status.SENT, sent_at__gte=now - timedelta(minutes=1)
        ).count()
        recent = last_minute / 60
    return {"recent": recent, "average": sent / elapsed}


@operator_required(perm="content")
def campaign_edit(request: HttpRequest, campaign_id: int) -> HttpResponse:
    campaign = _campaign_or_404(campaign_id)
    if campaign.status != Campaign.Status.DRAFT:
        return _conflict(request, campaign, InvalidTransition(campaign.status, "edit"))
    data = request.POST.copy() if request.method == "POST" else None
    body = campaign.body
    stored_format = campaign.format
    if not body.strip() and campaign.template is not None:
        body, stored_format = campaign.template.body, campaign.template.format
    fmt, editor = pages.bind(data, stored_format=stored_format, stored_body=body)
    form = CampaignEditForm(data, campaign=campaign)
    editing = data is not None and (data.get("op") or "") != ""
    # The version this page was opened at travels with every post of it (block edits too).
    loaded = data.get("loaded_version", "") if data is not None else version_of(campaign.updated_at)
    edited_meanwhile = ""
    if data is not None and not editing and form.is_valid():
        try:
            lifecycle.do_update_campaign(
                campaign,
                form.values(),
                lists=form.cleaned_data["lists"],
                segments=form.cleaned_data["segments"],
                actor=request.user,
                loaded_version=loaded or None,
            )
        except CampaignNotReady as exc:
            form.add_problems(exc)
        except EditedMeanwhile as exc:
            edited_meanwhile, loaded = str(exc), exc.current
        except InvalidTransition as exc:
            return _conflict(request, campaign, exc)
        else:
            messages.success(request, "Saved.")
            if request.POST.get("then") == "preview":
                return redirect("campaigns:preview", campaign_id=campaign.pk)
            return redirect("campaigns:edit", campaign_id=campaign.pk)
    if editor is not None:
        form.fields["body"].widget = HiddenInput()
        form.fields["body"].required = False
    layout = Layout.objects.filter(pk=form["layout"].value() or 0).first()
    context, _ = pages.page_context(
        editor,
        subject=form["subject"].value() or "",
        layout=layout or (campaign.template.layout if campaign.template else None),
    )
    return render(
        request,
        "campaigns/campaign_edit.html",
        {
            "campaign": campaign,
            "form": form,
            "fmt": fmt,
            "loaded_version": loaded,
            "edited_meanwhile": edited_meanwhile,
            **context,
        },
    )


@operator_required(perm="content")
def campaign_preview(request: HttpRequest, campaign_id: int) -> HttpResponse:
    """The message as one contact (or the sample person) would get it, in a sandboxed frame."""
    campaign = _campaign_or_404(campaign_id)
    form = PreviewForm(request.GET or None)
    contact = None
    rendered = None
    if form.is_valid():
        contact = form.cleaned_data.get("contact")
    variant = None
    label = request.GET.get("variant", "")
    if label:  # an A/B variant, as its recipients will see it
        variant = campaign.variants.filter(label=label[:1]).first()
        if variant is None:
            form.add_error(None, f"This campaign has no variant {label[:1]!r}.")
    if not form.errors:
        try:
            shown = variant.applied_to(campaign) if variant is not None else campaign
            rendered = samples.render_sample(shown, contact)
        except CampaignNotReady as exc:
            for problem in exc.problems:
                form.add_error(None, problem.message)
    return render(
        request,
        "campaigns/campaign_preview.html",
        {
            "campaign": campaign,
            "form": form,
            "contact": contact,
            "rendered": rendered,
            "variant": variant,
        },
    )


@operator_required(perm="send")
def campaign_test(request: HttpRequest, campaign_id: int) -> HttpResponse:
    campaign = _campaign_or_404(campaign_id)
    form = TestSendForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        contact = form.cleaned_data.get("contact")
        if not form.errors:
            try:
                result = samples.do_test_send(
                    campaign, form.address_list(), contact=contact, actor=request.user
                )
            except CampaignNotReady as exc:
                for problem in exc.problems:
                    field = "addresses" if problem.field == "addresses" else None
                    form.add_error(field, str(problem))
            else:
                if result.errors:
                    messages.error(
                        request,
                        f"{result.sent} of {result.recipients} test message(s) sent; the mail "
                        f"server refused the others ({', '.join(sorted(set(result.errors)))}).",
                    )
                else:
                    count = result.recipients
                    messages.success(
                        request,
                        f"Test sent to {count} address{'es' if count != 1 else ''}: its subject "
                        "starts with “[Test]”.",
                    )
                return redirect("campaigns:test", campaign_id=campaign.pk)
    return render(request, "campaigns/campaign_test.html", {"campaign": campaign, "form": form})


@operator_required(perm="send")
def campaign_schedule(request: HttpRequest, campaign_id: int) -> HttpResponse:
    """Choose a time (or "now"), then confirm on a page that shows exactly who and what
    (``confirmation.send_summary``); only the confirmation schedules."""
    campaign = _campaign_or_404(campaign_id)
    if campaign.status != Campaign.Status.DRAFT:
        return _conflict(request, campaign, InvalidTransition(campaign.status, "schedule"))
    suggested = suggested_time(campaign) if campaign.follow_up_of_id else None
    initial = {"when": timezone.localtime(suggested)} if suggested else None
    form = ScheduleForm(request.POST or None, initial=initial)
    if request.method == "POST" and form.is_valid():
        when = form.chosen_time()
        problems = lifecycle.schedule_problems(campaign)
        if when is not None and when <= timezone.now():
            form.add_error("when", "choose a time in the future, or send now")
        for problem in problems:
            form.add_error(None, problem.message)
        if not form.errors:
            return _confirm(request, campaign, form, when)
    return render(
        request,
        "campaigns/campaign_schedule.html",
        {
            "campaign": campaign,
            "form": form,
            "problems": lifecycle.schedule_problems(campaign),
            "time_zone": timezone.get_current_timezone_name(),
        },
    )


def _confirm(request: HttpRequest, campaign: Campaign, form: ScheduleForm, when) -> HttpResponse:
    try:
        summary = send_summary(campaign, when)
    except SegmentError as exc:
        form.add_error(None, f"A segment no longer works: {exc}")
        return render(
            request,
            "campaigns/campaign_schedule.html",
            {"campaign": campaign, "form": form, "problems": [], "time_zone": ""},
        )
    changed = False
    if request.POST.get("confirm") == "1":
        if request.POST.get("fingerprint") == summary.fingerprint:
            try:
                lifecycle.do_schedule(campaign, when, actor=request.user, confirmed=True)
            except CampaignNotReady as exc:
                for problem in exc.problems:
                    form.add_error("when" if problem.field == "when" else None, problem.message)
                return render(
                    request,
                    "campaigns/campaign_schedule.html",
                    {
                        "campaign": campaign,
                        "form": form,
                        "problems": [],
                        "time_zone": timezone.get_current_timezone_name(),
                    },
                )
            except InvalidTransition as exc:
                return _conflict(request, campaign, exc)
            people = f"{summary.recipients:,} {'person' if summary.recipients == 1 else 'people'}"
            if when is None:
                messages.success(request, f"Sending to {people} starts in a moment.")
            else:
                messages.success(
                    request,
                    f"Scheduled for {describe_when(campaign.scheduled_at)}, to {people} as "
                    "things stand.",
                )
            return redirect("campaigns:detail", campaign_id=campaign.pk)
        changed = True
    return render(
        request,
        "campaigns/campaign_confirm.html",
        {
            "campaign": campaign,
            "summary": summary,
            "when_text": describe_when(when),
            "when_value": form.data.get("when", ""),
            "send_now": when is None,
            "changed": changed,
        },
    )


@require_POST
@operator_required(perm="content")
def campaign_request_confirmation(request: HttpRequest, campaign_id: int) -> HttpResponse:
    """Someone who may not send it (a writer; with four-eyes sending, its author) asks the
    operators who may: they are emailed a link to its page."""
    campaign = _campaign_or_404(campaign_id)
    try:
        second_operator.do_request_confirmation(campaign, actor=request.user)
    except CampaignNotReady as exc:
        messages.error(request, f"Not done: {exc}.")
    else:
        messages.success(
            request, "Asked: the operators who may send it were emailed a link to this page."
        )
    return redirect("campaigns:detail", campaign_id=campaign.pk)


# One POST view per button; each calls its action and reports the result.
def _button(action, done: str):
    @require_POST
    @operator_required(perm="send")
    def view(request: HttpRequest, campaign_id: int) -> HttpResponse:
        campaign = _campaign_or_404(campaign_id)
        try:
            result = action(campaign, actor=request.user)
        except InvalidTransition as exc:
            return _conflict(request, campaign, exc)
        except CampaignNotReady as exc:  # resuming what changed needs a second operator
            messages.error(request, f"Not done: {exc.message}.")
            return redirect("campaigns:detail", campaign_id=campaign.pk)
        if isinstance(result, Campaign) and result.pk != campaign.pk:  # a clone
            messages.success(request, done)
            return redirect("campaigns:edit", campaign_id=result.pk)
        messages.success(request, done.format(result=result))
        return redirect("campaigns:detail", campaign_id=campaign.pk)

    view.__name__ = f"campaign_{action.__name__.removeprefix('do_')}"
    return view


campaign_pause = _button(lifecycle.do_pause, "Paused: nothing more is sent until you resume.")
campaign_resume = _button(lifecycle.do_resume, "Resumed.")
campaign_cancel = _button(lifecycle.do_cancel, "Cancelled; {result} queued message(s) dropped.")
campaign_unschedule = _button(lifecycle.do_unschedule, "Back to draft.")
campaign_clone = _button(lifecycle.do_clone, "Copied into a new draft.")
campaign_retry = _button(lifecycle.do_retry_failed, "{result} failed message(s) queued again.")


@require_POST
@operator_required(perm="content")
def campaign_archive(request: HttpRequest, campaign_id: int) -> HttpResponse:
    campaign = _campaign_or_404(campaign_id)
    lifecycle.do_set_archive(campaign, request.POST.get("archive") == "1", actor=request.user)
    messages.success(
        request,
        "Shown on the public archive once sent." if campaign.archive else "Not in the archive.",
    )
    return redirect("campaigns:detail", campaign_id=campaign.pk)
