"""Every change made by a data-subject request goes through these named actions.

A request's life (``TRANSITIONS``)::

    received ──verify (the link, or an operator)──▶ verified ──fulfil──▶ completed
        │                                              │  └─▶ in_progress ─▶ completed
        └──────────────── refuse (with a reason) ──────┴──────────┴────────▶ refused

Nothing is released or changed before the request is verified: the verification link goes to the
address the request names, so following it proves the mailbox is the requester's.  Every action
is one transaction that writes its audit entry (ids, counts and field names, never values) and
sends its email only once the transaction has committed.  The address is kept in clear only
while the request is open; closing it (completed or refused) clears it and the details.
"""

from __future__ import annotations

import functools
import logging
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from typing import Any

from dateutil.relativedelta import relativedelta
from django.db import transaction
from django.urls import reverse
from django.utils import timezone

from tidings import signals
from tidings.audience.consent import PURPOSE_MARKETING, current_state
from tidings.audience.emails import email_hmac, email_key, normalise_email
from tidings.audience.models import ConsentEvent, Contact, Suppression
from tidings.audience.operator import (  # noqa: F401  (emptied_error: the rights forms' too)
    RequiredFieldEmptied,
    emptied_error,
    required_contact_fields,
)
from tidings.audience.operator import do_rectify_contact as do_rectify_contact_fields
from tidings.audience.sources import Kept, sources
from tidings.audience.suppression import do_suppress
from tidings.audience.tokens import absolute_url
from tidings.lib.audit import audit
from tidings.lib.ratelimit import count_attempt
from tidings.policy import get_policy
from tidings.policy.screening import SensitiveDataRefused, screen_text

from .emails import send_rights_email
from .erasure import erase_person
from .models import RightsRequest
from .package import build_package
from .tokens import download_days, download_url, link_days, verify_url

logger = logging.getLogger(__name__)

Kind = RightsRequest.Kind
State = RightsRequest.State

# What the person asked for, in the words of the emails and pages ("You asked for ...").
KIND_LABELS: dict[str, str] = {
    Kind.ACCESS: "a copy of your personal data",
    Kind.RECTIFY: "a correction of your personal data",
    Kind.ERASE: "the erasure of your personal data",
    Kind.OBJECT: "an end to all marketing",
}

TRANSITIONS: dict[str, frozenset[str]] = {
    State.RECEIVED: frozenset({State.VERIFIED, State.REFUSED}),
    State.VERIFIED: frozenset({State.IN_PROGRESS, State.COMPLETED, State.REFUSED}),
    State.IN_PROGRESS: frozenset({State.COMPLETED, State.REFUSED}),
    State.COMPLETED: frozenset(),
    State.REFUSED: frozenset(),
}

# Verification emails one address may be sent per period: the form's per-IP limit stops one
# machine; this stops many machines using the form to flood one person's inbox.
VERIFICATIONS_PER_ADDRESS = (3, 3600)

# The contact fields a person (or an operator) may correct through a request: the product's
# columns that the policy allows at all.  Not the address: a new address must prove its own
# mailbox (a new request from it, or a sign-up).
RECTIFIABLE = ("name", "phone", "company", "job_title", "work_address")


class RightsError(ValueError):
    """A request cannot change like that; the message says why (no personal data)."""


def rectifiable_fields() -> tuple[str, ...]:
    allowed = set(get_policy().all_fields)
    return tuple(name for name in RECTIFIABLE if name in allowed)


def required_fields() -> tuple[str, ...]:
    """The rectifiable fields the policy requires: a correction may change them, never empty
    them (the one rule, ``audience.operator.required_contact_fields``)."""
    required = set(required_contact_fields())
    return tuple(name for name in rectifiable_fields() if name in required)


def due_date(received_at: datetime) -> date:
    """One calendar month from the day of receipt (31 January → 28/29 February)."""
    day = timezone.localdate(received_at)
    return day + relativedelta(months=1)


def extension_limit(request: RightsRequest) -> date:
    """The latest date an extension may set: the policy's extension days after the due date,
    counted as whole months when they are (60 days: two months)."""
    days = get_policy().rights.extension_days
    if days % 30 == 0:
        return request.due_on + relativedelta(months=days // 30)
    return request.due_on + relativedelta(days=days)


def _move(request: RightsRequest, to: str, **fields: Any) -> None:
    """Change the state with a conditional UPDATE (a request moved meanwhile is refused)."""
    if to not in TRANSITIONS[request.state]:
        raise RightsError(
            f"a {request.get_state_display().lower()} request cannot become {to.replace('_', ' ')}"
        )
    changed = RightsRequest.objects.filter(pk=request.pk, state=request.state).update(
        state=to, **fields
    )
    if changed != 1:
        raise RightsError("the request was changed meanwhile: reload it")
    request.state = to
    for name, value in fields.items():
        setattr(request, name, value)


def _context(request: RightsRequest, **extra: Any) -> dict[str, Any]:
    return {
        "kind_label": KIND_LABELS[request.kind],
        "request_ref": f"#{request.pk}",
        "due_on": request.due.isoformat(),
        "link_days": link_days(),
        **extra,
    }


def _email_after_commit(address: str, key: str, context: dict[str, Any], request_id: int) -> None:
    transaction.on_commit(lambda: send_rights_email([address], key, context, request_id=request_id))


def _verification_allowed(address: str) -> bool:
    return count_attempt(
        "rights-verify",
        email_hmac(address)[:32],
        "TIDINGS_RIGHTS_VERIFICATIONS_PER_ADDRESS",
        VERIFICATIONS_PER_ADDRESS,
    )


def _close(request: RightsRequest, to: str, *, outcome: dict[str, Any], **fields: Any) -> str:
    """Complete or refuse: clear the address and details; returns the address for the receipt."""
    address = request.email
    _move(
        request,
        to,
        closed_at=timezone.now(),
        outcome=outcome,
        email="",
        details="",
        **fields,
    )
    return address


def _contact_of(request: RightsRequest, *, lock: bool = False) -> Contact | None:
    """The person the request is about: the contact found at receipt, or (if there was none then)
    whoever holds the address now."""
    contacts = Contact.objects.select_for_update() if lock else Contact.objects
    if request.contact_id is not None:
        found = contacts.filter(pk=request.contact_id).first()
        # Only while the contact still has the address the link proved: one whose address was
        # changed since (an operator's correction) is no longer the requester's to see or erase.
        if found is not None and (
            not request.email or email_key(found.email) == email_key(request.email)
        ):
            return found
    if request.email:
        return contacts.with_email(request.email).first()
    return None


# --- receiving and verifying ------------------------------------------------------------------
@transaction.atomic
def do_create_rights_request(
    kind: str,
    email: str,
    *,
    details: str = "",
    channel: str = "web",
    actor: Any = None,
    verified: bool = False,
) -> RightsRequest:
    """Record a request and email the verification link to ``email``.

    The same happens whether or not the address belongs to anyone we hold (the caller shows the
    same page).  An operator who received a request by other means and checked the person's
    identity may record it as ``verified`` (no link is sent).  Raises InvalidEmail, RightsError.
    """
    if kind not in Kind.values:
        raise RightsError(f"unknown kind of request: {kind!r}")
    address = normalise_email(email)
    details = details.strip() if kind == Kind.RECTIFY else ""
    if details:
        # Free text is screened like every other (special categories never stored).
        try:
            details = screen_text(details).text
        except SensitiveDataRefused as exc:
            raise RightsError(str(exc)) from None
    now = timezone.now()
    contact = Contact.objects.with_email(address).first()
    request = RightsRequest.objects.create(
        kind=kind,
        received_at=now,
        due_on=due_date(now),
        contact=contact,
        email_hmac=email_hmac(address),
        email=address,
        details=details,
        channel=channel[:20] or "web",
    )
    audit(
        "rights.request_received",
        actor=actor,
        actor_label="" if actor else "rights form",
        obj=request,
        kind=kind,
        channel=request.channel,
        contact=contact.pk if contact else None,
    )
    if verified:
        _move(request, State.VERIFIED, verified_at=now, verified_by=_user(actor))
        audit("rights.request_verified", actor=actor, obj=request, by="operator")
    elif _verification_allowed(address):
        _email_after_commit(
            address,
            "rights_verify",
            _context(request, verify_url=verify_url(request.pk)),
            request.pk,
        )
    else:
        logger.info("verification for rights request %s not sent: too many recently", request.pk)
    transaction.on_commit(
        lambda: signals.rights_request_received.send(
            sender=RightsRequest, request_id=request.pk, kind=kind
        )
    )
    return request


def _user(actor: Any) -> Any:
    return actor if getattr(actor, "is_authenticated", False) else None


@transaction.atomic
def do_verify_rights_request(request: RightsRequest, *, actor: Any = None) -> RightsRequest:
    """The person followed the link (or an operator checked their identity): the request may now
    be fulfilled.  Verifying a verified request changes nothing."""
    request = RightsRequest.objects.select_for_update().get(pk=request.pk)
    if request.state != State.RECEIVED:
        return request
    contact = _contact_of(request)
    _move(
        request,
        State.VERIFIED,
        verified_at=timezone.now(),
        verified_by=_user(actor),
        contact=contact,
    )
    audit(
        "rights.request_verified",
        actor=actor,
        actor_label="" if actor else "verification link",
        obj=request,
        by="operator" if _user(actor) else "link",
    )
    return request


@transaction.atomic
def do_extend_rights_request(request: RightsRequest, reason: str, *, actor: Any) -> RightsRequest:
    """Extend the deadline by up to the policy's extension (two months) with a reason the person
    is told by email.  Only before the first month is over, and only once."""
    reason = " ".join(reason.split())
    if not reason:
        raise RightsError("an extension needs a reason: the person is told it")
    request = RightsRequest.objects.select_for_update().get(pk=request.pk)
    if not request.is_open:
        raise RightsError("a closed request cannot be extended")
    if request.extended_to is not None:
        raise RightsError("the request has already been extended")
    if timezone.localdate() > request.due_on:
        raise RightsError("an extension must be made, and the person told, before the due date")
    new_due = extension_limit(request)
    RightsRequest.objects.filter(pk=request.pk).update(extended_to=new_due, extension_reason=reason)
    request.extended_to, request.extension_reason = new_due, reason
    audit("rights.request_extended", actor=actor, obj=request, due_on=new_due.isoformat())
    if request.email:
        _email_after_commit(
            request.email, "rights_extended", _context(request, reason=reason), request.pk
        )
    return request


@transaction.atomic
def do_refuse_rights_request(request: RightsRequest, reason: str, *, actor: Any) -> RightsRequest:
    """Refuse (manifestly unfounded, identity not proved...), telling the person why."""
    reason = " ".join(reason.split())
    if not reason:
        raise RightsError("a refusal needs a reason: the person is told it")
    request = RightsRequest.objects.select_for_update().get(pk=request.pk)
    address = _close(
        request, State.REFUSED, outcome={"refused": True}, refusal_reason=reason[:2000]
    )
    audit("rights.request_refused", actor=actor, obj=request)
    if address:
        _email_after_commit(address, "rights_refused", _context(request, reason=reason), request.pk)
    return request


# --- access -----------------------------------------------------------------------------------
@transaction.atomic
def do_fulfil_access(request: RightsRequest, *, actor: Any = None) -> RightsRequest:
    """Complete an access request: the person gets a link to download their package (built when
    downloaded, from what we hold then; see rights/package.py).  Repeating it changes nothing."""
    request = RightsRequest.objects.select_for_update().get(pk=request.pk)
    if request.kind != Kind.ACCESS:
        raise RightsError("not an access request")
    if request.state == State.COMPLETED:
        return request
    if request.state == State.RECEIVED:
        raise RightsError("the request must be verified first")
    contact = _contact_of(request)
    counts = {s.name: len(s.export(contact)) for s in sources()} if contact else {}
    counts = {name: n for name, n in counts.items() if n}
    # "emailed": whether the receipt could be sent (an erasure of the person may have cleared
    # the address of their other open requests); the page says so instead of promising it.
    outcome = {"exported": counts, "emailed": bool(request.email)}
    address = _close(request, State.COMPLETED, outcome=outcome, contact=contact)
    audit("rights.access_fulfilled", actor=actor, obj=request, exported=counts)
    if address:
        lines = ["Your copy is ready: a ZIP file with your data (JSON and CSV) and a summary."]
        context = _context(
            request,
            receipt_lines=lines,
            download_url=download_url(request.pk),
            link_days=download_days(),
        )
        _email_after_commit(address, "rights_receipt", context, request.pk)
    return request


# --- rectification ----------------------------------------------------------------------------
@transaction.atomic
def do_rectify_contact(
    contact: Contact,
    values: Mapping[str, str],
    *,
    request: RightsRequest | None = None,
    actor: Any = None,
) -> list[str]:
    """Correct a contact's fields (only ``rectifiable_fields()``); returns the names of those that
    changed.  The audit entry lists those names, never the old or new values."""
    allowed = rectifiable_fields()
    unknown = sorted(set(values) - set(allowed))
    if unknown:
        raise RightsError(f"these fields cannot be corrected here: {', '.join(unknown)}")
    # What the person typed, tidied: runs of spaces folded (an address keeps its lines).
    tidied = {
        name: str(" ".join(str(value).split()) if name != "work_address" else value).strip()
        for name, value in values.items()
    }
    try:
        changed = do_rectify_contact_fields(
            contact,
            tidied,
            allowed=allowed,
            actor=actor,
            audit_unchanged=True,
            request=request.pk if request else None,
        )
    except RequiredFieldEmptied as exc:
        raise RightsError(str(exc)) from None
    if request is not None:
        _complete(request, {"rectified": changed}, actor=actor, lines=[_rectified_line(changed)])
    return changed


def _rectified_line(changed: list[str]) -> str:
    if not changed:
        return "Nothing needed changing: your details were already as you gave them."
    return "Corrected: " + ", ".join(name.replace("_", " ") for name in changed) + "."


def _complete(
    request: RightsRequest,
    outcome: dict[str, Any],
    *,
    actor: Any,
    lines: list[str],
    kept: list[str] | None = None,
    address: str = "",
) -> None:
    """Close a verified request as completed and email the receipt (to ``address`` when the
    caller read it before something cleared it, e.g. an erasure of the person's requests)."""
    request = RightsRequest.objects.select_for_update().get(pk=request.pk)
    if request.state == State.COMPLETED:
        return
    if request.state == State.RECEIVED:
        raise RightsError("the request must be verified first")
    address = request.email or address
    outcome = {**outcome, "receipt": lines, "kept": kept or [], "emailed": bool(address)}
    _close(request, State.COMPLETED, outcome=outcome)
    audit(
        f"rights.{request.kind}_fulfilled",
        actor=actor,
        obj=request,
        **{k: v for k, v in outcome.items() if k not in ("receipt", "kept")},
    )
    if address:
        _email_after_commit(
            address,
            "rights_receipt",
            _context(request, receipt_lines=lines, kept=kept or []),
            request.pk,
        )


# --- objection to marketing -------------------------------------------------------------------
@transaction.atomic
def do_object_to_marketing(
    contact: Contact | None,
    *,
    email: str = "",
    request: RightsRequest | None = None,
    actor: Any = None,
) -> int:
    """Stop all marketing at once (Art. 21): every list left, marketing consent withdrawn on every
    channel the policy has, and the address suppressed, so no import brings it back.  ``contact``
    None (an address we hold nothing about): the address is suppressed.  Returns lists left."""
    from tidings.audience.actions import do_unsubscribe_all

    source_ref = f"rights-request:{request.pk}" if request else ""
    left = 0
    channels: list[str] = []
    if contact is not None:
        left = do_unsubscribe_all(
            contact,
            source=ConsentEvent.Source.SYSTEM,
            source_ref=source_ref,
            other_channels=True,
        )
        # A withdrawal on every channel, also those never granted: the objection covers them.
        state = current_state(contact)
        for channel in get_policy().marketing.channels:
            standing = state.standing(PURPOSE_MARKETING, channel)
            if standing is None or standing.granted:
                ConsentEvent.objects.create(
                    contact=contact,
                    purpose=PURPOSE_MARKETING,
                    channel=channel,
                    action=ConsentEvent.Action.WITHDRAWN,
                    source=ConsentEvent.Source.SYSTEM,
                    source_ref=source_ref,
                )
        channels = list(get_policy().marketing.channels)
        email = contact.email
    if email:
        do_suppress(email, Suppression.Reason.UNSUBSCRIBED, actor=actor, actor_label="rights")
    audit(
        "contact.objected_to_marketing",
        actor=actor,
        obj=contact,
        lists=left,
        channels=channels,
        request=request.pk if request else None,
    )
    if contact is not None:  # journeys take the person out of every journey (journeys.triggers)
        contact_id = contact.pk
        transaction.on_commit(
            lambda: signals.contact_objected.send(sender=Contact, contact_id=contact_id)
        )
    if request is not None:
        lines = [
            "You have left every mailing list"
            + (f" ({left})" if left else "")
            + ", and we will not contact you for marketing by "
            + ", ".join(get_policy().marketing.channels)
            + "."
        ]
        _complete(request, {"lists_left": left}, actor=actor, lines=lines)
    return left


# --- erasure ---------------------------------------------------------------------------------
@dataclass
class ErasureReceipt:
    counts: dict[str, int] = field(default_factory=dict)  # source name → rows erased/anonymised
    kept: list[Kept] = field(default_factory=list)  # what legal holds keep, in sentences
    headings: dict[str, str] = field(default_factory=dict)

    @property
    def lines(self) -> list[str]:
        """What was done, a sentence per kind of data."""
        done = [
            f"{self.headings[name]}: {count} record{'' if count == 1 else 's'} erased or made "
            "anonymous."
            for name, count in self.counts.items()
        ]
        return done or ["We held nothing else about you."]

    @property
    def kept_lines(self) -> list[str]:
        return [k.sentence for k in self.kept]


@transaction.atomic
def do_erase_contact(
    contact: Contact | None,
    *,
    email: str = "",
    request: RightsRequest | None = None,
    actor: Any = None,
) -> ErasureReceipt:
    """Erase everything held about a person (Art. 17), except what a legal minimum keeps.

    ``rights.erasure.erase_person`` does it (the same path the retention sweep uses): every
    registered source finds, then removes, its rows; the contact goes (or keeps only what a kept
    record needs), and the address is suppressed by its hash (reason "erased"), so no import or
    form brings it back unless the person confirms a new sign-up themselves.  One transaction: a
    crash midway leaves everything as it was, and running it again (the same contact, or one
    already gone) finishes the job and changes nothing more.
    """
    receipt_to = request.email if request is not None else ""
    if request is not None:
        # The request being fulfilled is not one of the "records erased": it is closed below,
        # which clears what names the person (the receipt's address is read above).
        RightsRequest.objects.filter(pk=request.pk).update(contact=None, email="", details="")
    erased = erase_person(contact, email=email, actor=actor)
    receipt = ErasureReceipt(counts=erased.counts, kept=erased.kept)
    receipt.headings = {s.name: s.heading for s in sources() if s.name in erased.counts}
    audit(
        "contact.erased",
        actor=actor,
        counts=receipt.counts,
        kept=len(receipt.kept),
        request=request.pk if request else None,
    )
    if request is not None:
        _complete(
            request,
            {"erased": receipt.counts, "kept": len(receipt.kept)},
            actor=actor,
            lines=receipt.lines,
            kept=receipt.kept_lines,
            address=receipt_to,
        )
    return receipt


# --- fulfilling a verified request ------------------------------------------------------------
@transaction.atomic
def do_fulfil_rights_request(request: RightsRequest, *, actor: Any = None) -> RightsRequest:
    """Carry out a verified request of any kind but rectification (which needs the corrections:
    ``do_rectify_contact``).  Raises RightsError when it is not verified or already closed."""
    request = RightsRequest.objects.select_for_update().get(pk=request.pk)
    if request.state == State.RECEIVED:
        raise RightsError("the request must be verified first")
    if not request.is_open:
        raise RightsError("the request is closed")
    if request.kind == Kind.ACCESS:
        return do_fulfil_access(request, actor=actor)
    contact = _contact_of(request, lock=True)
    if request.kind == Kind.ERASE:
        do_erase_contact(contact, email=request.email, request=request, actor=actor)
    elif request.kind == Kind.OBJECT:
        do_object_to_marketing(contact, email=request.email, request=request, actor=actor)
    elif contact is None:
        # Nothing to correct: we hold nothing under this address.
        _complete(
            request,
            {"rectified": []},
            actor=actor,
            lines=["We hold no details under this address, so there was nothing to correct."],
        )
    else:
        raise RightsError("a rectification needs the corrected values")
    request.refresh_from_db()
    return request


@transaction.atomic
def do_start_rights_request(request: RightsRequest, *, actor: Any) -> RightsRequest:
    """An operator takes a verified request on (it then shows as in progress)."""
    request = RightsRequest.objects.select_for_update().get(pk=request.pk)
    _move(request, State.IN_PROGRESS)
    audit("rights.request_started", actor=actor, obj=request)
    return request


# --- reminders --------------------------------------------------------------------------------
NEAR_DUE_DAYS = 7


def do_export_package(
    request: RightsRequest, *, actor: Any, actor_label: str = "", completed_only: bool = False
) -> bytes:
    """The access package (a ZIP) of an access request, built now from what we hold, audited.

    The one way out for a package, whoever asks: the privacy officer's download (a verified
    request), ``tidings rights package`` (the same) and the person's own link
    (``completed_only``: only once the request is fulfilled).  Raises RightsError.
    """
    State = RightsRequest.State
    if request.kind != RightsRequest.Kind.ACCESS or (
        request.state != State.COMPLETED
        if completed_only
        else request.state in (State.RECEIVED, State.REFUSED)
    ):
        raise RightsError("Only a verified access request has a package.")
    data = build_package(request.contact, reference=f"#{request.pk}")
    audit(
        "rights.package_downloaded",
        actor=actor,
        actor_label=actor_label,
        obj=request,
        bytes=len(data),
    )
    return data


def urgency(rights_request: RightsRequest, today: date) -> str:
    """``"overdue"``, ``"near-due"`` (within NEAR_DUE_DAYS) or ``""``: how the queue flags it."""
    if not rights_request.is_open:
        return ""
    if rights_request.due < today:
        return "overdue"
    if rights_request.due <= today + timedelta(days=NEAR_DUE_DAYS):
        return "near-due"
    return ""


def privacy_officer_addresses() -> list[str]:
    """Where reminders go: active operators who are owners or privacy officers."""
    from django.contrib.auth import get_user_model
    from django.db.models import Q

    users = (
        get_user_model()
        .objects.filter(is_active=True, is_staff=True)
        .filter(Q(is_superuser=True) | Q(groups__name__in=["owner", "privacy_officer"]))
    )
    return sorted({u.email for u in users.distinct() if u.email})


def do_remind_near_due(today: date | None = None) -> list[int]:
    """Remind privacy officers of every open request within ``NEAR_DUE_DAYS`` of its due date,
    once per due date (an extension earns a new reminder).  Returns the request ids reminded."""

    from django.db.models import Q

    today = today or timezone.localdate()
    horizon = today + timedelta(days=NEAR_DUE_DAYS)
    candidates = RightsRequest.objects.filter(state__in=RightsRequest.OPEN_STATES).filter(
        Q(extended_to__isnull=True, due_on__lte=horizon) | Q(extended_to__lte=horizon)
    )
    reminded = []
    officers = privacy_officer_addresses()
    for request in candidates:
        with transaction.atomic():
            claimed = (
                RightsRequest.objects.filter(pk=request.pk)
                .exclude(reminded_for=request.due)
                .update(reminded_for=request.due)
            )
            if claimed != 1:
                continue
            audit("rights.request_near_due", obj=request, due_on=request.due.isoformat())
            context = _context(
                request,
                queue_url=absolute_url(reverse("privacy:request", args=[request.pk])),
            )
            # Bound now (partial): the callbacks may run after the loop has moved on.
            transaction.on_commit(
                functools.partial(
                    send_rights_email, officers, "rights_reminder", context, request_id=request.pk
                )
            )
            transaction.on_commit(
                functools.partial(
                    signals.rights_request_near_due.send,
                    sender=RightsRequest,
                    request_id=request.pk,
                    kind=request.kind,
                    due=request.due,
                    # Deprecated (the API's webhooks send it for the receivers written
                    # against it): the same date as ``due``.
                    due_on=request.due,
                )
            )
            reminded.append(request.pk)
    return reminded
