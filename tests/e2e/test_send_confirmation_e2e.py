"""Nothing is sent without a confirmation: "Schedule" and "Send now" show exactly how many people
it goes to (after consent and suppression), the sender, the subject, the time and what is red on
the bulk-sender checklist; "Back" changes nothing; figures that changed meanwhile are shown
again before anything is scheduled."""

import re

from playwright.sync_api import Page, expect

from tests.campaigns.lifecycle_helpers import make_campaign, make_list, make_sender, subscriber
from tests.e2e.helpers import sign_in
from tidings.audience.suppression import do_suppress
from tidings.campaigns.models import Campaign


def test_scheduling_shows_the_exact_audience_and_waits_for_confirmation(
    page: Page, owner, live_server, settings
):
    settings.TIDINGS_BASE_URL = live_server.url  # http: one-click unsubscribe is red
    settings.TIME_ZONE = "Europe/London"
    news = make_list()
    subscriber("Ada Lovelace", news, email="ada@example.com")
    subscriber("Grace Hopper", news, email="grace@example.com")
    subscriber("Alan Turing", news, email="alan@example.com")
    do_suppress("alan@example.com", reason="operator", actor=None)
    campaign = make_campaign(
        news, sender=make_sender(), with_template=True, name="March news", subject="Spring is here"
    )

    sign_in(page)
    page.goto(f"/campaigns/{campaign.pk}/schedule/")
    page.get_by_label("Send at").fill("2099-03-02T09:30")
    page.get_by_role("button", name="Schedule", exact=True).click()

    expect(page.get_by_role("heading", level=1)).to_have_text("Confirm: March news")
    expect(page.locator("#confirm-recipients")).to_have_text("2")
    expect(page.get_by_text("1 suppressed address left out")).to_be_visible()
    expect(page.get_by_text("Example News <news@example.co.uk>")).to_be_visible()
    expect(page.get_by_text("“Spring is here”")).to_be_visible()
    expect(page.locator("#confirm-when")).to_contain_text("2 Mar 2099, 09:30")
    red = page.get_by_role("region", name="Red on the bulk-sender checklist")
    expect(red).to_contain_text("One-click unsubscribe")
    assert Campaign.objects.get(pk=campaign.pk).status == "draft"

    # Back: nothing happens.
    page.get_by_role("link", name="Back").click()
    assert Campaign.objects.get(pk=campaign.pk).status == "draft"

    # Someone subscribes while the operator reads the page: confirming shows the new figure.
    page.get_by_label("Send at").fill("2099-03-02T09:30")
    page.get_by_role("button", name="Schedule", exact=True).click()
    subscriber("Katherine Johnson", news, email="katherine@example.com")
    page.get_by_role("button", name=re.compile("^Confirm: schedule")).click()
    expect(page.get_by_role("alert")).to_contain_text("The figures changed")
    expect(page.locator("#confirm-recipients")).to_have_text("3")
    assert Campaign.objects.get(pk=campaign.pk).status == "draft"

    # Confirmed with the keyboard alone.
    page.get_by_role("button", name=re.compile("^Confirm: schedule")).focus()
    page.keyboard.press("Enter")
    expect(page).to_have_url(f"{live_server.url}/campaigns/{campaign.pk}/")
    expect(page.get_by_text("to 3 people as things stand")).to_be_visible()
    campaign.refresh_from_db()
    assert campaign.status == "scheduled"
    assert campaign.scheduled_at.isoformat() == "2099-03-02T09:30:00+00:00"


def test_send_now_confirmation_reads_well_on_a_phone(page: Page, owner, live_server):
    news = make_list()
    subscriber("Ada Lovelace", news, email="ada@example.com")
    campaign = make_campaign(news, sender=make_sender(), with_template=True, name="Phone news")
    page.set_viewport_size({"width": 375, "height": 740})
    sign_in(page)
    page.goto(f"/campaigns/{campaign.pk}/schedule/")
    page.get_by_role("button", name="Send now").click()
    confirm = page.get_by_role("button", name="Confirm: send to 1 now")
    expect(confirm).to_be_visible()
    box = confirm.bounding_box()
    assert box is not None and box["x"] >= 0 and box["x"] + box["width"] <= 375
    assert page.evaluate("document.documentElement.scrollWidth") <= 375
    confirm.click()
    expect(page.get_by_text("Sending to 1 person starts in a moment.")).to_be_visible()
    assert Campaign.objects.get(pk=campaign.pk).status == "scheduled"
