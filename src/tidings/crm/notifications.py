"""Telling operators about work: new enquiries, booked demos, support requests, replies, work
assigned to them, and reminders of what is due.

Each operator chooses (``OperatorPreference.notify``): every event by email as it happens, one
daily digest, or nothing.  An event becomes ``OperatorNotification`` rows in the transaction
that made it (so a rolled-back enquiry tells nobody, and a committed one is never forgotten);
the worker sends them (``send_pending``: at once, through the installation's mailer, or in the
digest after ``TIDINGS_DIGEST_HOUR``).  A row names its record by kind and id only; the mail
is written when it is sent, from the record as it is then (gone: not mentioned).

Who is told:

- new work (enquiry, booked demo, support request, held request): every operator who opted in;
- a reply, an assignment: the record's owner (or, with no owner, everyone who opted in);
- a reminder (next action due today, overdue; first response due soon, missed): the owner,
  once per due date (a first-response reminder, with no owner: everyone who opted in).
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Sequence
from datetime import datetime, timedelta
from typing import Any

from django.conf import settings
from django.core.mail import EmailMultiAlternatives
from django.db import transaction
from django.db.models import F, Q
from django.urls import reverse
from django.utils import timezone

from tidings.audience.tokens import absolute_url

from .models import Enquiry, OperatorNotification, OperatorPreference, SupportRequest

logger = logging.getLogger(__name__)
Event = OperatorNotification.Event
BATCH = 50


def _opted_in() -> list[OperatorPreference]:
    return list(
        OperatorPreference.objects.filter(user__is_active=True, user__is_staff=True).exclude(
            notify=OperatorPreference.Notify.NONE
        )
    )


def _queue(record: Enquiry | SupportRequest, event: str, preferences: Iterable[Any]) -> int:
    from .work import kind_of

    rows = [
        OperatorNotification(
            user_id=p.user_id,
            event=event,
            record_kind=kind_of(record),
            record_id=record.pk,
            digest=p.notify == OperatorPreference.Notify.DIGEST,
        )
        for p in preferences
        if p.notify != OperatorPreference.Notify.NONE
    ]
    if rows:
        OperatorNotification.objects.bulk_create(rows)
        if any(not row.digest for row in rows):
            transaction.on_commit(_send_soon)
    return len(rows)


def _send_soon() -> None:
    from .tasks import send_notifications_task

    try:
        send_notifications_task.enqueue()
    except Exception:  # the periodic job sends it within a minute anyway
        logger.warning("could not enqueue the notification task; the periodic job will send")


def notify_new(record: Enquiry | SupportRequest, event: str) -> int:
    """New work: everyone who opted in is told."""
    return _queue(record, event, _opted_in())


def notify_owner(record: Enquiry | SupportRequest, event: str, owner: Any = None) -> int:
    """Tell the record's owner (``owner``: the new one), or with none everyone who opted in."""
    owner = owner if owner is not None else record.owner
    if owner is None:
        return _queue(record, event, _opted_in())
    preference = OperatorPreference.objects.filter(user=owner).first()
    return _queue(record, event, [preference] if preference else [])


def operator_mail_settings(user_ids: Sequence[int]) -> dict[int, frozenset[str]]:
    """For ``lib.operator_mail`` (registered in ``apps.py``): the kinds of mail about campaigns
    and journeys each of these operators switched off on this settings page."""
    from tidings.lib.operator_mail import Kind

    found = OperatorPreference.objects.filter(user_id__in=user_ids).values_list(
        "user_id", "mail_confirmations", "mail_sent_back"
    )
    return {
        user_id: frozenset(
            kind
            for kind, on in ((Kind.CONFIRMATION, confirmations), (Kind.SENT_BACK, sent_back))
            if not on
        )
        for user_id, confirmations, sent_back in found
    }


# --- writing and sending ----------------------------------------------------------------------
def _record(kind: str, pk: int) -> Enquiry | SupportRequest | None:
    if kind == "enquiry":
        return Enquiry.objects.select_related("contact").filter(pk=pk).first()
    return (
        SupportRequest.objects.select_related("support_contact__contact", "organisation")
        .filter(pk=pk)
        .first()
    )


def line(notification: OperatorNotification) -> tuple[str, str] | None:
    """(sentence, link) for a notification, or None when its record is gone."""
    record = _record(notification.record_kind, notification.record_id)
    if record is None:
        return None
    what = Event(notification.event).label
    if isinstance(record, Enquiry):
        who = record.contact.display_name
        text = f"{what}: enquiry #{record.pk} from {who}"
        url = reverse("crm:enquiry", args=[record.pk])
    else:
        who = record.support_contact.contact.display_name
        text = (
            f"{what}: support request #{record.pk} from {who} at {record.organisation.name}"
            f" ({record.subject})"
        )
        url = reverse("crm:support-request", args=[record.pk])
    if notification.event in (Event.DUE, Event.OVERDUE) and record.next_action_on:
        text += f", next action {record.next_action_on.isoformat()}"
    if notification.event in (Event.RESPONSE_DUE, Event.RESPONSE_BREACHED):
        due = getattr(record, "response_due_at", None)
        if due:
            text += f", first response due {timezone.localtime(due):%Y-%m-%d %H:%M}"
    return text, absolute_url(url)


def _mail(to: str, subject: str, text: str) -> None:
    from tidings.policy import get_policy

    sender = settings.DEFAULT_FROM_EMAIL
    message = EmailMultiAlternatives(
        f"[{get_policy().controller.name}] {subject}", text, sender, [to]
    )
    message.extra_headers["Auto-Submitted"] = "auto-generated"
    message.send()


def _footer() -> str:
    return (
        "\n\nYou get these emails because of your CRM settings; change them here:\n"
        f"{absolute_url(reverse('crm:preferences'))}\n"
    )


def _may_see(user: Any) -> bool:
    # The operator roles live in the operator shell (web/); a role changed since the event was
    # queued decides: nobody is mailed about records they may no longer open.
    from tidings.lib.access import has_permission

    return bool(user.email) and has_permission(user, "people")


def send_pending(*, limit: int = BATCH) -> int:
    """Send the notifications waiting to go one by one (not the digests); returns how many.

    Claimed under a row lock (SKIP LOCKED on PostgreSQL), sent, then marked, one short
    transaction per batch: a crash after a send and before the mark sends that one again,
    never loses it.  A failure leaves the row for the next run."""
    sent = 0
    while True:
        with transaction.atomic():
            batch = list(
                OperatorNotification.objects.select_for_update(skip_locked=True, of=("self",))
                .filter(sent_at__isnull=True, digest=False)
                .select_related("user")
                .order_by("pk")[:limit]
            )
            if not batch:
                return sent
            done = []
            for notification in batch:
                written = line(notification)
                user = notification.user
                if written is not None and _may_see(user):
                    text, url = written
                    try:
                        _mail(user.email, text, f"{text}.\n\nOpen it: {url}{_footer()}")
                    except Exception as exc:
                        logger.error(
                            "notification %s could not be sent: %s",
                            notification.pk,
                            type(exc).__name__,
                        )
                        return sent
                    sent += 1
                done.append(notification.pk)
            OperatorNotification.objects.filter(pk__in=done).update(sent_at=timezone.now())


def send_digests(now: datetime | None = None) -> int:
    """Each operator on the daily digest gets one mail a day, after ``TIDINGS_DIGEST_HOUR``
    (local time), listing what happened since their last one; returns how many went."""
    now = now or timezone.now()
    local = timezone.localtime(now)
    if local.hour < int(getattr(settings, "TIDINGS_DIGEST_HOUR", 8)):
        return 0
    today = local.date()
    sent = 0
    due = OperatorPreference.objects.filter(notify=OperatorPreference.Notify.DIGEST).filter(
        Q(last_digest_on__isnull=True) | Q(last_digest_on__lt=today)
    )
    for preference in due.select_related("user"):
        with transaction.atomic():
            claimed = OperatorPreference.objects.filter(
                Q(last_digest_on__isnull=True) | Q(last_digest_on__lt=today), pk=preference.pk
            ).update(last_digest_on=today)
            if claimed != 1:
                continue  # another worker has it
            rows = list(
                OperatorNotification.objects.filter(
                    user=preference.user, digest=True, sent_at__isnull=True
                ).order_by("pk")
            )
            lines = [written for row in rows if (written := line(row)) is not None]
            if lines and _may_see(preference.user):
                body = "\n".join(f"- {text}\n  {url}" for text, url in lines)
                try:
                    _mail(
                        preference.user.email,
                        f"Your CRM digest for {today.isoformat()}: {len(lines)} item(s)",
                        f"Since your last digest:\n\n{body}{_footer()}",
                    )
                except Exception as exc:
                    logger.error("digest could not be sent: %s", type(exc).__name__)
                    transaction.set_rollback(True)
                    continue
                sent += 1
            OperatorNotification.objects.filter(pk__in=[r.pk for r in rows]).update(sent_at=now)
    return sent


# --- reminders --------------------------------------------------------------------------------
def send_reminders(now: datetime | None = None) -> int:
    """Queue the reminders whose time has come; returns how many records reminded someone.

    Next action due today or overdue: the owner, once per due date (the record remembers the
    date it reminded for; a new date reminds again).  First response due within
    ``TIDINGS_RESPONSE_WARNING_MINUTES`` or missed: the owner (or everyone who opted in), once
    each.  Each claim is a conditional update, so two workers never remind twice."""
    from .work import OPEN

    now = now or timezone.now()
    today = timezone.localdate(now)
    reminded = 0
    for model in (Enquiry, SupportRequest):
        open_work = model.objects.filter(status__in=OPEN[model], owner__isnull=False)
        for event, condition, field in (
            (Event.DUE, Q(next_action_on=today), "due_reminded_on"),
            (Event.OVERDUE, Q(next_action_on__lt=today), "overdue_reminded_on"),
        ):
            candidates = open_work.filter(condition).exclude(**{field: F("next_action_on")})
            for record in candidates.select_related("owner")[:500]:
                with transaction.atomic():
                    claimed = (
                        model.objects.filter(pk=record.pk, next_action_on=record.next_action_on)
                        .exclude(**{field: record.next_action_on})
                        .update(**{field: record.next_action_on})
                    )
                    if claimed == 1:
                        notify_owner(record, event)
                        reminded += 1
    warning = timedelta(minutes=int(getattr(settings, "TIDINGS_RESPONSE_WARNING_MINUTES", 60)))
    waiting = SupportRequest.objects.filter(
        status__in=OPEN[SupportRequest],
        first_response_at__isnull=True,
        response_due_at__isnull=False,
    )
    for event, condition, field in (
        (
            Event.RESPONSE_DUE,
            Q(response_due_at__gt=now, response_due_at__lte=now + warning),
            "response_reminded_at",
        ),
        (Event.RESPONSE_BREACHED, Q(response_due_at__lte=now), "breach_reminded_at"),
    ):
        for record in waiting.filter(condition, **{f"{field}__isnull": True})[:500]:
            with transaction.atomic():
                claimed = SupportRequest.objects.filter(
                    pk=record.pk, **{f"{field}__isnull": True}
                ).update(**{field: now})
                if claimed == 1:
                    notify_owner(record, event)
                    reminded += 1
    return reminded
