"""Operator pages of the CRM.  Authorise, parse, one action, respond.

Lists share one template (``crm/record_list.html``: a search box, a table of cells, keyset pages
of 50, newest first, never a COUNT); forms share ``crm/record_form.html``.  Each record page shows
its retention status (``rights.retention.retention_status``) and, where the policy allows it, the
"extend on request" form.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

from django import forms
from django.contrib import messages
from django.db.models import Model, QuerySet
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils import timezone
from django.views.decorators.http import require_POST

from tidings.audience.actions import FieldNotAllowed
from tidings.audience.contacts import keyset_page
from tidings.audience.emails import InvalidEmail
from tidings.policy import get_policy
from tidings.rights.retention import RetentionStatus, instant, retention_status, sweep_for
from tidings.web.access import operator_required

from . import actions, queries
from .access import (
    contract_or_404,
    enquiry_or_404,
    extendable_or_404,
    order_or_404,
    organisation_or_404,
    support_contact_or_404,
    support_request_or_404,
)
from .forms import (
    ContractForm,
    EnquiryCreateForm,
    EnquiryEditForm,
    ExtendForm,
    OrderCreateForm,
    OrderEditForm,
    OrganisationForm,
    SearchForm,
    SupportContactCreateForm,
    SupportContactEditForm,
    SupportRequestForm,
    format_lines,
)
from .models import Contract, Enquiry, Order, Organisation, SupportContact, SupportRequest

Cell = tuple[str, str]  # (text, link or "")


@dataclass(frozen=True)
class Section:
    key: str  # URL name of the list: "crm:enquiries"
    title: str
    new_url: str  # URL name of the "new" page
    caption: str


SECTIONS = (
    Section("crm:organisations", "Organisations", "crm:organisation-new", "Organisations"),
    Section("crm:enquiries", "Enquiries", "crm:enquiry-new", "Enquiries, newest first"),
    Section("crm:orders", "Orders", "crm:order-new", "Orders, newest first"),
    Section("crm:contracts", "Contracts", "crm:contract-new", "Contracts, newest first"),
    Section(
        "crm:support-contacts",
        "Support contacts",
        "crm:support-contact-new",
        "Support contacts, newest first",
    ),
    Section(
        "crm:support-requests",
        "Support requests",
        "crm:support-request-new",
        "Support requests, newest first",
    ),
)
_BY_KEY = {s.key: s for s in SECTIONS}


def _day(value: Any) -> str:
    if value is None:
        return "—"
    if hasattr(value, "tzinfo"):
        value = timezone.localtime(value)
    return value.strftime("%-d %b %Y")


def _person(contact) -> str:
    return contact.name or contact.email


# How each kind of record is shown in a table: headers, and the cells of one record.
def _organisation_row(o: Organisation) -> list[Cell]:
    return [(o.name, reverse("crm:organisation", args=[o.pk])), (_day(o.created_at), "")]


def _enquiry_row(e: Enquiry) -> list[Cell]:
    summary = e.message if len(e.message) <= 80 else e.message[:79] + "…"
    return [
        (f"#{e.pk}", reverse("crm:enquiry", args=[e.pk])),
        (_person(e.contact), reverse("audience:contact", args=[e.contact_id])),
        (e.channel, ""),
        (summary, ""),
        (_day(e.last_contact_at), ""),
    ]


def _order_row(o: Order) -> list[Cell]:
    organisation = o.organisation
    return [
        (o.order_reference or f"#{o.pk}", reverse("crm:order", args=[o.pk])),
        (_person(o.contact), reverse("audience:contact", args=[o.contact_id])),
        (
            organisation.name if organisation else "—",
            reverse("crm:organisation", args=[organisation.pk]) if organisation else "",
        ),
        (_day(o.created_at), ""),
    ]


def _contract_row(c: Contract) -> list[Cell]:
    return [
        (c.reference or f"#{c.pk}", reverse("crm:contract", args=[c.pk])),
        (c.organisation.name, reverse("crm:organisation", args=[c.organisation_id])),
        (_day(c.start), ""),
        (_day(c.end) if c.end else "runs on", ""),
    ]


def _support_contact_row(s: SupportContact) -> list[Cell]:
    return [
        (_person(s.contact), reverse("crm:support-contact", args=[s.pk])),
        (s.organisation.name, reverse("crm:organisation", args=[s.organisation_id])),
        (f"left {_day(s.left_employer)}" if s.left_employer else "", ""),
    ]


def _support_request_row(r: SupportRequest) -> list[Cell]:
    return [
        (r.subject, reverse("crm:support-request", args=[r.pk])),
        (r.organisation.name, reverse("crm:organisation", args=[r.organisation_id])),
        (
            _person(r.support_contact.contact),
            reverse("crm:support-contact", args=[r.support_contact_id]),
        ),
        (_day(r.created_at), ""),
    ]


TABLES: dict[str, tuple[list[str], Callable[[Any], list[Cell]]]] = {
    "crm:organisations": (["Name", "Added"], _organisation_row),
    "crm:enquiries": (["Enquiry", "From", "Came by", "Message", "Last contact"], _enquiry_row),
    "crm:orders": (["Order", "Ordered by", "Organisation", "Ordered"], _order_row),
    "crm:contracts": (["Contract", "Organisation", "Starts", "Ends"], _contract_row),
    "crm:support-contacts": (["Person", "Organisation", ""], _support_contact_row),
    "crm:support-requests": (
        ["Subject", "Organisation", "From", "Opened"],
        _support_request_row,
    ),
}


def _table(key: str, records: Iterable[Model]) -> dict[str, Any]:
    headers, row = TABLES[key]
    return {"headers": headers, "rows": [row(r) for r in records]}


def _list_page(
    request: HttpRequest,
    key: str,
    records: QuerySet,
    search: forms.Form,
) -> HttpResponse:
    after = request.GET.get("after", "")
    page = keyset_page(records, int(after) if after.isdigit() else None)
    query = request.GET.copy()
    query.pop("after", None)
    return render(
        request,
        "crm/record_list.html",
        {
            "section": _BY_KEY[key],
            "search": search,
            "page": page,
            "query": query.urlencode(),
            **_table(key, page.items),
        },
    )


def _q(request: HttpRequest) -> tuple[SearchForm, str]:
    form = SearchForm(request.GET or None)
    return form, (form.cleaned_data["q"] if form.is_valid() else "")


def _form_page(
    request: HttpRequest, form: forms.Form, *, title: str, cancel: str, intro: str = ""
) -> HttpResponse:
    return render(
        request,
        "crm/record_form.html",
        {"form": form, "title": title, "cancel": cancel, "intro": intro},
    )


def _person_error(form: forms.Form, exc: Exception) -> None:
    field = "email" if isinstance(exc, InvalidEmail) else None
    form.add_error(field, str(exc))


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


# --- overview ---------------------------------------------------------------------------------
@operator_required(perm="people")
def index(request: HttpRequest) -> HttpResponse:
    """Every section, and with a search, the first matches in each."""
    search, q = _q(request)
    results = []
    if q:
        found = {
            "crm:organisations": queries.search_organisations(q),
            "crm:enquiries": queries.search_enquiries(q),
            "crm:orders": queries.search_orders(q),
            "crm:contracts": queries.search_contracts(q),
            "crm:support-contacts": queries.search_support_contacts(q),
            "crm:support-requests": queries.search_support_requests(q),
        }
        for key, records in found.items():
            items = list(records.order_by("-pk")[:11])
            results.append(
                {"section": _BY_KEY[key], "more": len(items) > 10, **_table(key, items[:10])}
            )
    return render(
        request,
        "crm/index.html",
        {"sections": SECTIONS, "search": search, "q": q, "results": results},
    )


# --- organisations ----------------------------------------------------------------------------
@operator_required(perm="people")
def organisation_list(request: HttpRequest) -> HttpResponse:
    search, q = _q(request)
    return _list_page(request, "crm:organisations", queries.search_organisations(q), search)


@operator_required(perm="people")
def organisation_detail(request: HttpRequest, pk: int) -> HttpResponse:
    organisation = organisation_or_404(pk)
    return render(
        request,
        "crm/organisation_detail.html",
        {
            "organisation": organisation,
            "contracts": organisation.contracts.order_by("-start", "-pk"),
            "support_contacts": _table(
                "crm:support-contacts",
                organisation.support_contacts.select_related("contact", "organisation").order_by(
                    "-pk"
                )[:100],
            ),
            "orders": _table(
                "crm:orders",
                organisation.orders.select_related("contact", "organisation").order_by("-pk")[:100],
            ),
            "requests": _table(
                "crm:support-requests",
                organisation.support_requests.select_related(
                    "organisation", "support_contact__contact"
                ).order_by("-pk")[:100],
            ),
        },
    )


@operator_required(perm="people")
def organisation_edit(request: HttpRequest, pk: int | None = None) -> HttpResponse:
    organisation = organisation_or_404(pk) if pk else None
    initial = {"name": organisation.name, "address": organisation.address} if organisation else {}
    form = OrganisationForm(request.POST or None, initial=initial)
    if request.method == "POST" and form.is_valid():
        if organisation is None:
            organisation = actions.do_create_organisation(actor=request.user, **form.cleaned_data)
            messages.success(request, "Organisation added.")
        else:
            actions.do_update_organisation(organisation, actor=request.user, **form.cleaned_data)
            messages.success(request, "Saved.")
        return redirect("crm:organisation", pk=organisation.pk)
    return _form_page(
        request,
        form,
        title=f"Edit {organisation.name}" if organisation else "New organisation",
        cancel=reverse("crm:organisation", args=[pk]) if pk else reverse("crm:organisations"),
    )


# --- enquiries --------------------------------------------------------------------------------
@operator_required(perm="people")
def enquiry_list(request: HttpRequest) -> HttpResponse:
    search, q = _q(request)
    return _list_page(request, "crm:enquiries", queries.search_enquiries(q), search)


@operator_required(perm="people")
def enquiry_detail(request: HttpRequest, pk: int) -> HttpResponse:
    enquiry = enquiry_or_404(pk)
    return render(
        request, "crm/enquiry_detail.html", {"enquiry": enquiry, **_retention(enquiry, "enquiries")}
    )


@operator_required(perm="people")
def enquiry_new(request: HttpRequest) -> HttpResponse:
    form = EnquiryCreateForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        data = form.cleaned_data
        try:
            enquiry = actions.do_receive_enquiry(
                form.person_values(),
                channel=data["channel"],
                message=data["message"],
                received_at=data.get("received_at"),
                actor=request.user,
            )
        except (FieldNotAllowed, InvalidEmail, actions.CrmError) as exc:
            _person_error(form, exc)
        else:
            messages.success(request, "Enquiry recorded.")
            return redirect("crm:enquiry", pk=enquiry.pk)
    return _form_page(
        request,
        form,
        title="New enquiry",
        cancel=reverse("crm:enquiries"),
        intro="The person's details are the ones the policy's enquiry purpose collects. "
        "An existing contact with the same address is used (only its blank fields are filled).",
    )


@operator_required(perm="people")
def enquiry_edit(request: HttpRequest, pk: int) -> HttpResponse:
    enquiry = enquiry_or_404(pk)
    form = EnquiryEditForm(
        request.POST or None,
        channel=enquiry.channel,
        initial={"channel": enquiry.channel, "message": enquiry.message},
    )
    if request.method == "POST" and form.is_valid():
        try:
            actions.do_update_enquiry(enquiry, actor=request.user, **form.cleaned_data)
        except actions.CrmError as exc:
            form.add_error(None, str(exc))
        else:
            messages.success(request, "Saved.")
            return redirect("crm:enquiry", pk=enquiry.pk)
    return _form_page(
        request, form, title=f"Edit enquiry #{enquiry.pk}", cancel=reverse("crm:enquiry", args=[pk])
    )


@require_POST
@operator_required(perm="people")
def enquiry_contacted(request: HttpRequest, pk: int) -> HttpResponse:
    enquiry = enquiry_or_404(pk)
    actions.do_record_enquiry_contact(enquiry, actor=request.user)
    messages.success(request, "Recorded: we were in touch today.")
    return redirect("crm:enquiry", pk=enquiry.pk)


# --- orders -----------------------------------------------------------------------------------
@operator_required(perm="people")
def order_list(request: HttpRequest) -> HttpResponse:
    search, q = _q(request)
    return _list_page(request, "crm:orders", queries.search_orders(q), search)


@operator_required(perm="people")
def order_detail(request: HttpRequest, pk: int) -> HttpResponse:
    order = order_or_404(pk)
    return render(request, "crm/order_detail.html", {"order": order, **_retention(order, "orders")})


@operator_required(perm="people")
def order_new(request: HttpRequest) -> HttpResponse:
    initial = {}
    if request.GET.get("organisation", "").isdigit():
        initial["organisation"] = request.GET["organisation"]
    form = OrderCreateForm(request.POST or None, initial=initial)
    if request.method == "POST" and form.is_valid():
        try:
            order = actions.do_create_order(
                form.person_values(),
                created_at=form.cleaned_data.get("created_at"),
                actor=request.user,
                **form.order_values(),
            )
        except (FieldNotAllowed, InvalidEmail) as exc:
            _person_error(form, exc)
        else:
            messages.success(request, "Order recorded.")
            return redirect("crm:order", pk=order.pk)
    return _form_page(
        request,
        form,
        title="New order",
        cancel=reverse("crm:orders"),
        intro="The person's details are the ones the policy's order purpose collects.",
    )


@operator_required(perm="people")
def order_edit(request: HttpRequest, pk: int) -> HttpResponse:
    order = order_or_404(pk)
    initial = {
        "organisation": order.organisation_id,
        "order_reference": order.order_reference,
        "lines": format_lines(order.lines),
        "invoice_address": order.invoice_address,
    }
    form = OrderEditForm(request.POST or None, initial=initial)
    if request.method == "POST" and form.is_valid():
        try:
            actions.do_update_order(order, actor=request.user, **form.order_values())
        except FieldNotAllowed as exc:
            form.add_error(None, str(exc))
        else:
            messages.success(request, "Saved.")
            return redirect("crm:order", pk=order.pk)
    return _form_page(
        request,
        form,
        title=f"Edit order {order.order_reference or f'#{order.pk}'}",
        cancel=reverse("crm:order", args=[pk]),
    )


# --- contracts --------------------------------------------------------------------------------
@operator_required(perm="people")
def contract_list(request: HttpRequest) -> HttpResponse:
    search, q = _q(request)
    return _list_page(request, "crm:contracts", queries.search_contracts(q), search)


@operator_required(perm="people")
def contract_detail(request: HttpRequest, pk: int) -> HttpResponse:
    contract = contract_or_404(pk)
    return render(request, "crm/contract_detail.html", {"contract": contract})


@operator_required(perm="people")
def contract_edit(request: HttpRequest, pk: int | None = None) -> HttpResponse:
    contract = contract_or_404(pk) if pk else None
    if contract:
        initial: dict[str, Any] = {
            "reference": contract.reference,
            "start": contract.start,
            "end": contract.end,
        }
    else:
        initial = {"organisation": request.GET.get("organisation") or None}
    form = ContractForm(request.POST or None, initial=initial, with_organisation=contract is None)
    if request.method == "POST" and form.is_valid():
        data = form.cleaned_data
        try:
            if contract is None:
                contract = actions.do_create_contract(
                    data["organisation"],
                    start=data["start"],
                    end=data["end"],
                    reference=data["reference"],
                    actor=request.user,
                )
            else:
                actions.do_update_contract(contract, actor=request.user, **data)
        except actions.CrmError as exc:
            form.add_error(None, str(exc))
        else:
            messages.success(request, "Saved.")
            return redirect("crm:contract", pk=contract.pk)
    return _form_page(
        request,
        form,
        title=f"Edit contract {contract.reference or f'#{contract.pk}'}"
        if contract
        else "New contract",
        cancel=reverse("crm:contract", args=[pk]) if pk else reverse("crm:contracts"),
        intro="When the organisation's last contract ends, the retention clock of its support "
        "contacts starts.",
    )


# --- support contacts -------------------------------------------------------------------------
@operator_required(perm="people")
def support_contact_list(request: HttpRequest) -> HttpResponse:
    search, q = _q(request)
    return _list_page(request, "crm:support-contacts", queries.search_support_contacts(q), search)


@operator_required(perm="people")
def support_contact_detail(request: HttpRequest, pk: int) -> HttpResponse:
    support_contact = support_contact_or_404(pk)
    return render(
        request,
        "crm/support_contact_detail.html",
        {
            "support_contact": support_contact,
            "contracts": support_contact.organisation.contracts.order_by("-start", "-pk"),
            "requests": _table(
                "crm:support-requests",
                support_contact.requests.select_related(
                    "organisation", "support_contact__contact"
                ).order_by("-pk")[:100],
            ),
            **_retention(support_contact, "support-contacts"),
        },
    )


@operator_required(perm="people")
def support_contact_new(request: HttpRequest) -> HttpResponse:
    initial = {"organisation": request.GET.get("organisation") or None}
    form = SupportContactCreateForm(request.POST or None, initial=initial)
    if request.method == "POST" and form.is_valid():
        try:
            support_contact, created = actions.do_add_support_contact(
                form.person_values(),
                organisation=form.cleaned_data["organisation"],
                actor=request.user,
            )
        except (FieldNotAllowed, InvalidEmail) as exc:
            _person_error(form, exc)
        else:
            messages.success(
                request,
                "Support contact added."
                if created
                else "This person already was a support contact there.",
            )
            return redirect("crm:support-contact", pk=support_contact.pk)
    return _form_page(
        request,
        form,
        title="New support contact",
        cancel=reverse("crm:support-contacts"),
        intro="The person's details are the ones the policy's contract support purpose collects.",
    )


@operator_required(perm="people")
def support_contact_edit(request: HttpRequest, pk: int) -> HttpResponse:
    support_contact = support_contact_or_404(pk)
    form = SupportContactEditForm(
        request.POST or None, initial={"left_employer": support_contact.left_employer}
    )
    if request.method == "POST" and form.is_valid():
        actions.do_update_support_contact(
            support_contact, left_employer=form.cleaned_data["left_employer"], actor=request.user
        )
        messages.success(request, "Saved.")
        return redirect("crm:support-contact", pk=support_contact.pk)
    return _form_page(
        request,
        form,
        title=f"{_person(support_contact.contact)} at {support_contact.organisation.name}",
        cancel=reverse("crm:support-contact", args=[pk]),
        intro="Their name and details are edited on their contact page.",
    )


# --- support requests -------------------------------------------------------------------------
@operator_required(perm="people")
def support_request_list(request: HttpRequest) -> HttpResponse:
    search, q = _q(request)
    return _list_page(request, "crm:support-requests", queries.search_support_requests(q), search)


@operator_required(perm="people")
def support_request_detail(request: HttpRequest, pk: int) -> HttpResponse:
    support_request = support_request_or_404(pk)
    return render(
        request,
        "crm/support_request_detail.html",
        {"support_request": support_request, **_retention(support_request)},
    )


@operator_required(perm="people")
def support_request_new(request: HttpRequest) -> HttpResponse:
    initial = {"support_contact": request.GET.get("support_contact") or None}
    form = SupportRequestForm(request.POST or None, initial=initial)
    if request.method == "POST" and form.is_valid():
        data = form.cleaned_data
        try:
            support_request = actions.do_create_support_request(
                data["support_contact"],
                subject=data["subject"],
                notes=data["notes"],
                actor=request.user,
            )
        except actions.CrmError as exc:
            form.add_error(None, str(exc))
        else:
            messages.success(request, "Support request recorded.")
            return redirect("crm:support-request", pk=support_request.pk)
    return _form_page(
        request,
        form,
        title="New support request",
        cancel=reverse("crm:support-requests"),
        intro="Kept as long as the support contact it came from.",
    )


@operator_required(perm="people")
def support_request_edit(request: HttpRequest, pk: int) -> HttpResponse:
    support_request = support_request_or_404(pk)
    form = SupportRequestForm(
        request.POST or None,
        with_support_contact=False,
        initial={"subject": support_request.subject, "notes": support_request.notes},
    )
    if request.method == "POST" and form.is_valid():
        try:
            actions.do_update_support_request(
                support_request, actor=request.user, **form.cleaned_data
            )
        except actions.CrmError as exc:
            form.add_error(None, str(exc))
        else:
            messages.success(request, "Saved.")
            return redirect("crm:support-request", pk=support_request.pk)
    return _form_page(
        request,
        form,
        title=f"Edit support request #{support_request.pk}",
        cancel=reverse("crm:support-request", args=[pk]),
    )


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
