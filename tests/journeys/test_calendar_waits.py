"""Waits in whole days land on the same local wall-clock time across a clock change (calendar
days in the company's zone, Europe/London here); hours stay hours.  A step after "wait until
09:00" that the worker missed by more than the grace waits for the next 09:00, and its history
says so, never "sent"."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest

from tests.journeys.helpers import make_list, subscriber, welcome
from tidings.campaigns.models import OutgoingMessage
from tidings.journeys import engine
from tidings.journeys.actions import do_enrol
from tidings.journeys.models import Enrolment
from tidings.journeys.schedule import add_duration, wait_ends
from tidings.journeys.stats import journey_counts

pytestmark = pytest.mark.django_db

LONDON = ZoneInfo("Europe/London")


@pytest.fixture(autouse=True)
def london(settings):
    settings.TIME_ZONE = "Europe/London"


def _mail() -> list[str]:
    return list(
        OutgoingMessage.objects.filter(kind__startswith="journey:")
        .order_by("pk")
        .values_list("subject", flat=True)
    )


@pytest.mark.parametrize(
    ("sent", "expected"),
    [
        # Spring: the clocks go forward on Sunday 29 March 2026 (47 hours later).
        (datetime(2026, 3, 28, 9, 0, tzinfo=LONDON), datetime(2026, 3, 30, 9, 0, tzinfo=LONDON)),
        # Autumn: back on Sunday 25 October 2026 (49 hours later).
        (datetime(2026, 10, 24, 9, 0, tzinfo=LONDON), datetime(2026, 10, 26, 9, 0, tzinfo=LONDON)),
    ],
)
def test_wait_two_days_after_a_nine_oclock_send_is_nine_oclock_across_the_clock_change(
    time_machine, sent, expected
):
    time_machine.move_to(sent, tick=False)
    journey = welcome()  # hello, wait "2 days", tips
    do_enrol(journey, subscriber("Ann Example", make_list()))
    assert engine.advance_due() == 2
    enrolment = Enrolment.objects.get()
    assert enrolment.step == "tips"
    assert enrolment.next_run_at.astimezone(LONDON) == expected
    assert enrolment.next_run_at.astimezone(LONDON).hour == 9
    time_machine.move_to(expected - timedelta(minutes=1), tick=False)
    assert engine.advance_due() == 0
    time_machine.move_to(expected, tick=False)
    assert engine.advance_due() == 2
    assert _mail() == ["Welcome, Ann", "Three tips"]


def test_hours_stay_hours_and_weeks_and_timeouts_are_calendar_days():
    before_spring = datetime(2026, 3, 28, 9, 0, tzinfo=LONDON)
    assert add_duration(before_spring, "48 hours") == before_spring + timedelta(hours=48)
    assert add_duration(before_spring, "1 week").astimezone(LONDON) == datetime(
        2026, 4, 4, 9, 0, tzinfo=LONDON
    )
    timeout = {"kind": "wait_event", "event": "x", "timeout": "3 days", "then": "a", "else": "b"}
    assert wait_ends(timeout, before_spring).astimezone(LONDON) == datetime(
        2026, 3, 31, 9, 0, tzinfo=LONDON
    )
    # 01:30 on the day the clocks skip from 01:00 to 02:00 does not exist: read as 02:30 BST.
    assert add_duration(datetime(2026, 3, 28, 1, 30, tzinfo=LONDON), "1 day") == datetime(
        2026, 3, 29, 1, 30, tzinfo=UTC
    )


def _morning_journey():
    steps = [
        {"id": "morning", "kind": "wait_until", "time": "09:00"},
        {"id": "tips", "kind": "send_email", "template": "Welcome", "subject": "Tips"},
        {"id": "done", "kind": "end"},
    ]
    return welcome(steps=steps, goals=[])


def test_a_nine_oclock_send_missed_by_more_than_the_grace_waits_for_the_next_nine(time_machine):
    time_machine.move_to(datetime(2026, 12, 7, 20, 0, tzinfo=LONDON), tick=False)
    journey = _morning_journey()
    do_enrol(journey, subscriber("Ann Example", make_list()))
    assert engine.advance_due() == 1  # waits for 09:00 on Tuesday
    # The worker was down from before 09:00 until 16:30: seven and a half hours late.
    time_machine.move_to(datetime(2026, 12, 8, 16, 30, tzinfo=LONDON), tick=False)
    assert engine.advance_due() == 1
    assert _mail() == []  # no marketing mail in the late afternoon
    enrolment = Enrolment.objects.get()
    assert enrolment.step == "tips"
    assert enrolment.next_run_at == datetime(2026, 12, 9, 9, 0, tzinfo=LONDON)
    history = list(enrolment.history.values_list("step", "outcome", "reason"))
    assert history[-1] == (
        "tips",
        "deferred",
        "missed 09:00 by 7.5 h (over the 6 h grace): waits for the next one",
    )
    counts = journey_counts(journey)
    assert counts.steps["tips"].sent == 0  # the history never says it was sent
    time_machine.move_to(datetime(2026, 12, 9, 9, 0, tzinfo=LONDON), tick=False)
    assert engine.advance_due() == 2
    assert _mail() == ["Tips"]
    outcomes = list(enrolment.history.values_list("step", "outcome"))
    assert outcomes == [
        ("morning", "waiting"),
        ("tips", "deferred"),
        ("tips", "sent"),
        ("done", "completed"),
    ]
    assert journey_counts(journey).steps["tips"].reached == 1


@pytest.mark.parametrize(("grace", "mailed"), [(None, True), (1, False)])
def test_a_nine_oclock_send_less_late_than_the_grace_still_goes(
    time_machine, settings, grace, mailed
):
    if grace is not None:
        settings.TIDINGS_JOURNEY_MISSED_TIME_GRACE_HOURS = grace
    time_machine.move_to(datetime(2026, 12, 7, 20, 0, tzinfo=LONDON), tick=False)
    journey = _morning_journey()
    do_enrol(journey, subscriber("Ann Example", make_list()))
    engine.advance_due()
    time_machine.move_to(datetime(2026, 12, 8, 14, 59, tzinfo=LONDON), tick=False)  # 5 h 59
    engine.advance_due()
    assert _mail() == (["Tips"] if mailed else [])
