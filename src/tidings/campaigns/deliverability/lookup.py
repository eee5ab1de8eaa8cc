""" "Why didn't they get it?": every message to one address in the last 90 days, with what became
of it and the receiving server's answer in plain words.

The operator types the address into a form (POST: it never appears in a URL or a log); it is
normalised and turned into its keyed hash (``audience.emails.email_hmac``, the suppression list's
HMAC), and everything is found through that hash and the contact it belongs to: campaign
deliveries and one-off messages to the contact, bounce and complaint reports about the hash (those
outlive an erasure), and the suppression entry.  Each look-up is audited by the hash, never the
address (``do_look_up_messages``).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from django.db import transaction
from django.db.models import Q
from django.utils import timezone

from tidings.audience.emails import email_hmac, normalise_email
from tidings.audience.models import Contact, Suppression
from tidings.lib.audit import audit

from ..models import Delivery, Event, EventKind, InboundReport, OutgoingMessage
from ..transports.base import names_our_sender, names_our_setup

DAYS = 90
_ENHANCED = re.compile(r"\b([245])\.(\d{1,3})\.(\d{1,3})\b")


def explain_answer(code: int | None, text: str) -> str:
    """A receiving server's answer (or our engine's note) in plain words."""
    lowered = (text or "").lower()
    enhanced = _ENHANCED.search(text or "")
    klass, subject, detail = enhanced.groups() if enhanced else ("", "", "")
    if lowered.startswith("server_unreachable") or lowered.startswith("connection"):
        return "Our mail server could not be reached at the time; it was tried again later."
    if lowered.startswith("sender:") or names_our_sender(text or ""):
        return (
            "Refused because of our sender address (the envelope sender, where bounces go), "
            "not theirs: its domain must exist, with MX and SPF records. Their address was "
            "not suppressed."
        )
    if lowered.startswith("auth:") or names_our_setup(text or ""):
        return (
            "Our SMTP server refused to send it for us (authentication or relaying): check "
            "the transport's settings. Their address was not suppressed."
        )
    if ((klass, subject) == ("5", "1") and detail in ("1", "10")) or any(
        w in lowered for w in ("user unknown", "no such user", "does not exist", "unknown user")
    ):
        return "The address does not exist: the receiving server has no such mailbox."
    if (subject, detail) == ("2", "2") or any(
        w in lowered for w in ("mailbox full", "quota", "insufficient storage", "over quota")
    ):
        return "The mailbox is full: the receiving server could not store any more mail."
    if (subject, detail) in (("7", "26"), ("7", "27")) or any(
        w in lowered for w in ("dmarc", "dkim", "spf", "unauthenticated", "authentication")
    ):
        return (
            "Refused because the message failed authentication (SPF, DKIM or DMARC): see the "
            "sender's domain checks under Campaigns → Senders."
        )
    if any(
        w in lowered
        for w in ("spam", "blocked", "block list", "blocklist", "blacklist", "reputation", "abuse")
    ) or (klass == "5" and subject == "7"):
        return "Blocked as spam, or because of the sending server's reputation."
    throttled = code in (421, 450, 451, 452, 454) or any(
        w in lowered for w in ("throttl", "rate limit", "too many", "try again later", "deferred")
    )
    if throttled or lowered.startswith("throttled"):
        return "The receiving server asked us to slow down (throttled); it was tried again later."
    if (code and 400 <= code < 500) or klass == "4":
        return "A temporary refusal; it was tried again later."
    if (code and 500 <= code < 600) or klass == "5":
        return "Refused for good by the receiving server."
    return ""


@dataclass
class Message:
    at: datetime
    what: str  # the campaign's name, or the kind of system message
    outcome: str
    explanation: str
    answer: str = ""  # the receiving server's words (addresses already masked)
    attempts: int = 0
    afterwards: list[str] = field(default_factory=list)  # opened, clicked, bounced later...


@dataclass
class LookupResult:
    hmac: str
    contact: Contact | None
    suppressed: str  # the reason, or ""
    messages: list[Message]


def _after(events: list[tuple[str, bool]], reports: list[InboundReport]) -> list[str]:
    notes = []
    kinds = {kind for kind, machine in events if not machine}
    if EventKind.OPEN in kinds:
        notes.append("opened it")
    if EventKind.CLICK in kinds:
        notes.append("clicked a link")
    if any(machine for _, machine in events) and not kinds:
        notes.append("only machines (mail privacy proxies, scanners) fetched it")
    for report in reports:
        if report.kind == InboundReport.Kind.COMPLAINT:
            notes.append(f"reported it as spam ({report.received_at:%d %b %Y})")
        elif report.kind in (InboundReport.Kind.HARD_BOUNCE, InboundReport.Kind.SOFT_BOUNCE):
            words = explain_answer(None, report.detail) or "it bounced"
            notes.append(f"bounced afterwards: {words} ({report.detail or report.kind})")
        elif report.kind == InboundReport.Kind.SENDER:
            notes.append(f"refused afterwards because of our sender address ({report.detail})")
        elif report.kind == InboundReport.Kind.BLOCKED:
            words = explain_answer(None, report.detail) or "it was blocked"
            notes.append(f"blocked afterwards by the receiving server: {words} ({report.detail})")
    return notes


def _delivery_outcome(row: Delivery) -> tuple[str, str]:
    status, error = row.status, row.error or ""
    explained = explain_answer(row.error_code, error)
    if status == Delivery.Status.SENT:
        return "Delivered", "The receiving server accepted it."
    if status == Delivery.Status.FAILED:
        return "Not delivered", explained or "Refused by the receiving server."
    if status == Delivery.Status.SKIPPED:
        if "suppress" in error:
            return "Not sent", "The address is on the suppression list (see below)."
        if "consent" in error or "unsubscribed" in error:
            return "Not sent", "They had unsubscribed by the time it went out."
        if "cancelled" in error:
            return "Not sent", "The campaign was cancelled before it reached them."
        if "erased" in error:
            return "Not sent", "Their record was erased."
        return "Not sent", error or "Skipped."
    if status == Delivery.Status.HELD:
        return "Waiting", "Held for the A/B test's winner or their local delivery hour."
    if status == Delivery.Status.QUEUED and row.attempts:
        when = timezone.localtime(row.next_attempt_at) if row.next_attempt_at else None
        retry = f" Next try: {when:%d %b %Y %H:%M}." if when else ""
        return "Trying again", (explained or "A temporary refusal.") + retry
    return "Waiting to be sent", "In the queue."


def messages_to(address: str, *, now: datetime | None = None) -> LookupResult:
    """Everything sent to ``address`` in the last 90 days, newest first.  Raises
    ``InvalidEmail`` for something that is not an address."""
    normalised = normalise_email(address)
    digest = email_hmac(normalised)
    since = (now or timezone.now()) - timedelta(days=DAYS)
    contact = Contact.objects.with_email(normalised).first()
    reports = list(
        InboundReport.objects.filter(recipient_hmac=digest, received_at__gte=since).order_by(
            "received_at"
        )
    )
    by_delivery: dict[int, list[InboundReport]] = {}
    by_outgoing: dict[int, list[InboundReport]] = {}
    for report in reports:
        if report.delivery_id:
            by_delivery.setdefault(report.delivery_id, []).append(report)
        elif report.outgoing_id:
            by_outgoing.setdefault(report.outgoing_id, []).append(report)
    found: list[Message] = []
    if contact is not None:
        deliveries = list(
            Delivery.objects.filter(contact=contact)
            .filter(Q(sent_at__gte=since) | Q(campaign__started_at__gte=since))
            .select_related("campaign")
            .order_by("-pk")
        )
        events: dict[int, list[tuple[str, bool]]] = {}
        for delivery_id, kind, machine in Event.objects.filter(delivery__in=deliveries).values_list(
            "delivery_id", "kind", "machine"
        ):
            events.setdefault(delivery_id, []).append((kind, machine))
        for row in deliveries:
            outcome, explanation = _delivery_outcome(row)
            found.append(
                Message(
                    at=row.sent_at or row.campaign.started_at or since,
                    what=f"Campaign: {row.campaign.name}",
                    outcome=outcome,
                    explanation=explanation,
                    answer=row.error,
                    attempts=row.attempts,
                    afterwards=_after(events.get(row.pk, []), by_delivery.get(row.pk, [])),
                )
            )
        for message in OutgoingMessage.objects.filter(
            contact=contact, created_at__gte=since
        ).order_by("-pk"):
            found.append(_outgoing(message, by_outgoing.get(message.pk, [])))
    suppression = Suppression.objects.filter(email_hmac=digest).first()
    found.sort(key=lambda m: m.at, reverse=True)
    return LookupResult(
        hmac=digest,
        contact=contact,
        suppressed=suppression.get_reason_display() if suppression else "",
        messages=found,
    )


def _outgoing(message: OutgoingMessage, reports: list[InboundReport]) -> Message:
    status = message.status
    explained = explain_answer(message.error_code, message.error or "")
    if status == OutgoingMessage.Status.SENT:
        outcome, explanation = "Delivered", "The receiving server accepted it."
    elif status == OutgoingMessage.Status.FAILED:
        outcome, explanation = "Not delivered", explained or "Refused by the receiving server."
    elif status == OutgoingMessage.Status.SKIPPED:
        outcome, explanation = "Not sent", message.error or "Skipped."
    else:
        outcome, explanation = "Waiting to be sent", explained or "In the queue."
    return Message(
        at=message.sent_at or message.created_at,
        what=f"Message: {message.kind}",
        outcome=outcome,
        explanation=explanation,
        answer=message.error,
        attempts=message.attempts,
        afterwards=_after([], reports),
    )


@transaction.atomic
def do_look_up_messages(address: str, *, actor: Any) -> LookupResult:
    """``messages_to``, audited with the address's keyed hash (never the address)."""
    result = messages_to(address)
    audit(
        "delivery.looked_up",
        actor=actor,
        obj=result.contact,
        email_hmac=result.hmac,
        messages=len(result.messages),
    )
    return result
