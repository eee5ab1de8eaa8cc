"""A campaign's life: every change of state goes through ``TRANSITIONS`` and an action here.

::

    draft ──schedule──▶ scheduled ──start──▶ sending ──finish──▶ finished
      ▲                   │    │              │    ▲                │
      └────unschedule─────┘    │         pause│    │resume          │retry (its failed rows)
                               │              ▼    │                ▼
                               │            paused─┘             sending
                               └──cancel──▶ cancelled ◀──cancel── sending, paused

The table is the only statement of what may happen when.  A forbidden step raises
``InvalidTransition`` ("a finished campaign cannot be paused"); a campaign that is not ready to
go raises ``CampaignNotReady`` with each problem and the field it belongs to.  Both are domain
errors: they know nothing of HTTP, and the views turn them into a 409 page or form errors.

Each action is one transaction, writes an audit entry (ids and counts only), and changes the
status with a conditional UPDATE (``WHERE status = <what we read>``), so two requests, or an
operator and a worker, racing on the same campaign cannot both win: the loser gets
``InvalidTransition`` naming the state the winner left behind.  Mail is sent only once the
transaction has committed.

Starting is the one heavy step: it inserts one ``Delivery`` row per recipient.  The audience
query streams into ``queue.populate_deliveries`` (never a list of a million ids in memory) in
the same transaction as the claim, so a crash mid-way leaves the campaign scheduled, to be
started again, rather than "sending" with half a queue.
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from django.db import transaction
from django.db.models import Exists
from django.tasks import task
from django.utils import timezone

from tidings import signals
from tidings.audience.models import MailingList, Segment
from tidings.audience.segments import SegmentError, validate_segment
from tidings.lib.audit import audit
from tidings.lib.four_eyes import needs_second_operator
from tidings.lib.stale import check_version, editor_name
from tidings.policy import get_policy

from .fingerprint import changed_since_confirmed, confirmed_values, enforced
from .models import Campaign, Delivery, Sender, Template
from .protection import PREFIX as PROTECTION_PREFIX
from .queue import (
    assign_variants,
    delivery_counts,
    populate_deliveries,
    retry_failed,
    unfinished_rows,
)
from .rendering import (
    CompiledMessage,
    TemplateProblem,
    check_layout,
    check_template,
)
from .sendtime import plan_local_hour
from .sent_back import tell_on_commit
from .targeting import audience_for, skip_suppressed_deliveries
from .variants import variant_problems

logger = logging.getLogger(__name__)

Status = Campaign.Status

# (state, action) -> the state it leads to.  Anything not here is forbidden.
TRANSITIONS: dict[tuple[str, str], str] = {
    (Status.DRAFT, "edit"): Status.DRAFT,
    (Status.DRAFT, "schedule"): Status.SCHEDULED,
    (Status.SCHEDULED, "unschedule"): Status.DRAFT,
    (Status.SCHEDULED, "start"): Status.SENDING,
    (Status.SCHEDULED, "cancel"): Status.CANCELLED,
    (Status.SENDING, "pause"): Status.PAUSED,
    (Status.SENDING, "cancel"): Status.CANCELLED,
    (Status.SENDING, "finish"): Status.FINISHED,
    (Status.SENDING, "retry"): Status.SENDING,
    (Status.PAUSED, "resume"): Status.SENDING,
    (Status.PAUSED, "cancel"): Status.CANCELLED,
    (Status.PAUSED, "retry"): Status.PAUSED,
    (Status.FINISHED, "retry"): Status.SENDING,
}
ACTIONS = tuple(dict.fromkeys(action for (_, action) in TRANSITIONS))

# "a <state> campaign cannot be <...>"
_PHRASES = {
    "edit": "edited",
    "schedule": "scheduled",
    "unschedule": "unscheduled",
    "start": "started",
    "pause": "paused",
    "resume": "resumed",
    "cancel": "cancelled",
    "finish": "finished",
    "retry": "sent its failed messages again",
}


# --- errors -------------------------------------------------------------------------------------
class CampaignError(Exception):
    """A domain error about a campaign; ``str()`` is a sentence for the operator."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class InvalidTransition(CampaignError):
    """The campaign's state does not allow the action (``TRANSITIONS``)."""

    def __init__(self, status: str | None, action: str) -> None:
        self.status = status
        self.action = action
        if status is None:
            message = "the campaign no longer exists"
        else:
            message = f"a {status} campaign cannot be {_PHRASES.get(action, action)}"
        super().__init__(message)


@dataclass(frozen=True)
class Problem:
    """One reason a campaign cannot go ahead; ``field`` names the form field, when one fits."""

    message: str
    field: str | None = None

    def __str__(self) -> str:
        return self.message


class CampaignNotReady(CampaignError):
    """The campaign cannot be saved, scheduled, started or test-sent as it is."""

    def __init__(self, problems: Iterable[Problem]) -> None:
        self.problems = list(problems)
        super().__init__("; ".join(p.message for p in self.problems))


_SECOND_OPERATOR_CHANGED = (
    "another operator with the send permission must confirm it: what it sends changed after it "
    "was confirmed, and you made the change or wrote it"
)


class ConfirmationVoided(CampaignNotReady):
    """With four-eyes sending, what the campaign sends (or who it goes to) changed after the
    second operator confirmed it (``campaigns.fingerprint``): it must be confirmed again."""

    def __init__(self) -> None:
        super().__init__(
            [
                Problem(
                    "what it sends changed after it was confirmed: another operator must "
                    "confirm it again",
                    "confirm",
                )
            ]
        )


def transition(status: str | None, action: str) -> str:
    """The state ``action`` leads to from ``status``; raises InvalidTransition."""
    try:
        if status is None:  # the campaign is gone
            raise KeyError(action)
        return TRANSITIONS[(status, action)]
    except KeyError:
        raise InvalidTransition(status, action) from None


def apply_transition(campaign: Campaign | int, action: str, **fields: Any) -> tuple[str, str]:
    """Move the campaign along ``action`` with a conditional UPDATE, setting ``fields`` too.

    Returns (old state, new state).  Raises InvalidTransition if the campaign's state, read
    afresh, does not allow it, or if another process changed the state first.  The delivery
    engine's steps (``finish_if_done``, ``pause_campaign``) use it too.
    """
    pk = campaign.pk if isinstance(campaign, Campaign) else campaign
    current = Campaign.objects.filter(pk=pk).values_list("status", flat=True).first()
    if current is None:
        raise InvalidTransition(None, action)
    target = transition(current, action)
    changed = Campaign.objects.filter(pk=pk, status=current).update(
        status=target, updated_at=timezone.now(), **fields
    )
    if changed != 1:  # someone else moved it between our read and our write
        now = Campaign.objects.filter(pk=pk).values_list("status", flat=True).first()
        raise InvalidTransition(now, action)
    if isinstance(campaign, Campaign):
        campaign.status = target
        for name, value in fields.items():
            setattr(campaign, name, value)
    return current, target


def allowed_actions(campaign: Campaign) -> set[str]:
    """The actions the campaign's current state allows (for the buttons a page shows)."""
    return {action for (status, action) in TRANSITIONS if status == campaign.status}


# --- checks -------------------------------------------------------------------------------------
def _topics() -> tuple[str, ...]:
    return tuple(get_policy().marketing.topics)


def _targeting_problems(
    topic: str, lists: Iterable[MailingList], segments: Iterable[Segment]
) -> list[Problem]:
    problems = []
    if topic not in _topics():
        problems.append(
            Problem(f"choose one of the policy's marketing topics, not {topic!r}", "topic")
        )
    for mailing_list in lists:
        if mailing_list.closed_at is not None:
            problems.append(Problem(f"the list {mailing_list.name!r} is closed", "lists"))
        elif mailing_list.topic != topic:
            problems.append(
                Problem(
                    f"the list {mailing_list.name!r} is about {mailing_list.topic!r}: its "
                    f"subscribers did not agree to emails about {topic!r}",
                    "lists",
                )
            )
    for segment in segments:
        errors = validate_segment(segment.query)
        if errors:
            problems.append(
                Problem(f"the segment {segment.name!r} no longer works: {errors[0]}", "segments")
            )
    return problems


def _template_problems(campaign: Campaign) -> list[Problem]:
    """Every problem of the campaign's subject, body, text and layout (a layout must link to
    ``{{ unsubscribe_url }}`` and ``{{ preferences_url }}`` and show the postal address); then
    that it compiles as the engine will compile it."""
    layout = campaign.layout
    if layout is None and campaign.template is not None:
        layout = campaign.template.layout
    # check_template stops at the body's first kind of problem; the layout's are listed anyway.
    problems = check_layout(layout.html, layout.text) if layout is not None else []
    seen = {str(p) for p in problems}
    problems += [
        p
        for p in check_template(
            campaign.subject,
            campaign.body,
            campaign.format,
            campaign.text_body,
            layout,
            preheader=campaign.preheader,
        )
        if str(p) not in seen
    ]
    if not problems:
        try:
            CompiledMessage.for_campaign(campaign)
        except TemplateProblem as exc:
            problems = [exc]
    return [template_problem(p) for p in problems]


# Which form field a TemplateProblem's ``part`` belongs to.
_PART_FIELDS = {
    "subject": "subject",
    "preheader": "preheader",
    "body": "body",
    "text": "text_body",
    "layout": "layout",
}


def template_problem(problem: Exception) -> Problem:
    return Problem(str(problem), _PART_FIELDS.get(getattr(problem, "part", "")))


def schedule_problems(campaign: Campaign) -> list[Problem]:
    """Everything that stops the campaign from being scheduled ([] when it can go)."""
    problems = []
    if campaign.sender is None:
        problems.append(Problem("choose a sender", "sender"))
    elif not campaign.sender.verified:
        problems.append(Problem(f"the sender {campaign.sender} is not verified", "sender"))
    if not campaign.subject.strip():
        problems.append(Problem("write a subject", "subject"))
    lists = list(campaign.lists.all())
    segments = list(campaign.segments.all())
    if not lists and not segments:
        problems.append(Problem("choose at least one list or segment", "lists"))
    problems += _targeting_problems(campaign.topic, lists, segments)
    problems += _template_problems(campaign)
    problems += [Problem(message, field) for message, field in variant_problems(campaign)]
    if campaign.follow_up_of_id is not None and not campaign.follow_up_audience:
        problems.append(Problem("say who the follow-up is for", "follow_up_audience"))
    return problems


# --- creating and editing -----------------------------------------------------------------------
EDITABLE_FIELDS = (
    "name",
    "subject",
    "preheader",
    "sender",
    "reply_to",
    "layout",
    "format",
    "body",
    "text_body",
    "topic",
    "archive",
    "local_hour",
)


@transaction.atomic
def do_create_campaign(
    template: Template,
    *,
    name: str,
    topic: str,
    actor: Any,
    sender: Sender | None = None,
    lists: Iterable[MailingList] = (),
    segments: Iterable[Segment] = (),
) -> Campaign:
    """A new draft with a copy of the template's subject, body and layout."""
    lists, segments = list(lists), list(segments)
    problems = _targeting_problems(topic, lists, segments)
    if problems:
        raise CampaignNotReady(problems)
    campaign = Campaign.objects.create(
        name=name,
        topic=topic,
        sender=sender,
        reply_to=sender.reply_to if sender is not None else "",
        template=template,
        layout=template.layout,
        format=template.format,
        subject=template.subject,
        body=template.body,
        text_body=template.text_body,
        created_by=actor if getattr(actor, "pk", None) else None,
        last_edited_by=actor if getattr(actor, "pk", None) else None,
    )
    campaign.lists.set(lists)
    campaign.segments.set(segments)
    audit("campaign.created", actor=actor, obj=campaign, template=template.pk)
    return campaign


@transaction.atomic
def do_update_campaign(
    campaign: Campaign,
    values: Mapping[str, Any],
    *,
    actor: Any,
    lists: Iterable[MailingList] | None = None,
    segments: Iterable[Segment] | None = None,
    loaded_version: str | None = None,
) -> list[str]:
    """Change a draft (only drafts change); returns the names of the fields that changed.
    With ``loaded_version`` (the version the edit page was opened at), raises EditedMeanwhile
    when the draft was saved since."""
    row = (
        Campaign.objects.select_for_update()
        .filter(pk=campaign.pk)
        .values("status", "updated_at", "last_edited_by")
        .first()
    )
    if row is None:
        raise InvalidTransition(None, "edit")
    transition(row["status"], "edit")
    check_version(
        loaded_version,
        row["updated_at"],
        "campaign",
        lambda: editor_name(row["last_edited_by"], actor),
    )
    unknown = set(values) - set(EDITABLE_FIELDS)
    if unknown:
        raise ValueError(f"not editable: {', '.join(sorted(unknown))}")
    changed = [name for name, value in values.items() if getattr(campaign, name) != value]
    for name in changed:
        setattr(campaign, name, values[name])
    new_lists = list(lists) if lists is not None else list(campaign.lists.all())
    new_segments = list(segments) if segments is not None else list(campaign.segments.all())
    problems = _targeting_problems(campaign.topic, new_lists, new_segments)
    if problems:
        raise CampaignNotReady(problems)
    if changed:
        # Conditional on the state still being draft: an edit racing a schedule loses.
        saved = Campaign.objects.filter(pk=campaign.pk, status=Status.DRAFT).update(
            **{name: getattr(campaign, name) for name in changed},
            updated_at=timezone.now(),
            last_edited_by=actor if getattr(actor, "pk", None) else None,
        )
        if saved != 1:
            raise InvalidTransition(
                Campaign.objects.filter(pk=campaign.pk).values_list("status", flat=True).first(),
                "edit",
            )
    if lists is not None and set(new_lists) != set(campaign.lists.all()):
        campaign.lists.set(new_lists)
        changed.append("lists")
    if segments is not None and set(new_segments) != set(campaign.segments.all()):
        campaign.segments.set(new_segments)
        changed.append("segments")
    if {"lists", "segments"} & set(changed):  # a new version for other open edit pages too
        Campaign.objects.filter(pk=campaign.pk).update(updated_at=timezone.now())
    if changed:
        audit("campaign.updated", actor=actor, obj=campaign, fields=sorted(changed))
    return changed


@transaction.atomic
def do_set_archive(campaign: Campaign, archive: bool, *, actor: Any) -> None:
    """Show the campaign on the public archive page once it has been sent, or stop showing it.
    Allowed in every state: it changes nothing about who gets what."""
    if campaign.archive == archive:
        return
    Campaign.objects.filter(pk=campaign.pk).update(archive=archive, updated_at=timezone.now())
    campaign.archive = archive
    audit("campaign.archive_set", actor=actor, obj=campaign, archive=archive)


@transaction.atomic
def do_clone(campaign: Campaign, *, actor: Any) -> Campaign:
    """A new draft with the same content and audience, whatever the original's state."""
    copy = Campaign.objects.create(
        name=f"Copy of {campaign.name}"[: Campaign._meta.get_field("name").max_length],
        subject=campaign.subject,
        preheader=campaign.preheader,
        sender=campaign.sender,
        reply_to=campaign.reply_to,
        template=campaign.template,
        layout=campaign.layout,
        format=campaign.format,
        body=campaign.body,
        text_body=campaign.text_body,
        topic=campaign.topic,
        archive=campaign.archive,
        local_hour=campaign.local_hour,
        # A follow-up's audience is its original's non-openers (or non-clickers), not its lists.
        follow_up_of_id=campaign.follow_up_of_id,
        follow_up_audience=campaign.follow_up_audience,
        follow_up_days=campaign.follow_up_days,
        created_by=actor if getattr(actor, "pk", None) else None,
        last_edited_by=actor if getattr(actor, "pk", None) else None,
    )
    copy.lists.set(campaign.lists.all())
    copy.segments.set(campaign.segments.all())
    audit("campaign.cloned", actor=actor, obj=copy, source=campaign.pk)
    return copy


# --- scheduling and starting --------------------------------------------------------------------
@transaction.atomic
def do_schedule(
    campaign: Campaign,
    when: datetime | None,
    *,
    actor: Any,
    confirmed: bool = False,
    now: datetime | None = None,
) -> Campaign:
    """Schedule a draft for ``when`` (an aware datetime in the future), or None for now.

    ``confirmed``: the operator saw the confirmation (``campaigns.confirmation``: the exact
    number of recipients, the sender, the subject, the time and the checklist's red items) and
    said yes; without it nothing is scheduled (the API's ``confirm`` flag).  Raises
    CampaignNotReady listing every problem (no confirmation, unverified sender, nothing targeted,
    a template or A/B variant that does not render, a layout without an unsubscribe link, a time
    in the past, and with ``TIDINGS_SEND_NEEDS_SECOND_OPERATOR`` an operator confirming what
    they wrote themselves).  A campaign scheduled for now is started by the worker as soon as
    this commits.
    """
    now = now or timezone.now()
    transition(campaign.status, "schedule")
    problems = schedule_problems(campaign)
    if not confirmed:
        problems.append(
            Problem("confirm it: see how many people it goes to, and what is red", "confirm")
        )
    if _needs_second_operator(campaign, actor):
        problems.append(
            Problem(
                "another operator with the send permission must confirm it: sending needs a "
                "second pair of eyes, and you wrote it",
                "confirm",
            )
        )
    if when is not None:
        if timezone.is_naive(when):
            raise ValueError("when: expected an aware datetime")
        if when <= now:
            problems.append(Problem("choose a time in the future, or send now", "when"))
    if problems:
        raise CampaignNotReady(problems)
    # What was confirmed, as hashes: a change to what it reads voids it (campaigns.fingerprint).
    fingerprints = confirmed_values(campaign)
    apply_transition(
        campaign, "schedule", scheduled_at=when or now, paused_reason="", **fingerprints
    )
    audit(
        "campaign.scheduled",
        actor=actor,
        obj=campaign,
        at=(when or now).isoformat(),
        now=when is None,
        confirmed=True,
    )
    if when is None:
        pk = campaign.pk
        transaction.on_commit(lambda: start_campaign.enqueue(pk))
    return campaign


def _needs_second_operator(campaign: Campaign, actor: Any) -> bool:
    """With ``TIDINGS_SEND_NEEDS_SECOND_OPERATOR``, whoever created or last edited a campaign
    cannot also send it (the API's tokens act for their operator, so the same holds there)."""
    return needs_second_operator(actor, (campaign.created_by_id, campaign.last_edited_by_id))


@transaction.atomic
def do_unschedule(campaign: Campaign, *, actor: Any, reason: str = "") -> Campaign:
    """Back to draft (to edit it, or because it could not start: ``reason`` says why)."""
    apply_transition(campaign, "unschedule", scheduled_at=None, paused_reason=reason[:300])
    audit("campaign.unscheduled", actor=actor, obj=campaign, problem=bool(reason))
    return campaign


@transaction.atomic
def do_start(campaign: Campaign | int, *, now: datetime | None = None) -> int:
    """Start a scheduled campaign: claim it (scheduled → sending) and queue its deliveries.

    Returns how many delivery rows were queued.  The claim is a conditional UPDATE, so when
    several workers race only one starts it; the others get InvalidTransition.  Raises
    CampaignNotReady (and changes nothing) if a segment stopped working, or if it targets no
    open list or segment any more.
    """
    now = now or timezone.now()
    pk = campaign.pk if isinstance(campaign, Campaign) else campaign
    apply_transition(pk, "start", started_at=now, paused_reason="")
    campaign = Campaign.objects.get(pk=pk)
    if (
        campaign.follow_up_of_id is None
        and not campaign.segments.exists()
        and not campaign.lists.filter(closed_at__isnull=True).exists()
    ):
        # Its segments were deleted or its lists closed since it was scheduled: starting would
        # queue nobody and show "finished", as if it had gone out.
        raise CampaignNotReady(
            [Problem("it targets no open list or segment any more: choose its audience", "lists")]
        )
    if enforced() and changed_since_confirmed(campaign, audience=True):
        # A change that raced the confirmation, or was made around the actions that void it.
        raise ConfirmationVoided()
    try:
        contacts = audience_for(campaign, now=now)
    except SegmentError as exc:
        raise CampaignNotReady([Problem(f"a segment no longer works: {exc}", "segments")]) from None
    populate_deliveries(campaign, contacts)
    skipped = skip_suppressed_deliveries(campaign)
    # An A/B test: each person's variant is fixed on their row now, before any worker sees it.
    test = getattr(campaign, "ab_test", None)
    if test is not None:
        variant_ids = list(campaign.variants.order_by("label").values_list("pk", flat=True))
        assign_variants(campaign, variant_ids, test.share, test.seed)
    plan_local_hour(campaign, now)
    queued = Delivery.objects.filter(
        campaign=campaign, status__in=(Delivery.Status.QUEUED, Delivery.Status.HELD)
    ).count()
    audit("campaign.started", actor_label="worker", obj=campaign, queued=queued, skipped=skipped)
    return queued


def start_due_campaigns(now: datetime | None = None) -> list[int]:
    """Start every scheduled campaign whose time has come; returns the ids this call started.

    Safe to run in several workers at once: each campaign is claimed by ``do_start``'s
    conditional UPDATE, and a campaign another worker claimed first is skipped.  A campaign
    that cannot start (a segment broke since it was scheduled) goes back to draft with the
    reason, instead of failing again every minute, and its author and whoever confirmed it are
    emailed why (``sent_back``).
    """
    now = now or timezone.now()
    due = Campaign.objects.filter(status=Status.SCHEDULED, scheduled_at__lte=now).order_by(
        "scheduled_at", "pk"
    )
    started = []
    for pk in due.values_list("pk", flat=True):
        try:
            do_start(pk, now=now)
        except InvalidTransition:
            continue  # another worker started it (or an operator cancelled it) first
        except CampaignNotReady as exc:
            logger.warning("campaign %s could not start: %s", pk, exc)
            with contextlib.suppress(InvalidTransition):  # cancelled meanwhile: leave it so
                campaign = Campaign.objects.get(pk=pk)
                scheduled_at = campaign.scheduled_at
                do_unschedule(campaign, actor=None, reason=str(exc))
                voided = isinstance(exc, ConfirmationVoided)
                if voided:
                    audit("campaign.confirmation_voided", actor_label="worker", obj=Campaign(pk=pk))
                tell_on_commit(
                    campaign,
                    str(exc)[:300],
                    was=Status.SCHEDULED,
                    scheduled_at=scheduled_at,
                    confirm=voided,
                )
            continue
        started.append(pk)
        logger.info("campaign %s started", pk)
    return started


@task()
def start_due_campaigns_task() -> list[int]:
    """The periodic job (every minute, see apps.py): ``start_due_campaigns`` now."""
    return start_due_campaigns()


@task()
def start_campaign(campaign_id: int) -> list[int]:
    """Enqueued by "send now": start that campaign, and any other that is due."""
    return start_due_campaigns()


# --- while sending ------------------------------------------------------------------------------
@transaction.atomic
def do_pause(campaign: Campaign, *, actor: Any, reason: str = "") -> Campaign:
    """Stop sending; queued rows stay queued.  Workers claim only rows of sending campaigns and
    check the state between batches, so sending stops within seconds."""
    apply_transition(campaign, "pause", paused_reason=reason[:300])
    audit("campaign.paused", actor=actor, obj=campaign)
    return campaign


@transaction.atomic
def do_resume(campaign: Campaign, *, actor: Any) -> Campaign:
    """Carry on sending.  Resuming a campaign that paused itself for complaints or bounces
    waives that protection for it (the operator looked; audited)."""
    reason = Campaign.objects.filter(pk=campaign.pk).values_list("paused_reason", flat=True)
    waive = (reason.first() or "").startswith(PROTECTION_PREFIX)
    extra: dict[str, Any] = {"protection_waived": True} if waive else {}
    fresh = Campaign.objects.select_related("sender", "layout", "template__layout").get(
        pk=campaign.pk
    )
    reconfirmed = enforced() and changed_since_confirmed(fresh, audience=False)
    if reconfirmed:  # what it sends changed while it was out: resuming confirms the change
        if _needs_second_operator(fresh, actor):
            raise CampaignNotReady([Problem(_SECOND_OPERATOR_CHANGED, "confirm")])
        extra["confirmed_content"] = confirmed_values(fresh)["confirmed_content"]
    apply_transition(campaign, "resume", paused_reason="", **extra)
    noted: dict[str, Any] = {"reconfirmed": True} if reconfirmed else {}
    audit("campaign.resumed", actor=actor, obj=campaign, protection_waived=waive, **noted)
    return campaign


@transaction.atomic
def do_cancel(campaign: Campaign, *, actor: Any) -> int:
    """Cancel for good: every queued or held row (an A/B test's rest, a later local hour)
    becomes "skipped".  Returns how many were dropped."""
    now = timezone.now()
    apply_transition(campaign, "cancel", finished_at=now)
    dropped = Delivery.objects.filter(
        campaign=campaign, status__in=(Delivery.Status.QUEUED, Delivery.Status.HELD)
    ).update(status=Delivery.Status.SKIPPED, error="campaign cancelled")
    audit("campaign.cancelled", actor=actor, obj=campaign, dropped=dropped)
    return dropped


@transaction.atomic
def do_retry_failed(campaign: Campaign, *, actor: Any) -> int:
    """Queue the campaign's failed messages again; a finished campaign goes back to sending."""
    transition(campaign.status, "retry")
    retried = retry_failed(campaign)
    campaign.refresh_from_db(fields=["status", "finished_at"])
    if retried and campaign.status == Status.FINISHED:
        apply_transition(campaign, "retry", finished_at=None)
    audit("campaign.retried", actor=actor, obj=campaign, count=retried)
    return retried


# --- what the delivery engine does to a campaign ------------------------------------------------
def finish_if_done(campaign: Campaign | int) -> bool:
    """sending → finished if no row of the campaign is queued or sending (one conditional UPDATE,
    so it is right even while other workers are still marking rows).  True if it finished now.

    Called by the engine when it has nothing left of a campaign; rows waiting for a retry keep
    it sending.  Audited as the worker, with the campaign's counts."""
    pk = campaign.pk if isinstance(campaign, Campaign) else campaign
    target = transition(Status.SENDING, "finish")
    now = timezone.now()
    with transaction.atomic():
        changed = (
            Campaign.objects.filter(pk=pk, status=Status.SENDING)
            .filter(~Exists(unfinished_rows()))
            .update(status=target, finished_at=now, updated_at=now)
        )
        if changed:
            counts = delivery_counts(pk)
            audit(
                "campaign.finished",
                actor_label="worker",
                obj=Campaign(pk=pk),
                sent=counts[Delivery.Status.SENT],
                failed=counts[Delivery.Status.FAILED],
                skipped=counts[Delivery.Status.SKIPPED],
            )
            transaction.on_commit(
                lambda: signals.campaign_finished.send(sender=Campaign, campaign_id=pk)
            )
    if changed:
        logger.info("campaign %s finished", pk)
    return bool(changed)


def pause_campaign(campaign: Campaign | int, reason: str) -> bool:
    """sending → paused with ``reason`` shown to the operator, by the engine (the circuit
    breaker, an unreachable server, a template that no longer renders).  False if it was not
    sending."""
    pk = campaign.pk if isinstance(campaign, Campaign) else campaign
    with transaction.atomic():
        try:
            apply_transition(pk, "pause", paused_reason=reason[:300])
        except InvalidTransition:
            return False
        audit("campaign.paused", actor_label="worker", obj=Campaign(pk=pk), automatic=True)
    logger.warning("campaign %s paused: %s", pk, reason)
    return True
