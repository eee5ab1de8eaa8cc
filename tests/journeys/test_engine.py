from __future__ import annotations

from datetime import UTC, datetime, time, timedelta
from zoneinfo import ZoneInfo

import pytest

from tests.journeys.helpers import make_list, person, subscriber, welcome
from tidings.audience.actions import do_unsubscribe_all
from tidings.campaigns.models import OutgoingMessage, Template
from tidings.journeys import engine
from tidings.journeys.actions import do_enrol, do_pause, do_resume
from tidings.journeys.models import Enrolment, EnrolmentStep
from tidings.journeys.schedule import next_time_of_day

pytestmark = pytest.mark.django_db

START = datetime(2026, 12, 7, 9, 0, tzinfo=UTC)
WEEKDAYS = ["mon", "tue", "wed", "thu", "fri"]


def _journey_mail() -> list[OutgoingMessage]:
    return list(OutgoingMessage.objects.filter(kind__startswith="journey:").order_by("pk"))


def test_a_confirmed_subscriber_gets_step_one_now_and_step_two_after_the_wait(time_machine):
    time_machine.move_to(START, tick=False)
    journey = welcome()
    ann = subscriber("Ann Example", make_list())
    do_enrol(journey, ann)
    assert engine.advance_due() == 2  # the send, then the wait
    mail = _journey_mail()
    assert [m.subject for m in mail] == ["Welcome, Ann"]
    enrolment = Enrolment.objects.get()
    assert enrolment.step == "tips" and enrolment.next_run_at == START + timedelta(days=2)

    time_machine.move_to(START + timedelta(days=1), tick=False)
    assert engine.advance_due() == 0
    time_machine.move_to(START + timedelta(days=2, seconds=1), tick=False)
    assert engine.advance_due() == 2
    assert [m.subject for m in _journey_mail()] == ["Welcome, Ann", "Three tips"]
    enrolment.refresh_from_db()
    assert enrolment.state == "completed"
    outcomes = list(enrolment.history.values_list("step", "outcome"))
    assert outcomes == [
        ("hello", "sent"),
        ("pause", "waiting"),
        ("tips", "sent"),
        ("done", "completed"),
    ]


def test_journey_mail_carries_the_one_click_unsubscribe_and_list_headers():
    journey = welcome()
    ann = subscriber("Ann Example", make_list())
    do_enrol(journey, ann)
    engine.advance_due()
    headers = _journey_mail()[0].headers
    assert headers["List-Unsubscribe"].startswith("<http")
    assert headers["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
    assert headers["List-Id"].startswith(f"product news <journey-{journey.pk}.")


def test_a_send_step_rechecks_consent_when_it_runs(time_machine):
    time_machine.move_to(START, tick=False)
    journey = welcome()
    ann = subscriber("Ann Example", make_list())
    do_enrol(journey, ann)
    engine.advance_due()
    # Unsubscribed behind the signal's back (as an import of a withdrawal would): the step sees it.
    do_unsubscribe_all(ann, source="operator")
    Enrolment.objects.update(state="active")  # as if no exit had been taken
    time_machine.move_to(START + timedelta(days=3), tick=False)
    engine.advance_due()
    enrolment = Enrolment.objects.get()
    assert enrolment.state == "exited"
    assert enrolment.exit_reason == "address suppressed (unsubscribed)"
    assert len(_journey_mail()) == 1


def test_someone_without_consent_to_the_topic_leaves_at_the_first_send():
    journey = welcome()
    bob = person("Bob Example")  # a contact, on no list
    do_enrol(journey, bob)
    engine.advance_due()
    enrolment = Enrolment.objects.get()
    assert enrolment.state == "exited"
    assert enrolment.exit_reason == 'no consent to "product news" emails'
    assert _journey_mail() == []


def test_unsubscribing_takes_the_person_out_of_every_journey(django_capture_on_commit_callbacks):
    first = welcome()
    second = welcome(name="Tips")
    ann = subscriber("Ann Example", make_list())
    do_enrol(first, ann)
    do_enrol(second, ann)
    with django_capture_on_commit_callbacks(execute=True):
        do_unsubscribe_all(ann, source="preferences")
    states = set(Enrolment.objects.values_list("state", "exit_reason"))
    assert states == {("exited", "unsubscribed")}


def test_an_operator_removing_people_from_a_list_takes_them_out_of_every_journey(
    django_capture_on_commit_callbacks, django_user_model
):
    """As their own unsubscribe does: they leave at once (not at the next send step), with the
    exit in the journey's history; someone not removed stays in."""
    from tidings.audience.operator import do_remove_from_list

    first, second = welcome(), welcome(name="Tips")
    news = make_list()
    ann, bob, cy = (subscriber(n, news) for n in ("Ann Example", "Bob Example", "Cy Example"))
    for journey in (first, second):
        for someone in (ann, bob, cy):
            do_enrol(journey, someone)
    operator = django_user_model.objects.create(username="operator")
    with django_capture_on_commit_callbacks(execute=True):
        assert do_remove_from_list([ann.pk, bob.pk], news, actor=operator) == 2
    ended = Enrolment.objects.filter(contact__in=[ann, bob])
    assert set(ended.values_list("state", "exit_reason")) == {("exited", "unsubscribed")}
    assert all(e.finished_at for e in ended)
    assert EnrolmentStep.objects.filter(enrolment__in=ended, outcome="exited").count() == 4
    assert set(Enrolment.objects.filter(contact=cy).values_list("state", flat=True)) == {"active"}


def test_a_bulk_removal_from_a_list_costs_the_same_queries_for_ten_or_a_thousand_people(
    django_capture_on_commit_callbacks, django_user_model
):
    """What runs once the removal committed (journeys, webhooks) works on the batch: the
    number of queries does not grow with the number of people removed."""
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    from tidings.api.actions import do_create_webhook_endpoint
    from tidings.api.models import WebhookDelivery
    from tidings.audience.models import Contact, Subscription
    from tidings.audience.operator import do_remove_from_list

    do_create_webhook_endpoint(
        url="https://hooks.example.com/in", events=["contact.unsubscribed"], fields=(), actor=None
    )
    operator = django_user_model.objects.create(username="operator")
    journey = welcome()
    do_enrol(journey, subscriber("Ann Example", make_list("Other")))
    queries = []
    for size in (10, 1000):
        news = make_list(f"News {size}")
        people = Contact.objects.bulk_create(
            Contact(email=f"p{size}-{n}@example.com", name="Someone") for n in range(size)
        )
        Subscription.objects.bulk_create(
            Subscription(contact=c, mailing_list=news, status="confirmed") for c in people
        )
        with django_capture_on_commit_callbacks() as callbacks:
            assert do_remove_from_list([c.pk for c in people], news, actor=operator) == size
        with CaptureQueriesContext(connection) as ran:
            for callback in callbacks:
                callback()
        queries.append(len(ran))
    assert queries[0] == queries[1]
    assert WebhookDelivery.objects.filter(event="contact.unsubscribed").count() == 1010
    assert Enrolment.objects.get().state == "active"  # Ann was not removed


def test_a_paused_journey_holds_everyone_until_resumed():
    journey = welcome()
    do_enrol(journey, subscriber("Ann Example", make_list()))
    do_pause(journey, actor=None)
    assert engine.advance_due() == 0
    do_resume(journey, actor=None)
    assert engine.advance_due() == 2


def test_a_wait_until_time_missed_while_paused_is_waited_for_again_on_resume(
    settings, time_machine
):
    # "Wait until 09:00 on weekdays", paused over Friday 09:00 and resumed on Saturday at
    # 23:30: the mail went at 23:30 on a Saturday; it now waits for Monday 09:00.  A plain
    # wait that ended meanwhile goes on at once, as before.
    settings.TIME_ZONE = "Europe/London"
    london = ZoneInfo("Europe/London")
    thursday = datetime(2026, 12, 10, 12, 0, tzinfo=london)
    time_machine.move_to(thursday, tick=False)
    steps = [
        {"id": "morning", "kind": "wait_until", "time": "09:00", "weekdays": WEEKDAYS},
        {"id": "tips", "kind": "send_email", "template": "Welcome", "subject": "Tips"},
    ]
    journey = welcome(steps=steps, goals=[])
    plain = welcome(name="Plain", steps=[{"id": "pause", "kind": "wait", "duration": "1 day"},
                                         steps[1]], goals=[])  # fmt: skip
    ann = subscriber("Ann Example", make_list())
    do_enrol(journey, ann)
    do_enrol(plain, ann)
    engine.advance_due()
    assert Enrolment.objects.get(journey=journey).next_run_at == datetime(
        2026, 12, 11, 9, 0, tzinfo=london
    )
    do_pause(journey, actor=None)
    do_pause(plain, actor=None)
    saturday_night = datetime(2026, 12, 12, 23, 30, tzinfo=london)
    time_machine.move_to(saturday_night, tick=False)
    do_resume(journey, actor=None)
    do_resume(plain, actor=None)
    assert engine.advance_due() == 1  # the plain wait's mail only
    assert [m.subject for m in _journey_mail()] == ["Tips"]
    waiting = Enrolment.objects.get(journey=journey)
    assert (waiting.step, waiting.next_run_at) == (
        "tips",
        datetime(2026, 12, 14, 9, 0, tzinfo=london),
    )


def test_a_failing_step_retries_with_backoff_then_parks_with_the_error(time_machine):
    time_machine.move_to(START, tick=False)
    journey = welcome()
    do_enrol(journey, subscriber("Ann Example", make_list()))
    Template.objects.filter(name="Welcome").update(name="Renamed")
    now = START
    for attempt in range(1, engine.MAX_ATTEMPTS + 1):
        assert engine.advance_due() == 0  # the worker carries on
        enrolment = Enrolment.objects.get()
        assert enrolment.attempts == attempt
        if enrolment.state == "parked":
            break
        now = enrolment.next_run_at
        time_machine.move_to(now + timedelta(seconds=1), tick=False)
    assert enrolment.state == "parked"
    assert enrolment.error == 'the template "Welcome" no longer exists'
    assert enrolment.history.get().outcome == "parked"


def test_a_worker_killed_between_claim_and_record_neither_loses_nor_repeats_the_step(
    time_machine,
):
    time_machine.move_to(START, tick=False)
    journey = welcome()
    do_enrol(journey, subscriber("Ann Example", make_list()))
    # Worker A claims and dies before running anything (its transaction never committed).
    assert engine.claim_due("dead-worker", 10, START) == [(Enrolment.objects.get().pk, 0)]
    # Worker B finds nothing while the lease holds...
    assert engine.advance_due(worker="b") == 0
    # ...and everything once it lapses; the step runs once.
    time_machine.move_to(START + timedelta(seconds=engine.LEASE_SECONDS + 1), tick=False)
    assert engine.advance_due(worker="b") == 2
    assert len(_journey_mail()) == 1
    # The dead worker's late run of its stale claim changes nothing.
    enrolment = Enrolment.objects.get()
    assert engine.run_one(enrolment.pk, 0, "dead-worker", START) == 0
    assert len(_journey_mail()) == 1
    assert EnrolmentStep.objects.filter(outcome="sent").count() == 1


def test_a_step_recorded_twice_is_rolled_back_with_its_mail():
    """Two workers that both believe they hold the row (a lapsed lease): the history key
    (enrolment, seq) lets only one transaction commit, and the loser's mail goes with it."""
    journey = welcome()
    enrolment = do_enrol(journey, subscriber("Ann Example", make_list()))
    EnrolmentStep.objects.create(
        enrolment=enrolment, seq=0, step="hello", kind="send_email", outcome="sent"
    )
    Enrolment.objects.update(leased_by="w")
    assert engine.run_one(enrolment.pk, 0, "w", START) == 0
    assert _journey_mail() == []


def test_wait_until_nine_is_nine_across_the_clock_change():
    zone = ZoneInfo("Europe/London")
    # Saturday 28 March 2026, 10:00 GMT; the clocks go forward on Sunday 29 March at 01:00.
    now = datetime(2026, 3, 28, 10, 0, tzinfo=zone)
    first = next_time_of_day(now, time(9), zone=zone)
    assert first.astimezone(zone) == datetime(2026, 3, 29, 9, 0, tzinfo=zone)
    assert first == datetime(2026, 3, 29, 8, 0, tzinfo=UTC)  # 09:00 BST
    # Autumn: 25 October 2026, clocks back at 02:00; waiting until 01:30 happens once.
    autumn = datetime(2026, 10, 24, 23, 0, tzinfo=UTC)
    half_past_one = next_time_of_day(autumn, time(1, 30), zone=zone)
    assert half_past_one == datetime(2026, 10, 25, 0, 30, tzinfo=UTC)  # the first 01:30 (BST)
    again = next_time_of_day(half_past_one, time(1, 30), zone=zone)
    assert again == datetime(2026, 10, 26, 1, 30, tzinfo=UTC)  # the next day, not an hour later
    # Weekdays: from Friday evening to Monday.
    friday = datetime(2026, 12, 4, 18, 0, tzinfo=zone)
    monday = next_time_of_day(friday, time(9), ["mon"], zone=zone)
    assert monday == datetime(2026, 12, 7, 9, 0, tzinfo=zone)


def test_a_wait_until_step_runs_at_nine_company_time(settings, time_machine):
    settings.TIME_ZONE = "Europe/London"
    time_machine.move_to(datetime(2026, 3, 28, 10, 0, tzinfo=UTC), tick=False)
    steps = [
        {"id": "morning", "kind": "wait_until", "time": "09:00"},
        {"id": "hello", "kind": "send_email", "template": "Welcome"},
    ]
    journey = welcome(steps=steps)
    do_enrol(journey, subscriber("Ann Example", make_list()))
    engine.advance_due()
    assert Enrolment.objects.get().next_run_at == datetime(2026, 3, 29, 8, 0, tzinfo=UTC)


def _waiting_journey():
    steps = [
        {
            "id": "ask",
            "kind": "wait_event",
            "event": "demo_booked",
            "timeout": "3 days",
            "then": "thanks",
            "else": "nudge",
        },
        {
            "id": "nudge",
            "kind": "send_email",
            "template": "Welcome",
            "subject": "Still keen?",
            "next": "done",
        },
        {"id": "thanks", "kind": "send_email", "template": "Welcome", "subject": "See you soon"},
        {"id": "done", "kind": "end"},
    ]
    return welcome(steps=steps, goals=[])


def test_wait_for_an_event_goes_on_when_it_comes(time_machine):
    from tidings.journeys.triggers import do_record_event

    time_machine.move_to(START, tick=False)
    journey = _waiting_journey()
    ann = subscriber("Ann Example", make_list())
    do_enrol(journey, ann)
    engine.advance_due()
    assert Enrolment.objects.get().waiting_for == "demo_booked"
    time_machine.move_to(START + timedelta(days=1), tick=False)
    do_record_event(ann.pk, "demo_booked")
    engine.advance_due()
    assert [m.subject for m in _journey_mail()] == ["See you soon"]
    time_machine.move_to(START + timedelta(days=4), tick=False)
    engine.advance_due()
    assert [m.subject for m in _journey_mail()] == ["See you soon"]
    assert Enrolment.objects.get().state == "completed"


def test_an_event_that_cannot_be_recorded_leaves_the_person_waiting(time_machine, monkeypatch):
    """Moving a waiting person on and writing why are one transaction: if the history row
    cannot be written, the person still waits (and the event can move them later)."""
    from tidings.journeys.triggers import do_record_event

    time_machine.move_to(START, tick=False)
    journey = _waiting_journey()
    ann = subscriber("Ann Example", make_list())
    do_enrol(journey, ann)
    engine.advance_due()
    real_create = EnrolmentStep.objects.create

    def broken_create(**fields):
        raise RuntimeError("the disk is full")

    monkeypatch.setattr(EnrolmentStep.objects, "create", broken_create)
    with pytest.raises(RuntimeError):
        do_record_event(ann.pk, "demo_booked")
    enrolment = Enrolment.objects.get()
    assert (enrolment.step, enrolment.waiting_for) == ("ask", "demo_booked")

    monkeypatch.setattr(EnrolmentStep.objects, "create", real_create)
    do_record_event(ann.pk, "demo_booked")
    engine.advance_due()
    assert [m.subject for m in _journey_mail()] == ["See you soon"]


def test_wait_for_an_event_takes_the_other_way_at_the_timeout(time_machine):
    time_machine.move_to(START, tick=False)
    journey = _waiting_journey()
    do_enrol(journey, subscriber("Ann Example", make_list()))
    engine.advance_due()
    time_machine.move_to(START + timedelta(days=3, seconds=1), tick=False)
    engine.advance_due()
    assert [m.subject for m in _journey_mail()] == ["Still keen?"]
    enrolment = Enrolment.objects.get()
    assert (enrolment.state, enrolment.waiting_for) == ("completed", "")
    outcomes = list(enrolment.history.values_list("step", "reason"))
    assert outcomes[:2] == [("ask", ""), ("ask", "timed out")]
