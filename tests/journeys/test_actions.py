from __future__ import annotations

import pytest
from django.utils import timezone

from tests.journeys.helpers import make_list, person, spec, subscriber, welcome
from tidings.journeys.actions import (
    InvalidTransition,
    JourneyNotReady,
    NotEnrolled,
    do_activate,
    do_archive,
    do_enrol,
    do_exit_contact,
    do_pause,
    do_record_goal,
    do_resume,
    do_update_journey,
)
from tidings.journeys.models import Enrolment, Journey
from tidings.lib.models import AuditEntry

pytestmark = pytest.mark.django_db


def test_a_journey_starts_as_a_draft_and_goes_through_its_states():
    journey = welcome(activate=False)
    assert journey.status == "draft" and journey.version == 1
    do_activate(journey, actor=None)
    do_pause(journey, actor=None)
    do_resume(journey, actor=None)
    assert Journey.objects.get().status == "active"
    do_archive(journey, actor=None)
    with pytest.raises(InvalidTransition, match="archived cannot be resumed"):
        do_resume(journey, actor=None)
    actions = list(AuditEntry.objects.values_list("action", flat=True))
    assert "journey.activated" in actions and "journey.archived" in actions


def test_a_stale_copy_cannot_win_a_race():
    journey = welcome()
    stale = Journey.objects.get(pk=journey.pk)
    do_pause(journey, actor=None)
    with pytest.raises(InvalidTransition):
        do_pause(stale, actor=None)


def test_an_enquiry_trigger_with_a_marketing_send_cannot_be_activated():
    journey = welcome(activate=False, trigger=Journey.Trigger.ENQUIRY)
    with pytest.raises(JourneyNotReady) as caught:
        do_activate(journey, actor=None)
    message = str(caught.value)
    assert "Sending the newsletters you asked for" in message
    assert "lawful basis is consent" in message
    assert "enquiry was created" in message


def test_a_service_journey_may_start_from_an_enquiry():
    journey = welcome(activate=False, trigger=Journey.Trigger.ENQUIRY, topic="")
    do_activate(journey, actor=None)
    assert journey.status == "active"


def test_bad_steps_are_refused_with_their_key_paths():
    with pytest.raises(JourneyNotReady) as caught:
        welcome(
            steps=[
                {"id": "a", "kind": "send_email", "template": "Nope"},
                {"id": "b", "kind": "teleport"},
                {"id": "c", "kind": "branch", "segment": "name:x", "then": "a", "else": "zz"},
            ]
        )
    text = str(caught.value)
    assert 'steps[0].template: no template is called "Nope"' in text
    assert "steps[1].kind: unknown step 'teleport'" in text


def test_a_loop_without_a_wait_is_refused():
    steps = [
        {"id": "a", "kind": "webhook", "event": "pong"},
        {"id": "b", "kind": "webhook", "event": "ping", "next": "a"},
    ]
    with pytest.raises(JourneyNotReady, match="never waits"):
        welcome(steps=steps)
    ok = [*steps[:1], {"id": "w", "kind": "wait", "duration": "1 day"}, {**steps[1]}]
    welcome(steps=ok, name="Loop with a wait")


def test_editing_steps_makes_a_new_version_and_people_keep_theirs():
    journey = welcome()
    ann = person("Ann Example")
    first = do_enrol(journey, ann)
    new_steps = [{"id": "only", "kind": "end"}]
    do_update_journey(journey, spec(steps=new_steps), actor=None)
    journey.refresh_from_db()
    assert journey.version == 2
    first.refresh_from_db()
    assert first.version.number == 1


def test_entry_rules():
    once = welcome()
    ann = person("Ann Example")
    do_enrol(once, ann)
    with pytest.raises(NotEnrolled, match="already in"):
        do_enrol(once, ann)
    do_exit_contact(ann.pk, "removed by an operator")
    with pytest.raises(NotEnrolled, match="once per person"):
        do_enrol(once, ann)
    again = welcome(name="Again", entry=Journey.Entry.AGAIN_AFTER, entry_days=30)
    do_enrol(again, ann)
    do_exit_contact(ann.pk, "removed by an operator", journey=again)
    with pytest.raises(NotEnrolled, match="less than 30 days"):
        do_enrol(again, ann)


def test_nobody_enters_a_paused_journey():
    journey = welcome()
    do_pause(journey, actor=None)
    with pytest.raises(NotEnrolled, match="paused"):
        do_enrol(journey, person("Ann Example"))


def test_a_goal_converts_the_enrolment():
    journey = welcome()
    ann = person("Ann Example")
    do_enrol(journey, ann)
    assert do_record_goal(ann.pk, "demo_booked") == 1
    enrolment = Enrolment.objects.get()
    assert enrolment.state == "converted" and enrolment.exit_reason == "goal: booked a demo"


def test_a_goal_reached_skips_the_journeys_mail_still_waiting_in_the_queue():
    from tidings.campaigns.models import OutgoingMessage
    from tidings.journeys.engine import advance_due

    journey = welcome()
    ann = subscriber("Ann Example", make_list())
    do_enrol(journey, ann)
    advance_due()  # the welcome mail is queued (behind a rate limit, say), not yet sent
    [queued] = OutgoingMessage.objects.filter(kind=f"journey:{journey.pk}")
    assert queued.status == "queued"
    do_record_goal(ann.pk, "demo_booked")
    queued.refresh_from_db()
    assert queued.status == "skipped" and queued.error.startswith("reached the journey's goal")
    assert queued.html == "" and queued.subject == ""


def test_confirming_a_list_of_the_topic_starts_the_welcome_series(
    django_capture_on_commit_callbacks,
):
    welcome()
    news = make_list()
    with django_capture_on_commit_callbacks(execute=True):
        ann = subscriber("Ann Example", news)
    assert Enrolment.objects.get().contact == ann
    other = make_list("Events", topic="events and webinars")
    with django_capture_on_commit_callbacks(execute=True):
        subscriber("Bob Example", other)
    assert Enrolment.objects.count() == 1


def test_the_operator_moves_people_to_the_new_version_where_their_step_still_exists():
    from tidings.journeys.actions import do_move_to_current_version
    from tidings.journeys.engine import advance_due

    journey = welcome()
    ann, bob = person("Ann Example"), person("Bob Example")
    do_enrol(journey, ann)
    do_enrol(journey, bob)
    Enrolment.objects.filter(contact=bob).update(step="gone-later")
    steps = [{"id": "hello", "kind": "end"}]
    do_update_journey(journey, spec(steps=steps), actor=None)
    assert do_move_to_current_version(journey, actor=None) == 1
    assert Enrolment.objects.get(contact=ann).version.number == 2
    assert Enrolment.objects.get(contact=bob).version.number == 1
    advance_due()
    assert Enrolment.objects.get(contact=ann).state == "completed"


def test_parked_people_try_again_when_the_operator_says_so():
    from tidings.journeys.actions import do_retry_parked

    journey = welcome()
    do_enrol(journey, person("Ann Example"))
    Enrolment.objects.update(state="parked", attempts=5, error="the template broke")
    assert do_retry_parked(journey, actor=None) == 1
    enrolment = Enrolment.objects.get()
    assert (enrolment.state, enrolment.attempts, enrolment.error) == ("active", 0, "")


WAIT_FOR_SIGNUP = [
    {"id": "hello", "kind": "send_email", "template": "Welcome", "subject": "Hi"},
    {"id": "w", "kind": "wait_event", "event": "signup", "timeout": "3 days"}
    | {"then": "yes", "else": "no"},
    {"id": "yes", "kind": "send_email", "template": "Welcome", "subject": "Signed up"},
    {"id": "no", "kind": "end"},
]


def test_people_moved_while_waiting_for_an_event_wait_for_what_the_new_step_says():
    from tidings.journeys.actions import do_move_to_current_version
    from tidings.journeys.engine import advance_due
    from tidings.journeys.triggers import do_record_event

    journey = welcome(steps=WAIT_FOR_SIGNUP, goals=[])
    ann = subscriber("Ann Example", make_list())
    bob = subscriber("Bob Example", make_list("Second", topic="product news"))
    do_enrol(journey, ann)
    do_enrol(journey, bob)
    advance_due()
    assert set(Enrolment.objects.values_list("waiting_for", flat=True)) == {"signup"}
    # Version 2: "w" now waits for another event.
    renamed = [dict(step) for step in WAIT_FOR_SIGNUP]
    renamed[1]["event"] = "registered"
    do_update_journey(journey, spec(steps=renamed, goals=[]), actor=None)
    assert do_move_to_current_version(journey, actor=None) == 2
    assert do_record_event(ann.pk, "signup")  # the old event moves nobody on any more
    assert Enrolment.objects.get(contact=ann).step == "w"
    do_record_event(ann.pk, "registered")
    assert Enrolment.objects.get(contact=ann).step == "yes"
    # Version 3: "w" is a send step.  An event for someone still armed for it changes nothing
    # (it raised KeyError 'then': a 500 from POST /api/events); moved, they go on to it now.
    sent = [dict(step) for step in renamed]
    sent[1] = {"id": "w", "kind": "send_email", "template": "Welcome", "subject": "Changed"}
    do_update_journey(journey, spec(steps=sent, goals=[]), actor=None)
    Enrolment.objects.filter(contact=bob).update(version=journey.versions.get(number=3))
    assert do_record_event(bob.pk, "registered")  # armed by v2, at a step that no longer waits
    Enrolment.objects.filter(contact=bob).update(version=journey.versions.get(number=2))
    assert do_move_to_current_version(journey, actor=None) == 2
    bob_in = Enrolment.objects.get(contact=bob)
    assert (bob_in.step, bob_in.waiting_for) == ("w", "")
    assert bob_in.next_run_at <= timezone.now()
    advance_due()
    assert Enrolment.objects.get(contact=bob).history.filter(step="w", outcome="sent").exists()
