from __future__ import annotations

from datetime import date, timedelta

import pytest

from tests.journeys.helpers import person, welcome
from tidings.journeys.models import Enrolment
from tidings.journeys.triggers import enrol_by_date

pytestmark = pytest.mark.django_db


def test_a_renewal_journey_starts_thirty_days_before_the_contract_ends():
    from tidings.crm.models import Contract, Organisation, SupportContact

    steps = [
        {
            "id": "tell",
            "kind": "notify_operator",
            "to": "sales@example.co.uk",
            "subject": "Renewal due",
        }
    ]
    welcome(
        name="Renewal",
        topic="",
        trigger="date",
        trigger_params={"field": "contract_end", "days": -30},
        steps=steps,
        goals=[],
    )
    acme = Organisation.objects.create(name="Acme")
    Contract.objects.create(organisation=acme, start=date(2025, 1, 1), end=date(2026, 12, 31))
    ann = person("Ann Example")
    SupportContact.objects.create(contact=ann, organisation=acme)
    left = person("Lee Left")
    SupportContact.objects.create(contact=left, organisation=acme, left_employer=date(2026, 1, 1))
    assert enrol_by_date(date(2026, 12, 31) - timedelta(days=31)) == 0
    assert enrol_by_date(date(2026, 12, 1)) == 1
    assert Enrolment.objects.get().contact == ann
    assert enrol_by_date(date(2026, 12, 1)) == 0  # once ever


def test_a_notify_step_emails_the_operator_a_link_not_the_person(
    django_capture_on_commit_callbacks, mailoutbox
):
    steps = [
        {
            "id": "tell",
            "kind": "notify_operator",
            "to": "sales@example.co.uk",
            "subject": "Call them",
        }
    ]
    journey = welcome(name="Hand-over", topic="", trigger="manual", steps=steps, goals=[])
    from tidings.journeys import engine
    from tidings.journeys.actions import do_enrol

    do_enrol(journey, person("Ann Example", email="ann@example.com"))
    with django_capture_on_commit_callbacks(execute=True):
        engine.advance_due()
    [mail] = mailoutbox
    assert mail.to == ["sales@example.co.uk"] and mail.subject == "Call them"
    assert f"/campaigns/journeys/{journey.pk}/" in mail.body
    assert "ann@example.com" not in mail.body


def test_an_enquiry_starts_a_service_journey(django_capture_on_commit_callbacks):
    from tidings.crm.actions import do_receive_enquiry

    steps = [
        {
            "id": "tell",
            "kind": "notify_operator",
            "to": "sales@example.co.uk",
            "subject": "New lead",
        }
    ]
    welcome(name="Leads", topic="", trigger="enquiry_created", steps=steps, goals=[])
    with django_capture_on_commit_callbacks(execute=True):
        do_receive_enquiry(
            {"name": "Ann Example", "email": "ann@example.com"}, channel="web form", message="Hi"
        )
    assert Enrolment.objects.get().contact.email == "ann@example.com"


def test_a_hard_bounce_or_a_complaint_takes_the_person_out(django_capture_on_commit_callbacks):
    from tidings import signals

    journey = welcome()
    from tidings.journeys.actions import do_enrol

    ann, bob = person("Ann Example"), person("Bob Example")
    do_enrol(journey, ann)
    do_enrol(journey, bob)
    signals.delivery_bounced.send(sender=None, contact_id=ann.pk, delivery_id=None, hard=False)
    assert Enrolment.objects.filter(state="active").count() == 2  # a soft bounce: stays
    signals.delivery_bounced.send(sender=None, contact_id=ann.pk, delivery_id=None, hard=True)
    signals.delivery_complained.send(sender=None, contact_id=bob.pk, delivery_id=None)
    reasons = dict(Enrolment.objects.values_list("contact_id", "exit_reason"))
    assert reasons == {ann.pk: "hard bounce", bob.pk: "complaint"}


def test_a_booked_demo_converts_and_starts_journeys():
    from tidings import signals

    journey = welcome()  # goal: booked a demo (event demo_booked)
    steps = [{"id": "tell", "kind": "notify_operator", "to": "s@example.co.uk", "subject": "Demo"}]
    prep = welcome(name="Demo prep", topic="", trigger="demo_booked", steps=steps, goals=[])
    from tidings.journeys.actions import do_enrol

    ann = person("Ann Example")
    do_enrol(journey, ann)
    signals.demo_booked.send(sender=None, booking_id=1, contact_id=ann.pk)
    states = dict(Enrolment.objects.values_list("journey_id", "state"))
    assert states == {journey.pk: "converted", prep.pk: "active"}
