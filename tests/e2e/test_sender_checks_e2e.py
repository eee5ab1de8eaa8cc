"""A sender's domain checks read on a phone (375 px) as on a desktop, and "Check now" works from
the keyboard alone.

Found at 375 px: the three-column table of checks squeezed its Result column until "Passed"
broke into "Passe / d" and each sentence of what to publish ran two words to a line (the page
was 6,000 px tall).  On a phone each check is now a card: its name, its result, then the
sentence at the full width of the screen.
"""

import pytest
from django.utils import timezone
from playwright.sync_api import Browser, expect

from tests.e2e.helpers import signed_in_page
from tidings.campaigns.deliverability.health import Check, DomainHealth

pytestmark = pytest.mark.django_db(transaction=True)

FIX = (
    'Publish a TXT record at example.com._report._dmarc.reports.example.net: "v=DMARC1", or send '
    "the reports to an address at example.com."
)


def _checked_sender():
    from tidings.campaigns.models import Sender

    health = DomainHealth(domain="example.com", selector="tidings")
    health.checks = [
        Check("spf", "SPF", "pass", True, "SPF record found (2 DNS look-ups)."),
        Check("dmarc_rua", "DMARC reports (rua)", "warn", False, "No authorisation.", FIX),
        Check("mta_sts", "MTA-STS", "unknown", False, "Could not check: a server failure."),
    ]
    return Sender.objects.create(
        name="Example Software Ltd",
        email="newsletter@example.com",
        verified=True,
        health=health.to_json(),
        health_status="pass",
        health_checked_at=timezone.now(),
    )


def test_on_a_phone_each_check_is_a_card_with_its_sentence_at_full_width(
    browser: Browser, live_server, owner
):
    _checked_sender()
    with signed_in_page(browser, live_server.url, 375) as page:
        page.goto("/campaigns/senders/")
        rua = page.get_by_role("row", name="DMARC reports (rua)")
        expect(rua).to_contain_text("Passed, with advice")
        result = rua.get_by_role("cell").nth(0)
        sentence = rua.get_by_role("cell").nth(1)
        # "Passed" on one line (it broke into "Passe / d"), the sentence nearly as wide as the
        # screen (it was a column a third as wide).
        line = page.evaluate("parseFloat(getComputedStyle(document.body).lineHeight) || 24")
        assert result.bounding_box()["height"] < 2.5 * line
        assert sentence.bounding_box()["width"] > 300
        assert page.evaluate("document.documentElement.scrollWidth") <= 375


def test_check_now_from_the_keyboard_alone(browser: Browser, live_server, owner, settings):
    settings.TIDINGS_DNS_RESOLVER = "127.0.0.1:9"  # nothing answers: "could not check"
    settings.TIDINGS_DNS_TIMEOUT = 0.5
    _checked_sender()
    with signed_in_page(browser, live_server.url, 1280) as page:
        page.goto("/campaigns/senders/")
        check_now = page.get_by_role("button", name="Check now")
        for _ in range(40):
            page.keyboard.press("Tab")
            if check_now.evaluate("b => b === document.activeElement"):
                break
        else:
            pytest.fail("Tab never reached Check now")
        page.keyboard.press("Enter")
        expect(page.get_by_role("row", name="SPF")).to_contain_text("Could not check")
