"""What an accessibility audit (axe-core, WCAG 2.1 A/AA, at 1280 px and 375 px) found in `make
demo`, checked here without axe: the properties themselves, in the browser.

- On a phone every table scrolls sideways inside itself (tidings.css).  A table with no link,
  button or field in it could not be scrolled from the keyboard in Safari (Chrome and Firefox
  make such a scroller focusable themselves): the privacy notice's tables, the audit log, the
  bounce reports, the API tokens, the deliverability reports, an import's first rows, a contact's
  consent history and timeline, and an empty CRM list.  Such tables now take the focus
  (tabindex="0") and are named by their caption.  axe: scrollable-region-focusable (WCAG 2.1.1).
  The same for the journey map and its mail table, and a segment's or a template's error (a
  <pre> that keeps the caret under its place).
- The block editor's "Move up" and "Move down" buttons were named "Move block 2 (Text) up": the
  words on the button were not in its name, so "click Move up" in voice control found nothing.
  axe: label-content-name-mismatch (WCAG 2.5.3).
- A CRM list of work (enquiries, support requests) has a filter form and a bulk form, both with an
  "owner" menu, and both had the id "id_owner": "Assign to" labelled the filter's menu and the bulk
  menu had no name at all.  axe missed it (its label check matches either element by id); the
  duplicate-id check below found it.  The same on a rights request's page: "Extend the deadline"
  and "Refuse" each had a reason box with the id "id_reason", and the refusal's had no name.
"""

from __future__ import annotations

import json
from collections.abc import Iterator

import pytest
from playwright.sync_api import Browser, Page, expect

from tests.e2e.helpers import browser_page, sign_in, signed_in_page

# Every box that scrolls sideways (a table, an error's <pre>, the journey map) must hold something
# focusable or take the focus itself, and a focusable table or box needs a name (a caption, an
# aria-label).  Ids must be unique on the page.
AUDIT_SCROLLERS = """() => {
  const focusable = "a[href], button, input, select, textarea, [tabindex]";
  const problems = [];
  for (const box of document.querySelectorAll("main *")) {
    if (!["auto", "scroll"].includes(getComputedStyle(box).overflowX)) continue;
    if (box.scrollWidth <= box.clientWidth) continue;
    const caption = box.tagName === "TABLE" ? box.querySelector("caption")?.innerText.trim() : "";
    const where = (caption || box.outerHTML).slice(0, 60);
    if (!box.hasAttribute("tabindex") && !box.querySelector(focusable)) {
      problems.push("cannot be scrolled from the keyboard: " + where);
    } else if (box.hasAttribute("tabindex") && box.tagName !== "PRE"
               && !caption && !box.getAttribute("aria-label")) {
      problems.push("focusable but unnamed: " + where);
    }
  }
  const seen = new Set();
  for (const el of document.querySelectorAll("[id]")) {
    if (seen.has(el.id)) problems.push("duplicate id: " + el.id);
    seen.add(el.id);
  }
  return problems;
}"""

OPERATOR_PAGES = [
    "/rights/audit/",
    "/bounces/",
    "/settings/api/tokens/",
    "/crm/orders/",  # an empty CRM list: the header row alone is wider than a phone
    "/crm/support-requests/",
]


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


def test_each_reason_box_on_a_rights_request_has_its_own_label(page: Page, owner):
    from tidings.rights.actions import do_create_rights_request

    request = do_create_rights_request("erase", "ada@example.com")
    sign_in(page)
    page.wait_for_url("**/")
    page.goto(f"/rights/queue/{request.pk}/")
    boxes = page.get_by_label("Reason (the person is told it)")
    assert boxes.count() == 2
    forms = boxes.evaluate_all("els => els.map(e => e.closest('form').action.split('/').pop())")
    assert forms == ["extend", "refuse"]
    assert page.evaluate(AUDIT_SCROLLERS) == []  # no duplicate id left either


def test_an_enquirys_note_reply_and_status_boxes_each_have_their_own_label(
    page: Page, owner, settings
):
    """The reply form and the note form both had a box "id_text", the reply and the work form
    both a menu "id_status": "Internal note" labelled the reply box (a click on it put the
    caret in the reply) and the note's box had no name; "Then set the status to" named the work
    form's menu."""
    from tidings.crm.actions import WEB_FORM, do_receive_enquiry

    settings.TIDINGS_SUPPORT_ADDRESS = "Example Support <support@example.co.uk>"  # replies on
    enquiry = do_receive_enquiry(
        {"name": "Grace Hopper", "email": "grace@example.org"},
        channel=WEB_FORM,
        message="Could you show us a demo?",
    )
    sign_in(page)
    page.wait_for_url("**/")
    page.goto(f"/crm/enquiries/{enquiry.pk}/")
    for label, form in [
        ("Internal note", "note"),
        ("Reply", "reply"),
        ("Status", "work"),
        ("Then set the status to", "reply"),
    ]:
        box = page.get_by_label(label, exact=True)
        expect(box).to_have_count(1)
        assert box.evaluate("e => e.closest('form').action.split('/').at(-2)") == form, label
    page.get_by_text("Internal note", exact=True).click()  # the label: its own box takes focus
    expect(page.get_by_label("Internal note", exact=True)).to_be_focused()
    assert page.evaluate(AUDIT_SCROLLERS) == []  # no duplicate id left either


@pytest.fixture
def phone(browser: Browser, live_server) -> Iterator[Page]:
    with browser_page(browser, live_server.url, 375) as page:
        yield page


def test_wide_tables_on_a_phone_can_be_scrolled_from_the_keyboard(phone: Page, owner):
    from tests.journeys.helpers import welcome
    from tidings.audience.models import Contact

    contact = Contact.objects.create(email="ada@example.com", name="Ada Lovelace")
    journey = welcome()
    problems = {}
    response = phone.goto("/privacy")
    assert response is not None and response.status == 200
    assert phone.locator("table").count() >= 2  # the notice has its tables here
    if found := phone.evaluate(AUDIT_SCROLLERS):
        problems["/privacy"] = found
    sign_in(phone)
    phone.wait_for_url("**/")
    pages = [
        *OPERATOR_PAGES,
        f"/audience/contacts/{contact.pk}/",
        f"/campaigns/journeys/{journey.pk}/",
    ]
    for path in pages:
        response = phone.goto(path)
        assert response is not None and response.status == 200, path
        if found := phone.evaluate(AUDIT_SCROLLERS):
            problems[path] = found
    # A segment's query with a mistake: the error shows the line and a caret under the place.
    phone.goto("/audience/segments/new/")
    phone.get_by_label("Name").fill("Broken")
    phone.locator("[name=query]").fill('((( email ends with "@example.com" and then something long')
    phone.get_by_role("button", name="Check and count").click()
    # The click submits the form: wait for the answer's page, not the page still showing.
    expect(phone.locator("pre.segment-error")).to_have_count(1)
    if found := phone.evaluate(AUDIT_SCROLLERS):
        problems["segment error"] = found
    assert problems == {}


def test_a_focused_table_scrolls_with_the_arrow_keys(phone: Page):
    phone.goto("/privacy")
    table = phone.locator("table[tabindex='0']").first
    assert table.evaluate("t => t.scrollWidth > t.clientWidth")
    table.focus()
    phone.keyboard.press("ArrowRight")
    phone.wait_for_function("t => t.scrollLeft > 0", arg=table.element_handle())


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
    with signed_in_page(browser, live_server.url, 1280, javascript=javascript) as page:
        page.goto(f"/campaigns/templates/{template.pk}/")
        assert page.locator(".block-actions button").count() == 6
        assert page.evaluate(NAMES_WITHOUT_THEIR_WORDS) == []
        # The name still says which block, for a screen reader's list of buttons.
        assert page.get_by_role("button", name="Move up block 2 (Text)").count() == 1
        assert page.get_by_role("button", name="Move down block 1 (Heading)").count() == 1
