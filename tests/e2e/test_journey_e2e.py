"""A welcome series built in the browser: a person signs up and confirms through the public form,
gets step 1 at once and step 2 after the wait, unsubscribes with the one-click link and gets
nothing more."""

from __future__ import annotations

import re
from datetime import timedelta

import time_machine
from django.utils import timezone
from playwright.sync_api import Browser, Page, expect

from tests.campaigns.lifecycle_helpers import make_template
from tests.conftest import OPERATOR_PASSWORD
from tidings.audience.actions import do_create_signup_form
from tidings.audience.models import MailingList
from tidings.campaigns.engine import deliver_pending
from tidings.campaigns.models import OutboxMessage
from tidings.journeys.engine import advance_due
from tidings.journeys.models import Enrolment, Journey

URL = re.compile(r"https?://\S+")
STEPS = """[[steps]]
id = "hello"
kind = "send_email"
template = "Welcome"
subject = "Welcome, {{ contact.first_name }}"

[[steps]]
id = "pause"
kind = "wait"
duration = "2 days"

[[steps]]
id = "tips"
kind = "send_email"
template = "Welcome"
subject = "Three tips"

[[steps]]
id = "later"
kind = "wait"
duration = "3 days"

[[steps]]
id = "offer"
kind = "send_email"
template = "Welcome"
subject = "One last thing"
"""


def _subjects() -> list[str]:
    deliver_pending(max_seconds=10)
    return list(OutboxMessage.objects.order_by("pk").values_list("subject", flat=True))


def test_a_welcome_series_built_in_the_browser_runs_until_the_person_unsubscribes(
    page: Page, browser: Browser, owner, live_server, settings
):
    settings.TIDINGS_BASE_URL = live_server.url
    settings.MAILERS = {"default": {"BACKEND": "tidings.campaigns.transports.outbox.EmailBackend"}}
    settings.TIDINGS_SMTP_URL = "outbox://"
    news = MailingList.objects.create(name="Product news", topic="product news")
    do_create_signup_form(lists=[news], slug="news", name="Our newsletter")
    make_template("Welcome")

    # The operator builds and activates the series.
    page.goto("/login/")
    page.get_by_label("Username").fill("owner")
    page.get_by_label("Password").fill(OPERATOR_PASSWORD)
    page.get_by_role("button", name="Sign in").click()
    page.goto("/campaigns/journeys/")
    page.get_by_role("link", name="New journey").first.click()
    page.locator("#id_name").fill("Welcome series")
    page.locator("#id_topic").select_option("product news")
    page.locator("#id_trigger").select_option("confirmed")
    page.locator("#id_steps").fill(STEPS)
    page.get_by_role("button", name="Save").click()
    expect(page.get_by_role("heading", level=1)).to_have_text("Welcome series")
    expect(page.locator("svg.journey-map")).to_be_visible()
    page.get_by_role("button", name="Activate").click()
    expect(page.get_by_text("Active: people who trigger it now enter it.")).to_be_visible()
    assert Journey.objects.get().status == "active"

    # A person signs up and confirms, without JavaScript.
    context = browser.new_context(base_url=live_server.url, java_script_enabled=False)
    public = context.new_page()
    public.goto("/f/news")
    public.get_by_label("Name", exact=False).first.fill("Ada Lovelace")
    public.get_by_label("Email", exact=False).first.fill("ada@example.com")
    public.get_by_role("checkbox").first.check()
    public.get_by_role("button").last.click()
    deliver_pending(max_seconds=10)
    mail = OutboxMessage.objects.order_by("-pk").first()
    confirm = next(link for link in URL.findall(mail.body("plain")) if "/c/" in link)
    public.goto(confirm)
    public.get_by_role("button").last.click()
    expect(public.get_by_role("heading", level=1)).to_be_visible()
    assert Enrolment.objects.get().state == "active"

    # Step 1 at once; step 2 only after the wait.
    advance_due()
    assert "Welcome, Ada" in _subjects()
    advance_due()
    assert "Three tips" not in _subjects()
    with time_machine.travel(timezone.now() + timedelta(days=2, minutes=1), tick=False):
        advance_due()
    assert "Three tips" in _subjects()
    step_two = OutboxMessage.objects.get(subject="Three tips")
    links = [link.rstrip(").,>") for link in URL.findall(step_two.body("plain"))]
    unsubscribe = next(link for link in links if "/u/" in link)

    # The one-click link (RFC 8058), as a mailbox provider posts it.
    response = public.request.post(
        unsubscribe, form={"List-Unsubscribe": "One-Click"}, max_redirects=0
    )
    assert response.status == 200
    assert Enrolment.objects.get().exit_reason == "unsubscribed"
    with time_machine.travel(timezone.now() + timedelta(days=6), tick=False):
        advance_due()
    assert "One last thing" not in _subjects()

    # The operator sees it on the journey's page.
    page.reload()
    expect(page.get_by_text("unsubscribed: 1")).to_be_visible()
    context.close()


BRANCHY = [
    {
        "id": "a-rather-long-step-name-for-the-welcome",
        "kind": "send_email",
        "template": "Welcome",
        "subject": "Welcome to the product news of Example Software, {{ contact.first_name }}",
    },
    {"id": "clicked", "kind": "wait_click", "timeout": "3 days", "then": "fans", "else": "which"},
    {
        "id": "which",
        "kind": "branch",
        "segment": 'company ~ "software" and not opened_in(90d) and job_title ~ "engineer"',
        "then": "tell",
        "else": "done",
    },
    {
        "id": "tell",
        "kind": "notify_operator",
        "to": "sales@example.com",
        "subject": "x",
        "next": "done",
    },
    {"id": "fans", "kind": "webhook", "event": "fan"},
    {"id": "done", "kind": "end"},
]


def test_the_journey_map_reads_at_phone_and_desktop_width(page: Page, owner, live_server):
    """Every step's text stays inside its box, each jump has a lane of its own, and on a phone the
    map keeps a readable size (it scrolls in its own box) without widening the page."""
    from tests.journeys.helpers import welcome

    journey = welcome(steps=BRANCHY, goals=[], activate=False)
    page.goto("/login/")
    page.get_by_label("Username").fill("owner")
    page.get_by_label("Password").fill(OPERATOR_PASSWORD)
    page.get_by_role("button", name="Sign in").click()
    for width in (375, 1280):
        page.set_viewport_size({"width": width, "height": 900})
        page.goto(f"/campaigns/journeys/{journey.pk}/")
        assert page.evaluate("document.documentElement.scrollWidth") <= width
        outside = page.evaluate(
            """() => [...document.querySelectorAll('svg.journey-map g.step')].flatMap(g => {
                const box = g.querySelector('rect').getBBox();
                return [...g.querySelectorAll('text')].filter(t => {
                    const b = t.getBBox();
                    return b.x < box.x || b.x + b.width > box.x + box.width;
                }).map(t => t.textContent);
            })"""
        )
        assert outside == [], outside
        lanes = page.evaluate(
            """() => [...document.querySelectorAll('svg.journey-map path.jump')]
                .map(p => p.getAttribute('d').match(/V/) && p.getAttribute('d').split(' ')[1])"""
        )
        assert len(lanes) == 5 and len(set(lanes)) == 5, lanes  # 2 + 2 + 1 jumps
        summary = page.locator("svg.journey-map text.summary").first
        assert summary.bounding_box()["height"] >= 10  # pixels on the screen: readable
