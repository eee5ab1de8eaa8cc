"""What an accessibility audit (axe-core, WCAG 2.1 A/AA, at 1280 px and 375 px) found in `make
demo`, checked here without axe: the properties themselves, in the browser.

- The block editor's "Move up" and "Move down" buttons were named "Move block 2 (Text) up": the
  words on the button were not in its name, so "click Move up" in voice control found nothing.
  axe: label-content-name-mismatch (WCAG 2.5.3).
- A CRM list of work (enquiries, support requests) has a filter form and a bulk form, both with an
  "owner" menu, and both had the id "id_owner": "Assign to" labelled the filter's menu and the bulk
  menu had no name at all.  axe missed it (its label check matches either element by id); the
  duplicate-id check below found it.
"""

from __future__ import annotations

import json

import pytest
from playwright.sync_api import Browser, Page

from tests.e2e.helpers import sign_in


def test_the_crm_bulk_form_names_its_own_menu(page: Page, owner):
    sign_in(page)
    page.wait_for_url("**/")
    for path in ("/crm/enquiries/", "/crm/support-requests/"):
        page.goto(path)
        assign = page.get_by_label("Assign to", exact=True)
        assert assign.count() == 1
        assert assign.evaluate("e => e.tagName === 'SELECT' && e.closest('form.bulk') !== null")
        owner_filter = page.get_by_label("Owner", exact=True)
        assert owner_filter.evaluate("e => e.closest('form.filters') !== null")


BLOCKS = {
    "version": 1,
    "settings": {},
    "blocks": [{"type": "heading", "text": "Big news"}, {"type": "text", "text": "Hello"}],
}

NAMES_WITHOUT_THEIR_WORDS = """() => [...document.querySelectorAll(".block-actions button")]
  .map(b => [b.innerText.trim(), b.getAttribute("aria-label") || b.innerText.trim()])
  .filter(([words, name]) => !name.toLowerCase().includes(words.toLowerCase()))"""


@pytest.mark.parametrize("javascript", [False, True], ids=["as-served", "renumbered-by-script"])
def test_the_block_editors_buttons_say_their_words_in_their_names(
    browser: Browser, live_server, owner, javascript
):
    from tidings.campaigns.models import Template
    from tidings.campaigns.rendering import ensure_default_layout

    template = Template.objects.create(
        name="News",
        layout=ensure_default_layout(),
        format=Template.Format.BLOCKS,
        subject="News",
        body=json.dumps(BLOCKS),
    )
    context = browser.new_context(base_url=live_server.url, java_script_enabled=javascript)
    page = context.new_page()
    try:
        sign_in(page)
        page.wait_for_url("**/")
        page.goto(f"/campaigns/templates/{template.pk}/")
        assert page.locator(".block-actions button").count() == 6
        assert page.evaluate(NAMES_WITHOUT_THEIR_WORDS) == []
        # The name still says which block, for a screen reader's list of buttons.
        assert page.get_by_role("button", name="Move up block 2 (Text)").count() == 1
        assert page.get_by_role("button", name="Move down block 1 (Heading)").count() == 1
    finally:
        context.close()
