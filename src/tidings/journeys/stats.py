"""Counts for a journey's page: per step, and for the whole journey (reads only)."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field

from django.db.models import Count

from .models import Enrolment, EnrolmentStep, Journey, JourneyMailEvent


@dataclass
class StepCounts:
    reached: int = 0  # people who ran this step
    waiting: int = 0  # open enrolments whose next step is this one
    sent: int = 0
    exited: int = 0  # left here (consent, unsubscribed, erased...)
    parked: int = 0
    # Of the mails this step sent (tracked ones only): people who opened / clicked, and mails
    # opened only by machines (privacy proxies, scanners), shown apart.
    opened: int = 0
    clicked: int = 0
    machine_opened: int = 0


@dataclass
class JourneyCounts:
    entered: int = 0
    active: int = 0
    completed: int = 0
    converted: int = 0
    exited: int = 0
    parked: int = 0
    steps: dict[str, StepCounts] = field(default_factory=dict)
    exit_reasons: list[tuple[str, int]] = field(default_factory=list)


def journey_counts(journey: Journey) -> JourneyCounts:
    """Eight grouped queries, whatever the number of people."""
    counts = JourneyCounts()
    states = dict(
        Enrolment.objects.filter(journey=journey)
        .values_list("state")
        .annotate(n=Count("pk"))
        .values_list("state", "n")
    )
    counts.entered = sum(states.values())
    for state in ("active", "completed", "converted", "exited", "parked"):
        setattr(counts, state, states.get(state, 0))
    steps: dict[str, StepCounts] = {}
    history = EnrolmentStep.objects.filter(enrolment__journey=journey)
    for step, outcome, n in (
        history.values_list("step", "outcome").annotate(n=Count("pk")).order_by()
    ):
        c = steps.setdefault(step, StepCounts())
        c.reached += n
        if outcome == EnrolmentStep.Outcome.SENT:
            c.sent += n
        elif outcome == EnrolmentStep.Outcome.EXITED:
            c.exited += n
        elif outcome == EnrolmentStep.Outcome.PARKED:
            c.parked += n
    waiting = (
        Enrolment.objects.filter(journey=journey, state__in=Enrolment.OPEN)
        .values_list("step")
        .annotate(n=Count("pk"))
        .order_by()
    )
    for step, n in waiting:
        steps.setdefault(step, StepCounts()).waiting += n
    _mail_events(journey, steps)
    counts.steps = steps
    reasons = Counter(
        dict(
            Enrolment.objects.filter(journey=journey, state=Enrolment.State.EXITED)
            .values_list("exit_reason")
            .annotate(n=Count("pk"))
            .order_by()
        )
    )
    counts.exit_reasons = reasons.most_common()
    return counts


def _mail_events(journey: Journey, steps: dict[str, StepCounts]) -> None:
    """Opened and clicked by people (distinct mails), and mails opened by machines only."""
    rows = (
        JourneyMailEvent.objects.filter(step__enrolment__journey=journey)
        .values_list("step__step", "kind", "machine")
        .annotate(n=Count("step_id", distinct=True))
        .order_by()
    )
    machine_opens: dict[str, int] = {}
    for step, kind, machine, n in rows:
        c = steps.setdefault(step, StepCounts())
        if kind == JourneyMailEvent.Kind.CLICK and not machine:
            c.clicked = n
        elif kind == JourneyMailEvent.Kind.OPEN and not machine:
            c.opened = n
        elif kind == JourneyMailEvent.Kind.OPEN:
            machine_opens[step] = n
    # A mail a person opened is counted as theirs even if a proxy fetched the pixel too.
    both = (
        JourneyMailEvent.objects.filter(
            step__enrolment__journey=journey, kind=JourneyMailEvent.Kind.OPEN, machine=True
        )
        .filter(
            step__mail_events__kind=JourneyMailEvent.Kind.OPEN, step__mail_events__machine=False
        )
        .values_list("step__step")
        .annotate(n=Count("step_id", distinct=True))
        .order_by()
    )
    for step, n in both:
        machine_opens[step] = machine_opens.get(step, 0) - n
    for step, n in machine_opens.items():
        steps[step].machine_opened = max(n, 0)
