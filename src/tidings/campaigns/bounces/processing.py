"""What a bounce or complaint does: store it, match it to the message we sent, act on it.

Every report is first stored (``InboundReport``, unprocessed) in a transaction of its own, so
nothing that arrived is ever lost to a later error; then it is read, matched and acted on in a
second one.  A report that cannot be read or matched stays unprocessed with the reason, for the
operator's list ("retry matching" there, or ``do_retry_inbound_report``).

Effects, for the person the matched message went to (campaign mail and one-off mail alike):

- hard bounce: the address is suppressed at once (reason ``hard_bounce``) and their live
  subscriptions are marked bounced (``audience.suppression.do_record_hard_bounce``);
- soft bounce: counted; the ``TIDINGS_SOFT_BOUNCE_LIMIT``-th (default 3) within
  ``TIDINGS_SOFT_BOUNCE_DAYS`` (default 14) days counts as a hard bounce;
- policy block (5.7.x: refused as spam, a blocklisted server, DMARC): the receiver refused the
  message or its sender, not the address: nobody is suppressed and nothing counts towards the
  soft-bounce limit; the message is marked failed ("blocked: 5.7.1 ..."), so the campaign's
  report and "Why didn't they get it?" show it, and no bounce signal is sent;
- sender refusal (5.1.7 / 5.1.8, "Sender address rejected", relaying denied): our envelope
  sender or sending set-up was refused, not the address: as a policy block, nobody is
  suppressed; the message is marked failed ("sender: 5.1.8 ..."), which the reputation pause
  counts apart, saying to fix the sender address or its domain;
- complaint: suppressed (reason ``complaint``), every live subscription marked complained with
  its consent withdrawn, and marketing consent withdrawn on every channel (email, phone, post),
  each a ConsentEvent (source ``system``, ``complaint:<report id>``).

Each is recorded as an ``Event`` of its delivery (``events.record_delivery_event``: the
campaign's report counts bounces and complaints) and fires ``tidings.signals.delivery_bounced`` /
``delivery_complained`` once the transaction commits.
"""

from __future__ import annotations

import contextlib
import logging
import re
from datetime import timedelta
from typing import Any

from django.conf import settings
from django.db import transaction
from django.utils import timezone

from tidings import signals
from tidings.lib.audit import audit

from ..models import Delivery, InboundReport, OutgoingMessage
from .base import BLOCKED, COMPLAINT, HARD, SENDER, SOFT, Finding, Unreadable

logger = logging.getLogger(__name__)

_SEVERITY = {COMPLAINT: 3, HARD: 2, SOFT: 1, BLOCKED: 1, SENDER: 1}


def _setting(name: str, default: Any) -> Any:
    value = getattr(settings, name, None)
    return default if value in (None, "") else value


def max_bytes() -> int:
    """The largest bounce or complaint mail read; a larger one is kept as an unprocessed report
    without its message (a bounce quoting one of our mails is well under 1 MB)."""
    return int(_setting("TIDINGS_BOUNCE_MAX_BYTES", 10 * 1024**2))


def soft_bounce_limit() -> tuple[int, int]:
    """(N, M): the N-th soft bounce within M days suppresses the address."""
    return (
        int(_setting("TIDINGS_SOFT_BOUNCE_LIMIT", 3)),
        int(_setting("TIDINGS_SOFT_BOUNCE_DAYS", 14)),
    )


# --- arriving ----------------------------------------------------------------------------------
def not_mail(raw: bytes) -> str:
    """Why ``raw`` is refused outright ("" when it is taken): only nothing at all.  Anything
    else is kept as a report, processed or unprocessed with the reason (the pipe exits 0 and
    the LMTP server answers 250 for it), so a mail server is told of a failure only for this."""
    return "" if raw.strip() else "not a mail message: the input is empty"


def do_record_inbound_mail(raw: bytes, *, source: str) -> InboundReport:
    """A bounce or complaint that arrived as a mail (MTA pipe, bounce mailbox): stored, then
    processed.  Never raises for what is in the mail; the report says what happened.  A DMARC
    aggregate report (the bounce address is a good ``rua``) goes to the deliverability app
    instead, and its ``DmarcReport`` (same status and reason fields) is returned."""
    from ..deliverability.dmarc import do_record_dmarc_report, looks_like_dmarc_report

    if looks_like_dmarc_report(raw):
        return do_record_dmarc_report(raw, source=source)  # type: ignore[return-value]
    if len(raw) > (limit := max_bytes()):
        report = _store(source=source, raw=b"")
        _note(report, f"too large: {len(raw):,} bytes, over the limit of {limit:,}: not read")
        return report
    unsubscribe = _unsubscribe_request_in(raw)
    if unsubscribe is not None:
        return _unsubscribe_by_mail(unsubscribe, source=source)
    report = _store(source=source, raw=raw)
    return _process(report)


# A mail to the List-Unsubscribe mailto address (``tokens.list_unsubscribe_header``): mail
# programs send it with the subject the header gave, "unsubscribe <token>" (some add "Re:" or
# quote it).  The token is the capability, as in the https link; a forged one verifies not.
_UNSUBSCRIBE_SUBJECT = re.compile(r"\bunsubscribe\s+([A-Za-z0-9_-]+:[A-Za-z0-9_-]+)", re.I)


def _unsubscribe_request_in(raw: bytes) -> Any:
    """The verified unsubscribe request in a mail's subject, or None."""
    from tidings.audience.tokens import BadToken, read_unsubscribe_token

    from . import mail

    try:
        subject = str(mail.read(raw).get("Subject", ""))
    except Exception:  # unreadable mail: the ordinary path keeps it with the reason
        return None
    match = _UNSUBSCRIBE_SUBJECT.search(subject.replace("%3A", ":").replace("%3a", ":"))
    if match is None:
        return None
    try:
        return read_unsubscribe_token(match.group(1))
    except BadToken:
        return None


def _unsubscribe_by_mail(unsubscribe: Any, *, source: str) -> InboundReport:
    """Do what the one-click link does, and keep a processed report (without the mail)."""
    from tidings.audience.actions import do_unsubscribe_request
    from tidings.audience.models import ConsentEvent, Contact

    with transaction.atomic():
        do_unsubscribe_request(unsubscribe, source=ConsentEvent.Source.UNSUBSCRIBE)
        report = _store(
            source=source,
            raw=b"",
            status=InboundReport.Status.PROCESSED,
            processed_at=timezone.now(),
            contact_id=Contact.objects.filter(pk=unsubscribe.contact_id)
            .values_list("pk", flat=True)
            .first(),
            detail="List-Unsubscribe mailto",
            reason="unsubscribe request by mail: "
            + ("unsubscribed from everything" if unsubscribe.list_id is None else "unsubscribed"),
        )
    return report


def do_record_inbound_event(
    finding: Finding, *, source: str, raw: bytes, event_id: str = ""
) -> InboundReport:
    """A bounce or complaint from an ESP webhook (already parsed: ``esp.parse``).  An event the
    ESP sends again (same ``event_id``) is not counted twice."""
    if event_id:
        seen = InboundReport.objects.filter(source=source, event_id=event_id).first()
        if seen is not None:
            return seen
    report = _store(
        source=source,
        raw=raw,
        event_id=event_id,
        kind=finding.kind,
        detail=finding.detail,
        provider_id=finding.provider_id,
    )
    return _process(report, [finding])


@transaction.atomic
def _store(*, source: str, raw: bytes, **fields: Any) -> InboundReport:
    return InboundReport.objects.create(source=source[:40], raw=raw, **fields)


def do_retry_inbound_report(report: InboundReport) -> InboundReport:
    """Read and match an unprocessed report again (after the message it is about was
    recorded, or a fix); a processed one is left as it is."""
    if report.status == InboundReport.Status.PROCESSED:
        return report
    if not bytes(report.raw):
        _note(report, "the message is no longer kept: it cannot be read again")
        return report
    findings = None
    if report.source.startswith("webhook:"):
        from .base import rows_in

        findings = [
            Finding(
                report.kind,
                rows=rows_in([bytes(report.raw).decode("utf-8", "replace")]),
                provider_id=report.provider_id,
                detail=report.detail,
            )
        ]
    return _process(report, findings)


def retry_unprocessed() -> tuple[int, int]:
    """Retry every unprocessed report still kept: (tried, now processed)."""
    tried = processed = 0
    for report in InboundReport.objects.filter(status=InboundReport.Status.UNPROCESSED).exclude(
        raw=b""
    ):
        tried += 1
        processed += do_retry_inbound_report(report).status == InboundReport.Status.PROCESSED
    return tried, processed


def purge_kept_messages(now=None) -> int:
    """Drop the messages of reports older than ``TIDINGS_BOUNCE_KEEP_DAYS`` (default 30): they
    hold addresses, and a report nobody could match in that time never will be."""
    days = int(_setting("TIDINGS_BOUNCE_KEEP_DAYS", 30))
    cutoff = (now or timezone.now()) - timedelta(days=days)
    return InboundReport.objects.filter(received_at__lt=cutoff).exclude(raw=b"").update(raw=b"")


# --- processing --------------------------------------------------------------------------------
def _process(report: InboundReport, findings: list[Finding] | None = None) -> InboundReport:
    try:
        with transaction.atomic():
            if findings is None:
                findings = _read(report)
            _act(report, findings)
    except Unreadable as exc:
        _note(report, f"unreadable: {exc}")
    except Exception as exc:  # never a crash, never a lost report: the operator sees why
        logger.exception("inbound report %s could not be processed", report.pk)
        _note(report, f"could not be processed ({type(exc).__name__}); try again later")
    return report


def _read(report: InboundReport) -> list[Finding]:
    from . import mail

    return mail.parse(mail.read(bytes(report.raw)))


def _note(report: InboundReport, reason: str) -> None:
    """Leave the report unprocessed, with why (never personal data)."""
    report.status = InboundReport.Status.UNPROCESSED
    report.reason = reason[:300]
    InboundReport.objects.filter(pk=report.pk).update(status=report.status, reason=report.reason)


def _match(finding: Finding) -> Delivery | OutgoingMessage | None:
    for kind, row_id in finding.rows:
        model = Delivery if kind == "d" else OutgoingMessage
        row = model.objects.filter(pk=row_id).first()
        if row is not None:
            return row
    if finding.provider_id:  # indexed (delivery_provider_id, outgoing_provider_id)
        for model in (Delivery, OutgoingMessage):
            row = model.objects.filter(message_id=finding.provider_id).first()
            if row is not None:
                return row
    return None


def _act(report: InboundReport, findings: list[Finding]) -> None:
    from tidings.audience.emails import InvalidEmail, email_hmac, normalise_email

    if not findings:
        report.reason = "not a bounce or complaint: no failed recipient or feedback report in it"
        report.save(update_fields=["reason"])
        return
    finding = max(findings, key=lambda f: _SEVERITY.get(f.kind, 0))
    report.kind = finding.kind
    report.detail = finding.detail[:100]
    if finding.recipient:
        with contextlib.suppress(InvalidEmail):
            report.recipient_hmac = email_hmac(normalise_email(finding.recipient))
    row = _match(finding)
    if row is None:
        report.reason = (
            "no message of ours found in it (no Message-ID or VERP address we made, "
            "no known provider message id)"
        )
        report.save(update_fields=["kind", "detail", "recipient_hmac", "reason"])
        return
    if isinstance(row, Delivery):
        report.delivery = row
    else:
        report.outgoing = row
    report.contact_id = row.contact_id
    # A hard bounce, or the soft bounce that reached the limit: the address is suppressed as
    # a hard bounce either way, and the signal says so (journeys take the person out at once).
    hard = finding.kind == HARD
    if row.contact_id is None:
        outcome = "the person was erased: nothing to do"
    elif finding.kind == HARD:
        outcome = _hard_bounce(report, row.contact_id)
    elif finding.kind == SOFT:
        outcome, hard = _soft_bounce(report, row.contact_id)
    elif finding.kind == BLOCKED:
        outcome = _blocked(report, row)
    elif finding.kind == SENDER:
        outcome = _sender_refused(report, row)
    else:
        outcome = _complaint(report, row.contact_id)
    if isinstance(row, Delivery) and finding.kind not in (BLOCKED, SENDER):
        # The campaign's report counts it (the tracking engineer's events and counters).
        from ..events import record_delivery_event

        record_delivery_event(row.pk, finding.kind, at=report.received_at)
    report.status = InboundReport.Status.PROCESSED
    report.processed_at = timezone.now()
    report.reason = outcome[:300]
    report.raw = b""  # done with: the facts above are all that is kept
    report.save()
    audit(
        "bounce.processed",
        actor_label=f"bounces:{report.source}",
        obj=report,
        kind=report.kind,
        delivery=report.delivery_id,
        outgoing=report.outgoing_id,
    )
    if finding.kind not in (BLOCKED, SENDER):  # not a bounce: journeys and webhooks hear nothing
        _after_commit(report, hard=hard)


def _blocked(report: InboundReport, row: Delivery | OutgoingMessage) -> str:
    """A policy block reported after the message was handed over: the message failed (its
    status and the code say so, for the campaign's report and the deliverability centre), the
    person is left alone.  Only the status code is kept, never what the reply quoted."""
    error = f"blocked: {report.detail} (reported after it was handed over)"
    type(row).objects.filter(pk=row.pk).update(status=Delivery.Status.FAILED, error=error)
    return (
        f"blocked by the receiving server's policy ({report.detail}): the message or sender "
        "was refused, not the address: nobody suppressed, not counted as a bounce"
    )


def _sender_refused(report: InboundReport, row: Delivery | OutgoingMessage) -> str:
    """A refusal of our envelope sender reported after the message was handed over: the
    message failed (``sender:``, counted apart by the reputation pause), the person is left
    alone.  Only the status code is kept."""
    error = f"sender: {report.detail} (reported after it was handed over)"
    type(row).objects.filter(pk=row.pk).update(status=Delivery.Status.FAILED, error=error)
    return (
        f"our sender was refused ({report.detail}): the envelope sender address or its domain "
        "(or the relay's settings), not the recipient's address: nobody suppressed, not "
        "counted as a bounce"
    )


def _hard_bounce(report: InboundReport, contact_id: int) -> str:
    from tidings.audience.suppression import do_record_hard_bounce

    suppressed = do_record_hard_bounce([contact_id], source=f"bounces:{report.source}")
    return "hard bounce: address suppressed" if suppressed else "hard bounce: already suppressed"


def _soft_bounce(report: InboundReport, contact_id: int) -> tuple[str, bool]:
    """(what was done, whether the address was suppressed: the limit was reached)."""
    limit, days = soft_bounce_limit()
    since = timezone.now() - timedelta(days=days)
    earlier = (
        InboundReport.objects.filter(
            contact_id=contact_id,
            kind=SOFT,
            status=InboundReport.Status.PROCESSED,
            received_at__gte=since,
        )
        .exclude(pk=report.pk)
        .count()
    )
    count = earlier + 1
    if count < limit:
        return f"soft bounce {count} of {limit} within {days} days", False
    from tidings.audience.suppression import do_record_hard_bounce

    do_record_hard_bounce([contact_id], source=f"bounces:{report.source}")
    return f"soft bounce {count} of {limit} within {days} days: address suppressed", True


def _complaint(report: InboundReport, contact_id: int) -> str:
    from tidings.audience.actions import do_unsubscribe_all
    from tidings.audience.consent import CHANNEL_EMAIL, PURPOSE_NEWSLETTER
    from tidings.audience.emails import email_hmac
    from tidings.audience.models import ConsentEvent, Contact, Subscription, Suppression
    from tidings.audience.subscriptions import do_set_subscription_status
    from tidings.audience.suppression import do_suppress

    contact = Contact.objects.get(pk=contact_id)
    label = f"bounces:{report.source}"
    ref = f"complaint:{report.pk}"
    if not do_suppress(contact.email, Suppression.Reason.COMPLAINT, actor_label=label):
        # Suppressed before for another reason: a complaint is the stronger one (a later
        # confirmed sign-up lifts an "unsubscribed" suppression, never a complaint).
        changed = Suppression.objects.filter(
            email_hmac=email_hmac(contact.email), reason=Suppression.Reason.UNSUBSCRIBED
        ).update(reason=Suppression.Reason.COMPLAINT)
        if changed:
            audit("suppression.reason_changed", actor_label=label, reason="complaint", count=1)
    now = timezone.now()
    subscriptions = list(
        Subscription.objects.select_for_update()
        .filter(
            contact=contact,
            status__in=(Subscription.Status.PENDING, Subscription.Status.CONFIRMED),
        )
        .select_related("mailing_list")
    )
    do_set_subscription_status(subscriptions, Subscription.Status.COMPLAINED, at=now)
    for sub in subscriptions:
        ConsentEvent.objects.create(
            contact=contact,
            purpose=PURPOSE_NEWSLETTER,
            channel=CHANNEL_EMAIL,
            mailing_list=sub.mailing_list,
            topic=sub.mailing_list.topic,
            action=ConsentEvent.Action.WITHDRAWN,
            source=ConsentEvent.Source.SYSTEM,
            source_ref=ref,
        )
    if subscriptions:
        audit(
            "subscription.complained",
            actor_label=label,
            obj=contact,
            subscriptions=len(subscriptions),
            report=report.pk,
        )
    # Marketing consent on every channel, through the same action as "unsubscribe from
    # everything" (it finds no live subscription left, and the address already suppressed).
    do_unsubscribe_all(
        contact, source=ConsentEvent.Source.SYSTEM, source_ref=ref, other_channels=True
    )
    return (
        f"complaint: address suppressed, {len(subscriptions)} subscription(s) marked "
        "complained, marketing consent withdrawn on every channel"
    )


def _after_commit(report: InboundReport, *, hard: bool) -> None:
    sender = Delivery if report.delivery_id else OutgoingMessage
    contact_id, delivery_id, kind = report.contact_id, report.delivery_id, report.kind
    if kind == COMPLAINT:
        transaction.on_commit(
            lambda: signals.delivery_complained.send(
                sender=sender, contact_id=contact_id, delivery_id=delivery_id
            )
        )
    else:
        transaction.on_commit(
            lambda: signals.delivery_bounced.send(
                sender=sender, contact_id=contact_id, delivery_id=delivery_id, hard=hard
            )
        )
