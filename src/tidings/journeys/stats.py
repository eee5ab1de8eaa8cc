"""Counts for a journey's page: per step, and for the whole journey (reads only)."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field

from django.db.models import Count

from .models import Enrolment, EnrolmentStep, Journey


@dataclass
class StepCounts:
    reached: int = 0  # people who ran this step
    waiting: int = 0  # open enrolments whose next step is this one
    sent: int = 0
    exited: int = 0  # left here (consent, unsubscribed, erased...)
    parked: int = 0


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
    """Six grouped queries, whatever the number of people."""
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
