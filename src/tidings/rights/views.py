"""Operator pages of the rights app: the request queue, one request, and the audit log.

Every view needs the "privacy" permission (privacy officers and owners).  Each: authorise, parse,
one action, respond.
"""

from __future__ import annotations

from datetime import date, datetime, time, timedelta

from django.contrib import messages
from django.core.paginator import Paginator
from django.db.models import Q
from django.http import HttpRequest, HttpResponse, HttpResponseBase, HttpResponseRedirect
from django.shortcuts import get_object_or_404, render
from django.urls import reverse
from django.utils import timezone
from django.views.decorators.http import require_http_methods, require_POST

from tidings.audience.emails import InvalidEmail
from tidings.lib.access import operator_required
from tidings.lib.csv_export import streamed_csv
from tidings.lib.models import AuditEntry

from .actions import (
    KIND_LABELS,
    RightsError,
    do_create_rights_request,
    do_export_package,
    do_extend_rights_request,
    do_fulfil_rights_request,
    do_rectify_contact,
    do_refuse_rights_request,
    do_start_rights_request,
    do_verify_rights_request,
    urgency,
)
from .forms import AuditFilterForm, OperatorRequestForm, ReasonForm, RectifyForm
from .models import RightsRequest
from .public_views import package_response

QUEUE_PAGE = 50
AUDIT_PAGE = 100
FILTERS = {
    "open": Q(state__in=RightsRequest.OPEN_STATES),
    "closed": ~Q(state__in=RightsRequest.OPEN_STATES),
    "all": Q(),
}


@operator_required(perm="privacy")
@require_http_methods(["GET", "HEAD"])
def queue(request: HttpRequest) -> HttpResponse:
    show = request.GET.get("show", "open")
    if show not in FILTERS:
        show = "open"
    requests = RightsRequest.objects.filter(FILTERS[show]).order_by("due_on", "pk")
    page = Paginator(requests, QUEUE_PAGE).get_page(request.GET.get("page"))
    today = timezone.localdate()
    rows = [(r, urgency(r, today), KIND_LABELS[r.kind]) for r in page.object_list]
    return render(
        request,
        "rights/queue.html",
        {"rows": rows, "page": page, "show": show, "filters": list(FILTERS), "today": today},
    )


@operator_required(perm="privacy")
@require_http_methods(["GET", "HEAD", "POST"])
def new_request(request: HttpRequest) -> HttpResponse:
    form = OperatorRequestForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        try:
            created = do_create_rights_request(
                form.cleaned_data["kind"],
                form.cleaned_data["email"],
                details=form.cleaned_data["details"],
                channel=form.cleaned_data["channel"],
                verified=form.cleaned_data["verified"],
                actor=request.user,
            )
        except (InvalidEmail, RightsError) as exc:
            form.add_error(None, str(exc))
        else:
            messages.success(request, f"Request #{created.pk} recorded.")
            return HttpResponseRedirect(reverse("privacy:request", args=[created.pk]), status=303)
    return render(request, "rights/new_request.html", {"form": form})


@operator_required(perm="privacy")
@require_http_methods(["GET", "HEAD"])
def request_detail(request: HttpRequest, pk: int) -> HttpResponse:
    rights_request = get_object_or_404(RightsRequest.objects.select_related("contact"), pk=pk)
    rectify_form = None
    if (
        rights_request.kind == RightsRequest.Kind.RECTIFY
        and rights_request.state != RightsRequest.State.RECEIVED
        and rights_request.is_open
        and rights_request.contact is not None
    ):
        contact = rights_request.contact
        rectify_form = RectifyForm(initial={n: getattr(contact, n) for n in RectifyForm().fields})
    entries = AuditEntry.objects.filter(
        object_type=RightsRequest._meta.label_lower, object_id=str(rights_request.pk)
    ).select_related("actor")
    return render(
        request,
        "rights/request_detail.html",
        {
            "r": rights_request,
            "kind_label": KIND_LABELS[rights_request.kind],
            "urgency": urgency(rights_request, timezone.localdate()),
            # Two reasons on one page: each its own ids, so each label names its own box.
            "extend_form": ReasonForm(auto_id="id_extend_%s"),
            "refuse_form": ReasonForm(auto_id="id_refuse_%s"),
            "rectify_form": rectify_form,
            "entries": entries,
        },
    )


def _act(request: HttpRequest, pk: int, action, success: str) -> HttpResponse:
    """Run one action on the request and go back to its page, with its outcome as a message."""
    rights_request = get_object_or_404(RightsRequest, pk=pk)
    try:
        action(rights_request)
    except RightsError as exc:
        messages.error(request, str(exc).capitalize() + ".")
    else:
        messages.success(request, success)
    return HttpResponseRedirect(reverse("privacy:request", args=[pk]), status=303)


@operator_required(perm="privacy")
@require_POST
def verify(request: HttpRequest, pk: int) -> HttpResponse:
    return _act(
        request,
        pk,
        lambda r: do_verify_rights_request(r, actor=request.user),
        "Identity verified.",
    )


@operator_required(perm="privacy")
@require_POST
def start(request: HttpRequest, pk: int) -> HttpResponse:
    return _act(
        request, pk, lambda r: do_start_rights_request(r, actor=request.user), "Marked in progress."
    )


@operator_required(perm="privacy")
@require_POST
def fulfil(request: HttpRequest, pk: int) -> HttpResponse:
    return _act(
        request,
        pk,
        lambda r: do_fulfil_rights_request(r, actor=request.user),
        "Done: the person has been sent a receipt.",
    )


def _with_reason(request: HttpRequest, pk: int, action, success: str) -> HttpResponse:
    form = ReasonForm(request.POST)
    if not form.is_valid():
        messages.error(request, "Give a reason: the person is told it.")
        return HttpResponseRedirect(reverse("privacy:request", args=[pk]), status=303)
    reason = form.cleaned_data["reason"]
    return _act(request, pk, lambda r: action(r, reason, actor=request.user), success)


@operator_required(perm="privacy")
@require_POST
def extend(request: HttpRequest, pk: int) -> HttpResponse:
    return _with_reason(
        request, pk, do_extend_rights_request, "Extended: the person has been told why."
    )


@operator_required(perm="privacy")
@require_POST
def refuse(request: HttpRequest, pk: int) -> HttpResponse:
    return _with_reason(
        request, pk, do_refuse_rights_request, "Refused: the person has been told why."
    )


@operator_required(perm="privacy")
@require_POST
def rectify(request: HttpRequest, pk: int) -> HttpResponse:
    rights_request = get_object_or_404(RightsRequest.objects.select_related("contact"), pk=pk)
    form = RectifyForm(request.POST)
    if rights_request.contact is None or not form.is_valid():
        problems = [str(e) for errors in form.errors.values() for e in errors]
        messages.error(request, " ".join(problems) or "Nothing to correct: check the values.")
        return HttpResponseRedirect(reverse("privacy:request", args=[pk]), status=303)
    return _act(
        request,
        pk,
        lambda r: do_rectify_contact(
            rights_request.contact, form.cleaned_data, request=r, actor=request.user
        ),
        "Corrected: the person has been sent a receipt.",
    )


@operator_required(perm="privacy")
@require_http_methods(["GET", "HEAD"])
def package(request: HttpRequest, pk: int) -> HttpResponse:
    """The access package of a verified access request, for the privacy officer to send."""
    rights_request = get_object_or_404(RightsRequest.objects.select_related("contact"), pk=pk)
    try:
        data = do_export_package(rights_request, actor=request.user)
    except RightsError as exc:
        messages.error(request, str(exc))
        return HttpResponseRedirect(reverse("privacy:request", args=[pk]), status=303)
    return package_response(rights_request, data)


# --- the audit log ----------------------------------------------------------------------------
AUDIT_COLUMNS = ["id", "at", "action", "actor", "object_type", "object_id", "details"]


def _audit_entries(form: AuditFilterForm):
    entries = AuditEntry.objects.select_related("actor").order_by("-at", "-pk")
    if not form.is_valid():
        return entries.none()
    data = form.cleaned_data
    if data["action"]:
        entries = entries.filter(action__startswith=data["action"].strip())
    if data["object_type"]:
        entries = entries.filter(object_type=data["object_type"].strip().lower())
    if data["object_id"]:
        entries = entries.filter(object_id=data["object_id"].strip())
    if data["actor"]:
        who = data["actor"].strip()
        entries = entries.filter(Q(actor__username=who) | Q(actor_label=who))
    # The days are the controller's (TIME_ZONE), as the log shows its times.
    if data["since"]:
        entries = entries.filter(at__gte=_midnight(data["since"]))
    if data["until"]:
        entries = entries.filter(at__lt=_midnight(data["until"] + timedelta(days=1)))
    return entries


def _midnight(day: date) -> datetime:
    return timezone.make_aware(datetime.combine(day, time.min))


def _actor(entry: AuditEntry) -> str:
    return entry.actor.get_username() if entry.actor else entry.actor_label


@operator_required(perm="privacy")
@require_http_methods(["GET", "HEAD"])
def audit_log(request: HttpRequest) -> HttpResponseBase:
    form = AuditFilterForm(request.GET or None)
    if not request.GET:
        form = AuditFilterForm({})
    entries = _audit_entries(form)
    if request.GET.get("format") == "csv":
        import json

        rows = (
            [
                e.pk,
                e.at.isoformat(),
                e.action,
                _actor(e),
                e.object_type,
                e.object_id,
                json.dumps(e.details, ensure_ascii=False, sort_keys=True),
            ]
            for e in entries.iterator(chunk_size=2000)
        )
        return streamed_csv("audit-log.csv", AUDIT_COLUMNS, rows)
    page = Paginator(entries, AUDIT_PAGE).get_page(request.GET.get("page"))
    query = request.GET.copy()
    query.pop("page", None)
    query.pop("format", None)
    return render(
        request,
        "rights/audit_log.html",
        {
            "form": form,
            "page": page,
            "rows": [(e, _actor(e)) for e in page.object_list],
            "query": query.urlencode(),
        },
    )
