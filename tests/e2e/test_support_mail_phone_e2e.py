"""The help desk's support mail reads as cards on a phone, its buttons in reach of the keyboard.

At 375 px "What happened" was a narrow column (the reason a word a line) and the buttons were
off the screen: the operator scrolled the table sideways to find "Try again".
"""

import pytest
from playwright.sync_api import Browser, expect

from tests.e2e.helpers import signed_in_page

RAW = (
    b"From: Someone Else <someone.else@example.org>\r\nTo: support@example.com\r\n"
    b"Subject: Re: your enquiry\r\nMessage-ID: <x1@example.org>\r\n\r\nHello\r\n"
)


def _kept_mail() -> None:
    from tidings.crm.inbound.processing import OTHER_ADDRESS
    from tidings.crm.models import InboundMail

    InboundMail.objects.create(
        source="pipe",
        status=InboundMail.Status.UNPROCESSED,
        reason=f"a reply to someone's conversation {OTHER_ADDRESS}: an operator checks it",
        size=len(RAW),
        raw=RAW,
    )


@pytest.mark.parametrize("width", [375, 1280])
def test_support_mail_is_cards_on_a_phone_and_its_buttons_are_keyboard_reachable(
    browser: Browser, live_server, owner, width
):
    _kept_mail()
    with signed_in_page(browser, live_server.url, width) as page:
        page.goto("/crm/mail/")
        table = page.get_by_role("table", name="Support mail, newest first")
        expect(table).to_be_visible()
        retry = page.get_by_role("button", name="Try again")
        open_new = page.get_by_role("button", name="Open a conversation for its sender")
        expect(retry).to_be_visible()
        expect(open_new).to_be_visible()
        assert page.evaluate("document.documentElement.scrollWidth - window.innerWidth") <= 0
        sideways = table.evaluate("t => t.scrollWidth - t.clientWidth")
        scroller = page.locator(".table-scroll").evaluate("b => b.scrollWidth - b.clientWidth")
        if width == 375:
            assert sideways <= 0 and scroller <= 0, (sideways, scroller)
            labels = table.evaluate(
                "t => Array.from(t.querySelectorAll('tbody td')).map("
                "td => getComputedStyle(td, '::before').content.replace(/^\"|\"$/g, ''))"
            )
            assert "What happened" in labels, labels
            # The reason reads across the card, not a word a line.
            what = page.locator('td[data-label="What happened"]').bounding_box()
            assert what is not None and what["width"] > 300, what
        else:
            assert table.evaluate("t => getComputedStyle(t).display") == "table"
        for button in (retry, open_new):
            box = button.bounding_box()
            assert box is not None and box["x"] >= 0 and box["x"] + box["width"] <= width, box
        # Keyboard only: Tab reaches both buttons.
        for button in (retry, open_new):
            for _ in range(80):
                page.keyboard.press("Tab")
                if button.evaluate("b => b === document.activeElement"):
                    break
            expect(button).to_be_focused()
