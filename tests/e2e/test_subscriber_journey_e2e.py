"""A person signs up, confirms by email, changes preferences and leaves: in a real browser with
JavaScript switched off (the public pages must not need it), the messages read from the outbox."""

import re

import pytest
from playwright.sync_api import Browser, expect

from tests.e2e.helpers import browser_page
from tidings.audience.actions import do_create_signup_form
from tidings.audience.models import ConsentEvent, Contact, MailingList, Subscription
from tidings.campaigns.engine import deliver_pending
from tidings.campaigns.models import OutboxMessage

URL = re.compile(r"https?://\S+")


def latest_mail_links() -> list[str]:
    deliver_pending(max_seconds=10)
    message = OutboxMessage.objects.order_by("-pk").first()
    assert message is not None, "no email reached the outbox"
    return URL.findall(message.body("plain"))


@pytest.fixture
def no_js_page(browser: Browser, live_server, settings):
    settings.TIDINGS_BASE_URL = live_server.url  # links in emails point at this server
    settings.MAILERS = {"default": {"BACKEND": "tidings.campaigns.transports.outbox.EmailBackend"}}
    settings.TIDINGS_SMTP_URL = "outbox://"
    with browser_page(browser, live_server.url, javascript=False) as page:
        yield page


def test_a_person_signs_up_confirms_changes_preferences_and_unsubscribes(no_js_page, live_server):
    page = no_js_page
    news = MailingList.objects.create(name="Product news", topic="product news")
    do_create_signup_form(lists=[news], slug="news", name="Our newsletter")

    page.goto("/f/news")
    page.get_by_label("Name", exact=False).first.fill("Ada Lovelace")
    page.get_by_label("Email", exact=False).first.fill("ada@example.com")
    consent = page.get_by_role("checkbox").first
    expect(consent).not_to_be_checked()  # nothing is ever pre-ticked
    consent.check()
    page.get_by_role("button").last.click()
    expect(page.get_by_role("main")).to_contain_text("inbox")
    assert Subscription.objects.get().status == "pending"

    confirm = next(link for link in latest_mail_links() if "/c/" in link)
    page.goto(confirm)
    assert Subscription.objects.get().status == "pending"  # opening the link is not enough
    page.get_by_role("button").last.click()
    expect(page.get_by_role("heading", level=1)).to_be_visible()
    assert Subscription.objects.get().status == "confirmed"

    links = latest_mail_links()  # the welcome email
    preferences = next(link for link in links if "/p/" in link)
    unsubscribe = next(link for link in links if "/u/" in link)
    page.goto(preferences)
    page.get_by_label("Company", exact=False).fill("Analytical Engines Ltd")
    page.get_by_role("button", name=re.compile("save", re.I)).click()
    # A new company waits for the click in the mailbox (the link may have been forwarded).
    waiting = page.get_by_role("region", name="Waiting for your confirmation")
    expect(waiting).to_contain_text("Company: Analytical Engines Ltd")
    assert Contact.objects.get().company == ""
    page.goto(next(link for link in latest_mail_links() if "/c/" in link))
    page.get_by_role("button", name="Yes, make these changes").click()
    expect(page.get_by_role("heading", level=1)).to_have_text("Your changes are made")
    assert Contact.objects.get().company == "Analytical Engines Ltd"

    # RFC 8058: the mailbox provider POSTs the one-click body, with no cookies and no redirects.
    response = page.request.post(
        unsubscribe, form={"List-Unsubscribe": "One-Click"}, max_redirects=0
    )
    assert response.status == 200
    assert Subscription.objects.get().status == "unsubscribed"
    actions = list(ConsentEvent.objects.order_by("at", "pk").values_list("action", "source"))
    assert actions == [
        ("granted", "form"),  # what they ticked, with the wording they saw
        ("granted", "confirmation"),  # proven by the click in their mailbox
        ("withdrawn", "unsubscribe"),
    ]
