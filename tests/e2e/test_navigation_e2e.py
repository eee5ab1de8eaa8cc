"""The grouped navigation on a phone, without JavaScript: the menus are <details> elements."""

from playwright.sync_api import Browser, expect

from tests.e2e.helpers import signed_in_page


def test_on_a_phone_without_javascript_an_operator_opens_a_group_and_goes_to_a_page(
    browser: Browser, live_server, owner
):
    with signed_in_page(browser, live_server.url, 375, height=740, javascript=False) as page:
        page.goto("/audience/segments/")
        assert page.evaluate("document.documentElement.scrollWidth") <= 375
        nav = page.get_by_role("navigation", name="Main")
        expect(nav.get_by_role("link", name="Contacts")).not_to_be_visible()
        nav.get_by_text("Audience").click()
        contacts = nav.get_by_role("link", name="Contacts")
        expect(contacts).to_be_visible()
        expect(nav.get_by_role("link", name="Segments")).to_have_attribute("aria-current", "page")
        contacts.click()
        expect(page).to_have_url(f"{live_server.url}/audience/contacts/")
        nav.get_by_text("Audience").click()
        expect(nav.get_by_role("link", name="Contacts")).to_have_attribute("aria-current", "page")
        search = page.get_by_role("searchbox", name="Search contacts, campaigns and enquiries")
        search.fill("ada")
        search.press("Enter")
        expect(page.get_by_role("heading", level=1)).to_have_text("Search")


def test_the_dashboard_fits_a_phone_with_the_bulk_sender_checklist(
    browser: Browser, live_server, owner
):
    """The bulk-sender checklist's items are sentences: they once took the getting-started
    steps' flex layout (both lists had the class "checklist"), so each word group became a
    column and the dashboard scrolled sideways by 257 px at 375 px."""
    with signed_in_page(browser, live_server.url, 375, height=740) as page:
        page.goto("/")
        expect(
            page.get_by_role("heading", name="Bulk-sender checklist (Gmail, Yahoo, Microsoft)")
        ).to_be_visible()
        expect(page.get_by_role("heading", name="Getting started")).to_be_visible()
        assert page.evaluate("document.documentElement.scrollWidth") <= 375
        item = page.locator("#checklist-complaints")
        assert item.evaluate("e => getComputedStyle(e).display") == "list-item"


def test_one_menu_is_open_at_a_time(browser: Browser, live_server, owner):
    """Opening Campaigns left Audience open beneath it: two menus drawn over each other."""
    with signed_in_page(browser, live_server.url, 1280) as page:
        expect(page.get_by_role("heading", name="Dashboard")).to_be_visible()
        nav = page.get_by_role("navigation", name="Main")
        opened = (
            "Array.from(document.querySelectorAll('nav details[open]'))"
            ".map(d => d.dataset.navGroup)"
        )
        nav.locator("summary", has_text="Audience").focus()
        page.keyboard.press("Enter")
        nav.locator("summary", has_text="Campaigns").focus()
        page.keyboard.press("Enter")
        assert page.evaluate(opened) == ["campaigns"]
        page.keyboard.press("Tab")
        expect(nav.get_by_role("link", name="Campaigns", exact=True)).to_be_focused()
        nav.locator("summary", has_text="Campaigns").click()
        assert page.evaluate(opened) == []


def test_escape_or_a_click_elsewhere_closes_the_open_menu(browser: Browser, live_server, owner):
    """An open menu stayed open over the page until its own button was pressed again."""
    with signed_in_page(browser, live_server.url, 1280) as page:
        heading = page.get_by_role("heading", name="Dashboard")
        expect(heading).to_be_visible()
        nav = page.get_by_role("navigation", name="Main")
        audience = nav.locator("summary", has_text="Audience")
        contacts = nav.get_by_role("link", name="Contacts")
        audience.focus()
        page.keyboard.press("Enter")
        page.keyboard.press("Tab")
        expect(contacts).to_be_focused()
        page.keyboard.press("Escape")
        expect(contacts).not_to_be_visible()
        expect(audience).to_be_focused()

        audience.click()
        expect(contacts).to_be_visible()
        heading.click()
        expect(contacts).not_to_be_visible()


def test_pages_with_wide_tables_and_code_fit_a_phone(browser: Browser, live_server, owner):
    """At 375 px the bounces page scrolled sideways by 168 px (a visually hidden table heading,
    positioned absolutely, escaped the table's own scroller) and the website snippet page by
    47 px (a long function call in a sentence did not wrap)."""
    with signed_in_page(browser, live_server.url, 375, height=740) as page:
        expect(page.get_by_role("heading", name="Dashboard")).to_be_visible()
        for path in ("/bounces/", "/analytics/snippet", "/campaigns/deliverability/"):
            page.goto(path)
            assert page.evaluate("document.documentElement.scrollWidth") <= 375, path
