"""Reminders before a booked demo: a day and an hour before (configurable), each sent once, with
the links to move or cancel it; none for cancelled, past or erased demos."""

from __future__ import annotations

from datetime import timedelta

import pytest
import time_machine
from django.db import connection

from tests.audience.public_helpers import link_in, mails_to, sent_mail
from tidings.booking.actions import do_cancel_booking, do_reschedule_booking, do_send_demo_reminders
from tidings.booking.models import Availability, Booking
from tidings.campaigns.models import OutgoingMessage
from tidings.lib.models import AuditEntry
from tidings.lib.periodic import REGISTRY
from tidings.rights.actions import do_erase_contact

from .helpers import NOW, PERSON, TUESDAY_9, TUESDAY_11, book, calendar_parts, hosts

pytestmark = pytest.mark.django_db


def reminders() -> list:
    return [m for m in mails_to(PERSON["email"]) if m.subject.startswith("Reminder:")]


def run_at(moment) -> int:
    with time_machine.travel(moment):
        return do_send_demo_reminders()


def test_a_day_and_an_hour_before_the_demo_the_visitor_is_reminded_once_each(client, monday):
    hosts("grace")
    book(TUESDAY_9)  # booked on Monday 07:00, 26 hours ahead

    assert run_at(TUESDAY_9 - timedelta(hours=25)) == 0  # not yet
    assert run_at(TUESDAY_9 - timedelta(hours=24)) == 1
    assert run_at(TUESDAY_9 - timedelta(hours=23)) == 0  # a later run sends it again: never
    (day,) = reminders()
    assert day.subject == (
        "Reminder: your demo with Example Software Ltd, "
        "Tuesday 24 November 2026, 09:00-09:45 (Europe/London)"
    )
    assert calendar_parts(day) == []  # the invitation they hold is unchanged

    assert run_at(TUESDAY_9 - timedelta(minutes=59)) == 1
    assert run_at(TUESDAY_9 - timedelta(minutes=30)) == 0
    assert len(reminders()) == 2
    assert AuditEntry.objects.filter(action="booking.reminded").count() == 2

    # The reminder's links are the booking's live ones: cancelling from it works.
    with time_machine.travel(TUESDAY_9 - timedelta(minutes=30)):
        cancel = link_in(reminders()[-1], "/demo/change/") + "/cancel"
        assert client.post(cancel).status_code == 200
    assert Booking.objects.get().status == "cancelled"


def test_the_reminder_goes_to_someone_who_never_agreed_to_marketing(monday):
    # Service mail about their own booking: no newsletter consent needed or recorded.
    hosts("grace")
    booking = book(TUESDAY_9)
    assert not booking.enquiry.contact.subscriptions.exists()
    run_at(TUESDAY_9 - timedelta(hours=1))
    assert len(reminders()) == 1


def test_a_demo_booked_less_than_a_day_ahead_gets_no_late_day_reminder(monday):
    Availability.current()
    Availability.objects.update(notice_hours=2)
    hosts("grace")
    with time_machine.travel(TUESDAY_9 - timedelta(hours=20)):
        book(TUESDAY_9)
        assert do_send_demo_reminders() == 0  # not a "tomorrow" reminder after the confirmation
    assert run_at(TUESDAY_9 - timedelta(hours=1)) == 1
    assert len(reminders()) == 1


def test_a_worker_stopped_for_a_day_sends_only_the_latest_reminder(monday):
    hosts("grace")
    book(TUESDAY_9)
    assert run_at(TUESDAY_9 - timedelta(minutes=40)) == 1
    assert run_at(TUESDAY_9 - timedelta(minutes=30)) == 0
    assert len(reminders()) == 1


def test_cancelled_and_past_demos_get_no_reminder(monday):
    hosts("grace")
    cancelled = book(TUESDAY_9)
    do_cancel_booking(cancelled)
    book(TUESDAY_11, person={**PERSON, "email": "late@example.com"})
    assert run_at(TUESDAY_9 - timedelta(hours=1)) == 1  # the 11:00 demo's, not the cancelled
    assert reminders() == []
    assert run_at(TUESDAY_11 + timedelta(minutes=1)) == 0  # the worker came back too late
    assert len(mails_to("late@example.com")) == 2  # the confirmation and the day's reminder


def test_a_moved_demo_is_reminded_of_its_new_time(monday):
    hosts("grace")
    booking = book(TUESDAY_9)
    assert run_at(TUESDAY_9 - timedelta(hours=24)) == 1
    wednesday_9 = TUESDAY_9 + timedelta(days=1)
    with time_machine.travel(TUESDAY_9 - timedelta(hours=23)):
        do_reschedule_booking(booking, start=wednesday_9)
    assert run_at(TUESDAY_9 - timedelta(hours=1)) == 0  # the old time is no longer the demo
    assert run_at(wednesday_9 - timedelta(hours=24)) == 1
    assert "Wednesday 25 November 2026, 09:00" in reminders()[-1].subject


def test_the_hours_are_configurable_and_blank_means_no_reminders(monday):
    Availability.current()
    Availability.objects.update(reminder_hours=[2])
    hosts("grace")
    book(TUESDAY_9)
    assert run_at(TUESDAY_9 - timedelta(hours=24)) == 0
    assert run_at(TUESDAY_9 - timedelta(hours=2)) == 1
    Availability.objects.update(reminder_hours=[])
    assert run_at(TUESDAY_9 - timedelta(minutes=30)) == 0


def test_the_owner_sets_the_reminders_on_the_availability_page(owner_client, monday):
    from .test_operator_pages import availability_form

    Availability.current()
    assert 'value="24, 1"' in owner_client.get("/demos/availability/").text
    bad = owner_client.post("/demos/availability/", availability_form(reminder_hours="tomorrow"))
    assert "Write whole hours from 1 to 336" in bad.text
    owner_client.post("/demos/availability/", availability_form(reminder_hours="2, 48h, 2"))
    assert Availability.current().reminder_hours == [48, 2]


def test_a_run_that_read_the_demo_before_another_worker_sent_its_reminder_sends_none(monday):
    # Two workers: the other one claims and sends the reminder between this run's reading of
    # the upcoming demos and its claim.  The claim is conditional, so this run sends nothing.
    hosts("grace")
    book(TUESDAY_9)
    other_worker_ran: list[int] = []
    started: list[bool] = []

    def other_worker_in_between(execute, sql, params, many, context):
        result = execute(sql, params, many, context)
        reads_demos = '"booking_booking"."reminded_hours"' in sql
        if not started and sql.lstrip().upper().startswith("SELECT") and reads_demos:
            started.append(True)
            other_worker_ran.append(do_send_demo_reminders())
        return result

    with (
        time_machine.travel(TUESDAY_9 - timedelta(hours=1)),
        connection.execute_wrapper(other_worker_in_between),
    ):
        this_run = do_send_demo_reminders()
    assert other_worker_ran == [1] and this_run == 0
    assert len(reminders()) == 1


def test_erasure_removes_the_booking_and_its_queued_reminder(monday):
    hosts("grace")
    booking = book(TUESDAY_9)
    sent_mail()  # the confirmation went
    assert run_at(TUESDAY_9 - timedelta(hours=24)) == 1  # queued, not yet sent
    do_erase_contact(booking.enquiry.contact)
    assert not Booking.objects.exists()
    assert run_at(TUESDAY_9 - timedelta(hours=1)) == 0
    assert reminders() == []
    assert (
        not OutgoingMessage.objects.exclude(subject="")
        .filter(subject__startswith="Reminder:")
        .exists()
    )


def test_the_worker_checks_for_due_reminders_every_minute():
    job = REGISTRY["booking.reminders"]
    assert job.every == timedelta(minutes=1)
    assert job.task == "tidings.booking.tasks.demo_reminders_task"


def test_the_task_sends_what_is_due(monday):
    from tidings.booking.tasks import demo_reminders_task

    hosts("grace")
    book(TUESDAY_9)
    with time_machine.travel(TUESDAY_9 - timedelta(hours=1)):
        assert demo_reminders_task.call() == 1
    assert NOW < TUESDAY_9
