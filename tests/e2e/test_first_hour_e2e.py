"""A new operator's first hour with the email editor, in the browser: what a marketing person
who has never seen tidings would trip over."""

from __future__ import annotations

import re
from urllib.parse import urlsplit

from playwright.sync_api import Dialog, Page, expect

from tests.e2e.helpers import sign_in
from tidings.campaigns.models import Template
from tidings.campaigns.rendering import ensure_default_layout


def leave_and_stay(page: Page) -> str:
    """Click "Dashboard" in the menu, and answer the browser's "Leave site?" with "Stay";
    the dialog's type."""
    asked: list[str] = []

    def stay(dialog: Dialog) -> None:
        asked.append(dialog.type)
        dialog.dismiss()

    page.once("dialog", stay)  # answered as it opens: the click waits for the answer
    page.get_by_role("link", name="Dashboard").click()
    expect(page.locator("main h1")).not_to_have_text("Dashboard")
    assert asked, "the page was left without asking"
    return asked[0]


def test_leaving_an_unsaved_email_asks_first_and_saving_does_not(page: Page, owner, live_server):
    """Twenty minutes of blocks were lost without a word to one click on the menu: the page
    never asked before it was left."""
    ensure_default_layout()
    sign_in(page)
    page.goto("/campaigns/templates/new/?starter=newsletter")
    page.get_by_label("Name:").fill("December news")
    page.locator("#block-0-text").fill("Our December")
    assert leave_and_stay(page) == "beforeunload"
    expect(page.locator("#block-0-text")).to_have_value("Our December")  # still here
    assert urlsplit(page.url).path == "/campaigns/templates/new/"

    page.get_by_role("button", name="Save and preview").click()  # saving asks nothing
    expect(page).to_have_url(re.compile(r"/campaigns/templates/\d+/preview/"))
    assert Template.objects.filter(name="December news").exists()


def test_a_block_moved_is_a_change_and_an_untouched_page_leaves_quietly(
    page: Page, owner, live_server
):
    ensure_default_layout()
    sign_in(page)
    page.goto("/campaigns/templates/new/?starter=letter")
    page.get_by_role("link", name="Dashboard").click()  # nothing changed: no question
    expect(page).to_have_url(re.compile(r"/$"))

    page.goto("/campaigns/templates/new/?starter=letter")
    page.get_by_role("button", name="Move down block 1 (Text)").click()
    expect(page.locator("#block-announcer")).to_contain_text("moved to position 2")
    assert leave_and_stay(page) == "beforeunload"


def test_a_refused_save_still_counts_as_unsaved(page: Page, owner, live_server):
    """The page the server shows after a refused save holds edits that are nowhere else."""
    ensure_default_layout()
    sign_in(page)
    page.goto("/campaigns/templates/new/?starter=letter")
    page.get_by_label("Name:").fill("Letter")
    page.get_by_text("Font, colours and width").click()
    page.locator("#settings-text_colour").fill("#bbbbbb")  # too faint: the save is refused
    page.get_by_role("button", name="Save and preview").click()
    expect(page.get_by_text("1 problem to fix before saving")).to_be_visible()
    assert leave_and_stay(page) == "beforeunload"
