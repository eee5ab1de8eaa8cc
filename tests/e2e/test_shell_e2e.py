"""The operator interface's shell in a real browser."""

import re

from playwright.sync_api import Page, expect

from tests.conftest import OPERATOR_PASSWORD
from tidings.policy import get_policy


def test_an_operator_signs_in_and_sees_the_dashboard(page: Page, owner, live_server):
    page.goto("/login/")
    page.get_by_label("Username").fill("owner")
    page.get_by_label("Password").fill(OPERATOR_PASSWORD)
    page.get_by_role("button", name="Sign in").click()

    expect(page).to_have_url(f"{live_server.url}/")
    expect(page.get_by_role("heading", level=1)).to_have_text("Dashboard")
    expect(page.get_by_role("main")).to_contain_text(get_policy().controller.name)
    expect(page.get_by_role("navigation", name="Main")).to_be_visible()


def test_a_wrong_password_is_announced_on_the_sign_in_page(page: Page, owner):
    page.goto("/login/")
    page.get_by_label("Username").fill("owner")
    page.get_by_label("Password").fill("not the password")
    page.get_by_role("button", name="Sign in").click()

    expect(page.get_by_role("alert")).to_contain_text("correct username and password")
    expect(page.get_by_role("heading", level=1)).to_have_text("Sign in")


def test_an_operator_signs_out_with_the_button(page: Page, owner, live_server):
    page.goto("/login/?next=/")
    page.get_by_label("Username").fill("owner")
    page.get_by_label("Password").fill(OPERATOR_PASSWORD)
    page.get_by_role("button", name="Sign in").click()
    expect(page.get_by_role("heading", level=1)).to_have_text("Dashboard")

    page.get_by_role("button", name="Sign out").click()

    expect(page).to_have_url(f"{live_server.url}/login/")
    page.goto("/")
    expect(page).to_have_url(re.compile(r"/login/\?next=/$"))


def test_the_first_tab_reaches_the_skip_link_which_moves_focus_to_the_content(page: Page):
    page.goto("/privacy")

    page.keyboard.press("Tab")
    skip = page.get_by_role("link", name="Skip to main content")
    expect(skip).to_be_focused()
    expect(skip).to_be_in_viewport()
    page.keyboard.press("Enter")

    expect(page.get_by_role("main")).to_be_focused()


def test_a_visitor_reads_the_privacy_notice_of_the_controller(page: Page):
    controller = get_policy().controller.name

    page.goto("/privacy")

    # The notice's content belongs to policy/; the shell only promises a page title and an h1
    # inside a layout that names the controller.
    expect(page).to_have_title(re.compile(rf"Privacy notice.*{re.escape(controller)}"))
    expect(page.get_by_role("heading", level=1)).to_contain_text("Privacy notice")
    expect(page.get_by_role("main")).to_contain_text(controller)
    expect(page.get_by_role("contentinfo")).to_contain_text(controller)
