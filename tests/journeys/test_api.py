from __future__ import annotations

import pytest

from tests.api.helpers import Api, token_for
from tests.journeys.helpers import make_list, person, subscriber, welcome
from tidings.journeys import engine
from tidings.journeys.actions import do_enrol
from tidings.journeys.models import Enrolment, Journey

pytestmark = pytest.mark.django_db


@pytest.fixture
def api(settings) -> Api:
    settings.TIDINGS_API_RATE_LIMIT = 0
    return Api(token_for("owner"))


def _onboarding() -> Journey:
    steps = [
        {"id": "hello", "kind": "send_email", "template": "Welcome"},
        {"id": "end", "kind": "end"},
    ]
    return welcome(
        name="Onboarding",
        topic="",
        trigger="event",
        trigger_params={"name": "trial_started"},
        steps=steps,
        goals=[],
    )


def test_an_event_starts_a_journey_and_answers_202(api):
    _onboarding()
    ann = person("Ann Example", email="ann@example.com")
    response = api.post("/events", {"contact": "ann@example.com", "name": "trial_started"})
    assert response.status_code == 202
    assert Enrolment.objects.get().contact == ann
    engine.advance_due()
    assert Enrolment.objects.get().state == "completed"  # service mail: no marketing consent


def test_an_event_finds_its_person_whatever_the_case_of_the_address(api):
    # Addresses keep the case of their local part as typed ("Ann.Example@example.com"); the
    # application posting events usually lower-cases it.  One mailbox, one person: the event
    # must reach them, as a sign-up or an import with that spelling would.
    _onboarding()
    ann = person("Ann Example", email="Ann.Example@example.com")
    response = api.post("/events", {"contact": "ann.example@EXAMPLE.com", "name": "trial_started"})
    assert response.status_code == 202
    assert Enrolment.objects.get().contact == ann


def test_an_event_for_an_unknown_address_is_accepted_and_dropped(api):
    _onboarding()
    for contact in ("nobody@example.com", "not an address", 999999):
        response = api.post("/events", {"contact": contact, "name": "trial_started"})
        assert response.status_code == 202
        assert response.json() == {"accepted": True}
    assert not Enrolment.objects.exists()


def test_an_event_sent_twice_with_one_key_counts_once(api):
    journey = _onboarding()
    journey.entry = "again_after"
    journey.entry_days = 0
    journey.save()
    ann = person("Ann Example", email="ann@example.com")
    body = {"contact": ann.pk, "name": "trial_started", "idempotency_key": "k-1"}
    api.post("/events", body)
    Enrolment.objects.update(state="exited")
    assert api.post("/events", body).status_code == 202
    assert Enrolment.objects.count() == 1


def test_a_goal_event_converts(api):
    journey = welcome()
    ann = subscriber("Ann Example", make_list(), email="ann@example.com")
    do_enrol(journey, ann)
    api.post("/events", {"contact": "ann@example.com", "name": "demo_booked"})
    assert Enrolment.objects.get().state == "converted"


def test_the_api_lists_journeys_with_their_figures_and_enrols_and_removes(api):
    journey = welcome()
    ann = subscriber("Ann Example", make_list())
    response = api.post(f"/journeys/{journey.pk}/enrolments", {"contact_id": ann.pk})
    assert response.status_code == 201
    engine.advance_due()
    [item] = api.get("/journeys").json()["items"]
    assert item["stats"]["entered"] == 1 and item["stats"]["sent"] == 1
    again = api.post(f"/journeys/{journey.pk}/enrolments", {"contact_id": ann.pk})
    assert again.status_code == 409
    removed = api._call("delete", f"/journeys/{journey.pk}/enrolments/{ann.pk}")
    assert removed.json() == {"removed": 1}


def test_idempotency_keys_are_forgotten_after_a_week(api, time_machine):
    from datetime import timedelta

    from django.utils import timezone

    from tidings.journeys.models import JourneyEvent
    from tidings.journeys.triggers import prune_event_keys

    api.post("/events", {"contact": "x@example.com", "name": "n", "idempotency_key": "k"})
    assert prune_event_keys() == 0
    time_machine.move_to(timezone.now() + timedelta(days=8))
    assert prune_event_keys() == 1
    assert not JourneyEvent.objects.exists()


def test_entering_leaving_and_converting_reach_the_outgoing_webhooks(
    django_capture_on_commit_callbacks,
):
    from tidings.api.models import WebhookDelivery, WebhookEndpoint
    from tidings.journeys.actions import do_exit_contact, do_record_goal

    WebhookEndpoint.objects.create(
        url="https://crm.example.co.uk/hooks",
        description="Our CRM",
        events=["journey.entered", "journey.exited", "journey.converted"],
        secret="whsec_" + "A" * 32,
    )
    journey = welcome()
    ann, bob = person("Ann Example"), person("Bob Example")
    with django_capture_on_commit_callbacks(execute=True):
        do_enrol(journey, ann)
        do_enrol(journey, bob)
        do_exit_contact(ann.pk, "removed by an operator")
        do_record_goal(bob.pk, "demo_booked")
    events = sorted(WebhookDelivery.objects.values_list("event", flat=True))
    assert events == ["journey.converted", "journey.entered", "journey.entered", "journey.exited"]
    exited = WebhookDelivery.objects.get(event="journey.exited")
    assert exited.data["reason"] == "removed by an operator"
    assert "contact_id" not in exited.data


def test_an_event_for_a_contact_that_is_no_number_nor_address_is_dropped_not_a_500(api):
    """Digits other than 0-9 ("²", "٣") and ids past any row's are unknown people: 202."""
    _onboarding()
    person("Ann Example", email="ann@example.com")
    for contact in ("²", "٣", "9" * 300, "-1", " 1"):
        response = api.post("/events", {"contact": contact, "name": "trial_started"})
        assert response.status_code == 202, contact
    assert not Enrolment.objects.exists()


def test_an_event_with_huge_properties_is_refused_with_a_problem(api):
    _onboarding()
    ann = person("Ann Example", email="ann@example.com")
    huge = {"contact": ann.pk, "name": "trial_started", "properties": {"a": "x" * 100_000}}
    response = api.post("/events", huge)
    assert response.status_code == 422
    assert response["Content-Type"] == "application/problem+json"
    [error] = response.json()["errors"]
    assert error["field"] == "properties" and "at most 16 KB" in error["message"]
    many = {
        "contact": ann.pk,
        "name": "trial_started",
        "properties": {str(i): i for i in range(5000)},
    }
    assert api.post("/events", many).status_code == 422
    assert not Enrolment.objects.exists()
    fine = {"contact": ann.pk, "name": "trial_started", "properties": {"plan": "pro", "seats": 5}}
    assert api.post("/events", fine).status_code == 202
    assert Enrolment.objects.count() == 1


def test_an_enrolment_is_read_and_ended_only_while_its_etag_is_current(api):
    journey = welcome()
    ann = subscriber("Ann Example", make_list())
    api.post(f"/journeys/{journey.pk}/enrolments", {"contact_id": ann.pk})
    path = f"/api/journeys/{journey.pk}/enrolments/{ann.pk}"
    read = api.client.get(path, headers=api.headers)
    assert read.json()["state"] == "active"

    stale = api.client.delete(path, headers={**api.headers, "If-Match": '"other"'})
    assert stale.status_code == 412
    assert Enrolment.objects.get().state == "active"

    done = api.client.delete(path, headers={**api.headers, "If-Match": read["ETag"]})
    assert done.json() == {"removed": 1}
    assert api.client.get(path, headers=api.headers)["ETag"] != read["ETag"]
