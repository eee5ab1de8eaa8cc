"""Four-eyes journeys with the keyboard only, at a phone's width and a desktop's: the author asks
for a confirmation from the journey's page, the second operator follows the dashboard's
*Waiting for a second operator* link with Enter and confirms the journey from its confirm box,
never touching a mouse, each control visibly focused when it is reached."""

from __future__ import annotations

import pytest
from playwright.sync_api import Browser, Locator, Page, expect

from tests.conftest import OPERATOR_PASSWORD
from tests.e2e.helpers import browser_page
from tests.journeys.helpers import make_template, spec
from tests.operators import make_operator
from tidings.journeys.actions import do_create_journey
from tidings.journeys.models import Journey

# A page's every control is reachable in far fewer presses; past this, it is not reachable.
MOST_TABS = 120


def tab_to(page: Page, target: Locator) -> None:
    """Press Tab until ``target`` has the focus (failing if it never does), and check the
    focus can be seen on it (an outline or a box shadow)."""
    handle = target.element_handle()
    for _ in range(MOST_TABS):
        page.keyboard.press("Tab")
        if page.evaluate("(el) => el === document.activeElement", handle):
            break
    else:
        pytest.fail(f"Tab never reached {target}")
    expect(target).to_be_focused()
    seen = page.evaluate(
        """(el) => { const s = getComputedStyle(el);
            return (s.outlineStyle !== 'none' && parseFloat(s.outlineWidth) > 0)
                || s.boxShadow !== 'none'; }""",
        handle,
    )
    assert seen, f"{target} has the focus but shows no focus ring"


def sign_in_with_keys(page: Page, username: str) -> None:
    page.goto("/login/")
    page.get_by_label("Username").focus()
    page.keyboard.type(username)
    page.keyboard.press("Tab")
    page.keyboard.type(OPERATOR_PASSWORD)
    page.keyboard.press("Enter")
    page.wait_for_url(lambda url: "/login/" not in url)


@pytest.mark.parametrize("width", [375, 1280])
def test_a_journey_is_asked_for_and_confirmed_with_the_keyboard_only(
    browser: Browser, live_server, settings, width
):
    settings.TIDINGS_SEND_NEEDS_SECOND_OPERATOR = True
    author = make_operator("author", "editor")
    make_operator("reviewer", "owner")
    make_template("Welcome")
    journey = do_create_journey(spec(), actor=author)

    # The author asks for a second operator from the journey's page.
    with browser_page(browser, live_server.url, width) as page:
        sign_in_with_keys(page, "author")
        page.goto(f"/campaigns/journeys/{journey.pk}/")
        box = page.locator("section.four-eyes")
        expect(box.get_by_role("heading", name="Waiting for a second operator")).to_be_visible()
        ask = box.get_by_role("button", name="Ask a second operator to confirm")
        tab_to(page, ask)
        page.keyboard.press("Enter")
        expect(page.locator("section.four-eyes")).to_contain_text("author asked for it on")

    # The reviewer finds it on the dashboard, follows the link with Enter, and confirms.
    with browser_page(browser, live_server.url, width) as page:
        sign_in_with_keys(page, "reviewer")
        page.goto("/")
        waiting = page.locator("section.waiting-second-operator")
        expect(waiting.get_by_role("heading")).to_have_text("Waiting for a second operator (1)")
        link = waiting.get_by_role("link", name="Welcome")
        tab_to(page, link)
        page.keyboard.press("Enter")
        page.wait_for_url(f"**/campaigns/journeys/{journey.pk}/")
        expect(page.get_by_role("heading", level=1)).to_have_text("Welcome")

        confirm = page.locator("section.four-eyes").get_by_role(
            "button", name="Confirm and activate"
        )
        tab_to(page, confirm)
        page.keyboard.press("Enter")
        expect(page.get_by_role("heading", name="Confirmed by a second operator")).to_be_visible()
        expect(page.locator(".status")).to_have_text("Active")
    assert Journey.objects.get(pk=journey.pk).status == "active"
