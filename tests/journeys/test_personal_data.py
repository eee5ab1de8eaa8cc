from __future__ import annotations

from datetime import UTC, datetime

import pytest

from tests.journeys.helpers import make_list, subscriber, welcome
from tidings.audience.sources import source
from tidings.journeys import engine
from tidings.journeys.actions import do_enrol
from tidings.journeys.models import Enrolment
from tidings.journeys.stats import journey_counts
from tidings.rights.actions import do_erase_contact, do_object_to_marketing

pytestmark = pytest.mark.django_db


def test_the_access_package_says_where_the_person_is_in_words(settings, time_machine):
    settings.TIME_ZONE = "Europe/London"
    time_machine.move_to(datetime(2026, 12, 7, 9, 0, tzinfo=UTC), tick=False)
    journey = welcome()
    ann = subscriber("Ann Example", make_list())
    do_enrol(journey, ann)
    engine.advance_due()
    [row] = source("journeys").export(ann)
    assert row["in words"] == (
        'You are in our "Welcome" series, step 3 of 4, next email on 9 December 2026 at 09:00.'
    )
    assert row["emails_sent"] == "1 of 2"
    history = source("journey history").export(ann)
    assert [h["outcome"] for h in history] == ["Mail queued", "Waiting"]


def test_erasure_leaves_the_enrolment_as_an_anonymous_count(time_machine):
    """The open enrolment is closed where the person was: finished that day, and an exit row
    at the step they had reached, so the journey's map counts the exit there (and the retention
    rule's "finished" clock runs); the row keeps nothing that names them, not even the instant
    of the erasure (which the erasure journal keeps beside the address's hash).

    Waiting out "wait 2 days", they are at the wait ("here now" on the map), not at "tips",
    the step to run next: the exit was recorded at "tips", which they never reached, so the
    map showed someone leaving a step nobody had got to — unlike an unsubscribe's exit."""
    time_machine.move_to(datetime(2026, 12, 7, 9, 0, tzinfo=UTC), tick=False)
    journey = welcome()
    ann = subscriber("Ann Example", make_list())
    do_enrol(journey, ann)
    engine.advance_due()  # mail sent, waiting two days before "tips"
    assert journey_counts(journey).steps["pause"].waiting == 1
    erased_at = datetime(2026, 12, 8, 10, 0, tzinfo=UTC)
    time_machine.move_to(erased_at, tick=False)
    do_erase_contact(ann, actor=None)
    enrolment = Enrolment.objects.get()
    assert enrolment.contact_id is None
    assert (enrolment.state, enrolment.exit_reason) == ("exited", "erased")
    assert enrolment.finished_at == datetime(2026, 12, 8, tzinfo=UTC)
    assert enrolment.next_run_at is None
    last = enrolment.history.order_by("seq").last()
    assert (last.step, last.kind, last.outcome, last.reason) == (
        "pause",
        "exit",
        "exited",
        "erased",
    )
    assert last.ran_at == enrolment.finished_at
    assert enrolment.history.count() == 3
    counts = journey_counts(journey)
    assert (counts.steps["pause"].exited, counts.steps["pause"].waiting) == (1, 0)
    assert counts.steps["pause"].reached == 1  # the exit row is not another run of the wait
    tips = counts.steps.get("tips")
    assert tips is None or (tips.exited, tips.reached, tips.waiting) == (0, 0, 0)
    assert counts.entered == counts.exited == 1
    assert counts.exit_reasons == [("erased", 1)]
    assert engine.advance_due() == 0


def test_an_enrolment_erased_the_day_it_began_ends_at_its_last_step_not_at_the_erasure(
    time_machine,
):
    """Closed at the start of the day would put its end before its beginning: it ends at its
    own last moment instead (its last step), still not the instant of the erasure."""
    time_machine.move_to(datetime(2026, 12, 7, 9, 0, tzinfo=UTC), tick=False)
    journey = welcome()
    ann = subscriber("Ann Example", make_list())
    do_enrol(journey, ann)
    time_machine.move_to(datetime(2026, 12, 7, 9, 30, tzinfo=UTC), tick=False)
    engine.advance_due()  # the first mail, at 09:30
    time_machine.move_to(datetime(2026, 12, 7, 10, 0, 7, 123456, tzinfo=UTC), tick=False)
    do_erase_contact(ann, actor=None)
    enrolment = Enrolment.objects.get()
    assert enrolment.finished_at == datetime(2026, 12, 7, 9, 30, tzinfo=UTC)
    history = list(enrolment.history.order_by("seq").values_list("kind", "ran_at"))
    assert history[-1] == ("exit", enrolment.finished_at)
    assert [at for _, at in history] == sorted(at for _, at in history)


def test_erasure_leaves_a_finished_enrolment_as_it_ended(time_machine):
    """Someone who completed a journey and is erased later still counts as completed."""
    time_machine.move_to(datetime(2026, 12, 7, 9, 0, tzinfo=UTC), tick=False)
    journey = welcome()
    ann = subscriber("Ann Example", make_list())
    do_enrol(journey, ann)
    engine.advance_due()
    time_machine.move_to(datetime(2026, 12, 10, 9, 0, tzinfo=UTC), tick=False)
    engine.advance_due()
    finished = Enrolment.objects.get().finished_at
    do_erase_contact(ann, actor=None)
    enrolment = Enrolment.objects.get()
    assert enrolment.contact_id is None
    assert (enrolment.state, enrolment.exit_reason) == ("completed", "")
    assert enrolment.finished_at == finished
    assert enrolment.history.count() == 4
    assert journey_counts(journey).completed == 1


def test_an_objection_takes_the_person_out_of_every_journey(django_capture_on_commit_callbacks):
    first, second = welcome(), welcome(name="Service", topic="", trigger="manual")
    ann = subscriber("Ann Example", make_list())
    do_enrol(first, ann)
    do_enrol(second, ann)
    with django_capture_on_commit_callbacks(execute=True):
        do_object_to_marketing(ann)
    assert set(Enrolment.objects.values_list("exit_reason", flat=True)) <= {
        "unsubscribed",
        "objected",
    }
    assert not Enrolment.objects.filter(state="active").exists()
