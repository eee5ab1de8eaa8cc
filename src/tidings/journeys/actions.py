"""A journey's life and a person's way through it: every change goes through an action here.

::

    draft ──activate──▶ active ──pause──▶ paused ──resume──▶ active
      │                   │                 │
      └──────archive──────┴──────archive────┴──▶ archived

``TRANSITIONS`` is the only statement of what may happen when; a forbidden step raises
``InvalidTransition``, a journey that may not run raises ``JourneyNotReady`` with each problem
and where it is.  Both are domain errors: views turn them into form errors or a 409, the CLI
into a one-line error.  States change with a conditional UPDATE (``WHERE status = <read>``), so
two operators racing cannot both win.  Each action is one transaction with an audit entry (ids
and counts only).

**Consent at activation.**  A journey about a marketing topic sends under the policy's consent
purpose; only a trigger that implies that consent (confirming a list of the topic) may start it
without the engine having to turn everyone away.  Other triggers of a marketing journey with a
send step (an enquiry, a custom event, a date) are refused with the purpose and lawful basis
named.  The engine checks consent again at every send (``engine``), whatever the trigger.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from functools import partial
from typing import Any, TypeGuard

from django.db import IntegrityError, transaction
from django.db.models import OuterRef, Subquery
from django.utils import timezone

from tidings import signals
from tidings.audience.actions import allowed_contact_fields
from tidings.audience.models import Contact, MailingList, Segment, SignupForm
from tidings.audience.segments import And, Qualifier, SegmentError, parse_segment, validate_segment
from tidings.campaigns.models import Campaign, OutgoingMessage, Template
from tidings.lib.audit import audit
from tidings.policy import get_policy

from . import steps as step_rules
from .four_eyes import check_confirmed
from .models import SERVICE, Enrolment, EnrolmentStep, Journey, JourneyVersion
from .whereabouts import EXIT_KIND, here

# What an armed wait_click step waits for (Enrolment.waiting_for); never a posted event's name.
CLICK_WAIT = "journey:click"

Status = Journey.Status
TRANSITIONS: dict[tuple[str, str], str] = {
    (Status.DRAFT, "activate"): Status.ACTIVE,
    (Status.PAUSED, "activate"): Status.ACTIVE,
    (Status.ACTIVE, "pause"): Status.PAUSED,
    (Status.PAUSED, "resume"): Status.ACTIVE,
    (Status.DRAFT, "archive"): Status.ARCHIVED,
    (Status.ACTIVE, "archive"): Status.ARCHIVED,
    (Status.PAUSED, "archive"): Status.ARCHIVED,
}
MARKETING_PURPOSE = "newsletter"  # the policy purpose marketing mail is sent under
SERVICE_PURPOSE = "contract_support"  # service messages (onboarding customers)


class InvalidTransition(Exception):
    def __init__(self, status: str, action: str) -> None:
        super().__init__(f"a journey that is {status} cannot be {_past(action)}")
        self.status, self.action = status, action


def _past(action: str) -> str:
    return {"activate": "activated", "pause": "paused", "resume": "resumed"}.get(
        action, action + "d"
    )


@dataclass(frozen=True)
class Problem:
    message: str
    field: str | None = None

    def __str__(self) -> str:
        return f"{self.field}: {self.message}" if self.field else self.message


class JourneyNotReady(Exception):
    def __init__(self, problems: Sequence[Problem]) -> None:
        super().__init__("; ".join(str(p) for p in problems))
        self.problems = list(problems)


def transition(status: str, action: str) -> str:
    try:
        return TRANSITIONS[(status, action)]
    except KeyError:
        raise InvalidTransition(status, action) from None


def _apply(journey: Journey, action: str, **fields: Any) -> Journey:
    target = transition(journey.status, action)
    changed = Journey.objects.filter(pk=journey.pk, status=journey.status).update(
        status=target, updated_at=timezone.now(), **fields
    )
    if not changed:
        current = Journey.objects.filter(pk=journey.pk).values_list("status", flat=True).first()
        raise InvalidTransition(current or "gone", action)
    journey.status = target
    for name, value in fields.items():
        setattr(journey, name, value)
    return journey


# --- checking ---------------------------------------------------------------------------------
def _segment_messages(text: str) -> list[str]:
    return [str(e) for e in validate_segment(text)]


def version_problems(steps: Any, goals: Any = (), *, topic: str | None = None) -> list[Problem]:
    """Problems of a version's steps and goals, with their key paths (``steps[1].template``).
    What would only fail when a step runs is found here too: a subject or preheader that does
    not render, an operator's address that is not one, and (given the journey's ``topic``) an
    attribute its purpose may not hold.  The engine checks again when the step runs: templates
    and the policy may change after the journey was saved."""
    templates = set(Template.objects.values_list("name", flat=True))
    found = step_rules.validate(
        steps, goals, templates=templates, segment_problems=_segment_messages
    )
    if found:
        return [Problem(p.message, p.path) for p in found]
    return _run_time_problems(steps, topic)


def attribute_problem(topic: str, key: str) -> str:
    """Why a journey about ``topic`` may not set or remove the contact attribute ``key``."""
    purpose = SERVICE_PURPOSE if topic == SERVICE else MARKETING_PURPOSE
    if key in Contact.COLUMN_FIELDS or key not in allowed_contact_fields(purpose):
        return f'the policy\'s {purpose} purpose does not hold the attribute "{key}"'
    return ""


def _run_time_problems(steps: Sequence[Mapping[str, Any]], topic: str | None) -> list[Problem]:
    from tidings.audience.emails import InvalidEmail, normalise_email

    from .mail import render_problem

    names = {step["template"] for step in steps if step["kind"] == "send_email"}
    found = Template.objects.select_related("layout").filter(name__in=names)
    templates = {template.name: template for template in found}
    problems = []
    for i, step in enumerate(steps):
        if step["kind"] == "send_email":
            template = templates.get(step["template"])
            if template is None:
                continue
            if (problem := render_problem(step, template)) is not None:
                part = problem.part if problem.part in ("subject", "preheader") else "template"
                where = f"{problem.location}: " if problem.location else ""
                problems.append(Problem(f"{where}{problem.message}", f"steps[{i}].{part}"))
        if step["kind"] == "notify_operator":
            try:
                normalise_email(step["to"])
            except InvalidEmail:
                problems.append(Problem("expected an email address", f"steps[{i}].to"))
        attribute = step["kind"] in ("set_attribute", "remove_attribute") and topic is not None
        if attribute and (message := attribute_problem(str(topic), step["key"])):
            problems.append(Problem(message, f"steps[{i}].key"))
    return problems


def settings_problems(
    *, name: str, topic: str, trigger: str, trigger_params: Mapping[str, Any], entry: str, days: int
) -> list[Problem]:
    problems = []
    if not name.strip():
        problems.append(Problem("give the journey a name", "name"))
    if topic != SERVICE and topic not in get_policy().marketing.topics:
        problems.append(Problem("choose one of the policy's marketing topics", "topic"))
    if trigger not in Journey.Trigger.values:
        problems.append(Problem("choose a trigger", "trigger"))
    event = trigger_params.get("name")
    if trigger == Journey.Trigger.EVENT and not (isinstance(event, str) and event.strip()):
        problems.append(Problem("name the event that starts the journey", "trigger_params.name"))
    if trigger == Journey.Trigger.DATE:
        from .triggers import date_field_problem

        if message := date_field_problem(trigger_params):
            problems.append(Problem(message, "trigger_params.field"))
        if not isinstance(trigger_params.get("yearly", False), bool):
            problems.append(Problem("true or false", "trigger_params.yearly"))
        if not isinstance(trigger_params.get("days", 0), int):
            problems.append(Problem("a whole number of days", "trigger_params.days"))
    problems += _trigger_object_problems(trigger, trigger_params)
    if trigger == Journey.Trigger.CONFIRMED:
        problems += _subscription_problems(topic, trigger_params)
    if entry not in Journey.Entry.values:
        problems.append(Problem("choose an entry rule", "entry"))
    if entry == Journey.Entry.AGAIN_AFTER and days < 1:
        problems.append(Problem("say after how many days someone may enter again", "entry_days"))
    return problems


def is_id(value: Any) -> TypeGuard[int]:
    """A row's id as a file or form gives it: a whole number (TOML's true is not one)."""
    return isinstance(value, int) and not isinstance(value, bool)


def _subscription_problems(topic: str, params: Mapping[str, Any]) -> list[Problem]:
    """A subscription starts only journeys of its list's topic (it is consent to that topic)."""
    if topic == SERVICE:
        return [
            Problem(
                "a service-message journey cannot start from a subscription (confirming a list "
                "is consent to its marketing topic): choose the list's topic, or another trigger",
                "trigger",
            )
        ]
    list_id = params.get("list")
    if list_id is None:
        return []
    found = None
    if is_id(list_id):
        found = MailingList.objects.filter(pk=list_id).values_list("name", "topic").first()
    if found is None:
        return [Problem("choose a list of the topic", "trigger_params.list")]
    name, list_topic = found
    if list_topic != topic:
        return [
            Problem(
                f"the list “{name}” is about “{list_topic}”, not “{topic}”: nobody would enter",
                "trigger_params.list",
            )
        ]
    return []


def _trigger_object_problems(trigger: str, params: Mapping[str, Any]) -> list[Problem]:
    if trigger == Journey.Trigger.LINK:
        campaign = params.get("campaign")
        if not is_id(campaign) or not Campaign.objects.filter(pk=campaign).exists():
            return [Problem("choose the campaign whose link starts it", "trigger_params.campaign")]
        url = params.get("url", "")
        if not isinstance(url, str) or (url and not url.startswith(("https://", "http://"))):
            return [Problem("a link's full address (https://…), or none", "trigger_params.url")]
    if trigger == Journey.Trigger.FORM:
        form = params.get("form")
        if not is_id(form) or not SignupForm.objects.filter(pk=form).exists():
            return [Problem("choose the sign-up form that starts it", "trigger_params.form")]
    if trigger == Journey.Trigger.SEGMENT:
        segment = params.get("segment")
        if not is_id(segment) or not Segment.objects.filter(pk=segment).exists():
            return [Problem("choose the saved segment that starts it", "trigger_params.segment")]
    return []


def segment_topics(query: str) -> set[str]:
    """The marketing topics a segment requires a confirmed subscription to: its ``topic:`` and
    ``list:`` conditions that every match must meet (joined by "and" at the top)."""
    try:
        tree = parse_segment(query)
    except SegmentError:
        return set()
    parts = tree.operands if isinstance(tree, And) else (tree,)
    topics = {p.value.value for p in parts if isinstance(p, Qualifier) and p.name == "topic"}
    lists = [p.value.value for p in parts if isinstance(p, Qualifier) and p.name == "list"]
    if lists:
        topics |= set(MailingList.objects.filter(name__in=lists).values_list("topic", flat=True))
    return {str(t) for t in topics}


def trigger_topics(journey: Journey) -> set[str]:
    """The marketing topics a person who set off the trigger has agreed to: the clicked
    campaign's (it was sent to people confirmed on its topic), the form's lists' (it starts
    once the address confirmed them)."""
    params = journey.trigger_params
    if journey.trigger == Journey.Trigger.LINK:
        return set(
            Campaign.objects.filter(pk=params.get("campaign")).values_list("topic", flat=True)
        )
    if journey.trigger == Journey.Trigger.FORM:
        return set(
            MailingList.objects.filter(signup_forms__pk=params.get("form")).values_list(
                "topic", flat=True
            )
        )
    if journey.trigger == Journey.Trigger.SEGMENT:
        segment = Segment.objects.filter(pk=params.get("segment")).first()
        return segment_topics(segment.query) if segment else set()
    return set()


def consent_problems(journey: Journey, version: JourneyVersion) -> list[Problem]:
    """Why the trigger does not carry the consent the journey's mail needs ([] when it does)."""
    if not journey.is_marketing or not step_rules.sends(version.steps):
        return []
    if journey.trigger == Journey.Trigger.CONFIRMED:
        return []
    if journey.topic in trigger_topics(journey):  # each send step still checks consent
        return []
    policy = get_policy()
    purpose = policy.purposes.get(MARKETING_PURPOSE)
    basis = purpose.lawful_basis if purpose else "consent"
    title = purpose.title if purpose else MARKETING_PURPOSE
    trigger = Journey.Trigger(journey.trigger).label.lower()
    return [
        Problem(
            f'marketing mail about "{journey.topic}" is sent under the policy\'s purpose '
            f'"{title}" ({MARKETING_PURPOSE}), whose lawful basis is {basis}; the trigger '
            f'"{trigger}" does not show that the person agreed to it.  Start it from a '
            "confirmed subscription to a list of the topic (or a campaign or sign-up form of "
            "the topic, or a saved segment that requires it), or make it a service-message "
            "journey without marketing",
            "trigger",
        )
    ]


def activation_problems(journey: Journey) -> list[Problem]:
    version = journey.current()
    if version is None:
        return [Problem("add steps first", "steps")]
    problems = settings_problems(
        name=journey.name,
        topic=journey.topic,
        trigger=journey.trigger,
        trigger_params=journey.trigger_params,
        entry=journey.entry,
        days=journey.entry_days,
    )
    problems += version_problems(version.steps, version.goals, topic=journey.topic)
    problems += consent_problems(journey, version)
    return problems


# --- creating and editing ---------------------------------------------------------------------
@dataclass(frozen=True)
class JourneySpec:
    """What an operator (form, file or API) says a journey is."""

    name: str
    topic: str
    trigger: str
    trigger_params: Mapping[str, Any]
    entry: str
    entry_days: int
    steps: list[dict[str, Any]]
    goals: list[dict[str, Any]]
    sender_id: int | None = None


def spec_problems(spec: JourneySpec, *, journey: Journey | None = None) -> list[Problem]:
    problems = settings_problems(
        name=spec.name,
        topic=spec.topic,
        trigger=spec.trigger,
        trigger_params=spec.trigger_params,
        entry=spec.entry,
        days=spec.entry_days,
    )
    clash = Journey.objects.filter(name=spec.name.strip())
    if journey is not None:
        clash = clash.exclude(pk=journey.pk)
    if clash.exists():
        problems.append(Problem("another journey has that name", "name"))
    return problems + version_problems(spec.steps, spec.goals, topic=spec.topic)


@transaction.atomic
def do_create_journey(spec: JourneySpec, *, actor: Any) -> Journey:
    """A draft journey with its first version.  Raises JourneyNotReady listing every problem."""
    problems = spec_problems(spec)
    if problems:
        raise JourneyNotReady(problems)
    journey = Journey.objects.create(
        name=spec.name.strip(),
        topic=spec.topic,
        trigger=spec.trigger,
        trigger_params=dict(spec.trigger_params),
        entry=spec.entry,
        entry_days=spec.entry_days,
        sender_id=spec.sender_id,
        version=1,
        created_by=actor if getattr(actor, "pk", None) else None,
        last_edited_by=actor if getattr(actor, "pk", None) else None,
    )
    JourneyVersion.objects.create(journey=journey, number=1, steps=spec.steps, goals=spec.goals)
    audit("journey.created", actor=actor, obj=journey, steps=len(spec.steps))
    return journey


@transaction.atomic
def do_update_journey(journey: Journey, spec: JourneySpec, *, actor: Any) -> Journey:
    """Change a journey.  New steps or goals make a new version: people already in the journey
    finish the version they entered.  An archived journey cannot change.  With four-eyes
    sending, a change to what it sends voids its confirmation and pauses it (``four_eyes``)."""
    from .four_eyes import fingerprint, void_if_changed

    journey = Journey.objects.select_for_update().get(pk=journey.pk)
    if journey.status == Status.ARCHIVED:
        raise InvalidTransition(journey.status, "edit")
    problems = spec_problems(spec, journey=journey)
    if problems:
        raise JourneyNotReady(problems)
    before = fingerprint(journey)
    current = journey.current()
    new_version = current is None or (current.steps, current.goals) != (spec.steps, spec.goals)
    if new_version:
        journey.version += 1
        JourneyVersion.objects.create(
            journey=journey, number=journey.version, steps=spec.steps, goals=spec.goals
        )
    journey.name = spec.name.strip()
    journey.topic = spec.topic
    journey.trigger = spec.trigger
    journey.trigger_params = dict(spec.trigger_params)
    journey.entry = spec.entry
    journey.entry_days = spec.entry_days
    journey.sender_id = spec.sender_id
    journey.last_edited_by = actor if getattr(actor, "pk", None) else None
    if journey.status == Status.ACTIVE:
        problems = activation_problems(journey)
        if problems:
            raise JourneyNotReady(problems)
    journey.save()
    audit("journey.updated", actor=actor, obj=journey, version=journey.version, new=new_version)
    void_if_changed(journey, before, "its steps or settings", actor=actor)
    return journey


@transaction.atomic
def do_activate(journey: Journey, *, actor: Any) -> Journey:
    if journey.status == Status.PAUSED:  # the same as resuming it (missed times waited for)
        return do_resume(journey, actor=actor)
    problems = activation_problems(journey)
    if problems:
        raise JourneyNotReady(problems)
    check_confirmed(journey)  # with four-eyes sending: a second operator confirmed it as it is
    _apply(journey, "activate", paused_reason="")
    audit("journey.activated", actor=actor, obj=journey, version=journey.version)
    return journey


@transaction.atomic
def do_pause(journey: Journey, *, actor: Any, reason: str = "") -> Journey:
    """Nobody moves on while paused (the engine claims only enrolments of active journeys);
    triggers enrol nobody new."""
    _apply(journey, "pause", paused_reason=reason[:300])
    audit("journey.paused", actor=actor, obj=journey)
    return journey


@transaction.atomic
def do_resume(journey: Journey, *, actor: Any) -> Journey:
    """Everyone goes on where they were; triggers that fired while it was paused enrolled
    nobody, and a date trigger does not catch up the days of the pause either."""
    problems = activation_problems(journey)
    if problems:
        raise JourneyNotReady(problems)
    check_confirmed(journey)
    yesterday = timezone.localdate() - timedelta(days=1)
    through = journey.dates_through
    _apply(
        journey,
        "resume",
        paused_reason="",
        dates_through=yesterday if through is None or through < yesterday else through,
    )
    _wait_again_for_missed_times(journey, timezone.now())
    audit("journey.resumed", actor=actor, obj=journey)
    return journey


# A wait_until time missed by less than this still goes on when resumed (a short pause).
MISSED_TIME_GRACE = timedelta(minutes=15)


def _wait_again_for_missed_times(journey: Journey, now: datetime) -> int:
    """People whose "wait until 09:00" ended while the journey was paused wait for the next
    09:00 (in their zone), instead of getting the next step at whatever hour it is resumed —
    a weekday-morning mail at 23:30 on a Saturday.  Other waits go on at once, as before.
    Returns how many wait again."""
    from .schedule import wait_ends

    history = EnrolmentStep.objects.filter(enrolment=OuterRef("pk"), seq=OuterRef("seq") - 1)
    late = (
        Enrolment.objects.filter(
            journey=journey, state=Enrolment.State.ACTIVE, next_run_at__lt=now - MISSED_TIME_GRACE
        )
        .annotate(
            last_kind=Subquery(history.values("kind")[:1]),
            last_step=Subquery(history.values("step")[:1]),
        )
        .filter(last_kind="wait_until")
        .select_related("contact", "version")
    )
    purpose = MARKETING_PURPOSE if journey.is_marketing else SERVICE_PURPOSE
    moves: dict[datetime, list[int]] = {}
    for enrolment in late.iterator(chunk_size=2000):
        steps = {step["id"]: step for step in enrolment.version.steps}
        step = steps.get(enrolment.last_step)
        if step is None or step["kind"] != "wait_until":
            continue
        ends = wait_ends(step, now, enrolment.contact, purpose)
        moves.setdefault(ends, []).append(enrolment.pk)
    # No worker claims them before this transaction commits (the journey was paused); people
    # who share a zone share the time, so this is one UPDATE per zone (per 1,000 people).
    waiting = 0
    for ends, pks in moves.items():
        for start in range(0, len(pks), 1000):
            chunk = pks[start : start + 1000]
            waiting += Enrolment.objects.filter(pk__in=chunk, leased_by="").update(next_run_at=ends)
    return waiting


@transaction.atomic
def do_archive(journey: Journey, *, actor: Any) -> int:
    """Archive for good: everyone still in it leaves ("journey archived").  Returns how many."""
    _apply(journey, "archive")
    left = _close(Enrolment.objects.filter(journey=journey), "journey archived")
    audit("journey.archived", actor=actor, obj=journey, left=left)
    return left


# --- people in journeys -----------------------------------------------------------------------
class NotEnrolled(Exception):
    """Why someone was not enrolled (the entry rule, a paused journey): never personal."""


@transaction.atomic
def do_enrol(
    journey: Journey, contact: Contact, *, now: datetime | None = None, source: str = "trigger"
) -> Enrolment:
    """Put ``contact`` at the start of the journey's current version, due now.

    Raises NotEnrolled when the journey is not active or the entry rule says no (once ever; once
    at a time and already in it; again only N days after they last entered)."""
    now = now or timezone.now()
    journey = Journey.objects.get(pk=journey.pk)
    if journey.status != Status.ACTIVE:
        raise NotEnrolled(f"the journey is {journey.status}")
    version = journey.current()
    assert version is not None
    previous = Enrolment.objects.filter(journey=journey, contact=contact)
    if previous.filter(state__in=Enrolment.OPEN).exists():
        raise NotEnrolled("already in the journey")
    if journey.entry == Journey.Entry.ONCE and previous.exists():
        raise NotEnrolled("the journey is once per person")
    if journey.entry == Journey.Entry.AGAIN_AFTER:
        since = now - timedelta(days=journey.entry_days)
        if previous.filter(entered_at__gt=since).exists():
            raise NotEnrolled(f"entered less than {journey.entry_days} days ago")
    try:
        with transaction.atomic():
            enrolment = Enrolment.objects.create(
                journey=journey,
                version=version,
                contact=contact,
                step=version.steps[0]["id"],
                next_run_at=now,
                entered_at=now,
            )
    except IntegrityError:  # a concurrent trigger enrolled them first
        raise NotEnrolled("already in the journey") from None
    audit("journey.entered", obj=journey, enrolment=enrolment.pk, source=source)
    pk, jid = enrolment.pk, journey.pk
    transaction.on_commit(
        lambda: signals.journey_entered.send(sender=Journey, journey_id=jid, enrolment_id=pk)
    )
    return enrolment


def _close(enrolments: Any, reason: str, *, state: str = Enrolment.State.EXITED) -> int:
    """Close the open ones of ``enrolments`` (one conditional UPDATE), with a history row."""
    now = timezone.now()
    # Locked as read: a worker running one of these steps holds the row until its batch
    # commits; read without the lock, the seq would be the one before that step and the
    # conditional UPDATE below would find the row moved on and close nothing (PostgreSQL).
    # ``here``: someone waiting out a wait leaves at the wait, not at the step after it.
    rows = list(
        here(enrolments.filter(state__in=Enrolment.OPEN))
        .select_for_update()
        .order_by("pk")
        .values_list("pk", "journey_id", "seq", "here")
    )
    closed = []
    for pk, journey_id, seq, step in rows:
        changed = Enrolment.objects.filter(pk=pk, seq=seq, state__in=Enrolment.OPEN).update(
            state=state,
            exit_reason=reason[:100],
            next_run_at=None,
            leased_by="",
            leased_until=None,
            finished_at=now,
            seq=seq + 1,
        )
        if changed:
            EnrolmentStep.objects.create(
                enrolment_id=pk,
                seq=seq,
                step=step,
                kind=EXIT_KIND,
                ran_at=now,
                outcome=EnrolmentStep.Outcome.EXITED
                if state == Enrolment.State.EXITED
                else EnrolmentStep.Outcome.CONVERTED,
                reason=reason[:300],
            )
            closed.append((journey_id, pk))
    exited = state == Enrolment.State.EXITED
    signal = signals.journey_exited if exited else signals.journey_converted
    for journey_id, pk in closed:
        transaction.on_commit(
            partial(
                signal.send, sender=Journey, journey_id=journey_id, enrolment_id=pk, reason=reason
            )
        )
    return len(closed)


@transaction.atomic
def do_exit_contact(contact_id: int, reason: str, *, journey: Journey | None = None) -> int:
    """Take a person out of every journey (or of ``journey``) at once, with ``reason``
    ("unsubscribed", "objected", "hard bounce", "complaint", "removed by an operator").
    Returns how many enrolments ended.

    Their journey mail still waiting in the queue goes too (skipped, like a campaign's mail to
    someone who unsubscribed): a send step checked consent when it ran, but the message may
    wait behind a rate limit or a retry.  Only a message a worker has already claimed can
    still go (the delivery engine's in-flight window)."""
    return do_exit_contacts([contact_id], reason, journey=journey)


@transaction.atomic
def do_exit_contacts(
    contact_ids: Iterable[int], reason: str, *, journey: Journey | None = None
) -> int:
    """``do_exit_contact`` for many people at once (an operator removing thousands from a
    list): one query finds their open enrolments (the only one when none is in a journey),
    their queued journey mail is skipped with one UPDATE per journey, one audit row."""
    ids = sorted(set(contact_ids))
    if not ids:
        return 0
    enrolments = Enrolment.objects.filter(contact_id__in=ids, state__in=Enrolment.OPEN)
    if journey is not None:
        enrolments = enrolments.filter(journey=journey)
    rows = list(enrolments.values_list("pk", "journey_id", "contact_id"))
    if not rows:
        return 0
    left = _close(Enrolment.objects.filter(pk__in=[pk for pk, _, _ in rows]), reason)
    skipped = 0
    if left:
        people: dict[int, set[int]] = {}
        for _, journey_id, contact_id in rows:
            people.setdefault(journey_id, set()).add(contact_id)
        for journey_id, contacts in sorted(people.items()):
            skipped += OutgoingMessage.objects.filter(
                contact_id__in=sorted(contacts),
                kind=f"journey:{journey_id}",
                status=OutgoingMessage.Status.QUEUED,
            ).update(
                status=OutgoingMessage.Status.SKIPPED,
                error=f"left the journey ({reason})"[:300],
                **UNSENT_BLANKED,
            )
        audit("journey.exited", actor_label="system", count=left, reason=reason, unsent=skipped)
    return left


# A message that will not be sent keeps none of its personal links (as the queue blanks one).
UNSENT_BLANKED: dict[str, Any] = {
    "subject": "",
    "text": "",
    "html": "",
    "headers": {},
    "attachments": [],
}


@transaction.atomic
def do_record_goal(contact_id: int, event: str) -> int:
    """The person did ``event``: every open enrolment of theirs in a journey with that goal ends
    as converted, and that journey's mail to them still waiting in the queue is skipped (the
    nudge to book a demo is not sent to someone who just booked one).  Returns how many."""
    converted = 0
    open_ = Enrolment.objects.filter(contact_id=contact_id, state__in=Enrolment.OPEN)
    for enrolment in open_.select_related("version"):
        goals = [g for g in enrolment.version.goals if g.get("event") == event]
        if goals:
            reason = f"goal: {goals[0]['name']}"
            closed = _close(
                Enrolment.objects.filter(pk=enrolment.pk), reason, state=Enrolment.State.CONVERTED
            )
            if closed:
                OutgoingMessage.objects.filter(
                    contact_id=contact_id,
                    kind=f"journey:{enrolment.journey_id}",
                    status=OutgoingMessage.Status.QUEUED,
                ).update(
                    status=OutgoingMessage.Status.SKIPPED,
                    error=f"reached the journey's goal ({reason})"[:300],
                    **UNSENT_BLANKED,
                )
            converted += closed
    return converted


@transaction.atomic
def do_retry_parked(journey: Journey, *, actor: Any) -> int:
    """Send everyone parked after an error back to the step that failed, due now (after the
    operator fixed the template or the webhook).  Returns how many."""
    now = timezone.now()
    retried = Enrolment.objects.filter(journey=journey, state=Enrolment.State.PARKED).update(
        state=Enrolment.State.ACTIVE, attempts=0, error="", next_run_at=now
    )
    audit("journey.parked_retried", actor=actor, obj=journey, count=retried)
    return retried


@transaction.atomic
def do_move_to_current_version(journey: Journey, *, actor: Any) -> int:
    """Move the people still in older versions to the current one, each at the step with the
    same id (people whose step is gone stay where they are).  Returns how many moved.

    Someone waiting at a wait_event or wait_click step waits for what the new version's step of
    that id waits for (until the same timeout); if that step no longer waits for anything, they
    go on to it now (an event arriving for a step without branches used to raise)."""
    journey = Journey.objects.get(pk=journey.pk)
    version = journey.current()
    if version is None:
        return 0
    ids = set(step_rules.step_ids(version.steps))
    older = Enrolment.objects.filter(journey=journey, state__in=Enrolment.OPEN).exclude(
        version=version
    )
    moving = older.filter(step__in=ids)
    armed = list(moving.exclude(waiting_for="").values_list("pk", "step"))
    moved = moving.update(version=version)
    steps = {step["id"]: step for step in version.steps}
    for pk, step_id in armed:
        waits_for = _waits_for(steps[step_id])
        rearm = Enrolment.objects.filter(pk=pk, version=version, step=step_id)
        if waits_for:
            rearm.update(waiting_for=waits_for)
        else:
            rearm.update(waiting_for="", next_run_at=timezone.now())
    audit("journey.moved_to_version", actor=actor, obj=journey, version=version.number, count=moved)
    return moved


def _waits_for(step: Mapping[str, Any]) -> str:
    """What an armed step waits for (``Enrolment.waiting_for``): "" for a step that does not."""
    if step["kind"] == "wait_event":
        return str(step["event"])
    return CLICK_WAIT if step["kind"] == "wait_click" else ""


@transaction.atomic
def do_event_arrived(contact_id: int, event: str) -> int:
    """The person did ``event``: everyone of theirs waiting for it at a wait_event step goes on
    to its "then" step, due now.  Returns how many moved."""
    if event == CLICK_WAIT:  # not an event anyone may post
        return 0
    waiting = Enrolment.objects.filter(
        contact_id=contact_id, state=Enrolment.State.ACTIVE, waiting_for=event
    ).select_related("version")
    return _go_on(waiting, event, "the event came")


def do_click_arrived(enrolment_id: int, url: str) -> int:
    """The person clicked ``url`` in a mail of this enrolment: if it waits at a wait_click
    step (for any link, or that one), it goes on to the step's "then", due now."""
    waiting = Enrolment.objects.filter(
        pk=enrolment_id, state=Enrolment.State.ACTIVE, waiting_for=CLICK_WAIT
    ).select_related("version")
    return _go_on(waiting, CLICK_WAIT, "clicked", url=url)


def _go_on(waiting: Any, event: str, reason: str, *, url: str | None = None) -> int:
    moved = 0
    now = timezone.now()
    for enrolment in waiting:
        steps = enrolment.version.steps
        step = steps[step_rules.index_of(steps, enrolment.step)]
        if _waits_for(step) != event:  # not (or no longer) a step waiting for it
            continue
        if url is not None and step.get("url") and step["url"] != url:
            continue
        # Conditional on the row as read: a worker running the timeout at this moment wins or
        # loses as a whole (its history row has the same key).
        changed = Enrolment.objects.filter(
            pk=enrolment.pk, seq=enrolment.seq, waiting_for=event
        ).update(
            step=step["then"],
            waiting_for="",
            next_run_at=now,
            seq=enrolment.seq + 1,
            leased_by="",
            leased_until=None,
        )
        if changed:
            EnrolmentStep.objects.create(
                enrolment=enrolment,
                seq=enrolment.seq,
                step=enrolment.step,
                kind=step["kind"],
                ran_at=now,
                outcome=EnrolmentStep.Outcome.BRANCHED,
                reason=reason,
            )
            moved += 1
    return moved
