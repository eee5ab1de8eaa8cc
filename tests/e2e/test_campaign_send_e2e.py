"""An operator sends a campaign to the outbox from the browser and reads it there."""

import re

from playwright.sync_api import Page, expect

from tests.campaigns.lifecycle_helpers import make_campaign, make_list, make_sender, subscriber
from tests.conftest import OPERATOR_PASSWORD
from tidings.campaigns.engine import deliver_pending
from tidings.campaigns.lifecycle import start_due_campaigns
from tidings.campaigns.models import Campaign, OutboxMessage


def test_an_operator_sends_a_campaign_now_and_finds_it_in_the_outbox(
    page: Page, owner, live_server, settings
):
    settings.MAILERS = {"default": {"BACKEND": "tidings.campaigns.transports.outbox.EmailBackend"}}
    settings.TIDINGS_SMTP_URL = "outbox://"
    news = make_list()
    subscriber("Ada Lovelace", news, email="ada@example.com")
    campaign = make_campaign(news, sender=make_sender(), with_template=True, name="November news")

    page.goto("/login/")
    page.get_by_label("Username").fill("owner")
    page.get_by_label("Password").fill(OPERATOR_PASSWORD)
    page.get_by_role("button", name="Sign in").click()
    page.goto(f"/campaigns/{campaign.pk}/schedule/")
    page.get_by_role("button", name="Send now").click()
    page.get_by_role("button", name="Confirm: send to 1 now").click()
    expect(page).to_have_url(f"{live_server.url}/campaigns/{campaign.pk}/")

    # What `tidings worker` does: start the campaigns whose time has come, then send.
    assert start_due_campaigns() == [campaign.pk]
    deliver_pending(max_seconds=10)
    assert Campaign.objects.get(pk=campaign.pk).status == "finished"
    message = OutboxMessage.objects.get()
    assert "ada@example.com" in message.to

    page.goto("/outbox/")
    row = page.get_by_role("row", name=re.compile(re.escape(message.subject)))
    expect(row).to_contain_text("ada@example.com")
    row.get_by_role("link").click()
    expect(page.get_by_role("heading", level=1)).to_have_text(message.subject)
