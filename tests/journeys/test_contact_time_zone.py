"""wait_until in the person's own time zone, where the policy lets us hold it (DST-safe)."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from tests.audience.public_helpers import write_policy
from tests.journeys.helpers import person, welcome
from tidings.audience.actions import FieldNotAllowed, do_create_contact
from tidings.audience.models import Contact
from tidings.journeys import engine
from tidings.journeys.actions import do_enrol
from tidings.journeys.models import Enrolment
from tidings.journeys.schedule import wait_ends
from tidings.journeys.steps import validate

pytestmark = pytest.mark.django_db

AT_NINE = {"id": "nine", "kind": "wait_until", "time": "09:00", "zone": "contact"}


@pytest.fixture(autouse=True)
def london(settings):
    settings.TIME_ZONE = "Europe/London"


@pytest.fixture
def service_zones(tmp_path, settings):
    """The example policy whose service purpose (contract_support) also collects time_zone."""
    old = 'optional = ["phone", "job_title", "work_address"] }\nsources = ["order"'
    write_policy(
        tmp_path, settings, (old, old.replace('"work_address"]', '"work_address", "time_zone"]'))
    )


def in_new_york() -> Contact:
    """A customer's contact: the example policy holds a time zone for service messages."""
    return Contact.objects.create(
        email=f"nell{Contact.objects.count()}@example.com",
        name="Nell York",
        attributes={"time_zone": "America/New_York"},
    )


def test_nine_in_the_morning_is_the_persons_nine_when_the_policy_lets_us_hold_their_zone(
    service_zones,
):
    nell = in_new_york()
    now = datetime(2026, 12, 7, 12, 0, tzinfo=UTC)  # 07:00 in New York
    assert wait_ends(AT_NINE, now, nell, "contract_support") == datetime(
        2026, 12, 7, 14, 0, tzinfo=UTC
    )
    # Without zone = "contact", or for someone without one: the company's 09:00.
    company = {**AT_NINE, "zone": "company"}
    assert wait_ends(company, now, nell, "contract_support") == datetime(
        2026, 12, 8, 9, 0, tzinfo=UTC
    )
    ann = person("Ann Example")
    assert wait_ends(AT_NINE, now, ann, "contract_support") == datetime(
        2026, 12, 8, 9, 0, tzinfo=UTC
    )


def test_the_persons_zone_follows_their_summer_time_change_not_the_companys(service_zones):
    nell = in_new_york()
    # New York moves to summer time on 8 March 2026, London on 29 March: 09:00 EDT is 13:00 UTC.
    saturday = datetime(2026, 3, 7, 15, 0, tzinfo=UTC)  # 10:00 EST, after nine
    assert wait_ends(AT_NINE, saturday, nell, "contract_support") == datetime(
        2026, 3, 8, 13, 0, tzinfo=UTC
    )
    friday = datetime(2026, 3, 6, 12, 0, tzinfo=UTC)  # 07:00 EST
    assert wait_ends(AT_NINE, friday, nell, "contract_support") == datetime(
        2026, 3, 6, 14, 0, tzinfo=UTC
    )


def test_a_zone_the_policy_does_not_let_the_purpose_hold_is_not_used(service_zones):
    nell = in_new_york()
    now = datetime(2026, 12, 7, 12, 0, tzinfo=UTC)
    nine = datetime(2026, 12, 8, 9, 0, tzinfo=UTC)
    assert wait_ends(AT_NINE, now, nell, "newsletter") == nine  # marketing: not collected


def test_the_example_policy_declares_the_field_but_no_purpose_holds_it():
    nell = in_new_york()
    now = datetime(2026, 12, 7, 12, 0, tzinfo=UTC)
    nine = datetime(2026, 12, 8, 9, 0, tzinfo=UTC)
    assert wait_ends(AT_NINE, now, nell, "contract_support") == nine


def test_a_stored_zone_that_is_not_one_falls_back_to_the_companys(service_zones):
    odd = Contact.objects.create(email="odd@example.com", attributes={"time_zone": "Mars/Olympus"})
    now = datetime(2026, 12, 7, 12, 0, tzinfo=UTC)
    assert wait_ends(AT_NINE, now, odd, "contract_support") == datetime(
        2026, 12, 8, 9, 0, tzinfo=UTC
    )


def test_a_time_zone_is_checked_when_it_is_collected(service_zones):
    with pytest.raises(FieldNotAllowed, match="time_zone"):
        do_create_contact(
            {"name": "Ann", "email": "ann@example.com", "company": "Acme", "time_zone": "Mars/X"},
            purpose="contract_support",
        )
    contact, _ = do_create_contact(
        {"name": "Ann", "email": "ann@example.com", "company": "Acme", "time_zone": "Europe/Paris"},
        purpose="contract_support",
    )
    assert contact.attributes["time_zone"] == "Europe/Paris"


def morning():
    """A journey started by hand that waits until 9:00 in the person's zone, then tells a
    webhook."""
    return welcome(
        name="Morning",
        topic="",
        trigger="manual",
        steps=[AT_NINE, {"id": "tell", "kind": "webhook", "event": "morning"}],
        goals=[],
    )


def test_the_engine_waits_until_nine_in_the_persons_zone(service_zones):
    journey = morning()
    nell = in_new_york()
    do_enrol(journey, nell)
    now = datetime(2026, 12, 7, 12, 0, tzinfo=UTC)
    Enrolment.objects.update(next_run_at=now)
    engine.advance_due(now=now)
    assert Enrolment.objects.get().next_run_at == datetime(2026, 12, 7, 14, 0, tzinfo=UTC)


def test_a_wait_until_zone_is_company_or_contact():
    [problem] = validate([{**AT_NINE, "zone": "moon"}])
    assert problem.path == "steps[0].zone"


def test_a_week_after_the_persons_nine_oclock_is_their_nine_across_their_clock_change(
    service_zones,
):
    """New York leaves summer time on 1 November 2026, London on 25 October: in the week between,
    the company's calendar would turn Nell's 09:00 mail into an 08:00 one a week later."""
    week = {"id": "week", "kind": "wait", "duration": "1 week"}
    steps = [AT_NINE, {"id": "tell", "kind": "webhook", "event": "morning"}, week]
    nell = in_new_york()
    sent = datetime(2026, 10, 26, 13, 0, tzinfo=UTC)  # 09:00 in New York (EDT)
    nine_est = datetime(2026, 11, 2, 14, 0, tzinfo=UTC)
    assert wait_ends(week, sent, nell, "contract_support", steps) == nine_est
    # A journey that does not time its mail in the person's zone keeps the company's calendar.
    assert wait_ends(week, sent, nell, "contract_support", [week]) == datetime(
        2026, 11, 2, 13, 0, tzinfo=UTC
    )
    # So does one whose purpose may not hold the zone, and a person without one.
    assert wait_ends(week, sent, nell, "newsletter", steps) == datetime(
        2026, 11, 2, 13, 0, tzinfo=UTC
    )
    assert wait_ends(week, sent, person("Ann Example"), "contract_support", steps) == datetime(
        2026, 11, 2, 13, 0, tzinfo=UTC
    )


def test_the_engine_counts_the_weeks_wait_in_the_persons_zone(service_zones):
    journey = welcome(
        name="Weekly",
        topic="",
        trigger="manual",
        steps=[
            AT_NINE,
            {"id": "tell", "kind": "webhook", "event": "morning"},
            {"id": "week", "kind": "wait", "duration": "1 week"},
            {"id": "again", "kind": "webhook", "event": "morning"},
        ],
        goals=[],
    )
    do_enrol(journey, in_new_york())
    enrolled = datetime(2026, 10, 26, 11, 0, tzinfo=UTC)  # 07:00 in New York
    Enrolment.objects.update(next_run_at=enrolled)
    engine.advance_due(now=enrolled)
    nine = datetime(2026, 10, 26, 13, 0, tzinfo=UTC)
    assert Enrolment.objects.get().next_run_at == nine
    engine.advance_due(now=nine)
    enrolment = Enrolment.objects.get()
    assert enrolment.step == "again"
    assert enrolment.next_run_at == datetime(2026, 11, 2, 14, 0, tzinfo=UTC)  # 09:00 EST


def test_the_simulator_shows_the_persons_own_time_beside_the_companys(service_zones):
    from tidings.journeys.simulate import simulate

    journey = morning()
    start = datetime(2026, 12, 7, 12, 0, tzinfo=UTC)  # 07:00 in New York
    [wait, *_] = simulate(journey, in_new_york(), start=start, days=3)
    assert wait.what == (
        "waits until Mon 07 Dec 2026 14:00 GMT, Mon 07 Dec 09:00 in their zone (America/New_York)"
    )
