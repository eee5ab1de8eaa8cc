"""Two visitors asking for the same time at the same moment: exactly one gets it."""

from __future__ import annotations

import threading

import pytest
import time_machine
from django.db import connection

from tidings.booking.actions import SlotTaken
from tidings.booking.models import Booking
from tidings.crm.models import Enquiry

from .helpers import NOW, TUESDAY_9, book, hosts


@pytest.mark.django_db(transaction=True)
def test_two_visitors_racing_for_one_slot_one_books_it_and_the_other_is_told(settings):
    if connection.vendor != "postgresql":
        pytest.skip("a real race needs PostgreSQL's row locks (SQLite runs one writer anyway)")
    hosts("grace")
    barrier = threading.Barrier(2)
    outcomes: list[str] = []

    def visitor(n: int) -> None:
        try:
            barrier.wait()
            book(TUESDAY_9, person={"name": f"Visitor {n}", "email": f"v{n}@example.com"})
            outcomes.append("booked")
        except SlotTaken:
            outcomes.append("taken")
        finally:
            connection.close()

    with time_machine.travel(NOW, tick=True):
        threads = [threading.Thread(target=visitor, args=(n,)) for n in range(2)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
    assert sorted(outcomes) == ["booked", "taken"]
    assert Booking.objects.filter(start=TUESDAY_9).count() == 1
    assert Enquiry.objects.count() == 1  # the loser's transaction left nothing behind


@pytest.mark.django_db(transaction=True)
def test_two_booking_page_requests_for_one_slot_give_one_booking_and_one_409(settings):
    if connection.vendor != "postgresql":
        pytest.skip("a real race needs PostgreSQL's row locks (SQLite runs one writer anyway)")
    from django.test import Client

    hosts("grace")
    barrier = threading.Barrier(2)
    statuses: list[int] = []

    def visitor(n: int) -> None:
        try:
            client = Client()
            data = {
                "name": f"Visitor {n}",
                "email": f"v{n}@example.com",
                "slot": TUESDAY_9.strftime("%Y-%m-%dT%H:%MZ"),
                "tz": "Europe/London",
            }
            barrier.wait()
            statuses.append(client.post("/demo/", data, REMOTE_ADDR=f"192.0.2.{n + 1}").status_code)
        finally:
            connection.close()

    with time_machine.travel(NOW, tick=True):
        threads = [threading.Thread(target=visitor, args=(n,)) for n in range(2)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
    assert sorted(statuses) == [303, 409]
    assert Booking.objects.count() == 1
