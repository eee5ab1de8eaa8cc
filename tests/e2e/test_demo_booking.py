"""A visitor books a demo in a real browser, finds the invitation in the outbox, and moves it
with the link in the email; the times follow the browser's timezone when JavaScript runs."""

from __future__ import annotations

import re

import pytest
from playwright.sync_api import Browser, expect

from tests.booking.helpers import calendar_parts, event_of, hosts
from tidings.booking.models import Booking
from tidings.campaigns.engine import deliver_pending
from tidings.campaigns.models import OutboxMessage

CHANGE_LINK = re.compile(r"https?://\S+/demo/change/[^\s/]+(?=\s)")


@pytest.fixture
def outbox(settings, live_server):
    settings.TIDINGS_BASE_URL = live_server.url  # links in emails point at this server
    settings.MAILERS = {"default": {"BACKEND": "tidings.campaigns.transports.outbox.EmailBackend"}}
    settings.TIDINGS_SMTP_URL = "outbox://"
    settings.TIDINGS_TRANSPORTS = None


def latest_mail() -> OutboxMessage:
    deliver_pending(max_seconds=10)
    message = OutboxMessage.objects.order_by("-pk").first()
    assert message is not None, "no email reached the outbox"
    return message


def test_a_visitor_books_a_demo_gets_the_invitation_and_moves_it(page, outbox):
    hosts("grace")
    page.goto("/demo/")
    expect(page.get_by_role("heading", level=1)).to_have_text("Book your demo")
    slots = page.get_by_role("radio")
    first_label = slots.first.get_attribute("value")
    slots.first.check()
    page.get_by_label("Name", exact=False).first.fill("Ada Lovelace")
    page.get_by_label("Email", exact=False).first.fill("ada@example.com")
    page.get_by_role("button", name="Book the demo").click()
    expect(page.get_by_role("heading", level=1)).to_contain_text("your demo is booked")

    booking = Booking.objects.get()
    assert booking.start.strftime("%Y-%m-%dT%H:%MZ") == first_label
    invitation = latest_mail()
    assert invitation.to == "ada@example.com"
    calendar, event = event_of(invitation)
    assert calendar["METHOD"] == "REQUEST" and event["SEQUENCE"] == 0

    # The outbox page shows the message to the operator, too.
    link = CHANGE_LINK.search(invitation.body("plain") + "\n").group(0)
    page.goto(link)
    expect(page.get_by_role("heading", level=1)).to_have_text("Your demo")
    other = page.get_by_role("radio").nth(1)
    new_start = other.get_attribute("value")
    other.check()
    page.get_by_role("button", name="Move my demo").click()
    expect(page.get_by_role("status").filter(has_text="Moved")).to_be_visible()

    booking.refresh_from_db()
    assert booking.start.strftime("%Y-%m-%dT%H:%MZ") == new_start
    assert booking.sequence == 1
    update = latest_mail()
    assert update.pk != invitation.pk and "has moved" in update.subject
    _, moved = event_of(update)
    assert moved["UID"] == event["UID"] and moved["SEQUENCE"] == 1
    assert len(calendar_parts(update)) == 1


def test_times_follow_the_browsers_timezone_with_javascript_and_the_companys_without(
    browser: Browser, live_server
):
    hosts("grace")
    tokyo = browser.new_context(base_url=live_server.url, timezone_id="Asia/Tokyo")
    page = tokyo.new_page()
    page.goto("/demo/")
    page.wait_for_url(re.compile(r"tz=Asia%2FTokyo|tz=Asia/Tokyo"))
    expect(page.get_by_label("Show times in")).to_have_value("Asia/Tokyo")
    tokyo.close()

    no_js = browser.new_context(
        base_url=live_server.url, timezone_id="Asia/Tokyo", java_script_enabled=False
    )
    page = no_js.new_page()
    page.goto("/demo/")
    expect(page.get_by_label("Show times in")).to_have_value("Europe/London")
    page.get_by_label("Show times in").select_option("America/New_York")
    page.get_by_role("button", name="Show times").click()
    expect(page.locator("legend")).to_contain_text("America/New_York")
    no_js.close()
