"""Four-eyes sending for journeys: what a second operator confirmed is what the journey sends.

With ``TIDINGS_SEND_NEEDS_SECOND_OPERATOR`` (``lib.four_eyes``) a journey is activated, or
resumed, only when its confirmation matches what it sends now: a hash (``fingerprint``) of
its steps and goals, each send step's message as the campaigns hash theirs
(``campaigns.fingerprint.content_fingerprint`` of the message the step builds: subject,
preheader, the template's body, format and text, its layout, the journey's sender), its
entry trigger and entry rule, and who the trigger lets in (the topic, the trigger's list and
its topic, the trigger's saved segment's query; a branch's segment condition is in the
steps).  The name is not in it.

- ``do_request_confirmation``: whoever last changed it asks; the page shows "waiting for a
  second operator" and who asked (audit ``journey.confirmation_requested``), and the operators
  who may confirm it (the send permission; not whoever last changed it, nor the one asking) are
  emailed a link to its page, as operators are told of a campaign that paused itself.
- ``do_confirm``: another operator with the send permission, who is not the one who last
  changed it (its last editor, else its creator), confirms what the page showed them (the hash
  it carried; if it changed meanwhile they are asked to look again), which activates a draft,
  resumes a paused journey, or — for one started before the setting was on — records that
  someone looked (audit ``journey.confirmed``).
- ``void_if_changed`` / ``void_changed_journeys`` (and, as a safety net for a change made
  around them, the engine: ``hold_changed``): a change to what it sends afterwards (its
  own edit, or a saved template, layout, segment or list it reads) voids the confirmation
  (audit ``journey.confirmation_voided``), makes whoever changed it its last editor and
  **pauses** a running journey with the reason on its page (a paused one stays paused, with
  the reason: resuming it now needs another operator).  Its author and whoever confirmed it
  are emailed what changed and who changed it (``notify_voided_task``, as a campaign's author
  and confirmer are: ``campaigns.sent_back``), each once — for a paused one when its
  confirmation is voided, not again at each later change; the journey is listed as waiting
  for the operators who may confirm it.  Pausing, not carrying on with the
  confirmed version: a template has no versions to carry on with, and the mail people get
  next must be mail someone else has seen.  While paused nobody moves on and triggers enrol
  nobody (as for any paused journey).

- A journey already running when the setting is switched on was never seen by a second
  operator: the engine (``hold_changed``) pauses it before anyone in it takes their next step,
  and the operators who may confirm it are emailed; *Confirm and resume* lets it carry on.

Without the setting nothing here does anything, and activating needs no confirmation.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from django.contrib.auth import get_user_model
from django.db import transaction
from django.tasks import task
from django.urls import reverse
from django.utils import timezone

from tidings.audience.models import MailingList, Segment
from tidings.audience.tokens import absolute_url
from tidings.campaigns.fingerprint import content_fingerprint
from tidings.campaigns.models import Template
from tidings.lib.access import has_permission, operators_with_permission
from tidings.lib.audit import audit
from tidings.lib.four_eyes import (
    VOIDED_END,
    digest,
    enforced,
    is_voided,
    needs_second_operator,
    voided_reason,
)
from tidings.lib.operator_mail import Kind, mail_operators

from .models import Journey

Status = Journey.Status
_STARTED = (Status.ACTIVE, Status.PAUSED)

WAITING = (
    "waiting for a second operator: another operator with the send permission must confirm "
    "what it sends before it runs"
)
SELF_CONFIRM = (
    "another operator with the send permission must confirm it: you made the last change to "
    "what it sends"
)
CHANGED_MEANWHILE = "it changed while you were looking at it: read it again, then confirm"


def fingerprint(journey: Journey) -> str:
    """A hash of everything that decides what the journey sends and to whom (module docstring)."""
    from .mail import _campaign

    version = journey.current()
    steps = list(version.steps) if version else []
    names = {s.get("template") for s in steps if isinstance(s, dict)}
    templates = {
        t.name: t for t in Template.objects.select_related("layout").filter(name__in=names)
    }
    mails = []
    for step in steps:
        if isinstance(step, dict) and step.get("kind") == "send_email":
            template = templates.get(str(step.get("template")))
            message = content_fingerprint(_campaign(journey, template, step)) if template else None
            mails.append([step.get("id"), message])
    params = journey.trigger_params
    segment = list_ = None
    if journey.trigger == Journey.Trigger.SEGMENT:
        segment = Segment.objects.filter(pk=params.get("segment")).values_list("query").first()
    if journey.trigger == Journey.Trigger.CONFIRMED and params.get("list") is not None:
        list_ = MailingList.objects.filter(pk=params.get("list")).values_list("pk", "topic").first()
    parts = {
        "steps": steps,
        "goals": list(version.goals) if version else [],
        "mails": mails,
        "topic": journey.topic,
        "trigger": [journey.trigger, params],
        "segment": segment,
        "list": list_,
        "entry": [journey.entry, journey.entry_days],
        "sender": journey.sender_id,
    }
    return digest(parts)


def is_confirmed(journey: Journey) -> bool:
    """Whether a second operator confirmed the journey as it is now (always, with four-eyes
    off).  A journey started before the setting was on has no confirmation: it is not."""
    if not enforced():
        return True
    return bool(journey.confirmed_fingerprint) and journey.confirmed_fingerprint == fingerprint(
        journey
    )


def may_confirm(journey: Journey, actor: Any) -> bool:
    """Whether ``actor`` is not the one who last changed it (the send permission is checked by
    the pages and the API)."""
    return not needs_second_operator(actor, (journey.changed_by_id,))


def check_confirmed(journey: Journey) -> None:
    """Raise JourneyNotReady unless the journey may run as it is (``do_activate``,
    ``do_resume``)."""
    from .actions import JourneyNotReady, Problem

    if not is_confirmed(journey):
        raise JourneyNotReady([Problem(WAITING, "confirm")])


def _editor(actor: Any) -> Any:
    return actor if getattr(actor, "pk", None) else None


@transaction.atomic
def do_request_confirmation(journey: Journey, *, actor: Any) -> Journey:
    """Ask another operator to confirm the journey (shown on its page with who asked)."""
    from .actions import InvalidTransition, JourneyNotReady, Problem, activation_problems

    journey = Journey.objects.select_for_update().get(pk=journey.pk)
    if journey.status == Status.ARCHIVED:
        raise InvalidTransition(journey.status, "confirm")
    if not enforced():
        raise JourneyNotReady([Problem("sending does not need a second operator here")])
    if is_confirmed(journey):
        raise JourneyNotReady([Problem("it is already confirmed as it is")])
    if journey.status != Status.ACTIVE and (problems := activation_problems(journey)):
        raise JourneyNotReady(problems)
    now = timezone.now()
    Journey.objects.filter(pk=journey.pk).update(
        confirmation_requested_by=_editor(actor), confirmation_requested_at=now
    )
    journey.confirmation_requested_by = _editor(actor)
    journey.confirmation_requested_at = now
    audit("journey.confirmation_requested", actor=actor, obj=journey, version=journey.version)
    pk, asker = journey.pk, getattr(actor, "pk", None)
    transaction.on_commit(lambda: notify_confirmers_task.enqueue(pk, asker))
    return journey


def confirmers(journey: Journey, *, asker_id: int | None = None) -> list[Any]:
    """The operators who may confirm ``journey``: the send permission, and
    neither whoever last changed it nor the one asking."""
    users = (
        get_user_model()
        .objects.filter(operators_with_permission("send"))
        .exclude(pk__in=[pk for pk in (journey.changed_by_id, asker_id) if pk])
        .distinct()
    )
    return list(users)


@task()
def notify_confirmers_task(journey_id: int, asker_id: int | None) -> int:
    """Email the operators who may confirm the journey that someone asked them to (its name and
    a link to its page; nobody's personal data).  Returns how many were emailed."""
    journey = Journey.objects.filter(pk=journey_id).first()
    if journey is None or not enforced() or is_confirmed(journey):
        return 0
    recipients = confirmers(journey, asker_id=asker_id)
    if not recipients:
        return 0
    asker = get_user_model().objects.filter(pk=asker_id).first() if asker_id else None
    if asker is not None:
        why = f"{asker.get_username()} asks a second operator to confirm it."
    else:
        why = f"It is paused: {journey.shown_paused_reason or 'it is not confirmed'}."
    link = absolute_url(reverse("journeys:detail", args=[journey.pk]))
    return mail_operators(
        recipients,
        f"tidings: please confirm the journey “{journey.name}”",
        f"The journey “{journey.name}” waits for a second operator. {why}\n\n"
        "Sending needs a second pair of eyes here: it does not run until someone other "
        "than whoever last changed it has read what it sends (its emails, its trigger "
        f"and who it lets in) and confirmed it on its page:\n{link}\n",
        about=f"the confirmation of journey {journey_id}",
        kind=Kind.CONFIRMATION,
    )


@transaction.atomic
def do_confirm(journey: Journey, *, actor: Any, seen: str) -> Journey:
    """A second operator confirms what the journey sends as they saw it (``seen``: the
    ``fingerprint`` their page showed), and it runs: a draft is activated, a paused journey
    resumed; an active one (started before four-eyes was on) is only marked confirmed.
    Raises JourneyNotReady when they made the last change, when it changed since they looked,
    or when it cannot run; InvalidTransition when it is archived."""
    from .actions import InvalidTransition, JourneyNotReady, Problem, do_activate, do_resume

    journey = (
        Journey.objects.select_for_update(of=("self",)).select_related("sender").get(pk=journey.pk)
    )
    if journey.status == Status.ARCHIVED:
        raise InvalidTransition(journey.status, "confirm")
    if not may_confirm(journey, actor):
        raise JourneyNotReady([Problem(SELF_CONFIRM, "confirm")])
    current = fingerprint(journey)
    if seen != current:
        raise JourneyNotReady([Problem(CHANGED_MEANWHILE, "confirm")])
    now = timezone.now()
    fields = {
        "confirmed_fingerprint": current,
        "confirmed_by": _editor(actor),
        "confirmed_at": now,
        "confirmation_requested_by": None,
        "confirmation_requested_at": None,
    }
    Journey.objects.filter(pk=journey.pk).update(**fields)
    for name, value in fields.items():
        setattr(journey, name, value)
    audit("journey.confirmed", actor=actor, obj=journey, version=journey.version)
    if journey.status == Status.DRAFT:
        do_activate(journey, actor=actor)
    elif journey.status == Status.PAUSED:
        do_resume(journey, actor=actor)
    return journey


def void_if_changed(journey: Journey, before: str, what: str, *, actor: Any) -> bool:
    """After ``journey`` was changed by ``actor``: if what it sends no longer hashes to
    ``before`` (its hash before the change), void its confirmation.  True when voided."""
    if not enforced() or fingerprint(journey) == before:
        return False
    _void(journey, what, actor)
    return True


def void_changed_journeys(what: str, *, actor: Any) -> list[int]:
    """Void the confirmation of every started journey whose hash no longer matches what was
    confirmed (a template, layout, segment or list it reads was saved: ``what`` names it for
    the page).  Journeys without a confirmation (started before four-eyes was on) are left:
    nothing says what they were.  Returns the ids voided."""
    if not enforced():
        return []
    voided = []
    started = Journey.objects.filter(status__in=_STARTED).exclude(confirmed_fingerprint="")
    for journey in started.select_related("sender"):
        if journey.confirmed_fingerprint != fingerprint(journey):
            _void(journey, what, actor)
            voided.append(journey.pk)
    return voided


def hold_changed(journeys: Iterable[Journey]) -> set[int]:
    """The engine's safety net, for a change made around the actions that void (the admin, a
    shell, a race with the confirmation): pause those of ``journeys`` whose hash no longer
    matches their confirmation, or that have none (started before the setting was on), before
    they send anything.  Returns their ids."""
    if not enforced():
        return set()
    held = set()
    for journey in journeys:
        confirmed = journey.confirmed_fingerprint
        if journey.status != Status.ACTIVE:
            continue
        if not confirmed:
            _hold_unconfirmed(journey)
            held.add(journey.pk)
        elif confirmed != fingerprint(journey):
            _void(journey, "what it sends", "worker")
            held.add(journey.pk)
    return held


UNCONFIRMED = (
    "sending needs a second operator now, and nobody else has confirmed what it sends: "
    "another operator with the send permission must confirm it before it runs again"
)


def _hold_unconfirmed(journey: Journey) -> None:
    """A journey started before four-eyes was switched on, that no second operator confirmed
    since: it pauses before its next step, so nobody gets mail no second operator has seen (the
    operators who may confirm it are emailed)."""
    from .actions import InvalidTransition, _apply

    try:
        _apply(journey, "pause", paused_reason=UNCONFIRMED)
    except InvalidTransition:  # paused or archived meanwhile
        return
    audit("journey.paused", actor="worker", obj=journey, cause="not confirmed")
    pk = journey.pk
    transaction.on_commit(lambda: notify_confirmers_task.enqueue(pk, None))


def _void(journey: Journey, what: str, actor: Any) -> None:
    from .actions import InvalidTransition, _apply

    reason = voided_reason(what, _VOIDED_END)  # its end kept: ``waiting`` finds it by that
    fields: dict[str, Any] = {
        "confirmed_fingerprint": "",
        "confirmed_by": None,
        "confirmed_at": None,
        "last_edited_by": _editor(actor),
        # A request was about what it was before the change: whoever changed it asks again.
        "confirmation_requested_by": None,
        "confirmation_requested_at": None,
    }
    was = journey.status
    # A confirmation this change takes away (not one a change before it took: told then).
    voids = bool(journey.confirmed_fingerprint)
    confirmer_id = journey.confirmed_by_id
    if was in _STARTED:
        fields["paused_reason"] = reason
    try:
        if was == Status.ACTIVE:  # nobody gets mail no second operator has seen
            _apply(journey, "pause", **fields)
        else:
            Journey.objects.filter(pk=journey.pk).update(**fields)
            for name, value in fields.items():
                setattr(journey, name, value)
    except InvalidTransition:  # paused or archived meanwhile: void it as it is
        Journey.objects.filter(pk=journey.pk).update(**fields)
    audit("journey.confirmation_voided", actor=actor, obj=journey, was=was, cause=what)
    # It stopped, or paused it can no longer be resumed as it was: its author and whoever
    # confirmed it count on it and should know (a paused one once, not at each later change).
    if was == Status.ACTIVE or (was == Status.PAUSED and voids):
        args = (journey.pk, reason, str(was), confirmer_id, getattr(_editor(actor), "pk", None))
        transaction.on_commit(lambda: notify_voided_task.enqueue(*args))


def told_of_void(journey: Journey, confirmer_id: int | None) -> list[Any]:
    """Its author and the operator who confirmed it, each once, if still operators."""
    ids = {pk for pk in (journey.created_by_id, confirmer_id) if pk}
    users = get_user_model().objects.filter(pk__in=ids, is_active=True, is_staff=True)
    return list(users.order_by("pk"))


@task()
def notify_voided_task(
    journey_id: int, why: str, was: str, confirmer_id: int | None, changed_by: int | None
) -> int:
    """Email the journey's author and whoever confirmed it that a change voided its
    confirmation (``was``: active, so it paused; or paused, so it can no longer be resumed as
    it was): what changed, who changed it, and that another operator must confirm it.  Its
    name and a link, never a person's data.  Returns how many were emailed (0 when it is gone
    or confirmed again meanwhile)."""
    journey = Journey.objects.filter(pk=journey_id).first()
    if journey is None or journey.status != Status.PAUSED or is_confirmed(journey):
        return 0
    name = f"“{journey.name}”"
    if was == Status.PAUSED:
        subject = f"tidings: the paused journey {name} needs confirming again"
        what = (
            f"The journey {name} is paused, and it can no longer be resumed as it was: what "
            "it sends changed after it was confirmed."
        )
    else:
        subject = f"tidings: the journey {name} paused: it needs confirming again"
        what = (
            f"The journey {name} paused: what it sends changed after it was confirmed. Nobody "
            "in it moves on and nobody new enters until it resumes."
        )
    who = get_user_model().objects.filter(pk=changed_by).first() if changed_by else None
    by = f" The change was made by {who.get_username()}." if who is not None else ""
    link = absolute_url(reverse("journeys:detail", args=[journey.pk]))
    return mail_operators(
        told_of_void(journey, confirmer_id),
        subject,
        f"{what}\n\nWhy: {why}.{by}\n\nIt needs confirming again: another operator with the "
        "send permission — not whoever made the change — reads it on its page and confirms "
        f"it, which resumes it.\n{link}\n",
        about=f"journey {journey_id} going back",
        kind=Kind.SENT_BACK,
    )


def on_changed(sender: Any, *, what: str, actor_id: int | None = None, **kwargs: Any) -> None:
    """``signals.audience_changed`` and ``signals.mail_content_changed`` (inside the saving
    transaction): void the journeys the change touches."""
    actor = get_user_model().objects.filter(pk=actor_id).first() if actor_id else None
    void_changed_journeys(what, actor=actor)


def waiting(actor: Any | None = None) -> list[Journey]:
    """The journeys waiting for a second operator's confirmation (by name): someone asked for
    it, or it paused because nobody else confirmed what it sends (started before the setting
    was on, or changed after it was confirmed).  With ``actor``: only those they may confirm
    (the send permission, and not whoever last changed it).  [] with four-eyes off."""
    from django.db.models import Q

    if not enforced():
        return []
    if actor is not None and not has_permission(actor, "send"):
        return []
    journeys = Journey.objects.exclude(status=Status.ARCHIVED).filter(
        Q(confirmation_requested_at__isnull=False)
        | Q(status=Status.PAUSED, confirmed_fingerprint="")
    )
    return [
        j
        for j in journeys.order_by("name")
        if (j.confirmation_requested_at is not None or _held(j))
        and (actor is None or may_confirm(j, actor))
    ]


def _held(journey: Journey) -> bool:
    """Paused until a second operator confirms it: never confirmed, or a change voided it
    (also a reason stored cut short before ``voided_reason`` kept its end)."""
    reason = journey.paused_reason
    return reason == UNCONFIRMED[:300] or is_voided(reason, _VOIDED_END)


_VOIDED_END = VOIDED_END
