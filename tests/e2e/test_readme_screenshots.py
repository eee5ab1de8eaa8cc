"""The README's screenshots of the dashboard (getting-started checklist, grouped navigation) and
of a campaign report (opens and clicks in five-minute steps), taken in a real browser; each test
also checks what its picture shows."""

from __future__ import annotations

from datetime import timedelta

from django.utils import timezone
from playwright.sync_api import Page, expect

from tests.campaigns.event_helpers import sent_campaign
from tests.campaigns.lifecycle_helpers import make_list
from tests.e2e.conftest import readme_screenshot
from tests.e2e.helpers import sign_in
from tidings.campaigns.events import record_delivery_event


def test_the_dashboard_leads_a_new_operator_through_the_first_hour(page: Page, owner, tmp_path):
    make_list()
    sign_in(page)
    checklist = page.get_by_role("region", name="Getting started")
    expect(checklist).to_contain_text("1 of 7 done")
    expect(checklist.get_by_role("link", name="Add a sender")).to_be_visible()
    expect(checklist.locator("[data-step=list]")).to_have_count(0)  # done: gone
    readme_screenshot(page, "dashboard.png", tmp_path)


def test_a_report_shows_the_first_hour_in_five_minute_steps(page: Page, owner, tmp_path):
    campaign, deliveries = sent_campaign(people=40, sent_ago=timedelta(minutes=50))
    campaign.name = "Autumn news"
    campaign.save(update_fields=["name"])
    start = timezone.now() - timedelta(minutes=45)
    for i, delivery in enumerate(deliveries):
        record_delivery_event(delivery.pk, "open", at=start + timedelta(minutes=i))
        if i % 3 == 0:
            record_delivery_event(delivery.pk, "click", at=start + timedelta(minutes=i + 1), link=0)
    sign_in(page)
    page.goto(f"/campaigns/{campaign.pk}/report/")
    expect(page.get_by_text("The numbers, 5 minutes at a time")).to_be_visible()
    # Several points, not one dot: a polyline through the five-minute steps.
    line = page.locator("#time-heading ~ svg.chart polyline, svg.chart polyline").first
    assert len(line.get_attribute("points").split()) >= 8
    page.locator("#time-heading").scroll_into_view_if_needed()
    top = page.locator("#time-heading").evaluate("h => h.getBoundingClientRect().top")
    page.evaluate(f"window.scrollBy(0, {top - 16})")
    readme_screenshot(page, "report.png", tmp_path)
