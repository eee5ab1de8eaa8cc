"""Support that follows the contract.

A support request belongs to the contract in force when it came.  One from a support contact
whose organisation has no contract in force, or who has left it, is *held*: an operator accepts
it (it becomes new work, and its first-response clock starts then) or declines it; the person
is told politely that it is being checked (``emails.HELD``).  Mail from someone who is no
support contact at all opens an enquiry instead (``inbound/processing.py``).

A contract may carry a first-response target in business hours (``business_hours``); the
request's ``response_due_at`` is set when it comes (or is accepted), and the queue shows the
time left, or the breach.

The licence report: per contract, the named users (its organisation's support contacts during
the contract) against the number the licence allows, with who left when; the purpose the policy
holds support contacts for includes verifying users under the licence terms.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import Any

from django.db import transaction
from django.db.models import Q
from django.utils import timezone

from tidings.lib.audit import audit

from .business_hours import schedule
from .models import Contract, Organisation, SupportContact, SupportRequest


def contract_in_force(organisation: Organisation | int, day: date | None = None) -> Contract | None:
    """The organisation's contract in force on ``day`` (the latest to start, if several)."""
    day = day or timezone.localdate()
    return (
        Contract.objects.filter(organisation=organisation, start__lte=day)
        .filter(Q(end__isnull=True) | Q(end__gte=day))
        .order_by("-start", "-pk")
        .first()
    )


def standing(support_contact: SupportContact, day: date | None = None) -> Contract | None:
    """The contract a request from this support contact comes under, or None: held."""
    day = day or timezone.localdate()
    if support_contact.left_employer is not None and support_contact.left_employer <= day:
        return None
    return contract_in_force(support_contact.organisation_id, day)


def response_due(contract: Contract | None, start: datetime) -> datetime | None:
    if contract is None or not contract.first_response_hours:
        return None
    return schedule().add(start, contract.first_response_hours)


@dataclass(frozen=True)
class ResponseClock:
    """Where a request stands against its first-response target."""

    due_at: datetime | None
    left: timedelta | None  # business time left; negative once breached
    responded_at: datetime | None = None

    @property
    def breached(self) -> bool:
        if self.due_at is None:
            return False
        if self.responded_at is not None:
            return self.responded_at > self.due_at
        return self.left is not None and self.left <= timedelta(0)

    @property
    def text(self) -> str:
        if self.due_at is None:
            return ""
        due = timezone.localtime(self.due_at).strftime("%-d %b %H:%M")
        if self.responded_at is not None:
            return f"Answered {'late' if self.breached else 'in time'} (due {due})"
        assert self.left is not None
        minutes = int(abs(self.left).total_seconds() // 60)
        span = f"{minutes // 60} h {minutes % 60:02d} min"
        return f"Overdue by {span} (was due {due})" if self.breached else f"{span} left (due {due})"


def response_clock(request: SupportRequest, now: datetime | None = None) -> ResponseClock:
    if request.response_due_at is None:
        return ResponseClock(None, None)
    if request.first_response_at is not None:
        return ResponseClock(request.response_due_at, None, request.first_response_at)
    now = now or timezone.now()
    return ResponseClock(request.response_due_at, schedule().between(now, request.response_due_at))


# --- held requests ----------------------------------------------------------------------------
@transaction.atomic
def do_accept_request(request: SupportRequest, *, actor: Any) -> SupportRequest:
    """An operator accepts a held request: it is new work now, under the contract in force
    (if any), its first-response clock starting now."""
    from .work import WorkError, assign_in_turn, do_update_work

    if request.status != SupportRequest.Status.HELD:
        raise WorkError("Only a held request can be accepted.")
    do_update_work(request, actor=actor, status=SupportRequest.Status.NEW)
    now = timezone.now()
    contract = contract_in_force(request.organisation_id)
    request.contract = contract
    request.response_due_at = response_due(contract, now)
    request.save(update_fields=["contract", "response_due_at", "updated_at"])
    audit(
        "support_request.accepted", actor=actor, obj=request, contract=getattr(contract, "pk", None)
    )
    if request.owner_id is None:
        assign_in_turn(request)
    return request


@transaction.atomic
def do_decline_request(request: SupportRequest, *, actor: Any) -> SupportRequest:
    from .work import WorkError, do_update_work

    if request.status != SupportRequest.Status.HELD:
        raise WorkError("Only a held request can be declined.")
    do_update_work(request, actor=actor, status=SupportRequest.Status.DECLINED)
    return request


# --- the licence report -----------------------------------------------------------------------
@dataclass(frozen=True)
class NamedUser:
    support_contact_id: int
    name: str
    email: str
    added: date
    left: date | None
    counted: bool  # a named user on the report's day


@dataclass(frozen=True)
class LicenceReport:
    contract: Contract
    on: date
    users: list[NamedUser]

    @property
    def licensed(self) -> int | None:
        return self.contract.licensed_users

    @property
    def named(self) -> int:
        return sum(u.counted for u in self.users)

    @property
    def over_by(self) -> int:
        return max(0, self.named - self.licensed) if self.licensed is not None else 0

    @property
    def summary(self) -> str:
        if self.licensed is None:
            return f"{self.named} named user(s); the contract records no licensed number."
        if self.over_by:
            return (
                f"{self.named} named users against {self.licensed} licensed: {self.over_by} over."
            )
        return f"{self.named} named user(s) of {self.licensed} licensed."

    def csv_rows(self) -> list[list[Any]]:
        return [
            [
                self.contract.reference or f"#{self.contract.pk}",
                u.name,
                u.email,
                u.added.isoformat(),
                u.left.isoformat() if u.left else "",
                "yes" if u.counted else "no",
            ]
            for u in self.users
        ]


CSV_HEADER = ["contract", "name", "email", "added", "left", "named user on the report's day"]


def licence_report(contract: Contract, on: date | None = None) -> LicenceReport:
    """The organisation's support contacts during the contract: everyone added before it ended
    who had not left before it started; counted if they are a user on ``on``."""
    on = on or timezone.localdate()
    if contract.end is not None and contract.end < on:
        on = contract.end  # an ended contract is reported as it stood on its last day
    end = on
    rows = (
        SupportContact.objects.filter(organisation_id=contract.organisation_id)
        .filter(Q(left_employer__isnull=True) | Q(left_employer__gte=contract.start))
        .select_related("contact")
        .order_by("contact__name", "pk")
    )
    users = []
    for row in rows:
        added = timezone.localdate(row.created_at)
        if added > end:
            continue
        counted = added <= on and (row.left_employer is None or row.left_employer > on)
        users.append(
            NamedUser(
                row.pk, row.contact.name, row.contact.email, added, row.left_employer, counted
            )
        )
    return LicenceReport(contract, on, users)
