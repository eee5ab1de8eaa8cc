"""The public booking page /demo/ and the links in its emails: book, move, cancel."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
import time_machine

from tests.audience.public_helpers import (
    audit_page,
    link_in,
    make_form,
    make_list,
    next_ip,
    sent_mail,
)
from tidings.audience.models import ConsentEvent, Contact, Subscription
from tidings.booking.models import Availability, Booking
from tidings.crm.models import Enquiry
from tidings.lib.models import AuditEntry

from .helpers import PERSON, TUESDAY_9, TUESDAY_10, TUESDAY_11, book, event_of, hosts, key

pytestmark = pytest.mark.django_db


def post(client, start=TUESDAY_9, tz="Europe/London", **values):
    data = {**PERSON, "slot": key(start), "tz": tz, **values}
    return client.post("/demo/", data, REMOTE_ADDR=next_ip())


def test_the_page_offers_free_times_in_the_companys_timezone_and_asks_the_enquiry_fields(
    client, monday
):
    hosts("grace")
    response = client.get("/demo/")
    assert response.status_code == 200
    page = audit_page(response.text)
    names = {i["name"] for i in page.inputs if i.get("type") not in ("hidden", "radio")}
    assert names == {
        "name",
        "email",
        "phone",
        "company",
        "job_title",
        "work_address",
        "homepage",
        "tz",
    }  # tz: the timezone list
    assert {i["name"] for i in page.inputs if "required" in i} == {"name", "email", "slot"}
    assert page.unlabelled() == []
    assert "Tuesday 24 November 2026" in response.text
    assert "09:00–09:45" in response.text and "Europe/London" in response.text
    assert not [i for i in page.inputs if i.get("type") == "checkbox"]  # no newsletter offered
    assert "12 months after our last contact with you" in response.text


def test_a_visitor_can_see_the_times_in_their_own_timezone(client, monday):
    hosts("grace")
    text = client.get("/demo/?tz=Asia/Tokyo").text
    assert "18:00–18:45" in text  # 09:00 in London
    assert '<option value="Asia/Tokyo" selected>' in text
    assert 'name="tz" value="Asia/Tokyo"' in text
    # An unknown zone falls back to the company's.
    assert "09:00–09:45" in client.get("/demo/?tz=Mars/Olympus").text


def test_an_old_zone_name_a_browser_reports_is_shown_under_its_current_name(client, monday):
    """Chrome reports India as Asia/Calcutta: the page said "times in Asia/Calcutta" and the
    picker listed both names of many zones.  Each zone is listed once, under its name now; a
    link that is still a country's zone (Europe/Oslo) keeps its own name."""
    hosts("grace")
    text = client.get("/demo/?tz=Asia/Calcutta").text
    assert "14:30–15:15" in text  # 09:00 in London
    assert '<option value="Asia/Kolkata" selected>' in text
    assert 'name="tz" value="Asia/Kolkata"' in text
    assert 'value="Asia/Calcutta"' not in text and 'value="Europe/Kiev"' not in text
    assert 'value="Europe/Kyiv"' in text and 'value="Europe/Oslo"' in text
    assert post(client, tz="Asia/Calcutta").status_code == 303
    assert Booking.objects.get().visitor_timezone == "Asia/Kolkata"


@pytest.mark.parametrize(
    "old, now",
    [("Africa/Asmera", "Africa/Asmara"), ("Pacific/Truk", "Pacific/Chuuk")],
)
def test_an_old_spelling_is_shown_as_its_own_countrys_zone(client, monday, old, now):
    """The compiled tz data links Africa/Asmera (Eritrea) to Africa/Nairobi (Kenya) and
    Pacific/Truk to Pacific/Port_Moresby: same clock, another country.  The visitor is shown
    their own zone under its current spelling."""
    hosts("grace")
    text = client.get(f"/demo/?tz={old}").text
    assert f'<option value="{now}" selected>' in text
    assert post(client, tz=old).status_code == 303
    assert Booking.objects.get().visitor_timezone == now


def test_without_hosts_or_hours_the_page_says_there_are_no_free_times(client, monday):
    text = client.get("/demo/").text
    assert "no free times" in text
    assert '<button type="submit">Book' not in text


def test_booking_records_the_contact_and_an_enquiry_and_emails_the_invitation(client, monday):
    (grace,) = hosts("grace")
    response = post(client, tz="America/New_York")
    assert response.status_code == 303 and response["Location"] == "/demo/booked"

    booking = Booking.objects.get()
    assert (booking.start, booking.end) == (TUESDAY_9, TUESDAY_9 + timedelta(minutes=45))
    assert booking.host == grace and booking.visitor_timezone == "America/New_York"
    contact = Contact.objects.get()
    assert (contact.name, contact.email, contact.company) == (
        "Ada Lovelace",
        "ada@example.com",
        "Analytical Engines",
    )
    enquiry = Enquiry.objects.get()
    assert booking.enquiry == enquiry and enquiry.channel == "web form"
    assert abs(enquiry.last_contact_at - monday_now()) < timedelta(minutes=1)
    assert AuditEntry.objects.filter(action="booking.booked").count() == 1

    (mail,) = sent_mail()
    assert mail.to == "ada@example.com"
    assert "Tuesday 24 November 2026, 04:00-04:45 (America/New_York)" in mail.body("plain")
    calendar, event = event_of(mail)
    assert calendar["METHOD"] == "REQUEST"
    assert event["UID"].startswith(str(booking.uid))
    assert event["SEQUENCE"] == 0
    assert event.decoded("DTSTART") == TUESDAY_9
    assert "mailto:ada@example.com" in str(event["ATTENDEE"])
    assert "/demo/change/" in mail.body("plain")


def monday_now():
    from django.utils import timezone

    return timezone.now()


@pytest.mark.parametrize("tz", ["Mars/Olympus", "", "Etc/GMT+5"])
def test_a_timezone_we_do_not_know_books_in_the_shown_zone_instead_of_failing_silently(
    client, monday, tz
):
    """The hidden timezone field refused such a value with an error shown nowhere: the form
    came back with no word of what was wrong, and the demo was not booked."""
    hosts("grace")
    assert post(client, tz=tz).status_code == 303
    assert Booking.objects.get().visitor_timezone == "Europe/London"

    path = link_in(sent_mail()[0], "/demo/change/")
    moved = client.post(path, {"slot": key(TUESDAY_11), "tz": tz})
    assert moved.status_code == 303
    assert Booking.objects.get().start == TUESDAY_11


def test_the_visitor_moves_the_demo_with_the_link_and_gets_the_updated_invitation(client, monday):
    hosts("grace")
    post(client)
    (first,) = sent_mail()
    path = link_in(first, "/demo/change/")
    assert "cancel" not in path

    page = client.get(path)
    assert page.status_code == 200 and "Tuesday 24 November 2026, 09:00-09:45" in page.text
    assert f'value="{key(TUESDAY_9)}"' not in page.text  # its own time is not a choice

    moved = client.post(path, {"slot": key(TUESDAY_11), "tz": "Europe/London"})
    assert moved.status_code == 303 and moved["Location"].endswith("?done=moved")
    booking = Booking.objects.get()
    assert booking.start == TUESDAY_11 and booking.sequence == 1
    assert "Moved." in client.get(moved["Location"]).text

    second = sent_mail()[-1]
    assert "has moved" in second.subject
    _, before = event_of(first)
    calendar, after = event_of(second)
    assert calendar["METHOD"] == "REQUEST"
    assert after["UID"] == before["UID"] and after["SEQUENCE"] == 1
    assert after.decoded("DTSTART") == TUESDAY_11
    # The first email's link was replaced by the second's.
    assert client.get(path).status_code == 410


def test_cancelling_needs_the_button_and_sends_a_cancellation(client, monday):
    hosts("grace")
    post(client)
    path = link_in(sent_mail()[0], "/demo/change/")
    cancel = f"{path}/cancel"
    assert "Cancel your demo?" in client.get(cancel).text
    assert Booking.objects.get().status == "confirmed"  # opening the link is not enough

    done = client.post(cancel)
    assert done.status_code == 200 and "is cancelled" in done.text
    booking = Booking.objects.get()
    assert booking.status == "cancelled" and booking.sequence == 1
    calendar, event = event_of(sent_mail()[-1])
    assert calendar["METHOD"] == "CANCEL" and event["STATUS"] == "CANCELLED"
    assert event["SEQUENCE"] == 1
    assert client.get(path).status_code == 410
    # The slot is free again.
    assert key(TUESDAY_9) in client.get("/demo/").text


def test_the_links_expire_once_the_meeting_is_over(client, monday):
    hosts("grace")
    post(client)
    path = link_in(sent_mail()[0], "/demo/change/")
    with time_machine.travel(TUESDAY_9 + timedelta(minutes=46)):
        response = client.get(path)
    assert response.status_code == 410 and "This demo is over" in response.text
    assert client.get("/demo/change/not-a-token").status_code == 404


def test_a_time_taken_meanwhile_is_refused_clearly_and_the_details_are_kept(client, monday):
    hosts("grace")
    book(TUESDAY_9, person={"name": "Grace Hopper", "email": "grace@example.com"})
    response = post(client, phone="01244 123456")
    assert response.status_code == 409
    assert "just taken" in response.text
    assert 'value="Ada Lovelace"' in response.text and 'value="01244 123456"' in response.text
    assert Booking.objects.count() == 1
    assert not Contact.objects.filter(email="ada@example.com").exists()  # nothing half-done
    assert post(client, start=TUESDAY_10).status_code == 303


def test_a_time_gone_by_overnight_or_too_far_ahead_is_not_said_to_be_taken(client, monday):
    # The page was left open overnight: Tuesday 09:00 is now within the 24 hours' notice.
    # Nobody took it, so "just taken... if you booked it yourself, you already hold it" would
    # send the visitor looking for an invitation they never got.
    hosts("grace")
    with time_machine.travel(TUESDAY_9 - timedelta(hours=12)):
        late = post(client, phone="01244 123456")
    assert late.status_code == 409
    assert "can no longer be booked: it is too soon" in late.text
    assert "just taken" not in late.text and "already hold" not in late.text
    assert 'value="01244 123456"' in late.text  # the details are kept
    far = post(client, start=TUESDAY_9 + timedelta(days=90))
    assert far.status_code == 409 and "further ahead than we take bookings" in far.text
    assert not Booking.objects.exists()


def test_the_action_says_the_same_about_a_time_it_does_not_offer(monday):
    from tidings.booking.actions import SlotTaken, TimeNotOffered

    hosts("grace")
    with pytest.raises(TimeNotOffered):
        book(TUESDAY_9 - timedelta(days=7))  # last week
    book(TUESDAY_9)
    with pytest.raises(SlotTaken) as taken:
        book(TUESDAY_9, person={"name": "Grace Hopper", "email": "grace@example.com"})
    assert not isinstance(taken.value, TimeNotOffered)


def test_sending_the_booking_form_twice_says_plainly_the_time_is_already_yours(client, monday):
    """A double click, or "back" and "send" again, in the browser that booked: one demo, one
    invitation, and a page that says so (not "taken by someone else")."""
    hosts("grace")
    first = post(client)
    again = post(client)

    assert first.status_code == again.status_code == 303
    assert again["Location"] == "/demo/booked?again=1"
    page = client.get(again["Location"])
    assert "You already hold this demo" in page.text and "no second demo" in page.text
    assert Booking.objects.count() == Enquiry.objects.count() == 1
    assert len(sent_mail()) == 1
    assert AuditEntry.objects.filter(action="booking.booked").count() == 1


def test_the_same_person_asking_for_their_time_again_elsewhere_gets_no_second_demo(client, monday):
    # Two hosts: the time is still free with the other one, yet the person already holds it.
    hosts("grace", "alan")
    booking = book(TUESDAY_9)
    mails = len(sent_mail())

    response = post(client, email="ADA@example.com")

    assert response.status_code == 303 and response["Location"] == "/demo/booked"
    assert list(Booking.objects.all()) == [booking]
    assert Enquiry.objects.count() == 1 and len(sent_mail()) == mails


def test_another_browser_typing_the_holders_address_learns_nothing(client, monday):
    hosts("grace")
    book(TUESDAY_9)
    holder = post(client)  # a stranger who knows Ada's address, on a time she holds
    book(TUESDAY_10, person={"name": "Grace Hopper", "email": "grace@example.com"})
    other = post(client, start=TUESDAY_10)

    assert holder.status_code == other.status_code == 409
    assert "just taken" in holder.text and "already hold this demo" not in holder.text
    assert Booking.objects.count() == 2


def test_a_bot_filling_the_honeypot_books_nothing(client, monday):
    hosts("grace")
    response = post(client, homepage="http://spam.example")
    assert response.status_code == 303
    assert not Booking.objects.exists() and not Contact.objects.exists()


def test_the_newsletter_box_is_unticked_and_ticking_it_records_consent_with_its_wording(
    client, monday
):
    hosts("grace")
    news = make_list()
    availability = Availability.current()
    availability.newsletter_form = make_form([news])
    availability.save()

    page = audit_page(client.get("/demo/").text)
    (box,) = [i for i in page.inputs if i.get("type") == "checkbox"]
    assert box["name"] == "newsletter" and "checked" not in box

    post(client, newsletter="on")
    subscription = Subscription.objects.get()
    assert subscription.status == "pending"  # double opt-in, as the policy says
    event = ConsentEvent.objects.get()
    assert event.action == "granted" and event.purpose == "newsletter"
    assert "will email you" in event.wording.text
    assert Booking.objects.count() == 1
    subjects = [m.subject for m in sent_mail()]
    assert any("Please confirm" in s for s in subjects) and any("Your demo" in s for s in subjects)


def test_without_the_box_ticked_nobody_is_subscribed(client, monday):
    hosts("grace")
    availability = Availability.current()
    availability.newsletter_form = make_form([make_list()])
    availability.save()
    post(client)
    assert not Subscription.objects.exists() and not ConsentEvent.objects.exists()


def test_new_demos_go_to_the_hosts_in_turn(monday):
    grace, alan = hosts("grace", "alan")
    first = book(TUESDAY_9, person={"name": "A", "email": "a@example.com"})
    second = book(TUESDAY_9, person={"name": "B", "email": "b@example.com"})
    third = book(TUESDAY_11, person={"name": "C", "email": "c@example.com"})
    assert {first.host, second.host} == {grace, alan}  # both free at 9: one each
    assert third.host == first.host  # equal counts: the one assigned least recently


def test_a_full_slot_is_no_longer_offered(client, monday):
    hosts("grace")
    book(TUESDAY_9)
    text = client.get("/demo/").text
    assert key(TUESDAY_9) not in text and key(TUESDAY_10) in text


def test_times_are_shown_a_few_days_at_a_time(client, monday):
    hosts("grace")
    first = client.get("/demo/").text
    assert "Monday 30 November 2026" in first and "Tuesday 1 December 2026" not in first
    assert 'href="?tz=Europe/London&amp;page=1">Later times' in first
    later = client.get("/demo/?tz=Europe/London&page=1").text
    assert "Tuesday 1 December 2026" in later and "Earlier times" in later
    assert "Tuesday 24 November 2026" not in later
    # A refused time on a later page brings the visitor back to that page, not the first.
    book(datetime(2026, 12, 1, 9, 0, tzinfo=UTC), person={"name": "G", "email": "g@example.com"})
    response = post(client, start=datetime(2026, 12, 1, 9, 0, tzinfo=UTC))
    assert response.status_code == 409 and "Tuesday 1 December 2026" in response.text


def test_the_booking_page_loads_screening_while_the_visitor_picks_a_time(client, monkeypatch):
    """Booking records an enquiry, which is screened, and building the engine takes seconds
    (a minute on a busy machine) in a fresh process: the page starts it in the background, as
    the contact form does, so the first booking after a start does not wait for it."""
    import threading

    from tidings.policy import screening

    hosts("grace")
    monkeypatch.setattr(screening, "_default", None)  # a process that has not screened yet
    assert client.get("/demo/").status_code == 200
    for thread in threading.enumerate():
        if thread.name == "screening-warm-up":
            thread.join(timeout=120)
    assert screening._screener()._engine is not None
