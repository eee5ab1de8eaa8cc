"""Operator pages of the CRM.  Authorise, parse, one action, respond.

Every kind of record (organisations, enquiries, orders, contracts, support contacts and
requests) has the same four pages, served by four generic views over the table of record kinds
in ``crm/kinds.py``: a list (one template, ``crm/record_list.html``: a search box, a table of
cells, keyset pages of 50, newest first, never a COUNT), a record's page, and the new and edit
forms (``crm/record_form.html``).  Each record page shows its retention status
(``rights.retention.retention_status``) and, where the policy allows it, the "extend on request"
form.
"""

from __future__ import annotations

from typing import Any

from django.contrib import messages
from django.db.models import Model
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils import timezone
from django.views.decorators.http import require_POST

from tidings.audience.actions import FieldNotAllowed
from tidings.audience.contacts import keyset_page
from tidings.audience.emails import InvalidEmail
from tidings.lib.access import operator_required
from tidings.policy import get_policy
from tidings.policy.screening import warm_up
from tidings.rights.retention import RetentionStatus, instant, retention_status, sweep_for

from . import actions
from .access import enquiry_or_404, extendable_or_404
from .forms import BulkForm, ExtendForm
from .kinds import KINDS, RecordKind
from .models import SupportRequest


def _kind(kind: str) -> RecordKind:
    try:
        return KINDS[kind]
    except KeyError:
        raise Http404("no such records") from None


def _not_in_policy(request: HttpRequest, records: RecordKind) -> HttpResponse | None:
    """A page saying the policy has no purpose for these records, when it has none: their forms
    ask that purpose's fields (a company's own policy may keep no orders or support contracts)."""
    if not records.purpose or records.purpose in get_policy().purposes:
        return None
    return render(request, "crm/not_in_policy.html", {"section": records}, status=404)


def _form_page(
    request: HttpRequest, form: Any, *, title: str, cancel: str, intro: str = ""
) -> HttpResponse:
    return render(
        request,
        "crm/record_form.html",
        {"form": form, "title": title, "cancel": cancel, "intro": intro},
    )


def _refused(form: Any, exc: Exception) -> None:
    """An action's refusal, on the form: a bad address on the email field, the rest on top."""
    field = "email" if isinstance(exc, InvalidEmail) and "email" in form.fields else None
    form.add_error(field, str(exc))


REFUSALS = (FieldNotAllowed, InvalidEmail, actions.CrmError)


def _extend_form(record: Model, status: RetentionStatus, data: Any = None) -> ExtendForm:
    """The "extend on request" form, suggesting one more period after the current date."""
    initial = {}
    rule = get_policy().retention_for(sweep_for(record).kind)
    if status.expires_at is not None and rule.duration is not None:
        initial["until"] = rule.duration.after(timezone.localdate(instant(status.expires_at)))
    return ExtendForm(data, initial=initial)


def _retention(record: Model, section: str = "") -> dict[str, Any]:
    """The retention status of a record page, and its "extend on request" form if allowed."""
    if isinstance(record, SupportRequest):
        record = record.support_contact  # kept as long as its support contact
    status = retention_status(record)
    return {
        "retention": status,
        "record": record,
        "extend_section": section,
        "extend_form": _extend_form(record, status) if status.extendable and section else None,
    }


# --- the four pages of every kind of record ---------------------------------------------------
@operator_required(perm="people")
def record_list(request: HttpRequest, kind: str) -> HttpResponse:
    records = _kind(kind)
    search, selected = records.list_query(request)
    after = request.GET.get("after", "")
    page = keyset_page(selected, int(after) if after.isdigit() else None)
    query = request.GET.copy()
    query.pop("after", None)
    return render(
        request,
        "crm/record_list.html",
        {
            "section": records,
            "search": search,
            "page": page,
            "query": query.urlencode(),
            **records.table(page.items),
            **({"bulk": BulkForm(), "can_bulk": True} if records.work else {}),
        },
    )


@operator_required(perm="people")
def record_detail(request: HttpRequest, kind: str, pk: int) -> HttpResponse:
    records = _kind(kind)
    record = records.get(pk)
    context: dict[str, Any] = {records.context_name: record, **records.detail_context(record)}
    if records.work:
        warm_up()  # its reply and note are screened: the engine loads while the operator types
    if records.shows_retention:
        context |= _retention(record, records.extend_section)
    return render(request, records.template, context)


@operator_required(perm="people")
def record_new(request: HttpRequest, kind: str) -> HttpResponse:
    records = _kind(kind)
    if refused := _not_in_policy(request, records):
        return refused
    form = records.new_form(request)
    if request.method == "POST" and form.is_valid():
        try:
            saved = records.create(form, request.user)
        except REFUSALS as exc:
            _refused(form, exc)
        else:
            messages.success(request, saved.message)
            return redirect(records.url(saved.record))
    return _form_page(
        request,
        form,
        title=records.new_title,
        cancel=reverse(records.key),
        intro=records.new_intro,
    )


@operator_required(perm="people")
def record_edit(request: HttpRequest, kind: str, pk: int) -> HttpResponse:
    records = _kind(kind)
    record = records.get(pk)
    if refused := _not_in_policy(request, records):
        return refused
    form = records.edit_form(request, record)
    if request.method == "POST" and form.is_valid():
        try:
            records.update(record, form, request.user)
        except REFUSALS as exc:
            _refused(form, exc)
        else:
            messages.success(request, "Saved.")
            return redirect(records.url(record))
    return _form_page(
        request,
        form,
        title=records.edit_title(record),
        cancel=records.url(record),
        intro=records.edit_intro,
    )


# --- enquiries --------------------------------------------------------------------------------
@require_POST
@operator_required(perm="people")
def enquiry_contacted(request: HttpRequest, pk: int) -> HttpResponse:
    enquiry = enquiry_or_404(pk)
    actions.do_record_enquiry_contact(enquiry, actor=request.user)
    messages.success(request, "Recorded: we were in touch today.")
    return redirect("crm:enquiry", pk=enquiry.pk)


# --- keeping a record longer on request -------------------------------------------------------
@operator_required(perm="people")
def extend(request: HttpRequest, section: str, pk: int) -> HttpResponse:
    """The person asked us to keep a record longer: who asked, and until when."""
    record, url_name = extendable_or_404(section, pk)
    status = retention_status(record)
    back = reverse(url_name, args=[record.pk])
    if not status.extendable:
        messages.error(request, "The policy does not let these records be kept longer on request.")
        return redirect(back)
    form = _extend_form(record, status, request.POST or None)
    if request.method == "POST" and form.is_valid():
        try:
            actions.do_extend_retention(record, actor=request.user, **form.cleaned_data)
        except actions.CrmError as exc:
            form.add_error("until", str(exc))
        else:
            messages.success(request, "Recorded: it will be kept longer, as the person asked.")
            return redirect(back)
    return render(
        request,
        "crm/extend.html",
        {"record": record, "form": form, "retention": status, "back": back},
    )
