"""Operator pages: contacts, lists, suppression, exports.  Authorise, parse, one action, respond."""

from __future__ import annotations

from typing import Any

from django.contrib import messages
from django.db.models import Count, Q, QuerySet
from django.http import HttpRequest, HttpResponse, HttpResponseBase
from django.shortcuts import redirect, render
from django.urls import reverse
from django.views.decorators.http import require_POST

from tidings.lib.access import operator_required
from tidings.lib.audit import audit
from tidings.lib.csv_export import streamed_csv
from tidings.lib.edits import EditConflict

from . import contact_panels, operator
from .access import contact_or_404, list_or_404
from .contacts import MERGE_CANDIDATES, keyset_page, merge_candidates, search_contacts
from .emails import InvalidEmail, email_domain, email_hmac, normalise_email
from .merge import MergeError, do_merge_contacts, twins_of
from .models import ConsentEvent, Contact, MailingList, Subscription, SuppressedDomain, Suppression
from .operator_forms import (
    BulkListForm,
    ContactFilterForm,
    ContactForm,
    ContactMergeForm,
    MailingListForm,
    SuppressionPasteForm,
    contact_fields,
)
from .segments import SegmentError, compile_segment
from .suppression import do_add_suppressions, do_remove_suppression, domain_and_parents


def _filtered(request: HttpRequest) -> tuple[ContactFilterForm, QuerySet[Contact]]:
    form = ContactFilterForm(request.GET or None)
    data = form.cleaned_data if form.is_valid() else {}
    chosen = data.get("list")
    contacts = search_contacts(
        data.get("q", ""), list_id=chosen.pk if chosen else None, status=data.get("status", "")
    )
    segment = data.get("segment")
    if segment is not None:
        try:
            contacts = contacts.filter(compile_segment(segment.query))
        except SegmentError as exc:
            form.add_error("segment", f"This segment no longer works: {exc}")
            contacts = contacts.none()
    return form, contacts


@operator_required(perm="people")
def contact_list(request: HttpRequest) -> HttpResponse:
    form, contacts = _filtered(request)
    bulk = BulkListForm(request.POST or None)
    if request.method == "POST" and bulk.is_valid():
        data = bulk.cleaned_data
        if request.POST.get("scope") == "selected":
            ids = [int(i) for i in request.POST.getlist("ids") if i.isdigit()]
            contacts = Contact.objects.filter(pk__in=ids)
        done = operator.do_bulk_list_action(
            contacts,
            data["action"],
            data["target"],
            consent_source=data.get("consent_source", ""),
            actor=request.user,
        )
        verb = "added to" if data["action"] == "add" else "unsubscribed from"
        messages.success(request, f"{done} contact(s) {verb} {data['target'].name}.")
        return redirect(request.get_full_path())
    after = request.GET.get("after", "")
    page = keyset_page(contacts, int(after) if after.isdigit() else None)
    query = request.GET.copy()
    query.pop("after", None)
    return render(
        request,
        "audience/contact_list.html",
        {"filter": form, "page": page, "bulk": bulk, "query": query.urlencode()},
    )


@operator_required(perm="people")
def contact_detail(request: HttpRequest, contact_id: int) -> HttpResponse:
    contact = contact_or_404(contact_id)
    subscriptions = contact.subscriptions.select_related("mailing_list").order_by(
        "mailing_list__name"
    )
    events = ConsentEvent.objects.filter(contact=contact).select_related("mailing_list", "wording")
    subscribed_ids = {s.mailing_list_id for s in subscriptions}
    return render(
        request,
        "audience/contact_detail.html",
        {
            "contact": contact,
            "fields": [(f, getattr(contact, f)) for f in contact_fields()],
            "subscriptions": subscriptions,
            "events": events,
            "panels": contact_panels.panels_for(contact),
            "other_lists": MailingList.objects.exclude(pk__in=subscribed_ids),
            "suppressed": Suppression.objects.filter(email_hmac=email_hmac(contact.email)).first(),
        },
    )


@operator_required(perm="people")
def contact_edit(request: HttpRequest, contact_id: int) -> HttpResponse:
    contact = contact_or_404(contact_id)
    form = ContactForm(request.POST or None, instance=Contact.objects.get(pk=contact.pk))
    if request.method == "POST" and form.is_valid():
        values, seen = form.edits()  # only what this operator changed: others' edits stay
        try:
            changed = operator.do_update_contact(contact, values, actor=request.user, seen=seen)
        except InvalidEmail as exc:
            form.add_error("email", str(exc))
        except operator.RequiredFieldEmptied as exc:
            form.add_error(exc.field, f"{exc}.")
        except EditConflict as clash:
            current = Contact.objects.get(pk=contact.pk)
            form.reopen({name: getattr(current, name) for name in form.fields})
            labels = ", ".join(str(form.fields[name].label) for name in clash.fields)
            form.add_error(
                None,
                f"Someone else changed {labels} since you opened this page, and nothing was "
                "saved. The contact's page shows what it reads now; save again to replace it "
                "with what is in this form.",
            )
        else:
            messages.success(request, f"Saved ({len(changed)} field(s) changed).")
            return redirect("audience:contact", contact_id=contact.pk)
    return render(request, "audience/contact_edit.html", {"contact": contact, "form": form})


@operator_required(perm="people")
def contact_merge(request: HttpRequest, contact_id: int) -> HttpResponse:
    """Merge another contact into this one ("Merge with…"): the contacts with this one's
    address once case is folded (the doctor's ``contacts.addresses``) are offered, and those
    the search box (``?q=``, an address, a name or an id) finds, to pick from."""
    contact = contact_or_404(contact_id)
    twins = twins_of(contact)
    query = request.GET.get("q", "").strip()[:200]
    candidates = merge_candidates(contact, query, first=twins)
    more = len(candidates) > MERGE_CANDIDATES
    candidates = candidates[:MERGE_CANDIDATES]
    initial = {"other": candidates[0].pk} if len(candidates) == 1 or twins else {}
    form = ContactMergeForm(
        request.POST or None, keep=contact, candidates=candidates, initial=initial
    )
    if request.method == "POST" and form.is_valid():
        drop = form.cleaned_data["other"]
        try:
            do_merge_contacts(
                contact,
                drop,
                actor=request.user,
                different_addresses=form.cleaned_data["different_addresses"],
            )
        except MergeError as exc:
            form.add_error(None, exc.message)
        else:
            messages.success(request, f"Contact #{drop.pk} was merged into this one.")
            return redirect("audience:contact", contact_id=contact.pk)
    context = {
        "contact": contact,
        "form": form,
        "twins": twins,
        "query": query,
        "candidates": candidates,
        "found": [c for c in candidates if c not in twins],
        "more": more,
    }
    return render(request, "audience/contact_merge.html", context)


@require_POST
@operator_required(perm="people")
def contact_lists(request: HttpRequest, contact_id: int) -> HttpResponse:
    contact = contact_or_404(contact_id)
    mailing_list = list_or_404(int(request.POST.get("list", 0) or 0))
    if request.POST.get("action") == "add":
        source = request.POST.get("consent_source", "").strip()
        if not source:
            messages.error(request, "Say how this person gave their consent.")
        else:
            operator.do_add_to_list(
                [contact.pk], mailing_list, consent_source=source, actor=request.user
            )
            messages.success(request, f"Subscribed to {mailing_list.name}.")
    else:
        operator.do_remove_from_list([contact.pk], mailing_list, actor=request.user)
        messages.success(request, f"Unsubscribed from {mailing_list.name}.")
    return redirect("audience:contact", contact_id=contact.pk)


@operator_required(perm="content")
def list_index(request: HttpRequest) -> HttpResponse:
    lists = MailingList.objects.annotate(
        confirmed=Count("subscriptions", filter=Q(subscriptions__status="confirmed")),
        pending=Count("subscriptions", filter=Q(subscriptions__status="pending")),
        unsubscribed=Count("subscriptions", filter=Q(subscriptions__status="unsubscribed")),
    )
    return render(request, "audience/list_index.html", {"lists": lists})


@operator_required(perm="content")
def list_edit(request: HttpRequest, list_id: int | None = None) -> HttpResponse:
    instance = list_or_404(list_id) if list_id else None
    form = MailingListForm(request.POST or None, instance=instance)
    if request.method == "POST" and form.is_valid():
        mailing_list = operator.do_save_list(form, actor=request.user)
        messages.success(request, f"Saved list {mailing_list.name}.")
        return redirect("audience:lists")
    return render(request, "audience/list_edit.html", {"form": form, "instance": instance})


@require_POST
@operator_required(perm="content")
def list_close(request: HttpRequest, list_id: int) -> HttpResponse:
    mailing_list = list_or_404(list_id)
    operator.do_close_list(mailing_list, actor=request.user)
    messages.success(request, f"Closed {mailing_list.name}: its subscriptions now expire.")
    return redirect("audience:lists")


@operator_required(perm="privacy")
def list_export(request: HttpRequest, list_id: int) -> HttpResponseBase:
    """The list's confirmed subscribers as CSV, streamed."""
    mailing_list = list_or_404(list_id)
    fields = contact_fields()
    subs = (
        Subscription.objects.filter(mailing_list=mailing_list, status="confirmed")
        .select_related("contact")
        .order_by("pk")
    )
    rows = (
        [
            *(getattr(s.contact, f) for f in fields),
            s.confirmed_at.isoformat() if s.confirmed_at else "",
        ]
        for s in subs.iterator(chunk_size=2000)
    )
    audit("export.list", actor=request.user, obj=mailing_list)
    return streamed_csv(f"list-{mailing_list.pk}.csv", [*fields, "confirmed_at"], rows)


@operator_required(perm="privacy")
def suppression_index(request: HttpRequest) -> HttpResponse:
    paste = SuppressionPasteForm(request.POST or None)
    if request.method == "POST" and paste.is_valid():
        result = do_add_suppressions(paste.cleaned_data["entries"].splitlines(), actor=request.user)
        messages.success(
            request,
            f"Suppressed {result.added_addresses} address(es) and {result.added_domains} "
            f"domain(s); {result.already} already were.",
        )
        if result.invalid_lines:
            lines = ", ".join(str(n) for n in result.invalid_lines[:20])
            messages.error(request, f"Not an address or domain on line(s) {lines}.")
        return redirect("audience:suppression")
    checked: dict[str, Any] | None = None
    check = request.GET.get("check", "").strip()
    if check:
        try:
            address = normalise_email(check)
        except InvalidEmail:
            checked = {"invalid": True}
        else:
            checked = {
                "entry": Suppression.objects.filter(email_hmac=email_hmac(address)).first(),
                "domain": SuppressedDomain.objects.filter(
                    domain__in=domain_and_parents(email_domain(address))
                ).first(),
            }
    return render(
        request,
        "audience/suppression.html",
        {
            "paste": paste,
            "by_reason": Suppression.objects.values("reason")
            .annotate(n=Count("pk"))
            .order_by("reason"),
            "domains": SuppressedDomain.objects.order_by("domain"),
            "checked": checked,
            "check": check,
        },
    )


@require_POST
@operator_required(perm="privacy")
def suppression_remove(request: HttpRequest) -> HttpResponse:
    kind = request.POST.get("kind")
    model = SuppressedDomain if kind == "domain" else Suppression
    entry = model.objects.filter(pk=request.POST.get("id") or 0).first()
    if entry is not None:
        do_remove_suppression(entry, actor=request.user, cause="operator")
        messages.success(request, "Removed from the suppression list.")
    return redirect(reverse("audience:suppression"))
