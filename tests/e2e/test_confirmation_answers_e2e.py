"""What a confirmation link says it did, in a real browser at phone width and by keyboard: a
subscriber who agrees on a form only to be telephoned, and a preference-page link opened again
after its button was pressed."""

import re

import pytest
from playwright.sync_api import Browser, expect

from tests.e2e.helpers import browser_page
from tidings.audience.actions import do_create_contact, do_create_signup_form, do_subscribe
from tidings.audience.consent import current_state
from tidings.audience.models import ConsentEvent, MailingList
from tidings.audience.tokens import preferences_url
from tidings.campaigns.engine import deliver_pending
from tidings.campaigns.models import OutboxMessage

CONFIRM_LINK = re.compile(r"https?://\S+/c/\S+")


def newest_confirm_link() -> str:
    deliver_pending(max_seconds=10)
    message = OutboxMessage.objects.order_by("-pk").first()
    assert message is not None, "no email reached the outbox"
    match = CONFIRM_LINK.search(message.body("plain"))
    assert match, message.body("plain")
    return match.group(0)


@pytest.fixture
def phone_page(browser: Browser, live_server, settings):
    settings.TIDINGS_BASE_URL = live_server.url
    settings.MAILERS = {"default": {"BACKEND": "tidings.campaigns.transports.outbox.EmailBackend"}}
    settings.TIDINGS_SMTP_URL = "outbox://"
    with browser_page(browser, live_server.url, width=375, javascript=False) as page:
        yield page


@pytest.fixture
def ada():
    news = MailingList.objects.create(name="Product news", topic="product news")
    contact, _ = do_create_contact(
        {"name": "Ada Lovelace", "email": "ada@example.com"}, purpose="newsletter"
    )
    do_subscribe(contact, news, source="form", wording_text="Yes", confirmed=True)
    do_create_signup_form(
        lists=[news],
        slug="callback",
        name="Call me back",
        optional_fields=["phone"],
        channels=["phone"],
    )
    return contact


def test_a_subscriber_agreeing_to_be_telephoned_is_told_just_that(phone_page, ada):
    page = phone_page
    page.goto("/f/callback")
    page.get_by_label("Name", exact=True).fill("Ada Lovelace")
    page.get_by_label("Email address").fill("ada@example.com")
    page.get_by_label("Phone number").fill("01244 000 001")
    page.get_by_label("Product news").focus()
    page.keyboard.press("Space")
    page.get_by_label(re.compile("telephone me")).focus()
    page.keyboard.press("Space")
    page.keyboard.press("Enter")
    expect(page.get_by_role("heading", level=1)).to_have_text("Check your inbox to confirm")

    page.goto(newest_confirm_link())
    expect(page.get_by_role("main")).to_contain_text("You may telephone me about these topics")
    page.get_by_role("button", name="Yes, confirm").focus()
    page.keyboard.press("Enter")

    expect(page.get_by_role("heading", level=1)).to_have_text("Your changes are made")
    expect(page.get_by_role("main")).to_contain_text("You may telephone me about these topics")
    expect(page.get_by_role("main")).not_to_contain_text("You are subscribed")
    assert current_state(ada).channel_granted("phone")
    assert page.evaluate("document.documentElement.scrollWidth") <= 375


def test_a_used_preference_link_says_its_changes_were_made_and_offers_no_button(phone_page, ada):
    page = phone_page
    page.goto(preferences_url(ada))
    page.get_by_label(re.compile("write to me by post")).check()
    page.get_by_role("button", name=re.compile("save", re.I)).click()
    link = newest_confirm_link()
    page.goto(link)
    page.get_by_role("button", name="Yes, make these changes").click()
    expect(page.get_by_role("heading", level=1)).to_have_text("Your changes are made")
    events = ConsentEvent.objects.count()

    page.goto(link)

    expect(page.get_by_role("heading", level=1)).to_have_text("Your changes were already made")
    expect(page.get_by_role("button")).to_have_count(0)
    assert ConsentEvent.objects.count() == events
