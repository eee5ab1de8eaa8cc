"""The contact page's "Merge with…": found with a search box, picked and merged with the
keyboard alone, on a 375 px phone screen without sideways scrolling."""

from __future__ import annotations

from playwright.sync_api import Browser

from tests.e2e.helpers import signed_in_page


def test_an_operator_finds_and_merges_a_contact_with_the_keyboard_on_a_phone(
    browser: Browser, live_server, owner
):
    from tidings.audience.actions import do_create_contact
    from tidings.audience.models import Contact

    keep, _ = do_create_contact({"email": "ada@example.com", "name": "Ada"}, purpose="newsletter")
    other, _ = do_create_contact(
        {
            "email": "ada.lovelace-analytical-engines@a-long-company-domain.example.co.uk",
            "name": "Ada Lovelace",
        },
        purpose="newsletter",
    )
    with signed_in_page(browser, live_server.url, 375, height=740) as page:
        page.goto(f"/audience/contacts/{keep.pk}/")
        page.get_by_role("link", name="Merge with…").click()

        search = page.get_by_role("searchbox", name="Address, name or contact id")
        assert search.evaluate("e => e === document.activeElement")  # focused: just type
        page.keyboard.type("lovelace")
        page.keyboard.press("Enter")
        page.wait_for_url("**?q=lovelace")
        choice = page.get_by_role("radio", name=f"Contact #{other.pk}: Ada Lovelace")
        assert choice.is_checked()  # the one match is picked already
        wide = page.evaluate("document.documentElement.scrollWidth - window.innerWidth")
        assert wide <= 0, f"the page scrolls sideways by {wide} px at 375 px"
        page.screenshot(path="test-results/contact-merge-375.png", full_page=True)

        page.get_by_role("checkbox", name="Its address differs").focus()
        page.keyboard.press("Space")
        page.keyboard.press("Tab")  # to "Merge them: this cannot be undone"
        page.keyboard.press("Space")
        page.keyboard.press("Tab")  # to the Merge button
        page.keyboard.press("Enter")
        page.wait_for_url(f"**/audience/contacts/{keep.pk}/")

        assert list(Contact.objects.values_list("pk", flat=True)) == [keep.pk]
