"""The steps that change a person or tell someone: branch, attributes, webhooks."""

from __future__ import annotations

from pathlib import Path

import pytest

import tidings.policy
from tests.journeys.helpers import make_list, subscriber, welcome
from tidings import signals
from tidings.audience.models import Contact
from tidings.journeys import engine
from tidings.journeys.actions import do_enrol
from tidings.journeys.models import Enrolment, JourneyVersion

pytestmark = pytest.mark.django_db

EXAMPLE = Path(tidings.policy.__file__).parent / "example.toml"


@pytest.fixture
def plan_policy(settings, tmp_path):
    """The example policy, whose newsletter purpose may also hold a "plan" attribute."""
    text = EXAMPLE.read_text()
    text = text.replace('preferences = ["subscriptions"', 'preferences = ["plan", "subscriptions"')
    text = text.replace(
        'optional = ["phone", "company", "job_title"] }\nsources = ["newsletter',
        'optional = ["phone", "company", "job_title", "plan"] }\nsources = ["newsletter',
    )
    path = tmp_path / "policy.toml"
    path.write_text(text)
    settings.TIDINGS_POLICY = str(path)
    yield


STEPS = [
    {"id": "tag", "kind": "set_attribute", "key": "plan", "value": "pro"},
    {
        "id": "which",
        "kind": "branch",
        "segment": 'attributes.plan = "pro"',
        "then": "pro",
        "else": "free",
    },
    {"id": "free", "kind": "send_email", "template": "Welcome", "subject": "Free", "next": "end"},
    {"id": "pro", "kind": "send_email", "template": "Welcome", "subject": "Pro"},
    {"id": "untag", "kind": "remove_attribute", "key": "plan"},
    {"id": "ping", "kind": "webhook", "event": "welcomed"},
    {"id": "end", "kind": "end"},
]


def test_attributes_are_set_and_removed_and_a_branch_follows_them(
    plan_policy, django_capture_on_commit_callbacks
):
    journey = welcome(steps=STEPS, goals=[])
    ann = subscriber("Ann Example", make_list())
    do_enrol(journey, ann)
    fired = []

    def receive(sender, **kwargs):
        fired.append(kwargs)

    signals.journey_webhook.connect(receive, dispatch_uid="test-journey-webhook")
    try:
        with django_capture_on_commit_callbacks(execute=True):
            engine.advance_due()
    finally:
        signals.journey_webhook.disconnect(dispatch_uid="test-journey-webhook")
    enrolment = Enrolment.objects.get()
    assert enrolment.state == "completed"
    taken = list(enrolment.history.values_list("step", "reason"))
    assert ("which", "then") in taken and ("free", "") not in taken
    assert "plan" not in Contact.objects.get(pk=ann.pk).attributes
    assert fired == [
        {
            "journey_id": journey.pk,
            "enrolment_id": enrolment.pk,
            "contact_id": ann.pk,
            "event": "welcomed",
            "signal": signals.journey_webhook,
        }
    ]


def test_an_attribute_the_policy_does_not_hold_parks_the_person_after_the_retries(time_machine):
    from datetime import UTC, datetime, timedelta

    time_machine.move_to(datetime(2026, 12, 7, 9, 0, tzinfo=UTC), tick=False)
    # Saved when the policy held "plan"; the example policy in force now does not.
    journey = welcome(steps=[{"id": "ping", "kind": "webhook", "event": "x"}], goals=[])
    JourneyVersion.objects.filter(journey=journey).update(steps=STEPS[:1])
    do_enrol(journey, subscriber("Ann Example", make_list()))
    for _ in range(engine.MAX_ATTEMPTS):
        engine.advance_due()
        time_machine.shift(timedelta(hours=1))
    enrolment = Enrolment.objects.get()
    assert enrolment.state == "parked"
    assert enrolment.error == 'the policy\'s newsletter purpose does not hold the attribute "plan"'
