"""The CRM's record kinds, in one table: how each is listed, found, shown, created and changed.

The operator pages are four generic views (``views.record_list``, ``record_detail``,
``record_new``, ``record_edit``) over this table; what differs between an enquiry and a contract
(its columns, its search, its forms, the action that stores it, its page's context) is here, one
``RecordKind`` each, so adding a kind is adding one entry, not four views.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from django import forms
from django.db.models import Model, QuerySet
from django.http import HttpRequest
from django.urls import reverse
from django.utils import timezone

from . import access, actions, queries
from .forms import (
    ContractForm,
    EnquiryCreateForm,
    EnquiryEditForm,
    NoteForm,
    OrderCreateForm,
    OrderEditForm,
    OrganisationForm,
    ReplyForm,
    SearchForm,
    SupportContactCreateForm,
    SupportContactEditForm,
    SupportRequestForm,
    WorkFilterForm,
    WorkForm,
    format_lines,
)
from .models import Contract, Enquiry, Order, Organisation, SupportContact, SupportRequest
from .queues import shown_subject
from .support import response_clock

Cell = tuple[str, str]  # (text, link or "")


def day(value: Any) -> str:
    if value is None:
        return "—"
    if hasattr(value, "tzinfo"):
        value = timezone.localtime(value)
    return value.strftime("%-d %b %Y")


def person(contact: Any) -> str:
    return contact.name or contact.email


def _organisation_param(request: HttpRequest, name: str = "organisation") -> dict[str, Any]:
    value = request.GET.get(name, "")
    return {name: value} if value.isdigit() else {}


@dataclass(frozen=True)
class Saved:
    """What a create or update did: the record, and the message for the operator."""

    record: Model
    message: str = "Saved."


class RecordKind:
    """One kind of CRM record.  Subclasses fill in what differs; the views do the rest.

    ``slug`` names the URLs (``crm:<plural>`` the list, ``crm:<singular>`` a record's page,
    ``crm:<singular>-new``, ``crm:<singular>-edit``); ``context_name`` is the record's name in
    its page's template (``crm/<singular with _>_detail.html``).
    """

    plural: str = ""
    singular: str = ""
    title: str = ""
    caption: str = ""
    headers: tuple[str, ...] = ()
    context_name: str = ""
    new_title: str = ""
    new_intro: str = ""
    edit_intro: str = ""
    extend_section: str = ""  # the "keep longer" URL's section, where the policy may allow it
    shows_retention: bool = False  # its page says when it goes (with the extend form, if any)
    work: bool = False  # a piece of work: status, owner, next action, conversation, bulk actions
    purpose: str = ""  # the policy purpose whose fields its forms ask about the person

    # --- names ---
    @property
    def key(self) -> str:
        return f"crm:{self.plural}"

    @property
    def new_url(self) -> str:
        return f"crm:{self.singular}-new"

    @property
    def detail_url(self) -> str:
        return f"crm:{self.singular}"

    @property
    def template(self) -> str:
        return f"crm/{self.singular.replace('-', '_')}_detail.html"

    def url(self, record: Model) -> str:
        return reverse(self.detail_url, args=[record.pk])

    # --- reading ---
    def search(self, q: str) -> QuerySet:
        raise NotImplementedError

    def row(self, record: Any) -> list[Cell]:
        raise NotImplementedError

    def table(self, records: Iterable[Model]) -> dict[str, Any]:
        return {
            "headers": list(self.headers),
            "rows": [{"id": r.pk, "cells": self.row(r)} for r in records],
        }

    def list_query(self, request: HttpRequest) -> tuple[forms.Form, QuerySet]:
        """The list's filter form and the records it selects."""
        form = SearchForm(request.GET or None)
        q = form.cleaned_data["q"] if form.is_valid() else ""
        return form, self.search(q)

    def get(self, pk: int) -> Any:
        raise NotImplementedError

    def detail_context(self, record: Any) -> dict[str, Any]:
        return {}

    # --- writing ---
    def new_form(self, request: HttpRequest) -> forms.Form:
        raise NotImplementedError

    def create(self, form: Any, actor: Any) -> Saved:
        raise NotImplementedError

    def edit_form(self, request: HttpRequest, record: Any) -> forms.Form:
        raise NotImplementedError

    def update(self, record: Any, form: Any, actor: Any) -> None:
        raise NotImplementedError

    def edit_title(self, record: Any) -> str:
        raise NotImplementedError


def _data(request: HttpRequest) -> Any:
    return request.POST or None


class Organisations(RecordKind):
    plural, singular = "organisations", "organisation"
    title, caption = "Organisations", "Organisations"
    headers = ("Name", "Added")
    context_name = "organisation"
    new_title = "New organisation"

    def search(self, q: str) -> QuerySet:
        return queries.search_organisations(q)

    def row(self, o: Organisation) -> list[Cell]:
        return [(o.name, self.url(o)), (day(o.created_at), "")]

    def get(self, pk: int) -> Organisation:
        return access.organisation_or_404(pk)

    def detail_context(self, organisation: Organisation) -> dict[str, Any]:
        return {
            "contracts": organisation.contracts.order_by("-start", "-pk"),
            "support_contacts": KINDS["support-contacts"].table(
                organisation.support_contacts.select_related("contact", "organisation").order_by(
                    "-pk"
                )[:100]
            ),
            "orders": KINDS["orders"].table(
                organisation.orders.select_related("contact", "organisation").order_by("-pk")[:100]
            ),
            "requests": KINDS["support-requests"].table(
                organisation.support_requests.select_related(
                    "organisation", "support_contact__contact"
                ).order_by("-pk")[:100]
            ),
        }

    def new_form(self, request: HttpRequest) -> forms.Form:
        return OrganisationForm(_data(request))

    def create(self, form: Any, actor: Any) -> Saved:
        record = actions.do_create_organisation(actor=actor, **form.cleaned_data)
        return Saved(record, "Organisation added.")

    def edit_form(self, request: HttpRequest, o: Organisation) -> forms.Form:
        return OrganisationForm(_data(request), initial={"name": o.name, "address": o.address})

    def update(self, o: Organisation, form: Any, actor: Any) -> None:
        actions.do_update_organisation(o, actor=actor, **form.cleaned_data)

    def edit_title(self, o: Organisation) -> str:
        return f"Edit {o.name}"


class WorkKind(RecordKind):
    """Enquiries and support requests: work with a status, an owner and a conversation."""

    work = True
    shows_retention = True
    model: Any = None

    @property
    def work_action(self) -> str:
        return f"crm:{self.singular}-work"

    @property
    def note_action(self) -> str:
        return f"crm:{self.singular}-note"

    @property
    def reply_action(self) -> str:
        return f"crm:{self.singular}-reply"

    @property
    def bulk_action(self) -> str:
        return f"crm:{self.plural}-bulk"

    def statuses(self, exclude: tuple[str, ...] = ()) -> list[tuple[str, str]]:
        return [(v, label) for v, label in self.model.Status.choices if v not in exclude]

    def list_query(self, request: HttpRequest) -> tuple[forms.Form, QuerySet]:
        from .queues import filter_work

        form = WorkFilterForm(request.GET or None, statuses=self.statuses())
        if not form.is_valid():
            return form, self.search("")
        data = form.cleaned_data
        records = filter_work(
            self.model,
            self.search(data["q"]),
            status=data["status"],
            owner=data["owner"],
            user=request.user,
        )
        return form, records.select_related("owner")

    def work_cells(self, record: Any) -> list[Cell]:
        owner = record.owner
        return [
            (record.get_status_display(), ""),
            ((owner.get_full_name() or owner.get_username()) if owner else "—", ""),
            (day(record.next_action_on) if record.next_action_on else "—", ""),
        ]

    def detail_context(self, record: Any) -> dict[str, Any]:
        from . import conversations

        return {
            "work_form": WorkForm(
                initial={
                    "status": record.status,
                    "owner": record.owner_id,
                    "next_action_on": record.next_action_on,
                },
                statuses=self.statuses(),
            ),
            "reply_form": ReplyForm(
                initial={"status": self.model.Status.WAITING},
                statuses=self.statuses(exclude=("held", "declined")),
            ),
            "note_form": NoteForm(),
            "thread": conversations.messages_of(record).prefetch_related("attachments"),
            "can_reply": bool(conversations.support_address()),
            "kind": self,
        }


class Enquiries(WorkKind):
    plural, singular = "enquiries", "enquiry"
    purpose = actions.ENQUIRY
    title, caption = "Enquiries", "Enquiries, newest first"
    headers = ("Enquiry", "From", "Came by", "Message", "Last contact", "Status", "Owner", "Next")
    context_name = "enquiry"
    model = Enquiry
    new_title = "New enquiry"
    new_intro = (
        "The person's details are the ones the policy's enquiry purpose collects. "
        "An existing contact with the same address is used (only its blank fields are filled)."
    )
    extend_section = "enquiries"
    shows_retention = True

    def search(self, q: str) -> QuerySet:
        from .conversations import with_thread_subjects

        return with_thread_subjects(queries.search_enquiries(q).select_related("owner"))

    def row(self, e: Enquiry) -> list[Cell]:
        summary = e.message if len(e.message) <= 80 else e.message[:79] + "…"
        return [
            # What it is about, as My work names it (screened), not only "#12".
            (f"{shown_subject(e) or '(no subject)'} (#{e.pk})", self.url(e)),
            (person(e.contact), reverse("audience:contact", args=[e.contact_id])),
            (e.channel, ""),
            (summary, ""),
            (day(e.last_contact_at), ""),
            *self.work_cells(e),
        ]

    def get(self, pk: int) -> Enquiry:
        return access.enquiry_or_404(pk)

    def new_form(self, request: HttpRequest) -> forms.Form:
        return EnquiryCreateForm(_data(request))

    def create(self, form: Any, actor: Any) -> Saved:
        data = form.cleaned_data
        record = actions.do_receive_enquiry(
            form.person_values(),
            channel=data["channel"],
            message=data["message"],
            received_at=data.get("received_at"),
            actor=actor,
        )
        return Saved(record, "Enquiry recorded.")

    def edit_form(self, request: HttpRequest, e: Enquiry) -> forms.Form:
        return EnquiryEditForm(
            _data(request), channel=e.channel, initial={"channel": e.channel, "message": e.message}
        )

    def update(self, e: Enquiry, form: Any, actor: Any) -> None:
        actions.do_update_enquiry(e, actor=actor, **form.cleaned_data)

    def edit_title(self, e: Enquiry) -> str:
        return f"Edit enquiry #{e.pk}"


class Orders(RecordKind):
    plural, singular = "orders", "order"
    purpose = actions.ORDER
    title, caption = "Orders", "Orders, newest first"
    headers = ("Order", "Ordered by", "Organisation", "Ordered")
    context_name = "order"
    new_title = "New order"
    new_intro = "The person's details are the ones the policy's order purpose collects."
    extend_section = "orders"
    shows_retention = True

    def search(self, q: str) -> QuerySet:
        return queries.search_orders(q)

    def row(self, o: Order) -> list[Cell]:
        organisation = o.organisation
        return [
            (o.order_reference or f"#{o.pk}", self.url(o)),
            (person(o.contact), reverse("audience:contact", args=[o.contact_id])),
            (
                organisation.name if organisation else "—",
                KINDS["organisations"].url(organisation) if organisation else "",
            ),
            (day(o.created_at), ""),
        ]

    def get(self, pk: int) -> Order:
        return access.order_or_404(pk)

    def new_form(self, request: HttpRequest) -> forms.Form:
        return OrderCreateForm(_data(request), initial=_organisation_param(request))

    def create(self, form: Any, actor: Any) -> Saved:
        record = actions.do_create_order(
            form.person_values(),
            created_at=form.cleaned_data.get("created_at"),
            actor=actor,
            **form.order_values(),
        )
        return Saved(record, "Order recorded.")

    def edit_form(self, request: HttpRequest, o: Order) -> forms.Form:
        initial = {
            "organisation": o.organisation_id,
            "order_reference": o.order_reference,
            "lines": format_lines(o.lines),
            "invoice_address": o.invoice_address,
        }
        return OrderEditForm(_data(request), initial=initial)

    def update(self, o: Order, form: Any, actor: Any) -> None:
        actions.do_update_order(o, actor=actor, **form.order_values())

    def edit_title(self, o: Order) -> str:
        return f"Edit order {o.order_reference or f'#{o.pk}'}"


class Contracts(RecordKind):
    plural, singular = "contracts", "contract"
    title, caption = "Contracts", "Contracts, newest first"
    headers = ("Contract", "Organisation", "Starts", "Ends")
    context_name = "contract"
    new_title = "New contract"
    new_intro = edit_intro = (
        "When the organisation's last contract ends, the retention clock of its support "
        "contacts starts."
    )

    def search(self, q: str) -> QuerySet:
        return queries.search_contracts(q)

    def row(self, c: Contract) -> list[Cell]:
        return [
            (c.reference or f"#{c.pk}", self.url(c)),
            (c.organisation.name, reverse("crm:organisation", args=[c.organisation_id])),
            (day(c.start), ""),
            (day(c.end) if c.end else "runs on", ""),
        ]

    def get(self, pk: int) -> Contract:
        return access.contract_or_404(pk)

    def new_form(self, request: HttpRequest) -> forms.Form:
        initial = {"organisation": request.GET.get("organisation") or None}
        return ContractForm(_data(request), initial=initial)

    def create(self, form: Any, actor: Any) -> Saved:
        data = form.cleaned_data
        record = actions.do_create_contract(
            data["organisation"],
            start=data["start"],
            end=data["end"],
            reference=data["reference"],
            first_response_hours=data.get("first_response_hours"),
            licensed_users=data.get("licensed_users"),
            actor=actor,
        )
        return Saved(record)

    def edit_form(self, request: HttpRequest, c: Contract) -> forms.Form:
        initial = {
            "reference": c.reference,
            "start": c.start,
            "end": c.end,
            "first_response_hours": c.first_response_hours,
            "licensed_users": c.licensed_users,
        }
        return ContractForm(_data(request), initial=initial, with_organisation=False)

    def update(self, c: Contract, form: Any, actor: Any) -> None:
        actions.do_update_contract(c, actor=actor, **form.cleaned_data)

    def edit_title(self, c: Contract) -> str:
        return f"Edit contract {c.reference or f'#{c.pk}'}"


class SupportContacts(RecordKind):
    plural, singular = "support-contacts", "support-contact"
    purpose = actions.SUPPORT
    title, caption = "Support contacts", "Support contacts, newest first"
    headers = ("Person", "Organisation", "")
    context_name = "support_contact"
    new_title = "New support contact"
    new_intro = "The person's details are the ones the policy's contract support purpose collects."
    edit_intro = "Their name and details are edited on their contact page."
    extend_section = "support-contacts"
    shows_retention = True

    def search(self, q: str) -> QuerySet:
        return queries.search_support_contacts(q)

    def row(self, s: SupportContact) -> list[Cell]:
        return [
            (person(s.contact), self.url(s)),
            (s.organisation.name, reverse("crm:organisation", args=[s.organisation_id])),
            (f"left {day(s.left_employer)}" if s.left_employer else "", ""),
        ]

    def get(self, pk: int) -> SupportContact:
        return access.support_contact_or_404(pk)

    def detail_context(self, s: SupportContact) -> dict[str, Any]:
        return {
            "contracts": s.organisation.contracts.order_by("-start", "-pk"),
            "requests": KINDS["support-requests"].table(
                s.requests.select_related("organisation", "support_contact__contact").order_by(
                    "-pk"
                )[:100]
            ),
        }

    def new_form(self, request: HttpRequest) -> forms.Form:
        initial = {"organisation": request.GET.get("organisation") or None}
        return SupportContactCreateForm(_data(request), initial=initial)

    def create(self, form: Any, actor: Any) -> Saved:
        record, created = actions.do_add_support_contact(
            form.person_values(), organisation=form.cleaned_data["organisation"], actor=actor
        )
        return Saved(
            record,
            "Support contact added."
            if created
            else "This person already was a support contact there.",
        )

    def edit_form(self, request: HttpRequest, s: SupportContact) -> forms.Form:
        return SupportContactEditForm(_data(request), initial={"left_employer": s.left_employer})

    def update(self, s: SupportContact, form: Any, actor: Any) -> None:
        actions.do_update_support_contact(
            s, left_employer=form.cleaned_data["left_employer"], actor=actor
        )

    def edit_title(self, s: SupportContact) -> str:
        return f"{person(s.contact)} at {s.organisation.name}"


class SupportRequests(WorkKind):
    plural, singular = "support-requests", "support-request"
    title, caption = "Support requests", "Support requests, newest first"
    headers = ("Subject", "Organisation", "From", "Opened", "Status", "Owner", "Next", "Response")
    context_name = "support_request"
    model = SupportRequest
    new_title = "New support request"
    new_intro = "Kept as long as the support contact it came from."
    shows_retention = True  # its support contact's: it goes with them

    def search(self, q: str) -> QuerySet:
        from .conversations import with_thread_subjects

        return with_thread_subjects(queries.search_support_requests(q).select_related("owner"))

    def row(self, r: SupportRequest) -> list[Cell]:
        return [
            (f"{shown_subject(r) or '(no subject)'} (#{r.pk})", self.url(r)),
            (r.organisation.name, reverse("crm:organisation", args=[r.organisation_id])),
            (
                person(r.support_contact.contact),
                reverse("crm:support-contact", args=[r.support_contact_id]),
            ),
            (day(r.created_at), ""),
            *self.work_cells(r),
            (response_clock(r).text, ""),
        ]

    def detail_context(self, r: SupportRequest) -> dict[str, Any]:
        return {**super().detail_context(r), "response": response_clock(r)}

    def get(self, pk: int) -> SupportRequest:
        return access.support_request_or_404(pk)

    def new_form(self, request: HttpRequest) -> forms.Form:
        initial = {"support_contact": request.GET.get("support_contact") or None}
        return SupportRequestForm(_data(request), initial=initial)

    def create(self, form: Any, actor: Any) -> Saved:
        data = form.cleaned_data
        record = actions.do_create_support_request(
            data["support_contact"], subject=data["subject"], notes=data["notes"], actor=actor
        )
        return Saved(record, "Support request recorded.")

    def edit_form(self, request: HttpRequest, r: SupportRequest) -> forms.Form:
        return SupportRequestForm(
            _data(request),
            with_support_contact=False,
            initial={"subject": r.subject, "notes": r.notes},
        )

    def update(self, r: SupportRequest, form: Any, actor: Any) -> None:
        actions.do_update_support_request(r, actor=actor, **form.cleaned_data)

    def edit_title(self, r: SupportRequest) -> str:
        return f"Edit support request #{r.pk}"


#: Every kind, by the plural in its URLs, in the order the CRM's front page lists them.
KINDS: Mapping[str, RecordKind] = {
    kind.plural: kind
    for kind in (
        Organisations(),
        Enquiries(),
        Orders(),
        Contracts(),
        SupportContacts(),
        SupportRequests(),
    )
}
