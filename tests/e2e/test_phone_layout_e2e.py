"""Operator pages fit a phone's screen: nothing makes a 375 px page scroll sideways.

Found by crawling `make demo` at 375 px: the dashboard's bulk-sender checklist (laid out as a
flex row by the getting-started steps' CSS) pushed 257 px off the screen, tables widened the page
although they scroll in their own box, a sender's long address in a heading and the system
emails' plain-text preview (one long line) did too — the last even on a desktop.
"""

import pytest
from playwright.sync_api import Browser

from tests.e2e.helpers import signed_in_page

PAGES = [
    "/",  # the getting-started steps and the bulk-sender checklist
    "/campaigns/deliverability/",
    "/campaigns/senders/",
    "/bounces/",
    "/audience/emails/crm_held/",
    "/audience/emails/confirmation/",
    "/analytics/snippet",
    "/settings/api/tokens/",
    "/audience/imports/",
    "/crm/",  # My work
    "/crm/enquiries/",
]

# What people paste into a message: a shared document's address, one word 120 letters long.
SHARED_LINK = (
    "https://docs.google.com/document/d/1BxiMVs0XRA5nFMdKvBdBZjgmUUqptlbs74OgvE2upms/edit"
    "?usp=sharing&ouid=112233445566778899"
)


def _a_token_and_an_import(owner) -> None:
    from tidings.api.actions import do_create_api_token
    from tidings.audience.models import Import

    do_create_api_token(
        name="Shop sync", operator=owner, scopes=["read", "write", "send"], actor=owner
    )
    Import.objects.create(
        status=Import.Status.FINISHED,
        consent_source="sign-up sheet",
        rows_read=2000,
        original_filename="mailchimp-export-subscribed-members-2026.csv",
    )


def _an_enquiry_with_a_link() -> None:
    from tidings.crm.actions import do_receive_enquiry

    do_receive_enquiry(
        {"name": "Dana Scully", "email": "dana@example.org"},
        channel="web form",
        subject="Our call",
        message=f"{SHARED_LINK} is the plan we talked about.",
    )


@pytest.mark.parametrize("width", [375, 1280])
def test_operator_pages_do_not_scroll_sideways(browser: Browser, live_server, owner, width):
    from tidings.campaigns.models import Sender

    Sender.objects.create(
        name="Example Software Ltd newsletter",
        email="newsletter-and-announcements@mail.example-software.co.uk",
        verified=True,
    )
    _a_token_and_an_import(owner)
    _an_enquiry_with_a_link()
    with signed_in_page(browser, live_server.url, width) as page:
        wide = {}
        for path in PAGES:
            response = page.goto(path)
            assert response is not None and response.status == 200, path
            overflow = page.evaluate("document.documentElement.scrollWidth - window.innerWidth")
            if overflow > 0:
                wide[path] = overflow
        assert wide == {}, f"pages wider than {width} px (by px): {wide}"


# The operator's list tables read on a phone as cards: no sideways scrolling inside the table
# (half of each row out of sight), no header row taller than the rows (column names squeezed
# into word columns: the imports' header row was 110 px, "Left the earlier tool" on 4 lines).
STACKED = {
    "/settings/api/tokens/": ["Name", "Starts with", "Scopes", "Expires", "State"],
    "/audience/imports/": ["File", "Status", "Rows", "Left the earlier tool", "Bad rows"],
}
_TABLE = """t => ({
    sideways: t.scrollWidth - t.clientWidth,
    header: t.querySelector('thead').getBoundingClientRect().height,
    display: getComputedStyle(t).display,
    labels: Array.from(t.querySelectorAll('tbody td')).map(
        td => getComputedStyle(td, '::before').content.replace(/^"|"$/g, '')),
    role: t.getAttribute('role'),
})"""


@pytest.mark.parametrize("path", list(STACKED))
def test_list_tables_stack_into_labelled_rows_on_a_phone(
    browser: Browser, live_server, owner, path
):
    _a_token_and_an_import(owner)
    for width in (375, 1280):
        with signed_in_page(browser, live_server.url, width) as page:
            page.goto(path)
            found = page.locator("table").first.evaluate(_TABLE)
            assert found["role"] == "table"  # still a table to screen readers
            if width == 375:
                assert found["sideways"] <= 0, found
                assert found["header"] <= 1, found  # kept for screen readers only
                for label in STACKED[path]:
                    assert label in found["labels"], (label, found["labels"])
            else:  # a desktop keeps the ordinary table
                assert found["display"] == "table" and found["header"] > 20, found
                assert set(found["labels"]) <= {"none", "normal"}, found
