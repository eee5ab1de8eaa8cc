"""The trigger "a date field comes round": a contract's end, or a date attribute (once, or
every year: a birthday, 29 February on the 28th in other years)."""

from __future__ import annotations

from datetime import date, timedelta

import pytest
from django.utils import timezone

from tests.audience.public_helpers import write_policy
from tests.journeys.helpers import person, welcome
from tidings.journeys.actions import activation_problems
from tidings.journeys.models import Enrolment, Journey
from tidings.journeys.triggers import day_keys, enrol_by_date

pytestmark = pytest.mark.django_db

NOTIFY = [{"id": "tell", "kind": "webhook", "event": "birthday"}]


@pytest.fixture
def birthdays(tmp_path, settings):
    """The example policy with a birthday the newsletter may hold (as an attribute)."""
    old = 'preferences = ["subscriptions", "marketing_channels"'
    optional = 'optional = ["phone", "company", "job_title"] }\nsources = ["newsletter'
    write_policy(
        tmp_path,
        settings,
        (old, 'preferences = ["birthday", "subscriptions", "marketing_channels"'),
        (optional, optional.replace('"job_title"]', '"job_title", "birthday"]')),
    )


def birthday_journey(days: int = 0, *, yearly: bool = True, **changes) -> Journey:
    values = {
        "name": "Birthday",
        "topic": "",
        "trigger": "date",
        "trigger_params": {"field": "attributes.birthday", "days": days, "yearly": yearly},
        "entry": Journey.Entry.AGAIN_AFTER,
        "entry_days": 300,
        "steps": NOTIFY,
        "goals": [],
    }
    values.update(changes)
    return welcome(**values)


def born(name: str, day: str):
    return person(name, birthday=day)


def test_a_birthday_journey_starts_a_week_before_the_birthday_every_year(birthdays):
    journey = birthday_journey(-7)
    ann = born("Ann Example", "1990-06-15")
    born("Bob Other", "1990-06-16")
    assert enrol_by_date(date(2026, 6, 7)) == 0
    assert enrol_by_date(date(2026, 6, 8)) == 1
    assert set(Enrolment.objects.values_list("contact_id", flat=True)) == {ann.pk}
    Enrolment.objects.update(state=Enrolment.State.COMPLETED, next_run_at=None)
    assert enrol_by_date(date(2026, 6, 8)) == 0  # the entry rule: not twice the same year
    Enrolment.objects.update(entered_at=timezone.now() - timedelta(days=365))
    assert enrol_by_date(date(2027, 6, 8)) == 1  # the next year, again
    assert journey.enrolments.count() == 2


def test_a_29_february_birthday_comes_round_on_the_28th_in_other_years(birthdays):
    birthday_journey(0)
    leap = born("Lea Leap", "2000-02-29")
    assert enrol_by_date(date(2027, 2, 28)) == 1
    Enrolment.objects.update(
        state=Enrolment.State.COMPLETED,
        next_run_at=None,
        entered_at=timezone.now() - timedelta(days=365),
    )
    assert enrol_by_date(date(2028, 2, 28)) == 0  # a leap year: the 29th is the day
    assert enrol_by_date(date(2028, 2, 29)) == 1
    assert set(Enrolment.objects.values_list("contact_id", flat=True)) == {leap.pk}
    assert day_keys(date(2027, 2, 28), yearly=True) == ["02-28", "02-29"]
    assert day_keys(date(2028, 2, 28), yearly=True) == ["02-28"]


def test_a_date_attribute_that_is_not_yearly_comes_round_once(birthdays):
    birthday_journey(30, yearly=False, name="After the trial")
    ann = born("Ann Example", "2026-05-01")
    born("Bob Other", "not a date")
    assert enrol_by_date(date(2026, 5, 31)) == 1
    assert enrol_by_date(date(2027, 5, 31)) == 0
    assert Enrolment.objects.get().contact_id == ann.pk


def test_a_date_field_the_policy_does_not_allow_is_refused(birthdays):
    journey = birthday_journey(activate=False)
    journey.trigger_params = {"field": "attributes.shoe_size", "days": 0, "yearly": True}
    journey.save()
    [problem] = activation_problems(journey)
    assert problem.field == "trigger_params.field" and "shoe_size" in problem.message
    journey.trigger_params = {"field": "contract_end", "days": 0, "yearly": True}
    journey.save()
    assert [p.field for p in activation_problems(journey)] == ["trigger_params.field"]


def test_a_day_on_which_no_worker_ran_is_caught_up_the_next_day(birthdays):
    # The daily job ran on the 7th and next on the 9th (the worker was stopped over the 8th,
    # or the job's time of day drifted past midnight): the 8th's people still enter.
    birthday_journey(-7)
    ann = born("Ann Example", "1990-06-15")
    assert enrol_by_date(date(2026, 6, 7)) == 0
    assert enrol_by_date(date(2026, 6, 9)) == 1
    assert set(Enrolment.objects.values_list("contact_id", flat=True)) == {ann.pk}
    # A day gone through is not gone through again, however often the job runs.
    Enrolment.objects.update(state=Enrolment.State.COMPLETED, next_run_at=None)
    assert enrol_by_date(date(2026, 6, 9)) == 0
    assert Journey.objects.get().dates_through == date(2026, 6, 9)


def test_catching_up_goes_back_a_week_at_most(birthdays):
    birthday_journey(0)
    born("Old Missed", "1990-06-01")
    recent = born("Recent Missed", "1990-06-05")
    assert enrol_by_date(date(2026, 5, 20)) == 0
    assert enrol_by_date(date(2026, 6, 10)) == 1  # 4–10 June: the 1st is too long ago
    assert set(Enrolment.objects.values_list("contact_id", flat=True)) == {recent.pk}


def test_a_resumed_date_journey_does_not_catch_up_the_days_it_was_paused(birthdays):
    from tidings.journeys.actions import do_pause, do_resume

    journey = birthday_journey(0)
    today = timezone.localdate()
    born("Paused Day", (today - timedelta(days=2)).isoformat())
    today_person = born("Today Person", today.isoformat())
    assert enrol_by_date(today - timedelta(days=3)) == 0
    do_pause(journey, actor=None)
    do_resume(Journey.objects.get(pk=journey.pk), actor=None)
    assert enrol_by_date(today) == 1
    assert set(Enrolment.objects.values_list("contact_id", flat=True)) == {today_person.pk}
