"""Operator pages of the CRM's work: "My work", status/owner/next action, notes, replies, bulk
changes, held requests, preferences, the licence report and the support mail that could not be
processed.  Authorise, parse, one action, respond."""

from __future__ import annotations

from typing import Any

from django.contrib import messages
from django.http import FileResponse, Http404, HttpRequest, HttpResponse, HttpResponseBase
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse
from django.utils import timezone
from django.views.decorators.http import require_POST

from tidings.lib.access import OperatorRequest, operator_required
from tidings.lib.csv_export import streamed_csv

from . import conversations, queues, support, work
from .actions import CrmError
from .forms import BulkForm, NoteForm, PreferenceForm, ReplyForm, SearchForm, WorkForm
from .kinds import KINDS, WorkKind
from .models import (
    ConversationAttachment,
    InboundMail,
    OperatorPreference,
    SupportRequest,
)


def _work_kind(kind: str) -> WorkKind:
    records = KINDS.get(kind)
    if not isinstance(records, WorkKind):
        raise Http404("no such work")
    return records


def _problems(request: HttpRequest, form: Any) -> None:
    for errors in form.errors.values():
        for error in errors:
            messages.error(request, error)


# --- My work ----------------------------------------------------------------------------------
@operator_required(perm="people")
def my_work(request: HttpRequest) -> HttpResponse:
    """The CRM's front page: the operator's work, what is due, what nobody has yet; with a
    search over every kind of record."""
    search = SearchForm(request.GET or None)
    q = search.cleaned_data["q"] if search.is_valid() else ""
    results = []
    if q:
        for kind in KINDS.values():
            items = list(kind.search(q).order_by("-pk")[:11])
            results.append({"section": kind, "more": len(items) > 10, **kind.table(items[:10])})
    today = timezone.localdate()
    return render(
        request,
        "crm/index.html",
        {
            "sections": list(KINDS.values()),
            "search": search,
            "q": q,
            "results": results,
            "work": None if q else queues.my_work(request.user, today),
            "unprocessed_mail": 0 if q else queues.unprocessed_mail_count(),
        },
    )


# --- one record -------------------------------------------------------------------------------
@require_POST
@operator_required(perm="people")
def work_update(request: HttpRequest, kind: str, pk: int) -> HttpResponse:
    records = _work_kind(kind)
    record = records.get(pk)
    form = WorkForm(request.POST, statuses=records.statuses())
    if form.is_valid():
        values, seen = form.edits()  # only what this operator changed: others' edits stay
        try:
            changed = work.do_update_work(record, actor=request.user, seen=seen, **values)
        except CrmError as exc:
            messages.error(request, str(exc))
        else:
            messages.success(request, "Saved." if changed else "Nothing changed.")
    else:
        _problems(request, form)
    return redirect(records.url(record))


@require_POST
@operator_required(perm="people")
def add_note(request: HttpRequest, kind: str, pk: int) -> HttpResponse:
    records = _work_kind(kind)
    record = records.get(pk)
    form = NoteForm(request.POST)
    if form.is_valid():
        try:
            note = work.do_add_note(record, text=form.cleaned_data["text"], actor=request.user)
        except CrmError as exc:
            messages.error(request, str(exc))
        else:
            if note.redacted_categories:
                messages.warning(
                    request, f"Note added; screening removed {note.redaction_note} from it."
                )
            else:
                messages.success(request, "Note added.")
    else:
        _problems(request, form)
    return redirect(records.url(record))


@operator_required(perm="people")
def reply(request: HttpRequest, kind: str, pk: int) -> HttpResponse:
    """Answer the person by email (GET shows the record's page, where the form is)."""
    records = _work_kind(kind)
    record = records.get(pk)
    if request.method != "POST":
        return redirect(records.url(record))
    form = ReplyForm(request.POST, statuses=records.statuses(exclude=("held", "declined")))
    if form.is_valid():
        try:
            conversations.do_reply(
                record,
                text=form.cleaned_data["text"],
                status=form.cleaned_data["status"],
                actor=request.user,
            )
        except CrmError as exc:
            form.add_error("text", str(exc))
        else:
            messages.success(request, "Reply sent: it is in the outbox queue now.")
            return redirect(records.url(record))
    # The page comes back at its top, and the reply form with its error is at its foot: on a
    # phone the refusal was out of sight, and the reply seemed sent.  The field with the
    # error takes the focus, which brings it into view (and to a keyboard's next key).
    wrong = next((name for name in form.fields if name in form.errors), "text")
    form.fields[wrong].widget.attrs["autofocus"] = True
    context = records.detail_context(record)
    context.update(
        {records.context_name: record, "reply_form": form, **_retention_context(records, record)}
    )
    return render(request, records.template, context, status=400)


def _retention_context(records: WorkKind, record: Any) -> dict[str, Any]:
    from .views import _retention

    return _retention(record, records.extend_section)


@require_POST
@operator_required(perm="people")
def held_decision(request: HttpRequest, pk: int, decision: str) -> HttpResponse:
    request_ = get_object_or_404(SupportRequest, pk=pk)
    try:
        if decision == "accept":
            support.do_accept_request(request_, actor=request.user)
            messages.success(request, "Accepted: it is new work now.")
        else:
            support.do_decline_request(request_, actor=request.user)
            messages.success(request, "Declined.")
    except CrmError as exc:
        messages.error(request, str(exc))
    return redirect("crm:support-request", pk=pk)


# --- several records --------------------------------------------------------------------------
@require_POST
@operator_required(perm="people")
def bulk(request: HttpRequest, kind: str) -> HttpResponse:
    records = _work_kind(kind)
    form = BulkForm(request.POST)
    # Back to the same filtered list (only ever a query string on our own page).
    query = request.POST.get("query", "").replace("\r", "").replace("\n", "")
    back = reverse(records.key) + (f"?{query}" if query else "")
    if not form.is_valid():
        messages.error(request, "Choose at least one record, and what to do with them.")
        return redirect(back)
    chosen = list(records.model.objects.filter(pk__in=form.cleaned_data["ids"]).order_by("pk"))
    close = form.cleaned_data["action"] == "close"
    changed, problems = work.do_bulk_update(
        chosen,
        actor=request.user,
        owner=... if close else form.cleaned_data["owner"],
        close=close,
    )
    messages.success(request, f"{changed} changed.")
    for problem in problems:
        messages.error(request, problem)
    return redirect(back)


# --- the operator's settings ------------------------------------------------------------------
@operator_required(perm="people")
def preferences(request: OperatorRequest) -> HttpResponse:
    current = OperatorPreference.objects.filter(user=request.user).first()
    initial = {
        "notify": current.notify if current else OperatorPreference.Notify.NONE,
        "mail_confirmations": current.mail_confirmations if current else True,
        "mail_sent_back": current.mail_sent_back if current else True,
        "takes_enquiries": bool(current and current.takes_enquiries),
        "takes_requests": bool(current and current.takes_requests),
    }
    form = PreferenceForm(request.POST or None, initial=initial)
    if request.method == "POST" and form.is_valid():
        work.do_set_preferences(request.user, form.cleaned_data)
        messages.success(request, "Saved.")
        return redirect("crm:preferences")
    return render(
        request,
        "crm/preferences.html",
        {"form": form, "email": request.user.email},
    )


# --- the licence report -----------------------------------------------------------------------
@operator_required(perm="people")
def licence_report(request: HttpRequest, pk: int) -> HttpResponseBase:
    contract = KINDS["contracts"].get(pk)
    report = support.licence_report(contract)
    if request.GET.get("format") == "csv":
        name = f"licence-{contract.reference or contract.pk}-{report.on.isoformat()}.csv"
        return streamed_csv(name, support.CSV_HEADER, report.csv_rows())
    return render(request, "crm/licence_report.html", {"contract": contract, "report": report})


# --- support mail that could not be processed ------------------------------------------------
@operator_required(perm="people")
def inbound_list(request: HttpRequest) -> HttpResponse:
    from .inbound.processing import could_not_be_read, headers_of, may_download, may_open_as_new

    rows = InboundMail.objects.order_by("-received_at", "-pk")
    status = request.GET.get("status", "unprocessed")
    if status in InboundMail.Status.values:
        rows = rows.filter(status=status)
    shown = [
        {  # who wrote what, so that an operator can check it
            "row": row,
            "headers": headers_of(row) if row.status == "unprocessed" else ("", ""),
            "may_open": may_open_as_new(row),
            "unreadable": could_not_be_read(row),
            "kept": row.status == "unprocessed" and bool(row.raw),
        }
        for row in rows[:200]
    ]
    return render(
        request,
        "crm/inbound_list.html",
        {
            "rows": shown,
            "status": status,
            "statuses": InboundMail.Status.choices,
            "may_download": may_download(request.user),
        },
    )


@operator_required(perm="privacy")
def inbound_message(request: OperatorRequest, pk: int) -> FileResponse:
    """A kept mail's message as it came (an .eml), for an operator to read what tidings could
    not.  Unscreened: only those who may see unscreened personal data (``may_download``)."""
    from .inbound.processing import do_download_inbound_mail

    try:
        raw = do_download_inbound_mail(get_object_or_404(InboundMail, pk=pk), actor=request.user)
    except ValueError:
        raise Http404("its message is no longer kept") from None
    from io import BytesIO

    # Always a download, never shown inline: the message is whatever its sender sent.
    return FileResponse(
        BytesIO(raw),
        as_attachment=True,
        filename=f"inbound-mail-{pk}.eml",
        content_type="message/rfc822",
    )


@require_POST
@operator_required(perm="people")
def inbound_open(request: HttpRequest, pk: int) -> HttpResponse:
    from .inbound.processing import do_open_as_new

    row = do_open_as_new(get_object_or_404(InboundMail, pk=pk), actor=request.user)
    if row.status == InboundMail.Status.UNPROCESSED:
        messages.error(request, f"Still unprocessed: {row.reason}")
    else:
        messages.success(request, f"Processed: {row.reason}")
    return redirect("crm:inbound")


@require_POST
@operator_required(perm="people")
def inbound_retry(request: HttpRequest, pk: int) -> HttpResponse:
    from .inbound.processing import do_retry_inbound_mail

    row = do_retry_inbound_mail(get_object_or_404(InboundMail, pk=pk))
    if row.status == InboundMail.Status.UNPROCESSED:
        messages.error(request, f"Still unprocessed: {row.reason}")
    else:
        messages.success(request, f"Processed: {row.reason}")
    return redirect("crm:inbound")


@operator_required(perm="people")
def attachment(request: HttpRequest, pk: int) -> FileResponse:
    kept = get_object_or_404(ConversationAttachment, pk=pk)
    from io import BytesIO

    # Always a download, never shown inline: the file is whatever the sender sent.
    response = FileResponse(
        BytesIO(bytes(kept.data)),
        as_attachment=True,
        filename=kept.filename,
        content_type="application/octet-stream",
    )
    return response
