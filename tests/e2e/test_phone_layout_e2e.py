"""Operator pages fit a phone's screen: nothing makes a 375 px page scroll sideways.

Found by crawling `make demo` at 375 px: the dashboard's bulk-sender checklist (laid out as a
flex row by the getting-started steps' CSS) pushed 257 px off the screen, tables widened the page
although they scroll in their own box, a sender's long address in a heading and the system
emails' plain-text preview (one long line) did too — the last even on a desktop.
"""

import pytest
from playwright.sync_api import Browser

from tests.e2e.helpers import sign_in

PAGES = [
    "/",  # the getting-started steps and the bulk-sender checklist
    "/campaigns/deliverability/",
    "/campaigns/senders/",
    "/bounces/",
    "/audience/emails/crm_held/",
    "/audience/emails/confirmation/",
    "/analytics/snippet",
]


@pytest.mark.parametrize("width", [375, 1280])
def test_operator_pages_do_not_scroll_sideways(browser: Browser, live_server, owner, width):
    from tidings.campaigns.models import Sender

    Sender.objects.create(
        name="Example Software Ltd newsletter",
        email="newsletter-and-announcements@mail.example-software.co.uk",
        verified=True,
    )
    context = browser.new_context(
        base_url=live_server.url, viewport={"width": width, "height": 800}
    )
    page = context.new_page()
    try:
        sign_in(page)
        page.wait_for_url(f"{live_server.url}/**")
        wide = {}
        for path in PAGES:
            response = page.goto(path)
            assert response is not None and response.status == 200, path
            overflow = page.evaluate("document.documentElement.scrollWidth - window.innerWidth")
            if overflow > 0:
                wide[path] = overflow
        assert wide == {}, f"pages wider than {width} px (by px): {wide}"
    finally:
        context.close()
