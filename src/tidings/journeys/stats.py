"""Counts for a journey's page: per step, and for the whole journey.

The counts are read from the rows (enrolments, their history, opens and clicks) plus the
journey's anonymous tallies (``JourneyTally``): when the retention sweep deletes expired
enrolments, ``EnrolmentSweep`` first adds what they counted to the tallies, in the same
transaction, so the page's figures do not drop when the people's rows go."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field

from django.db.models import Count, F, QuerySet

from tidings.rights.retention import SWEEPS, RecordSweep

from .models import Enrolment, EnrolmentStep, Journey, JourneyMailEvent, JourneyTally
from .whereabouts import EXIT_KIND, here

STATES = ("active", "completed", "converted", "exited", "parked")
STEP_FIELDS = ("reached", "sent", "exited", "parked", "opened", "clicked", "machine_opened")


@dataclass
class StepCounts:
    reached: int = 0  # people who ran this step
    waiting: int = 0  # open enrolments at this step now ("here now": ``_here_now``)
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
    """The rows' counts plus the journey's tallies: nine grouped queries, whatever the number
    of people."""
    counts = rows_counts(Enrolment.objects.filter(journey=journey))
    _add_tallies(counts, dict(journey.tallies.values_list("key", "count")))
    return counts


def rows_counts(enrolments: QuerySet) -> JourneyCounts:
    """What ``enrolments`` (of one journey) and their history count: eight grouped queries."""
    counts = JourneyCounts()
    states = dict(enrolments.values_list("state").annotate(n=Count("pk")).values_list("state", "n"))
    counts.entered = sum(states.values())
    for state in STATES:
        setattr(counts, state, states.get(state, 0))
    steps: dict[str, StepCounts] = {}
    history = EnrolmentStep.objects.filter(enrolment__in=enrolments.values("pk"))
    for step, kind, outcome, n in (
        history.values_list("step", "kind", "outcome").annotate(n=Count("pk")).order_by()
    ):
        c = steps.setdefault(step, StepCounts())
        if outcome == EnrolmentStep.Outcome.DEFERRED:
            continue  # missed its time, runs again later (journeys.schedule): not reached yet
        if kind != EXIT_KIND:  # taken out while there (actions._close): the step did not run
            c.reached += n
        if outcome == EnrolmentStep.Outcome.SENT:
            c.sent += n
        elif outcome == EnrolmentStep.Outcome.EXITED:
            c.exited += n
        elif outcome == EnrolmentStep.Outcome.PARKED:
            c.parked += n
    for step, n in _here_now(enrolments):
        steps.setdefault(step, StepCounts()).waiting += n
    _mail_events(enrolments, steps)
    counts.steps = steps
    reasons = Counter(
        dict(
            enrolments.filter(state=Enrolment.State.EXITED)
            .values_list("exit_reason")
            .annotate(n=Count("pk"))
            .order_by()
        )
    )
    counts.exit_reasons = reasons.most_common()
    return counts


def _here_now(enrolments: QuerySet) -> QuerySet:
    """(step, people) of the open enrolments, each at the step they are at now (``here``)."""
    return (
        here(enrolments.filter(state__in=Enrolment.OPEN))
        .values_list("here")
        .annotate(n=Count("pk"))
        .order_by()
    )


def tally_keys(counts: JourneyCounts) -> dict[str, int]:
    """Counts as tally keys (the open enrolments' "waiting" is not a tally: it is now)."""
    keys: dict[str, int] = {f"state:{s}": getattr(counts, s) for s in STATES}
    for step, c in counts.steps.items():
        for name in STEP_FIELDS:
            keys[f"step:{step}:{name}"] = getattr(c, name)
    for reason, n in counts.exit_reasons:
        keys[f"exit:{reason}"] = n
    return {k[:200]: n for k, n in keys.items() if n}


def _add_tallies(counts: JourneyCounts, tallies: dict[str, int]) -> None:
    reasons = Counter(dict(counts.exit_reasons))
    for key, n in tallies.items():
        kind, _, rest = key.partition(":")
        if kind == "state" and rest in STATES:
            setattr(counts, rest, getattr(counts, rest) + n)
            counts.entered += n
        elif kind == "step":
            step, _, name = rest.rpartition(":")
            if name in STEP_FIELDS:
                c = counts.steps.setdefault(step, StepCounts())
                setattr(c, name, getattr(c, name) + n)
        elif kind == "exit":
            reasons[rest] += n
    counts.exit_reasons = reasons.most_common()


def keep_tallies(enrolment_ids: list[int]) -> None:
    """Add what these enrolments count to their journeys' tallies (before they are deleted)."""
    journeys = (
        Enrolment.objects.filter(pk__in=enrolment_ids)
        .values_list("journey_id", flat=True)
        .distinct()
        .order_by()
    )
    for journey_id in list(journeys):
        rows = Enrolment.objects.filter(pk__in=enrolment_ids, journey_id=journey_id)
        for key, n in tally_keys(rows_counts(rows)).items():
            tally, _ = JourneyTally.objects.select_for_update().get_or_create(
                journey_id=journey_id, key=key
            )
            JourneyTally.objects.filter(pk=tally.pk).update(count=F("count") + n)


class EnrolmentSweep(RecordSweep):
    """The retention sweep of expired enrolments (rule "journey_enrolment"): their counts go to
    the journeys' anonymous tallies, then the rows (with their history, opens and clicks) are
    deleted through the erasure module like every other kind."""

    def erase(self, ids: list[int], contact_ids: set[int]) -> int:
        keep_tallies(ids)
        return super().erase(ids, contact_ids)


def install_sweep() -> None:
    """Put ``EnrolmentSweep`` in the retention sweep's place for enrolments (apps.ready)."""
    plain = SWEEPS["journey_enrolment"]
    SWEEPS["journey_enrolment"] = EnrolmentSweep(
        plain.kind, plain.model_label, plain.clocks, plain.contact_field
    )


def _mail_events(enrolments: QuerySet, steps: dict[str, StepCounts]) -> None:
    """Opened and clicked by people (distinct mails), and mails opened by machines only."""
    of_these = JourneyMailEvent.objects.filter(step__enrolment__in=enrolments.values("pk"))
    rows = (
        of_these.values_list("step__step", "kind", "machine")
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
        of_these.filter(kind=JourneyMailEvent.Kind.OPEN, machine=True)
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
        steps.setdefault(step, StepCounts()).machine_opened = max(n, 0)
