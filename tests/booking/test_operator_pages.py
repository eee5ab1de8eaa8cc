"""The operator's demo pages: upcoming demos by day, one demo, availability, the calendar feed."""

from __future__ import annotations

import pytest
from icalendar import Calendar

from tests.operators import make_operator
from tidings.booking.models import Availability, Booking, DemoHost
from tidings.lib.models import AuditEntry

from .helpers import TUESDAY_9, TUESDAY_11, book, event_of, hosts

pytestmark = pytest.mark.django_db

PAGES = ["/demos/", "/demos/availability/"]


def availability_form(**overrides):
    data = {
        "timezone": "Europe/London",
        "day_0": "09:00-12:00",
        "day_1": "09:00-12:00, 14:00-16:00",
        "slot_minutes": 30,
        "buffer_minutes": 10,
        "notice_hours": 2,
        "horizon_days": 10,
        "per_day_limit": 3,
        "blocked_dates": "2026-12-25\n2026-12-26",
    }
    return {**data, **overrides}


@pytest.mark.parametrize("url", PAGES)
def test_strangers_are_sent_to_sign_in(client, url):
    response = client.get(url)
    assert response.status_code == 302 and "/login" in response["Location"]


def test_each_page_needs_its_permission(client, monday):
    analyst = make_operator("ann", "analyst")
    editor = make_operator("eddie", "editor")
    hosts("grace")
    booking = book(TUESDAY_9)
    client.force_login(analyst)
    assert client.get("/demos/").status_code == 403  # people: who booked is personal data
    assert client.get(f"/demos/{booking.pk}/").status_code == 403
    assert client.post(f"/demos/{booking.pk}/").status_code == 403
    assert client.post("/demos/feed/").status_code == 403
    assert Booking.objects.get().status == "confirmed"
    client.force_login(editor)
    assert client.get("/demos/").status_code == 200
    assert client.get("/demos/availability/").status_code == 403  # settings: owners only
    assert client.post("/demos/availability/", availability_form()).status_code == 403


def test_upcoming_demos_are_listed_by_day_with_who_and_when(owner_client, monday):
    hosts("grace")
    book(TUESDAY_9)
    book(TUESDAY_11, person={"name": "Alan Turing", "email": "alan@example.com"})
    text = owner_client.get("/demos/").text
    assert "Tuesday 24 November 2026" in text
    assert text.index("09:00–09:45 · Ada Lovelace (Analytical Engines)") < text.index(
        "11:00–11:45 · Alan Turing"
    )
    assert "with Grace" in text


def test_the_list_takes_a_fixed_number_of_queries(owner_client, monday, django_assert_num_queries):
    hosts("grace", "alan")
    for i, start in enumerate([TUESDAY_9, TUESDAY_11]):
        book(start, person={"name": f"P{i}", "email": f"p{i}@example.com"})
    owner_client.get("/demos/")  # warm the session and the availability row
    with django_assert_num_queries(5):  # session, user, availability, demos, own host row
        owner_client.get("/demos/")


def test_an_operator_cancels_a_demo_and_the_visitor_is_told(owner_client, monday):
    from tests.audience.public_helpers import sent_mail

    hosts("grace")
    booking = book(TUESDAY_9)
    detail = owner_client.get(f"/demos/{booking.pk}/")
    assert detail.status_code == 200 and "Ada Lovelace" in detail.text
    owner_client.post(f"/demos/{booking.pk}/")
    booking.refresh_from_db()
    assert booking.status == "cancelled"
    calendar, _ = event_of(sent_mail()[-1])
    assert calendar["METHOD"] == "CANCEL"
    entry = AuditEntry.objects.get(action="booking.cancelled")
    assert entry.actor is not None
    assert "Cancel this demo" not in owner_client.get(f"/demos/{booking.pk}/").text
    assert owner_client.get("/demos/999/").status_code == 404


def test_the_owner_sets_hours_limits_holidays_and_hosts(owner_client, monday):
    grace = make_operator("grace", "editor")
    response = owner_client.post("/demos/availability/", availability_form(hosts=[grace.pk]))
    assert response.status_code == 302
    availability = Availability.current()
    assert availability.weekly_hours == {
        "0": [["09:00", "12:00"]],
        "1": [["09:00", "12:00"], ["14:00", "16:00"]],
    }
    assert (availability.slot_minutes, availability.buffer_minutes) == (30, 10)
    assert availability.blocked_dates == ["2026-12-25", "2026-12-26"]
    assert list(DemoHost.objects.filter(is_active=True).values_list("user", flat=True)) == [
        grace.pk
    ]
    assert AuditEntry.objects.filter(action="booking.availability_updated").exists()
    form = owner_client.get("/demos/availability/").text
    assert 'value="09:00-12:00, 14:00-16:00"' in form


def test_bad_settings_are_refused_with_a_clear_error(owner_client):
    response = owner_client.post(
        "/demos/availability/",
        availability_form(day_0="9 till 5", blocked_dates="Christmas", slot_minutes=0),
    )
    assert response.status_code == 200
    assert "write hours as 09:00-12:30" in response.text
    assert "Line 1: write a date as 2026-12-25." in response.text
    assert Availability.current().slot_minutes == 45


def test_a_host_gets_a_secret_calendar_feed_of_their_upcoming_demos_and_can_revoke_it(
    client, monday
):
    grace, _alan = hosts("grace", "alan")
    mine = book(TUESDAY_9)
    book(TUESDAY_9, person={"name": "Someone Else", "email": "else@example.com"})  # alan's
    client.force_login(grace.user)
    assert "You have no calendar address yet" in client.get("/demos/").text
    client.post("/demos/feed/")
    grace.refresh_from_db()
    feed_url = f"/demo/feed/{grace.feed_token}.ics"
    assert feed_url in client.get("/demos/").text

    client.logout()  # calendar apps cannot sign in
    response = client.get(feed_url)
    assert response.status_code == 200 and response["Content-Type"].startswith("text/calendar")
    events = Calendar.from_ical(response.content).walk("VEVENT")
    assert [e["SUMMARY"] for e in events] == ["Demo: Ada Lovelace (Analytical Engines)"]
    assert str(mine.uid) in str(events[0]["UID"])

    client.force_login(grace.user)
    client.post("/demos/feed/", {"revoke": "1"})
    client.logout()
    assert client.get(feed_url).status_code == 404
    assert client.get("/demo/feed/guessed.ics").status_code == 404
    assert Booking.objects.count() == 2


def test_the_calendar_feed_of_an_operator_who_left_stops_at_once(owner_client, monday):
    # Their calendar app keeps fetching the address: after deactivation (sessions and API tokens
    # end) it went on receiving the names, addresses and companies of the people they were to meet.
    from django.test import Client

    grace, _alan = hosts("grace", "alan")
    book(TUESDAY_9)
    grace_client = Client()
    grace_client.force_login(grace.user)
    grace_client.post("/demos/feed/")
    grace.refresh_from_db()
    calendar_app = Client()
    feed_url = f"/demo/feed/{grace.feed_token}.ics"
    assert calendar_app.get(feed_url).status_code == 200

    owner_client.post(f"/settings/operators/{grace.user.pk}/deactivate/")

    grace.user.refresh_from_db()
    assert not grace.user.is_active
    assert calendar_app.get(feed_url).status_code == 404
