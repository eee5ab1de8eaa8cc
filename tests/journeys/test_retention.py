"""Enrolments and their history are personal data with a retention rule: the sweep deletes the
expired ones through the erasure module, and the journey's counts stay, anonymously."""

from __future__ import annotations

from dataclasses import asdict
from datetime import timedelta

import pytest
from django.utils import timezone

from tests.journeys.helpers import make_list, subscriber, welcome
from tidings.journeys import engine
from tidings.journeys.actions import do_enrol
from tidings.journeys.models import (
    Enrolment,
    EnrolmentStep,
    JourneyMailEvent,
    JourneyTally,
)
from tidings.journeys.stats import journey_counts
from tidings.policy import get_policy
from tidings.rights.retention import SWEEPS, run_retention

pytestmark = pytest.mark.django_db


def without_waiting(counts) -> dict:
    data = asdict(counts)
    for step in data["steps"].values():
        step.pop("waiting")
    return data


def test_the_example_policy_keeps_enrolments_a_year_after_they_finish():
    rule = get_policy().retention["journey_enrolment"]
    assert rule.keep == "12 months"
    assert type(SWEEPS["journey_enrolment"]).__name__ == "EnrolmentSweep"


def test_expired_enrolments_go_with_their_history_and_the_counts_stay():
    journey = welcome()
    news = make_list()
    ann = subscriber("Ann Example", news)
    bob = subscriber("Bob Example", news)
    for contact in (ann, bob):
        do_enrol(journey, contact)
    engine.advance_due()
    ann_enrolment = Enrolment.objects.get(contact=ann)
    hello = EnrolmentStep.objects.get(enrolment=ann_enrolment, step="hello")
    JourneyMailEvent.objects.create(step=hello, kind=JourneyMailEvent.Kind.OPEN)
    JourneyMailEvent.objects.create(step=hello, kind=JourneyMailEvent.Kind.CLICK, link=0)
    JourneyMailEvent.objects.create(
        step=EnrolmentStep.objects.get(enrolment__contact=bob, step="hello"),
        kind=JourneyMailEvent.Kind.OPEN,
        machine=True,
    )
    long_ago = timezone.now() - timedelta(days=400)
    Enrolment.objects.filter(pk=ann_enrolment.pk).update(
        state=Enrolment.State.EXITED,
        exit_reason="unsubscribed",
        next_run_at=None,
        finished_at=long_ago,
    )
    before = journey_counts(journey)
    assert before.exited == 1 and before.steps["hello"].opened == 1

    dry = run_retention(dry_run=True)
    assert {k.kind: k.count for k in dry.kinds}["journey_enrolment"] == 1
    run = run_retention()

    assert {k.kind: k.count for k in run.kinds}["journey_enrolment"] == 1
    assert not Enrolment.objects.filter(pk=ann_enrolment.pk).exists()
    assert not EnrolmentStep.objects.filter(enrolment_id=ann_enrolment.pk).exists()
    assert not JourneyMailEvent.objects.filter(step_id=hello.pk).exists()
    assert Enrolment.objects.filter(contact=bob).exists()  # still running: never expires
    after = journey_counts(journey)
    assert without_waiting(after) == without_waiting(before)
    assert after.exit_reasons == [("unsubscribed", 1)]
    # The tallies are anonymous: a journey, what is counted, how many.
    assert {t.key for t in JourneyTally.objects.all()} >= {
        "state:exited",
        "step:hello:sent",
        "step:hello:opened",
        "step:hello:clicked",
        "exit:unsubscribed",
    }

    # A second sweep has nothing more to fold in: the counts stay the same.
    run_retention()
    assert without_waiting(journey_counts(journey)) == without_waiting(before)
