"""ESP webhooks, through django-anymail's tracking signal.

Anymail's webhook views (``/webhooks/anymail/<esp>/tracking/``) check each post before it
becomes an event: the shared basic-auth secret (``ANYMAIL["WEBHOOK_SECRET"]``, from
``TIDINGS_ANYMAIL_WEBHOOK_SECRET``) for Amazon SES, SendGrid, Postmark and Brevo; Mailgun's
HMAC signature (``TIDINGS_MAILGUN_WEBHOOK_SIGNING_KEY``); SendGrid's signed events too when
``TIDINGS_SENDGRID_WEBHOOK_VERIFICATION_KEY`` is set.  A post without them, or forged, is refused
(400) and never reaches ``receive``.

Anymail normalises the event types: ``bounced`` is a hard bounce, unless the ESP itself calls it
soft (Postmark's SoftBounce, Brevo's soft_bounce, SES's Transient) or the server's reply was a
4xx; ``deferred`` is a soft bounce; ``complained`` a complaint.  A bounce whose reply refused our
envelope sender (5.1.7, 5.1.8, "Sender address rejected") is ``SENDER``, and one the reply or the
ESP calls a policy block (5.7.x, "rejected as spam", anymail's ``reject_reason`` "blocked" or
"spam"; Postmark's SpamNotification, which anymail calls a complaint, is a receiving filter's
refusal) is ``BLOCKED``: neither suppresses the recipient.  Other events (delivered,
opened...) are not reports and are ignored here.
"""

from __future__ import annotations

import json
import re
from typing import Any

from .base import (
    BLOCKED,
    COMPLAINT,
    HARD,
    SENDER,
    SOFT,
    Finding,
    permanent_but_soft,
    policy_block,
    refused_by_policy_words,
    refuses_our_sender,
    rows_in,
)

_TEMPORARY_REPLY = re.compile(r"^\s*(4\d\d|4\.\d{1,3}\.\d{1,3})\b")


def _soft_by_esp(esp_name: str, esp_event: Any) -> bool:
    if not isinstance(esp_event, dict):
        return False
    name = esp_name.lower()
    if name == "postmark":
        return esp_event.get("Type") in {"SoftBounce", "Transient"}
    if name in {"brevo", "sendinblue"}:
        return esp_event.get("event") == "soft_bounce"
    if name == "amazon ses":
        bounce = esp_event.get("bounce") or {}
        return isinstance(bounce, dict) and bounce.get("bounceType") == "Transient"
    return False


def _filtered_by_esp(esp_name: str, esp_event: Any) -> bool:
    """Whether the ESP's event is a spam filter's notice rather than a person's complaint."""
    return (
        esp_name.lower() == "postmark"
        and isinstance(esp_event, dict)
        and esp_event.get("Type") == "SpamNotification"
    )


_ENHANCED = re.compile(r"\b([245]\.\d{1,3}\.\d{1,3})\b")


def _enhanced(reply: str) -> str:
    """The enhanced status code (RFC 3463) in a server's reply, "" when it gives none."""
    match = _ENHANCED.search(reply)
    return match.group(1) if match else ""


# The address itself was refused (5.1.1 user unknown, 5.1.10 null MX): whatever the ESP calls it.
_ADDRESS_STATUS = re.compile(r"^5\.1\.(1|2|3|10)$")


def _esp_says_policy(event: Any) -> bool:
    """Whether the ESP classified the bounce as a block or spam refusal (anymail's normalised
    ``reject_reason``): never a reason to suppress the address."""
    return str(event.reject_reason or "") in ("blocked", "spam")


def parse(event: Any, esp_name: str) -> list[Finding]:
    """The finding in an anymail ``AnymailTrackingEvent`` ([] when it is not a report)."""
    kind = {"bounced": HARD, "deferred": SOFT, "complained": COMPLAINT}.get(event.event_type)
    if kind is None:
        return []
    reply = str(event.mta_response or "")
    detail = str(event.reject_reason or event.event_type)[:100]
    if kind == COMPLAINT and _filtered_by_esp(esp_name, event.esp_event):
        # Postmark's SpamNotification (anymail: "complained") is a receiving spam filter's
        # refusal of the message, not the person reporting it: a policy block, never a reason
        # to suppress them or withdraw their consent.  Its SpamComplaint stays a complaint.
        kind, detail = BLOCKED, "SpamNotification"
    status = _enhanced(reply)
    if kind == HARD and refuses_our_sender(status, [reply]):
        # "550 5.1.8 Sender address rejected: Domain not found": our sender, not the address.
        kind, detail = SENDER, status or detail
    elif kind == HARD and (
        policy_block(status)
        or refused_by_policy_words(status, [reply])
        or (_esp_says_policy(event) and not _ADDRESS_STATUS.match(status))
    ):
        # "550 5.7.1 rejected as spam", a DMARC refusal, or the ESP's own word for a block
        # (SparkPost's bounce classes 25, 50-54, SendGrid's "blocked"): the message or
        # sender, not the address.
        kind, detail = BLOCKED, status or detail
    elif kind == HARD and (
        _soft_by_esp(esp_name, event.esp_event)
        or _TEMPORARY_REPLY.match(reply)
        or permanent_but_soft(_enhanced(reply), [reply])  # a full mailbox
    ):
        kind = SOFT
    return [
        Finding(
            kind,
            recipient=str(event.recipient or ""),
            rows=rows_in([raw_event(event).decode("utf-8", "replace")]),
            provider_id=str(event.message_id or "")[:200],
            detail=detail,
            event_id=_event_key(event),
        )
    ]


def _event_key(event: Any) -> str:
    """The ESP's event id, made per recipient: one SES notification (one id) may list several
    recipients, and a repeat of the same post must not count twice."""
    if not event.event_id:
        return ""
    from tidings.audience.emails import email_hmac

    recipient = str(event.recipient or "").strip().lower()
    return f"{event.event_id}"[:180] + ":" + (email_hmac(recipient)[:16] if recipient else "")


def raw_event(event: Any) -> bytes:
    """What the ESP sent for the event, kept (like a bounce mail) while it is unprocessed."""
    esp_event = event.esp_event
    if hasattr(esp_event, "POST"):  # some ESPs' events are the request's form fields
        esp_event = esp_event.POST.dict()
    return json.dumps(esp_event, default=str, sort_keys=True).encode()


def receive(sender: Any, event: Any, esp_name: str, **kwargs: Any) -> None:
    """anymail's ``tracking`` signal receiver (connected in ``CampaignsConfig.ready``)."""
    from .processing import do_record_inbound_event

    for finding in parse(event, esp_name):
        do_record_inbound_event(
            finding,
            source=f"webhook:{_slug(esp_name)}",
            raw=raw_event(event),
            event_id=finding.event_id,
        )


def _slug(name: str) -> str:
    return "".join(c if c.isalnum() else "_" for c in name.lower())[:30]
