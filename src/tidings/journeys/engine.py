"""The journey engine: ``advance_due`` moves due enrolments on by one step at a time.

**Claiming** is the delivery queue's pattern: one statement stamps a small batch of due
enrolments of active journeys with this worker's id and a lease (``SELECT … FOR UPDATE SKIP
LOCKED`` on PostgreSQL, so workers sharing the database never take the same row; on SQLite the
UPDATE is one write transaction).  A worker that dies leaves its leases to lapse
(``TIDINGS_JOURNEY_LEASE_SECONDS``, default 60); the rows are then claimed again.

**A claimed batch runs in one transaction** (``run_batch``): it re-reads its enrolments under
lock, keeping those that still hold this worker's lease at the claimed ``seq``, then runs their
steps in memory — up to ``CHAIN`` steps a person while the next one is due now — grouping the
people at the same step of the same version so that a send step costs a fixed number of
queries whatever the batch's size (suppression, consent, tracking consent: one query each for
them all; the step compiled once; each person's message rendered).  Then, still in the same
transaction, the messages and the history rows ``(enrolment, seq)`` — unique — are inserted in
bulk (COPY on PostgreSQL) and the enrolments moved on by one conditional UPDATE per distinct
outcome.  **A step therefore runs at most once**: killed before the commit, nothing of the batch
happened and its steps run again after the lease; killed after, the steps are recorded and
their mail queued, and never run again.  The message itself is then the delivery engine's, with
its documented in-flight window (``campaigns.queue``).  If the batch raises (a lease lost to
another worker, a database error), it is rolled back and its enrolments run one by one
(``run_one``: the same ``run_batch`` for a batch of one person, in a transaction of its own),
so one bad row never holds the others back.  There is one writer of a step's outcome: a
person's steps are always run by ``_run_group`` and recorded by ``_write``.

**Consent at every send.**  A marketing send step checks, when it runs, that the person is
confirmed on an open list of the journey's topic with email marketing not withdrawn since
(``campaigns.targeting.consent_condition``, the campaigns' own rule) and that the address is
not suppressed (an objection suppresses it); if not, the person leaves with the reason.  The
mail is tracked (pixel, rewritten links: ``tracking``) only if the person's tracking consent
allows it, the campaign engine's rule (``audience.consent.tracking_allowed``).

**Failures** (a template that no longer renders, a missing template, an attribute the policy
does not allow, anything unexpected) are per person: the failing step is not recorded (the
others of the batch are), and it is retried after 1, 2, 4, 8 minutes; the fifth failure parks
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
from typing import Any

from django.db import IntegrityError, connection, models, transaction
from django.db.models import F
from django.tasks import task
from django.urls import reverse
from django.utils import timezone
from psycopg.types.json import Jsonb

from tidings import signals
from tidings.audience.consent import tracked_contact_ids
from tidings.audience.models import Contact
from tidings.audience.segments import compile_segment
from tidings.audience.tokens import (
    absolute_url,
)
from tidings.campaigns.models import OutgoingMessage
from tidings.lib.audit import audit

from .actions import CLICK_WAIT, MARKETING_PURPOSE, SERVICE_PURPOSE, attribute_problem
from .four_eyes import hold_changed
from .mail import StepError, StepMail, send_refusals
from .models import Enrolment, EnrolmentStep, Journey, JourneyVersion
from .schedule import missed_time_grace, wait_ends
from .steps import WAITS, index_of, successors

logger = logging.getLogger("tidings.journeys.engine")

LEASE_SECONDS = 60  # default of settings.TIDINGS_JOURNEY_LEASE_SECONDS
MAX_ATTEMPTS = 5
CHAIN = 20  # steps one claim may run for one person before giving the row back (no waits)
BATCH = 500


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
    """Run the due steps of up to ``limit`` enrolments; returns how many steps ran.

    The claimed batch runs as one transaction (``run_batch``); if that raises, its enrolments
    run again one by one (``run_one``), so one bad row never holds the others back."""
    now = now or timezone.now()
    worker = worker or worker_id()
    claimed = claim_due(worker, limit, now)
    if not claimed:
        return 0
    try:
        ran, failed = run_batch(claimed, worker, now)
    except Exception as exc:
        logger.warning(
            "a batch of %s journey steps failed (%s): running them one by one",
            len(claimed),
            type(exc).__name__,
            exc_info=not isinstance(exc, IntegrityError),
        )
        return run_one_by_one(claimed, worker, now)
    for pk, seq, error in failed:
        _failed(pk, seq, worker, now, error)
    return ran


def run_one_by_one(claimed: list[tuple[int, int]], worker: str, now: datetime) -> int:
    """The claimed enrolments, each person in a transaction of their own (``run_one``)."""
    return sum(run_one(pk, seq, worker, now) for pk, seq in claimed)


def run_one(pk: int, seq: int, worker: str, now: datetime) -> int:
    """Run one claimed enrolment's due steps: ``run_batch`` for a batch of one person, so the
    steps are run and recorded by the same code as a whole batch's.  Returns the steps run (0
    when nothing ran: the lease was lost, the step was recorded by another worker, it failed)."""
    try:
        ran, failed = run_batch([(pk, seq)], worker, now)
    except IntegrityError:  # another worker recorded this step (a lapsed lease): it ran once
        return 0
    except Exception as exc:
        _failed(pk, seq, worker, now, exc)
        return 0
    for failed_pk, failed_seq, error in failed:
        _failed(failed_pk, failed_seq, worker, now, error)
    return ran


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


# --- a claimed batch in one transaction ------------------------------------------------------
class _Item:
    """One enrolment of a batch: its steps run in memory, written with the others at the end."""

    __slots__ = ("due", "enrolment", "error", "exited", "history", "messages")

    def __init__(self, enrolment: Enrolment) -> None:
        self.enrolment = enrolment
        self.history: list[tuple] = []  # the EnrolmentStep rows: _HISTORY and the message
        self.messages: list[OutgoingMessage] = []
        self.error: Exception | None = None
        self.exited = ""
        self.due = True

    def take(self, outcome: Outcome, now: datetime) -> None:
        """The step's outcome kept in memory (the history row, the enrolment moved on): ``_write``
        writes the batch's at the end."""
        e = self.enrolment
        steps = e.version.steps
        kind = steps[index_of(steps, e.step)]["kind"]
        self.history.append(
            (e.pk, e.seq, e.step, kind, now, outcome.outcome, outcome.reason[:300], outcome.message)
        )
        if outcome.message is not None:
            self.messages.append(outcome.message)
        e.seq += 1
        e.attempts, e.error, e.waiting_for = 0, "", outcome.waiting_for
        self.due = False
        if outcome.exit:
            e.state, e.exit_reason = Enrolment.State.EXITED, outcome.reason[:100]
            e.next_run_at, e.finished_at = None, now
            self.exited = outcome.reason
        elif outcome.next_step == "":
            e.state, e.next_run_at, e.finished_at = Enrolment.State.COMPLETED, None, now
        else:
            e.step = outcome.next_step or e.step
            e.next_run_at = outcome.run_at or now
            self.due = e.next_run_at <= now


_MOVED = ("state", "step", "next_run_at", "attempts", "error", "waiting_for", "exit_reason")


def run_batch(
    claimed: list[tuple[int, int]], worker: str, now: datetime
) -> tuple[int, list[tuple[int, int, Exception]]]:
    """Run the claimed enrolments' due steps (up to ``CHAIN`` each) in one transaction: a fixed
    number of queries per step of the journey, whatever the batch's size.

    Returns (steps run, [(enrolment, seq, error)] of the steps that failed: ``_failed`` records
    those after the commit, the steps before them in the batch kept).  The history rows are
    keyed (enrolment, seq) and the rows stay locked until the commit, so a step is written once
    or not at all: killed before the commit, the batch never happened."""
    seqs = dict(claimed)
    with transaction.atomic():
        rows = [
            e
            for e in Enrolment.objects.select_for_update(of=("self",))
            .filter(pk__in=list(seqs), leased_by=worker, state=Enrolment.State.ACTIVE)
            .select_related("contact")
            .order_by("pk")
            if e.seq == seqs[e.pk]
        ]
        if not rows:
            return 0, []
        journeys = Journey.objects.select_related("sender").in_bulk({e.journey_id for e in rows})
        # Four-eyes: a journey whose mail changed unseen pauses before sending any (four_eyes).
        held = hold_changed(journeys.values())
        if held:
            Enrolment.objects.filter(
                pk__in=[e.pk for e in rows if e.journey_id in held], leased_by=worker
            ).update(leased_by="", leased_until=None)
            rows = [e for e in rows if e.journey_id not in held]
            if not rows:
                return 0, []
        versions = JourneyVersion.objects.in_bulk({e.version_id for e in rows})
        people: dict[int, Contact] = {}  # one instance a person: a step's change is seen by all
        for e in rows:
            e.journey, e.version = journeys[e.journey_id], versions[e.version_id]
            if e.contact is not None:
                e.contact = people.setdefault(e.contact.pk, e.contact)
        items = [_Item(e) for e in rows]
        _defer_missed_times(items, now)
        pending = [item for item in items if item.due]
        for _ in range(CHAIN):
            groups: dict[tuple[int, str], list[_Item]] = {}
            for item in pending:
                key = (item.enrolment.version_id, item.enrolment.step)
                groups.setdefault(key, []).append(item)
            for group in groups.values():
                for item, result in _run_group(group, now):
                    if isinstance(result, Exception):
                        item.error = result
                    else:
                        item.take(result, now)
            pending = [item for item in pending if item.error is None and item.due]
            if not pending:
                break
        _write(items, worker)
    failed = [(i.enrolment.pk, i.enrolment.seq, i.error) for i in items if i.error is not None]
    return sum(len(i.history) for i in items), failed


def _defer_missed_times(items: list[_Item], now: datetime) -> None:
    """People whose "wait until 09:00" ended more than the grace ago (the worker was down):
    their next step waits for the next 09:00 instead of going at whatever hour it is now (see
    schedule).  Recorded as a "deferred" step in their history, in the batch's transaction."""
    grace = missed_time_grace()
    late = {
        item.enrolment.pk: item
        for item in items
        if item.enrolment.next_run_at is not None
        and item.enrolment.next_run_at < now - grace
        and item.enrolment.contact is not None
    }
    if not late:
        return
    came_from = dict(
        EnrolmentStep.objects.filter(
            enrolment_id__in=list(late), kind="wait_until", seq=models.F("enrolment__seq") - 1
        ).values_list("enrolment_id", "step")
    )
    for pk, step_id in came_from.items():
        item = late[pk]
        e = item.enrolment
        steps = {step["id"]: step for step in e.version.steps}
        step = steps.get(step_id)
        if step is None or step["kind"] != "wait_until":
            continue
        purpose = MARKETING_PURPOSE if e.journey.is_marketing else SERVICE_PURPOSE
        due = e.next_run_at
        assert due is not None
        hours = (now - due).total_seconds() / 3600
        ends = wait_ends(step, now, e.contact, purpose)
        reason = (
            f"missed {step['time']} by {hours:.1f} h (over the {_hours(grace)} h grace): "
            "waits for the next one"
        )
        item.take(Outcome(EnrolmentStep.Outcome.DEFERRED, reason, e.step, ends), now)


def _hours(span: timedelta) -> str:
    return f"{span.total_seconds() / 3600:g}"


def _write(items: list[_Item], worker: str) -> None:
    """The batch's messages, history rows and moves, in bulk (the messages first: a history
    row names its message)."""
    done = [item for item in items if item.history]
    messages = [m for item in done for m in item.messages]
    rows = [row for item in done for row in item.history]
    if connection.vendor == "postgresql":
        if messages:
            copy_messages(messages)
        with (
            connection.cursor() as cursor,
            cursor.copy(
                f"COPY {EnrolmentStep._meta.db_table} ({', '.join(_HISTORY)}, message_id) "
                "FROM STDIN"
            ) as copy,
        ):
            for *values, message in rows:
                copy.write_row((*values, message.pk if message is not None else None))
    else:
        if messages:
            OutgoingMessage.objects.bulk_create(messages)
        EnrolmentStep.objects.bulk_create(
            [
                EnrolmentStep(**dict(zip(_HISTORY, values, strict=True)), message=message)
                for *values, message in rows
            ]
        )
    _advance_rows(done, worker)
    for item in done:
        if item.exited:
            jid, pk, reason = item.enrolment.journey_id, item.enrolment.pk, item.exited
            transaction.on_commit(
                lambda jid=jid, pk=pk, reason=reason: signals.journey_exited.send(  # type: ignore[misc]
                    sender=Journey, journey_id=jid, enrolment_id=pk, reason=reason
                )
            )


_HISTORY = ("enrolment_id", "seq", "step", "kind", "ran_at", "outcome", "reason")


def copy_messages(messages: list[OutgoingMessage]) -> None:
    """``bulk_create`` for many rendered messages on PostgreSQL, by COPY (Django's INSERT
    prepares each of their ~20 values in Python, several times the cost): ids are drawn from
    the table's sequence first, so the rows are ready for the history rows that name them."""
    meta = OutgoingMessage._meta
    fields = [f for f in meta.concrete_fields if not f.primary_key]
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT nextval(pg_get_serial_sequence(%s, 'id')) FROM generate_series(1, %s)",
            [meta.db_table, len(messages)],
        )
        for message, (pk,) in zip(messages, cursor.fetchall(), strict=True):
            message.pk = pk
        columns = ", ".join(str(f.column) for f in fields)
        json_fields = {f.attname for f in fields if isinstance(f, models.JSONField)}
        names = [f.attname for f in fields]
        with cursor.copy(f"COPY {meta.db_table} (id, {columns}) FROM STDIN") as copy:
            for message in messages:
                copy.write_row(
                    (
                        message.pk,
                        *(
                            Jsonb(getattr(message, n)) if n in json_fields else getattr(message, n)
                            for n in names
                        ),
                    )
                )
    for message in messages:
        message._state.adding = False


def _advance_rows(items: list[_Item], worker: str) -> None:
    """Move the enrolments on: one UPDATE per distinct outcome (people who took the same steps
    share one), conditional on this worker's lease.  The lease is given back unless a step of
    the person failed after others ran (``_failed`` still needs it)."""
    moves: dict[tuple, list[int]] = {}
    for item in items:
        e = item.enrolment
        fields: dict[str, Any] = {name: getattr(e, name) for name in _MOVED}
        fields["finished_at"] = e.finished_at if e.state != Enrolment.State.ACTIVE else None
        if item.error is None:
            fields.update(leased_by="", leased_until=None)
        key = (len(item.history), *sorted(fields.items()))
        moves.setdefault(key, []).append(e.pk)
    for (ran, *pairs), pks in moves.items():
        changed = Enrolment.objects.filter(pk__in=pks, leased_by=worker).update(
            seq=F("seq") + ran, **dict(pairs)
        )
        if changed != len(pks):
            raise IntegrityError("enrolments of the batch moved on meanwhile")


def _run_group(group: list[_Item], now: datetime) -> list[tuple[_Item, Outcome | Exception]]:
    """The same step of one version for several people: send and branch steps set-based, the
    others one person at a time (a step that writes, in a savepoint of its own)."""
    first = group[0].enrolment
    try:
        steps = first.version.steps
        step = steps[index_of(steps, first.step)]
    except Exception as exc:
        return [(item, exc) for item in group]
    kind = step["kind"]
    results: list[tuple[_Item, Outcome | Exception]] = []
    live: list[_Item] = []
    for item in group:
        if item.enrolment.contact is None:
            results.append((item, Outcome(EnrolmentStep.Outcome.EXITED, "erased", exit=True)))
        else:
            live.append(item)
    if not live:
        return results
    if kind == "send_email":
        return results + _send_group(live, step, now)
    if kind == "branch":
        return results + _branch_group(live, step, now)
    for item in live:
        try:
            if kind in ("set_attribute", "remove_attribute"):
                with transaction.atomic():
                    results.append((item, _run_step(item.enrolment, now)))
            else:
                results.append((item, _run_step(item.enrolment, now)))
        except Exception as exc:
            results.append((item, exc))
    return results


def _branch_group(
    items: list[_Item], step: Mapping[str, Any], now: datetime
) -> list[tuple[_Item, Outcome | Exception]]:
    try:
        ids = [item.enrolment.contact_id for item in items if item.enrolment.contact_id]
        matching = branch_matching(step, ids, now)
    except Exception as exc:
        return [(item, exc) for item in items]
    results: list[tuple[_Item, Outcome | Exception]] = []
    for item in items:
        matches = item.enrolment.contact_id in matching
        target = step["then"] if matches else step["else"]
        outcome = Outcome(EnrolmentStep.Outcome.BRANCHED, "then" if matches else "else", target)
        results.append((item, outcome))
    return results


def _send_group(
    items: list[_Item], step: Mapping[str, Any], now: datetime
) -> list[tuple[_Item, Outcome | Exception]]:
    """One send step for several people: consent and suppression in a few queries for them all
    (at the moment it runs), the step compiled once, each person's message rendered and built."""
    journey = items[0].enrolment.journey
    try:
        contacts = [item.enrolment.contact for item in items]
        refusals = send_refusals(journey, contacts)  # type: ignore[arg-type]
        mail = StepMail(journey, step)
        sending = [c.pk for c in contacts if c is not None and c.pk not in refusals]
        tracked = tracked_contact_ids(sending) if mail.tracker is not None and sending else set()
    except Exception as exc:
        return [(item, exc) for item in items]
    results: list[tuple[_Item, Outcome | Exception]] = []
    for item in items:
        e = item.enrolment
        contact = e.contact
        assert contact is not None
        refusal = refusals.get(contact.pk)
        if refusal:
            results.append((item, Outcome(EnrolmentStep.Outcome.EXITED, refusal, exit=True)))
            continue
        try:
            message = mail.message(contact, e.pk, e.seq, track=contact.pk in tracked)
        except Exception as exc:
            results.append((item, exc))
            continue
        results.append((item, Outcome(EnrolmentStep.Outcome.SENT, "", _next(e), message=message)))
    return results


# --- the steps --------------------------------------------------------------------------------
def _next(enrolment: Enrolment) -> str:
    steps = enrolment.version.steps
    return successors(steps, index_of(steps, enrolment.step))[0]


def _run_step(enrolment: Enrolment, now: datetime) -> Outcome:
    """A step run one person at a time (``_run_group`` runs send and branch steps set-based)."""
    steps = enrolment.version.steps
    step = steps[index_of(steps, enrolment.step)]
    kind = step["kind"]
    contact = enrolment.contact
    if contact is None:
        return Outcome(EnrolmentStep.Outcome.EXITED, "erased", exit=True)
    purpose = MARKETING_PURPOSE if enrolment.journey.is_marketing else SERVICE_PURPOSE
    if kind in ("wait_event", "wait_click"):
        if enrolment.waiting_for:  # armed, and the timeout came first
            return Outcome(EnrolmentStep.Outcome.BRANCHED, "timed out", step["else"])
        ends = wait_ends(step, now, contact, purpose, steps)
        event = step["event"] if kind == "wait_event" else CLICK_WAIT
        return Outcome(EnrolmentStep.Outcome.WAITING, "", enrolment.step, ends, waiting_for=event)
    if kind in WAITS:
        ends = wait_ends(step, now, contact, purpose, steps)  # maybe the person's zone
        return Outcome(EnrolmentStep.Outcome.WAITING, "", _next(enrolment), ends)
    if kind == "end":
        return Outcome(EnrolmentStep.Outcome.COMPLETED, "", "")
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


def branch_matching(step: Mapping[str, Any], contact_ids: list[int], now: datetime) -> set[int]:
    """Those of ``contact_ids`` that meet the branch step's condition (one query)."""
    try:
        condition = compile_segment(step["segment"], now=now)
    except Exception as exc:
        raise StepError(f"the branch condition no longer works: {type(exc).__name__}") from None
    return set(
        Contact.objects.filter(pk__in=contact_ids).filter(condition).values_list("pk", flat=True)
    )


def branch_matches(step: Mapping[str, Any], contact: Contact, now: datetime) -> bool:
    return contact.pk in branch_matching(step, [contact.pk], now)


def _attribute(journey: Journey, step: Mapping[str, Any], contact: Contact) -> None:
    key = step["key"]
    if message := attribute_problem(journey.topic, key):
        raise StepError(message)
    locked = Contact.objects.select_for_update().get(pk=contact.pk)
    attributes = dict(locked.attributes)
    if step["kind"] == "set_attribute":
        attributes[key] = step["value"]
    else:
        attributes.pop(key, None)
    Contact.objects.filter(pk=contact.pk).update(attributes=attributes, updated_at=timezone.now())
    audit("contact.attribute_changed", actor_label="journey", obj=contact, key=key)
    contact.attributes = attributes  # the batch's next steps (a send) see the change


def _notify(enrolment: Enrolment, step: Mapping[str, Any]) -> None:
    from django.conf import settings
    from django.core.mail import send_mail

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
