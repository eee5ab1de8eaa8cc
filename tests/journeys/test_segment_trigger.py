"""The trigger "a contact starts matching a saved segment", checked incrementally."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from tests.journeys.helpers import make_list, person, subscriber, welcome
from tidings.audience.models import Contact, Segment, Subscription
from tidings.journeys import segments
from tidings.journeys.actions import activation_problems
from tidings.journeys.models import Enrolment, Journey, SegmentMember, SegmentWatch
from tidings.journeys.segments import check_journey, check_segments

pytestmark = pytest.mark.django_db

NOTIFY = [{"id": "tell", "kind": "webhook", "event": "matched"}]


def pro_journey(query: str = 'company = "Pro Ltd"', **changes) -> Journey:
    segment = Segment.objects.create(name="Pro customers", query=query)
    values = {
        "name": "Pro welcome",
        "topic": "",
        "trigger": "segment_matched",
        "trigger_params": {"segment": segment.pk},
        "steps": NOTIFY,
        "goals": [],
    }
    values.update(changes)
    return welcome(**values)


def enrolled(journey: Journey) -> set[int]:
    return set(Enrolment.objects.filter(journey=journey).values_list("contact_id", flat=True))


def set_company(contact: Contact, company: str, at) -> None:
    Contact.objects.filter(pk=contact.pk).update(company=company, updated_at=at)


def test_people_who_already_match_are_the_starting_set_and_only_newcomers_are_enrolled():
    before = person("Ann Before", company="Pro Ltd")
    journey = pro_journey()
    now = timezone.now()

    assert check_segments(now) == 0  # the first check takes the starting set
    assert enrolled(journey) == set()
    assert set(SegmentMember.objects.values_list("contact_id", flat=True)) == {before.pk}

    later = person("Bob Later")
    set_company(later, "Pro Ltd", now + timedelta(minutes=1))
    assert check_segments(now + timedelta(minutes=2)) == 1
    assert enrolled(journey) == {later.pk}
    assert check_segments(now + timedelta(minutes=3)) == 0  # still matching: not again


def test_the_incremental_check_evaluates_only_people_changed_since_the_watermark():
    journey = pro_journey()
    now = timezone.now()
    check_segments(now)
    quiet = person("Quiet One")
    # A match that no changed row shows (written bypassing updated_at) waits for the full diff.
    Contact.objects.filter(pk=quiet.pk).update(
        company="Pro Ltd", updated_at=now - timedelta(days=1)
    )
    assert check_segments(now + timedelta(minutes=1)) == 0
    assert enrolled(journey) == set()
    assert check_segments(now + segments.FULL_EVERY + timedelta(minutes=1)) == 1
    assert enrolled(journey) == {quiet.pk}


def test_a_new_subscription_is_a_change_the_incremental_check_sees():
    news = make_list()
    journey = pro_journey('list:"Product news"', name="News readers")
    now = timezone.now()
    check_segments(now)
    ann = person("Ann Example")
    Contact.objects.filter(pk=ann.pk).update(updated_at=now - timedelta(days=1))
    subscriber_row = subscriber("Ann Example", news, email="ann-sub@example.com")
    Contact.objects.filter(pk=subscriber_row.pk).update(updated_at=now - timedelta(days=1))
    Subscription.objects.filter(contact=subscriber_row).update(updated_at=now)

    assert check_segments(now + timedelta(minutes=1)) == 1
    assert enrolled(journey) == {subscriber_row.pk}


def test_someone_who_stops_matching_leaves_the_set_and_may_start_matching_again():
    journey = pro_journey(entry=Journey.Entry.ONE_AT_A_TIME)
    now = timezone.now()
    check_segments(now)
    ann = person("Ann Example")
    set_company(ann, "Pro Ltd", now + timedelta(minutes=1))
    assert check_segments(now + timedelta(minutes=2)) == 1
    Enrolment.objects.filter(journey=journey).update(
        state=Enrolment.State.COMPLETED, next_run_at=None
    )

    set_company(ann, "Basic Ltd", now + timedelta(minutes=3))
    assert check_segments(now + timedelta(minutes=4)) == 0
    assert not SegmentMember.objects.filter(contact=ann).exists()

    set_company(ann, "Pro Ltd", now + timedelta(minutes=5))
    assert check_segments(now + timedelta(minutes=6)) == 1
    assert Enrolment.objects.filter(journey=journey, contact=ann).count() == 2


def test_an_edited_segment_takes_a_new_starting_set_by_a_full_diff():
    journey = pro_journey()
    now = timezone.now()
    check_segments(now)
    ann = person("Ann Example", company="Initech")
    Contact.objects.filter(pk=ann.pk).update(updated_at=now - timedelta(days=1))
    Segment.objects.filter(pk=journey.trigger_params["segment"]).update(query='company = "Initech"')

    assert check_segments(now + timedelta(minutes=1)) == 1  # a full diff: Ann newly matches
    watch = SegmentWatch.objects.get(journey=journey)
    assert watch.query == 'company = "Initech"' and watch.full_at == now + timedelta(minutes=1)


def test_the_incremental_check_does_not_grow_with_the_people_who_did_not_change():
    """The queries of an incremental check are the same few whatever the number of people (the
    work is in the database, by the updated_at indexes)."""
    journey = pro_journey()
    now = timezone.now()
    check_journey(journey, now)
    with CaptureQueriesContext(connection) as few:
        check_journey(journey, now + timedelta(minutes=1))
    for i in range(30):
        person(f"Person {i}", company="Pro Ltd")
    Contact.objects.update(updated_at=now - timedelta(days=1))
    check_journey(journey, now + timedelta(hours=2))  # a full diff: all 30 join the set
    with CaptureQueriesContext(connection) as many:
        check_journey(journey, now + timedelta(hours=2, minutes=1))
    assert len(many) == len(few)
    assert enrolled(journey) and len(enrolled(journey)) == 30


def test_a_marketing_journey_may_start_from_a_segment_that_requires_its_topic():
    make_list()
    needs = pro_journey(
        'list:"Product news" and company = "Pro Ltd"',
        name="Pro news",
        topic="product news",
        steps=[{"id": "hello", "kind": "send_email", "template": "Welcome"}],
        activate=False,
    )
    assert activation_problems(needs) == []
    loose = Segment.objects.create(name="Anyone at Pro", query='company = "Pro Ltd"')
    needs.trigger_params = {"segment": loose.pk}
    needs.save()
    assert [p.field for p in activation_problems(needs)] == ["trigger"]


def test_a_segment_trigger_needs_a_saved_segment():
    journey = pro_journey(activate=False)
    journey.trigger_params = {"segment": 999999}
    journey.save()
    assert [p.field for p in activation_problems(journey)] == ["trigger_params.segment"]


def test_the_check_runs_from_the_workers_scheduler():
    from tidings.lib.periodic import REGISTRY

    job = REGISTRY["journeys.segments"]
    assert job.task == "tidings.journeys.segments.check_segments_task"
    assert job.every == timedelta(minutes=1)
