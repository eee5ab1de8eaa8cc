"""Every change to CRM records goes through these named actions.

Each is one transaction that writes its audit entry (ids, field names and counts: never values).
People are created or found with ``audience.actions.do_create_contact`` under the record's
purpose, so a record can only ever hold the fields the policy lets that purpose collect; free text
(an enquiry's message, a support request's subject and notes) passes ``clean_free_text`` first.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any

from django.db import models, transaction
from django.utils import timezone

from tidings import signals
from tidings.audience.actions import FieldNotAllowed, do_create_contact
from tidings.audience.consent import CAPTURED_FIELDS
from tidings.audience.models import Contact
from tidings.lib.audit import audit
from tidings.lib.text import strip_format_characters
from tidings.policy import get_policy
from tidings.policy.records import WEB_FORM_SOURCE
from tidings.policy.screening import SensitiveDataRefused, screen_text
from tidings.rights.retention import instant, rule_expiry, sweep_for

from .models import (
    Contract,
    Enquiry,
    KeptOnRequest,
    Order,
    Organisation,
    SupportContact,
    SupportRequest,
)

# Purposes whose people these records hold.
ENQUIRY = "enquiry"
ORDER = "order"
SUPPORT = "contract_support"
# Fields of the order purpose that belong to the order, not to the person (policy name -> field).
ORDER_FIELDS = {
    "order_reference": "order_reference",
    "order_lines": "lines",
    "invoice_address": "invoice_address",
}
# The enquiry purpose's source that the public contact form is.
WEB_FORM = WEB_FORM_SOURCE


class CrmError(ValueError):
    """A change the rules do not allow; the message is for the operator (no personal data)."""


class FreeTextRejected(CrmError):
    """The policy says ``on_detect = "reject"`` and the text holds special-category data."""


class NotExtendable(CrmError):
    pass


# --- screening --------------------------------------------------------------------------------
def clean_free_text(text: str) -> tuple[str, tuple[str, ...]]:
    """Free text as it may be stored, and the special categories removed from it.

    The one place CRM free text is screened (``policy.screening.screen_text``, as the policy's
    ``[sensitive]`` says): with ``on_detect = "redact"`` each sentence that states a special
    category becomes ``[removed: <category>]``; with ``"reject"`` it raises FreeTextRejected,
    whose message names the categories only.
    """
    try:
        screened = screen_text(text)
    except SensitiveDataRefused as exc:
        raise FreeTextRejected(str(exc)) from None
    return screened.text, screened.removed


def _line(text: str) -> str:
    """A subject as stored: trimmed, without invisible format characters (``lib.text``)."""
    return strip_format_characters(text).strip()


def kept_as_written(text: str) -> str:
    """Written text as kept (a reply, a note): blank lines before it and spaces after it go,
    and its first line keeps its indentation (one that starts with a command or a config
    snippet: ``strip`` took it).  "" for blank text."""
    return re.sub(r"\A(?:[ \t]*\r?\n)+", "", text).rstrip()


def _screen(*texts: str) -> tuple[list[str], list[str]]:
    """Screen several texts: the texts to store, and every category removed from any of them."""
    cleaned, removed = [], []
    for text in texts:
        clean, categories = clean_free_text(text)
        cleaned.append(clean)
        removed += [c for c in categories if c not in removed]
    return cleaned, removed


# --- people -----------------------------------------------------------------------------------
def person_fields(purpose: str) -> tuple[tuple[str, ...], tuple[str, ...]]:
    """(required, optional) fields about the person that ``purpose`` collects: typed ones only,
    and not the fields that belong to the record itself (an order's reference...)."""
    fields = get_policy().fields_for(purpose)

    def keep(names: tuple[str, ...]) -> tuple[str, ...]:
        return tuple(n for n in names if n not in CAPTURED_FIELDS and n not in ORDER_FIELDS)

    return keep(fields.required), keep(fields.optional)


def _person(values: Mapping[str, Any], purpose: str) -> tuple[Contact, bool]:
    """The contact for these details (found by address, or created), under ``purpose``."""
    data = {k: v for k, v in values.items() if v not in (None, "")}
    return do_create_contact(data, purpose=purpose)  # (a racing request's contact, if any)


def _changed(record: models.Model, values: Mapping[str, Any]) -> list[str]:
    changed = [name for name, value in values.items() if getattr(record, name) != value]
    for name in changed:
        setattr(record, name, values[name])
    if changed:
        updated = ["updated_at"] if any(f.name == "updated_at" for f in record._meta.fields) else []
        record.save(update_fields=[*changed, *updated])
    return changed


# --- organisations ----------------------------------------------------------------------------
@transaction.atomic
def do_create_organisation(*, name: str, address: str = "", actor: Any = None) -> Organisation:
    organisation = Organisation.objects.create(name=_line(name), address=address.strip())
    audit("organisation.created", actor=actor, obj=organisation)
    return organisation


@transaction.atomic
def do_update_organisation(
    organisation: Organisation, *, name: str, address: str = "", actor: Any = None
) -> list[str]:
    changed = _changed(organisation, {"name": name.strip(), "address": address.strip()})
    if changed:
        audit("organisation.updated", actor=actor, obj=organisation, fields=changed)
    return changed


# --- enquiries --------------------------------------------------------------------------------
def enquiry_channels() -> tuple[str, ...]:
    """Where enquiries come from: the policy's sources for the enquiry purpose."""
    return get_policy().purpose(ENQUIRY).sources


@transaction.atomic
def do_receive_enquiry(
    person: Mapping[str, Any],
    *,
    channel: str,
    message: str,
    subject: str = "",
    received_at: datetime | None = None,
    message_id: str = "",
    actor: Any = None,
    actor_label: str = "",
    acknowledge: bool = False,
    notify: bool = False,
) -> Enquiry:
    """Record an enquiry from the person with these details (only the enquiry purpose's fields).

    An existing contact with the address is used, and only its blank fields are filled in.
    ``acknowledge``: the person is sent the acknowledgement (what we hold, why, how long);
    ``notify``: it is assigned in turn and the operators who opted in are told (the public
    form and mail do both; an operator recording a call does neither).
    Raises FieldNotAllowed (a field the purpose may not collect, or a required one missing),
    InvalidEmail, FreeTextRejected, CrmError (a channel that is not one of the purpose's sources).
    """
    if channel not in enquiry_channels():
        raise CrmError(f'"{channel}" is not one of the enquiry purpose\'s sources')
    (text, subject), removed = _screen(message, _line(subject)[:200])
    contact, new = _person(person, ENQUIRY)
    at = received_at or timezone.now()
    enquiry = Enquiry.objects.create(
        contact=contact,
        channel=channel,
        subject=subject,
        message=text,
        redacted_categories=removed,
        message_id=message_id[:300],
        created_at=at,
        last_contact_at=at,
    )
    audit(
        "enquiry.received",
        actor=actor,
        actor_label=actor_label,
        obj=enquiry,
        contact=contact.pk,
        new_contact=new,
        channel=channel,
        redacted=len(removed),
    )
    _arrived(enquiry, acknowledge=acknowledge, notify=notify)
    enquiry_id, contact_id = enquiry.pk, contact.pk
    transaction.on_commit(
        lambda: signals.enquiry_created.send(
            sender=Enquiry, enquiry_id=enquiry_id, contact_id=contact_id
        )
    )
    return enquiry


def _arrived(record: Enquiry | SupportRequest, *, acknowledge: bool, notify: bool) -> None:
    """New work came in: assign it in turn and tell the operators; acknowledge it."""
    from . import conversations, emails, notifications, work

    held = isinstance(record, SupportRequest) and record.status == SupportRequest.Status.HELD
    if notify:
        if not held:
            work.assign_in_turn(record)
        event = (
            "new_enquiry"
            if isinstance(record, Enquiry)
            else "held_request"
            if held
            else "new_request"
        )
        notifications.notify_new(record, event)
    if acknowledge:
        conversations.send_automatic(record, emails.HELD if held else emails.ACKNOWLEDGEMENT)


@transaction.atomic
def do_update_enquiry(enquiry: Enquiry, *, channel: str, message: str, actor: Any) -> list[str]:
    if channel not in enquiry_channels() and channel != enquiry.channel:
        raise CrmError(f'"{channel}" is not one of the enquiry purpose\'s sources')
    values: dict[str, Any] = {"channel": channel}
    if message != enquiry.message:
        (text,), removed = _screen(message)
        values |= {"message": text, "redacted_categories": removed}
    changed = _changed(enquiry, values)
    if changed:
        audit("enquiry.updated", actor=actor, obj=enquiry, fields=changed)
    return changed


@transaction.atomic
def do_record_enquiry_contact(
    enquiry: Enquiry, *, actor: Any, at: datetime | None = None
) -> Enquiry:
    """We were in touch with the person about their enquiry: its "last_contact" clock moves on
    (never back)."""
    at = at or timezone.now()
    if at > enquiry.last_contact_at:
        enquiry.last_contact_at = at
        enquiry.save(update_fields=["last_contact_at"])
        audit("enquiry.contacted", actor=actor, obj=enquiry)
    return enquiry


# --- keeping a record longer, on request ------------------------------------------------------
@transaction.atomic
def do_extend_retention(
    record: KeptOnRequest, *, until: date, requested_by: str, actor: Any
) -> None:
    """The person asked us to keep this record longer: keep it until ``until``.

    Only where the policy's rule for the record kind says ``extendable_on_request``.  The record
    then expires at the later of the rule's date and ``until`` (see KeptOnRequest), so ``until``
    must be later than the rule's date.  Who asked, who recorded it and when are kept with it.
    """
    kind = sweep_for(record).kind
    if not get_policy().retention_for(kind).extendable_on_request:
        raise NotExtendable("The policy does not let these records be kept longer on request.")
    by_rule = rule_expiry(record)
    if by_rule is None:
        raise NotExtendable("This record has no erasure date yet, so there is nothing to extend.")
    if instant(until) <= instant(by_rule):
        raise NotExtendable(
            "Choose a date after the one the record would otherwise be erased on "
            f"({timezone.localtime(instant(by_rule)).date().isoformat()})."
        )
    requested_by = requested_by.strip()
    if not requested_by:
        raise NotExtendable("Say who asked us to keep it, and how.")
    record.kept_until = until
    record.kept_until_requested_by = requested_by
    record.kept_until_recorded_at = timezone.now()
    record.kept_until_recorded_by = actor if getattr(actor, "pk", None) else None
    record.save(
        update_fields=[
            "kept_until",
            "kept_until_requested_by",
            "kept_until_recorded_at",
            "kept_until_recorded_by",
        ]
    )
    audit("retention.extended", actor=actor, obj=record, kind=kind, until=until.isoformat())


# --- orders -----------------------------------------------------------------------------------
@dataclass(frozen=True)
class OrderLine:
    description: str
    quantity: int = 1
    unit_price: str = ""  # a decimal as text ("95.00"), blank when not given

    def as_json(self) -> dict[str, Any]:
        return {
            "description": self.description,
            "quantity": self.quantity,
            "unit_price": self.unit_price,
        }


def _order_values(
    *, order_reference: str, lines: Iterable[OrderLine], invoice_address: str
) -> dict[str, Any]:
    """The order's own fields, refusing any the policy's order purpose does not collect."""
    collected = set(get_policy().fields_for(ORDER).all)
    values = {
        "order_reference": order_reference.strip(),
        "order_lines": [line.as_json() for line in lines],
        "invoice_address": invoice_address.strip(),
    }
    refused = sorted(name for name, value in values.items() if value and name not in collected)
    if refused:
        raise FieldNotAllowed(f"the {ORDER} purpose may not collect: {', '.join(refused)}")
    return {ORDER_FIELDS[name]: value for name, value in values.items()}


@transaction.atomic
def do_create_order(
    person: Mapping[str, Any],
    *,
    organisation: Organisation | None,
    order_reference: str = "",
    lines: Iterable[OrderLine] = (),
    invoice_address: str = "",
    created_at: datetime | None = None,
    actor: Any = None,
) -> Order:
    values = _order_values(
        order_reference=order_reference, lines=lines, invoice_address=invoice_address
    )
    contact, new = _person(person, ORDER)
    order = Order.objects.create(
        contact=contact,
        organisation=organisation,
        created_at=created_at or timezone.now(),
        **values,
    )
    audit(
        "order.created",
        actor=actor,
        obj=order,
        contact=contact.pk,
        new_contact=new,
        organisation=organisation.pk if organisation else None,
    )
    return order


@transaction.atomic
def do_update_order(
    order: Order,
    *,
    organisation: Organisation | None,
    order_reference: str,
    lines: Iterable[OrderLine],
    invoice_address: str,
    actor: Any,
) -> list[str]:
    """Change an order's details.  Its "created" clock (a legal minimum runs from it) is not
    one of them."""
    values = _order_values(
        order_reference=order_reference, lines=lines, invoice_address=invoice_address
    )
    changed = _changed(order, {"organisation": organisation, **values})
    if changed:
        audit("order.updated", actor=actor, obj=order, fields=changed)
    return changed


# --- contracts --------------------------------------------------------------------------------
def _check_dates(start: date, end: date | None) -> None:
    if end is not None and end < start:
        raise CrmError("A contract cannot end before it starts.")


@transaction.atomic
def do_create_contract(
    organisation: Organisation,
    *,
    start: date,
    end: date | None = None,
    reference: str = "",
    first_response_hours: int | None = None,
    licensed_users: int | None = None,
    actor: Any = None,
) -> Contract:
    """A contract with an organisation.  Its end starts the retention clock ("contract_end") of
    the organisation's support contacts once no other contract of theirs runs on."""
    _check_dates(start, end)
    contract = Contract.objects.create(
        organisation=organisation,
        start=start,
        end=end,
        reference=reference.strip(),
        first_response_hours=first_response_hours,
        licensed_users=licensed_users,
    )
    audit("contract.created", actor=actor, obj=contract, organisation=organisation.pk)
    return contract


@transaction.atomic
def do_update_contract(
    contract: Contract,
    *,
    start: date,
    end: date | None,
    reference: str,
    actor: Any,
    first_response_hours: int | None = None,
    licensed_users: int | None = None,
) -> list[str]:
    _check_dates(start, end)
    changed = _changed(
        contract,
        {
            "start": start,
            "end": end,
            "reference": reference.strip(),
            "first_response_hours": first_response_hours,
            "licensed_users": licensed_users,
        },
    )
    if changed:
        audit("contract.updated", actor=actor, obj=contract, fields=changed)
    return changed


# --- support contacts and their requests ------------------------------------------------------
@transaction.atomic
def do_add_support_contact(
    person: Mapping[str, Any], *, organisation: Organisation, actor: Any = None
) -> tuple[SupportContact, bool]:
    """Make the person with these details a support contact at ``organisation`` (the
    contract_support purpose's fields).  Returns (support contact, created)."""
    contact, new = _person(person, SUPPORT)
    support_contact, created = SupportContact.objects.get_or_create(
        contact=contact, organisation=organisation
    )
    if created:
        audit(
            "support_contact.added",
            actor=actor,
            obj=support_contact,
            contact=contact.pk,
            new_contact=new,
            organisation=organisation.pk,
        )
    return support_contact, created


@transaction.atomic
def do_update_support_contact(
    support_contact: SupportContact, *, left_employer: date | None, actor: Any
) -> list[str]:
    """Record (or correct) when the person left the organisation: one of the clocks their
    retention runs from."""
    changed = _changed(support_contact, {"left_employer": left_employer})
    if changed:
        audit("support_contact.updated", actor=actor, obj=support_contact, fields=changed)
    return changed


@transaction.atomic
def do_create_support_request(
    support_contact: SupportContact,
    *,
    subject: str,
    notes: str = "",
    actor: Any = None,
    actor_label: str = "",
    received_at: datetime | None = None,
    message_id: str = "",
    check_contract: bool = False,
    acknowledge: bool = False,
    notify: bool = False,
) -> SupportRequest:
    """A support request from ``support_contact``, under the contract in force now, with its
    first-response target (``support.response_due``).  ``check_contract`` (mail that came in):
    held for an operator when no contract is in force for them (``support.standing``); an
    operator recording one has already decided.  ``acknowledge``/``notify``: as for enquiries.
    """
    from . import support

    (subject, notes), removed = _screen(_line(subject)[:200] or "(no subject)", notes)
    at = received_at or timezone.now()
    contract = support.standing(support_contact, timezone.localdate(at))
    if contract is None and not check_contract:
        contract = support.contract_in_force(
            support_contact.organisation_id, timezone.localdate(at)
        )
    held = check_contract and contract is None
    request = SupportRequest.objects.create(
        organisation=support_contact.organisation,
        support_contact=support_contact,
        contract=contract,
        subject=subject,
        notes=notes,
        redacted_categories=removed,
        status=SupportRequest.Status.HELD if held else SupportRequest.Status.NEW,
        response_due_at=None if held else support.response_due(contract, at),
        message_id=message_id[:300],
        created_at=at,
    )
    audit(
        "support_request.created",
        actor=actor,
        actor_label=actor_label,
        obj=request,
        support_contact=support_contact.pk,
        contract=contract.pk if contract else None,
        held=held,
        redacted=len(removed),
    )
    _arrived(request, acknowledge=acknowledge, notify=notify)
    return request


@transaction.atomic
def do_update_support_request(
    request: SupportRequest, *, subject: str, notes: str, actor: Any
) -> list[str]:
    values: dict[str, Any] = {}
    if _line(subject) != request.subject or notes != request.notes:
        (subject, notes), removed = _screen(_line(subject), notes)
        values = {"subject": subject, "notes": notes, "redacted_categories": removed}
    changed = _changed(request, values)
    if changed:
        audit("support_request.updated", actor=actor, obj=request, fields=changed)
    return changed


# --- booked demos (booking/actions.py calls this) ---------------------------------------------
@transaction.atomic
def do_note_demo_booked(enquiry: Enquiry, *, host: Any, on: date) -> None:
    """A demo was booked from ``enquiry``: the host has the enquiry (when it has no owner yet),
    its next action is the demo's day, and the operators who opted in are told."""
    from . import notifications, work

    changes: dict[str, Any] = {"next_action_on": on}
    if enquiry.owner_id is None and host is not None and host.is_active and host.is_staff:
        changes["owner"] = host
    work.do_update_work(enquiry, actor=None, actor_label="demo booking page", **changes)
    notifications.notify_new(enquiry, "demo_booked")
