from __future__ import annotations

from datetime import UTC, datetime

import pytest

from tests.journeys.helpers import make_list, subscriber, welcome
from tidings.audience.sources import source
from tidings.journeys import engine
from tidings.journeys.actions import do_enrol
from tidings.journeys.models import Enrolment
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


def test_erasure_leaves_the_enrolment_as_an_anonymous_count():
    journey = welcome()
    ann = subscriber("Ann Example", make_list())
    do_enrol(journey, ann)
    engine.advance_due()
    do_erase_contact(ann, actor=None)
    enrolment = Enrolment.objects.get()
    assert enrolment.contact_id is None
    assert (enrolment.state, enrolment.exit_reason) == ("exited", "erased")
    assert enrolment.history.count() == 2
    assert engine.advance_due() == 0


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
