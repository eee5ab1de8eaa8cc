"""The journey engine: ``advance_due`` moves due enrolments on by one step at a time.

**Claiming** is the delivery queue's pattern: one statement stamps a small batch of due
enrolments of active journeys with this worker's id and a lease (``SELECT … FOR UPDATE SKIP
LOCKED`` on PostgreSQL, so workers sharing the database never take the same row; on SQLite the
UPDATE is one write transaction).  A worker that dies leaves its leases to lapse
(``TIDINGS_JOURNEY_LEASE_SECONDS``, default 60); the rows are then claimed again.

**A step runs at most once.**  Each step runs in one transaction that re-reads the enrolment
under lock, checks it still holds the lease at the same ``seq``, does the step's work (a send
step queues its ``OutgoingMessage``), writes the history row ``(enrolment, seq)`` — unique — and
moves the enrolment on with a conditional UPDATE.  Killed before the commit, nothing of the step
happened and it runs again after the lease; killed after, the step is recorded and its mail
queued, and it is never run again.  The message itself is then the delivery engine's, with its
documented in-flight window (``campaigns.queue``).

**Consent at every send.**  A marketing send step checks, when it runs, that the person is
confirmed on an open list of the journey's topic with email marketing not withdrawn since
(``campaigns.targeting.consent_condition``, the campaigns' own rule) and that the address is
not suppressed (an objection suppresses it); if not, the person leaves with the reason.  The
mail is tracked (pixel, rewritten links: ``tracking``) only if the person's tracking consent
allows it, the campaign engine's rule (``audience.consent.tracking_allowed``).

**Failures** (a template that no longer renders, a missing template, an attribute the policy
does not allow) roll the step back and retry it after 1, 2, 4, 8 minutes; the fifth failure parks
the enrolment with the error for the operator.  A failing step never stops the worker.
"""

# SQL built here names our own tables; every value is a parameter.
# ruff: noqa: S608

from __future__ import annotations

import logging
import os
import socket
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from email.utils import parseaddr
from typing import Any

from django.db import IntegrityError, connection, transaction
from django.tasks import task
from django.utils import timezone

from tidings import signals
from tidings.audience.actions import allowed_contact_fields
from tidings.audience.consent import tracking_allowed
from tidings.audience.models import Contact
from tidings.audience.segments import compile_segment
from tidings.audience.suppression import suppression_reason
from tidings.audience.tokens import list_unsubscribe_headers, preferences_url, unsubscribe_url
from tidings.campaigns.mail import sender_from_header
from tidings.campaigns.models import Campaign, OutgoingMessage, Template
from tidings.campaigns.queue import enqueue_message
from tidings.campaigns.rendering import CompiledMessage, MessageLinks, TemplateProblem
from tidings.campaigns.targeting import consent_condition
from tidings.lib.audit import audit

from .actions import CLICK_WAIT, MARKETING_PURPOSE, SERVICE_PURPOSE
from .models import Enrolment, EnrolmentStep, Journey
from .schedule import wait_ends
from .steps import WAITS, index_of, successors
from .tracking import track

logger = logging.getLogger("tidings.journeys.engine")

LEASE_SECONDS = 60  # default of settings.TIDINGS_JOURNEY_LEASE_SECONDS
MAX_ATTEMPTS = 5
CHAIN = 20  # steps one claim may run for one person before giving the row back (no waits)
BATCH = 200


class StepError(Exception):
    """A step could not run (retried, then parked).  The message is shown to operators: never
    personal data."""


@dataclass(frozen=True)
class Outcome:
    outcome: str
    reason: str = ""
    next_step: str | None = None  # None: stays (exit/park); "": the end
    run_at: datetime | None = None
    message: OutgoingMessage | None = None
    exit: bool = False
    waiting_for: str = ""  # a wait_event (or wait_click) step armed


def lease_seconds() -> int:
    from django.conf import settings

    return int(getattr(settings, "TIDINGS_JOURNEY_LEASE_SECONDS", LEASE_SECONDS))


def worker_id() -> str:
    return f"{socket.gethostname()}:{os.getpid()}"


def _db(value: datetime) -> Any:
    return connection.ops.adapt_datetimefield_value(value)


def claim_due(worker: str, limit: int, now: datetime) -> list[tuple[int, int]]:
    """Claim up to ``limit`` due enrolments of active journeys: [(id, seq)], oldest due first."""
    table = Enrolment._meta.db_table
    journeys = Journey._meta.db_table
    where = (
        "state = 'active' AND next_run_at <= %s "
        "AND (leased_until IS NULL OR leased_until < %s) "
        f"AND journey_id IN (SELECT id FROM {journeys} WHERE status = 'active')"
    )
    until = _db(now + timedelta(seconds=lease_seconds()))
    if connection.vendor == "postgresql":
        sql = (
            f"WITH picked AS MATERIALIZED (SELECT id FROM {table} WHERE {where} "
            "ORDER BY next_run_at, id LIMIT %s FOR UPDATE SKIP LOCKED) "
            f"UPDATE {table} AS e SET leased_by = %s, leased_until = %s FROM picked "
            "WHERE e.id = picked.id RETURNING e.id, e.seq"
        )
        params = [_db(now), _db(now), limit, worker, until]
    else:
        sql = (
            f"UPDATE {table} SET leased_by = %s, leased_until = %s WHERE id IN "
            f"(SELECT id FROM {table} WHERE {where} ORDER BY next_run_at, id LIMIT %s) "
            "RETURNING id, seq"
        )
        params = [worker, until, _db(now), _db(now), limit]
    with transaction.atomic(), connection.cursor() as cursor:
        cursor.execute(sql, params)
        rows = cursor.fetchall()
    return sorted(rows)


def advance_due(
    limit: int = BATCH, *, now: datetime | None = None, worker: str | None = None
) -> int:
    """Run the due steps of up to ``limit`` enrolments; returns how many steps ran."""
    now = now or timezone.now()
    worker = worker or worker_id()
    ran = 0
    for pk, seq in claim_due(worker, limit, now):
        for _ in range(CHAIN):
            result = run_one(pk, seq, worker, now)
            if result is None:
                break
            ran += 1
            seq, due = result
            if not due:
                break
        else:
            release(pk, worker)
    return ran


def release(pk: int, worker: str) -> None:
    Enrolment.objects.filter(pk=pk, leased_by=worker).update(leased_by="", leased_until=None)


def run_one(pk: int, seq: int, worker: str, now: datetime) -> tuple[int, bool] | None:
    """Run the enrolment's current step.  Returns (new seq, whether the next step is due now),
    or None when nothing ran (the lease was lost, the step failed)."""
    try:
        with transaction.atomic():
            enrolment = (
                Enrolment.objects.select_for_update(of=("self",))
                .filter(pk=pk, seq=seq, leased_by=worker, state=Enrolment.State.ACTIVE)
                .select_related("journey", "version", "contact")
                .first()
            )
            if enrolment is None:
                return None
            outcome = _run_step(enrolment, now)
            return _record(enrolment, outcome, now)
    except IntegrityError:  # another worker recorded this step (a lapsed lease): it ran once
        return None
    except Exception as exc:
        _failed(pk, seq, worker, now, exc)
        return None


def _record(enrolment: Enrolment, outcome: Outcome, now: datetime) -> tuple[int, bool]:
    steps = enrolment.version.steps
    step = steps[index_of(steps, enrolment.step)]
    EnrolmentStep.objects.create(
        enrolment=enrolment,
        seq=enrolment.seq,
        step=enrolment.step,
        kind=step["kind"],
        ran_at=now,
        outcome=outcome.outcome,
        reason=outcome.reason[:300],
        message=outcome.message,
    )
    fields: dict[str, Any] = {
        "seq": enrolment.seq + 1,
        "attempts": 0,
        "error": "",
        "waiting_for": outcome.waiting_for,
    }
    due = False
    if outcome.exit:
        fields.update(
            state=Enrolment.State.EXITED,
            exit_reason=outcome.reason[:100],
            next_run_at=None,
            finished_at=now,
        )
    elif outcome.next_step == "":
        fields.update(state=Enrolment.State.COMPLETED, next_run_at=None, finished_at=now)
    else:
        run_at = outcome.run_at or now
        due = run_at <= now
        fields.update(step=outcome.next_step, next_run_at=run_at)
    if not due:
        fields.update(leased_by="", leased_until=None)
    changed = Enrolment.objects.filter(
        pk=enrolment.pk, seq=enrolment.seq, leased_by=enrolment.leased_by
    ).update(**fields)
    if not changed:
        raise IntegrityError("the enrolment moved on meanwhile")
    if outcome.exit:
        jid, pk, reason = enrolment.journey_id, enrolment.pk, outcome.reason
        transaction.on_commit(
            lambda: signals.journey_exited.send(
                sender=Journey, journey_id=jid, enrolment_id=pk, reason=reason
            )
        )
    return enrolment.seq + 1, due


def _failed(pk: int, seq: int, worker: str, now: datetime, exc: Exception) -> None:
    error = str(exc) if isinstance(exc, StepError) else f"unexpected error ({type(exc).__name__})"
    if not isinstance(exc, StepError):
        logger.exception("journey step of enrolment %s failed", pk)
    with transaction.atomic():
        enrolment = (
            Enrolment.objects.select_for_update().filter(pk=pk, seq=seq, leased_by=worker).first()
        )
        if enrolment is None:
            return
        attempts = enrolment.attempts + 1
        fields: dict[str, Any] = {"attempts": attempts, "error": error[:300], "leased_by": ""}
        fields["leased_until"] = None
        if attempts >= MAX_ATTEMPTS:
            fields.update(state=Enrolment.State.PARKED, next_run_at=None, seq=seq + 1)
            EnrolmentStep.objects.create(
                enrolment=enrolment,
                seq=seq,
                step=enrolment.step,
                kind="error",
                ran_at=now,
                outcome=EnrolmentStep.Outcome.PARKED,
                reason=error[:300],
            )
            audit("journey.parked", actor_label="worker", obj=enrolment.journey, enrolment=pk)
        else:
            fields["next_run_at"] = now + retry_delay(attempts)
        Enrolment.objects.filter(pk=pk, seq=seq).update(**fields)
    logger.warning("journey step of enrolment %s failed (attempt %s): %s", pk, attempts, error)


def retry_delay(attempts: int) -> timedelta:
    return timedelta(minutes=min(60, 2 ** (attempts - 1)))


# --- the steps --------------------------------------------------------------------------------
def _next(enrolment: Enrolment) -> str:
    steps = enrolment.version.steps
    return successors(steps, index_of(steps, enrolment.step))[0]


def _run_step(enrolment: Enrolment, now: datetime) -> Outcome:
    steps = enrolment.version.steps
    step = steps[index_of(steps, enrolment.step)]
    kind = step["kind"]
    contact = enrolment.contact
    if contact is None:
        return Outcome(EnrolmentStep.Outcome.EXITED, "erased", exit=True)
    if kind in ("wait_event", "wait_click"):
        if enrolment.waiting_for:  # armed, and the timeout came first
            return Outcome(EnrolmentStep.Outcome.BRANCHED, "timed out", step["else"])
        ends = wait_ends(step, now)
        event = step["event"] if kind == "wait_event" else CLICK_WAIT
        return Outcome(EnrolmentStep.Outcome.WAITING, "", enrolment.step, ends, waiting_for=event)
    if kind in WAITS:
        return Outcome(EnrolmentStep.Outcome.WAITING, "", _next(enrolment), wait_ends(step, now))
    if kind == "end":
        return Outcome(EnrolmentStep.Outcome.COMPLETED, "", "")
    if kind == "send_email":
        return _send(enrolment, step, contact, now)
    if kind == "branch":
        matches = branch_matches(step, contact, now)
        target = step["then"] if matches else step["else"]
        return Outcome(EnrolmentStep.Outcome.BRANCHED, "then" if matches else "else", target)
    if kind in ("set_attribute", "remove_attribute"):
        _attribute(enrolment.journey, step, contact)
        return Outcome(EnrolmentStep.Outcome.DONE, "", _next(enrolment))
    if kind == "notify_operator":
        _notify(enrolment, step)
        return Outcome(EnrolmentStep.Outcome.DONE, "", _next(enrolment))
    if kind == "webhook":
        jid, pk, cid, event = enrolment.journey_id, enrolment.pk, contact.pk, step["event"]
        transaction.on_commit(
            lambda: signals.journey_webhook.send(
                sender=Journey, journey_id=jid, enrolment_id=pk, contact_id=cid, event=event
            )
        )
        return Outcome(EnrolmentStep.Outcome.DONE, "", _next(enrolment))
    raise StepError(f"unknown step kind {kind!r}")


def branch_matches(step: Mapping[str, Any], contact: Contact, now: datetime) -> bool:
    try:
        condition = compile_segment(step["segment"], now=now)
    except Exception as exc:
        raise StepError(f"the branch condition no longer works: {type(exc).__name__}") from None
    return Contact.objects.filter(pk=contact.pk).filter(condition).exists()


def send_refusal(journey: Journey, contact: Contact) -> str:
    """Why ``contact`` may not get the journey's mail now ("" when they may)."""
    reason = suppression_reason(contact.email)
    if journey.is_marketing:
        if reason:
            return f"address suppressed ({reason})"
        allowed = Contact.objects.filter(pk=contact.pk).filter(consent_condition(journey.topic))
        if not allowed.exists():
            return f'no consent to "{journey.topic}" emails'
        return ""
    # Service mail (contract purpose): not refused for an unsubscribe from marketing, but never
    # to an address that bounced, complained or was erased.
    if reason and reason != "unsubscribed":
        return f"address suppressed ({reason})"
    return ""


# Compiled steps, by everything that goes into them (an edited template has a new updated_at):
# compiling costs far more than rendering.  Per process, at most 64.
_COMPILED: dict[tuple, CompiledMessage] = {}


def compile_step(journey: Journey, step: Mapping[str, Any]) -> CompiledMessage:
    template = Template.objects.select_related("layout").filter(name=step["template"]).first()
    if template is None:
        raise StepError(f'the template "{step["template"]}" no longer exists')
    key = (
        journey.pk,
        journey.sender_id,
        step.get("subject"),
        step.get("preheader"),
        template.pk,
        template.updated_at,
        template.layout.updated_at,
    )
    cached = _COMPILED.get(key)
    if cached is not None:
        return cached
    campaign = Campaign(
        name=journey.name,
        subject=step.get("subject") or template.subject,
        preheader=step.get("preheader") or "",
        body=template.body,
        text_body=template.text_body,
        format=template.format,
        layout=template.layout,
        topic=journey.topic,
        sender=journey.sender,
    )
    try:
        compiled = CompiledMessage.for_campaign(campaign)
    except TemplateProblem as exc:
        raise StepError(f"the template does not render: {exc}") from None
    if len(_COMPILED) >= 64:
        _COMPILED.clear()
    _COMPILED[key] = compiled
    return compiled


def headers_for(journey: Journey, contact: Contact, from_header: str) -> dict[str, str]:
    """What campaign mail carries: List-Unsubscribe (https one-click + mailto),
    List-Unsubscribe-Post, List-Id, Reply-To.  DKIM is added by the delivery engine's message
    factory for the From domain (``campaigns.dkim.signer_for``)."""
    domain = parseaddr(from_header)[1].rpartition("@")[2] or "localhost"
    label = journey.topic or "service messages"
    headers = list_unsubscribe_headers(contact, from_header=from_header)
    headers["List-Id"] = f"{label} <journey-{journey.pk}.{domain}>"
    reply_to = journey.sender.reply_to if journey.sender else ""
    if reply_to:
        headers["Reply-To"] = reply_to
    return headers


def _send(
    enrolment: Enrolment, step: Mapping[str, Any], contact: Contact, now: datetime
) -> Outcome:
    journey = enrolment.journey
    refusal = send_refusal(journey, contact)
    if refusal:
        return Outcome(EnrolmentStep.Outcome.EXITED, refusal, exit=True)
    compiled = compile_step(journey, step)
    links = MessageLinks(
        unsubscribe_url=unsubscribe_url(contact),
        preferences_url=preferences_url(contact),
        view_url="",
    )
    try:
        rendered = compiled.render(contact, links)
    except TemplateProblem as exc:
        raise StepError(f"the template does not render: {exc}") from None
    document = rendered.html
    if document and tracking_allowed(contact):  # the campaign engine's rule (jobs.py)
        document = track(document, journey, compiled.html_source, enrolment.pk, enrolment.seq)
    from_header = sender_from_header(journey.sender)
    message = enqueue_message(
        contact,
        kind=f"journey:{journey.pk}",
        subject=rendered.subject,
        text=rendered.text,
        html=document,
        from_email=from_header,
        headers=headers_for(journey, contact, from_header),
    )
    return Outcome(EnrolmentStep.Outcome.SENT, "", _next(enrolment), message=message)


def _attribute(journey: Journey, step: Mapping[str, Any], contact: Contact) -> None:
    key = step["key"]
    purpose = MARKETING_PURPOSE if journey.is_marketing else SERVICE_PURPOSE
    if key in Contact.COLUMN_FIELDS or key not in allowed_contact_fields(purpose):
        raise StepError(f'the policy\'s {purpose} purpose does not hold the attribute "{key}"')
    locked = Contact.objects.select_for_update().get(pk=contact.pk)
    attributes = dict(locked.attributes)
    if step["kind"] == "set_attribute":
        attributes[key] = step["value"]
    else:
        attributes.pop(key, None)
    Contact.objects.filter(pk=contact.pk).update(attributes=attributes, updated_at=timezone.now())
    audit("contact.attribute_changed", actor_label="journey", obj=contact, key=key)


def _notify(enrolment: Enrolment, step: Mapping[str, Any]) -> None:
    from django.conf import settings
    from django.core.mail import send_mail
    from django.urls import reverse

    from tidings.audience.tokens import absolute_url

    subject = " ".join(str(step["subject"]).split())[:200]
    # The contact's page, not their details: the operator signs in to see them.
    link = absolute_url(reverse("journeys:detail", args=[enrolment.journey_id]))
    body = f'Journey "{enrolment.journey.name}": {subject}\n\nSee {link}\n'
    to = step["to"]

    def send() -> None:
        try:
            send_mail(subject, body, settings.DEFAULT_FROM_EMAIL, [to])
        except Exception as exc:
            logger.warning("journey notification not sent: %s", type(exc).__name__)

    transaction.on_commit(send)


@task()
def advance_journeys_task() -> int:
    """The periodic job (see apps.py): advance due enrolments until none is left, for at most
    about 50 seconds (the next run carries on)."""
    started = timezone.now()
    total = 0
    while (timezone.now() - started).total_seconds() < 50:
        ran = advance_due()
        total += ran
        if not ran:
            break
    return total
