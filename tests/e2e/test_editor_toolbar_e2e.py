"""The block editor's formatting toolbar, by keyboard and with a screen reader: each tool names
the field and the block it acts on, and "Link" asks for the address in an in-page dialog that
checks it, rather than with window.prompt."""

from __future__ import annotations

import re

from playwright.sync_api import Dialog, Page, expect

from tests.e2e.helpers import sign_in
from tests.e2e.test_block_editor_e2e import add_block_by_keyboard
from tidings.campaigns.rendering import ensure_default_layout


def no_prompt(page: Page) -> list[str]:
    """Browser dialogs (alert, prompt) the page opened: each dismissed, its message kept."""
    opened: list[str] = []

    def dismiss(dialog: Dialog) -> None:
        opened.append(dialog.message)
        dialog.dismiss()

    page.on("dialog", dismiss)
    return opened


def tool_names(page: Page) -> list[str]:
    return page.locator(".field-tools [data-tool]").evaluate_all(
        "els => els.map(e => e.getAttribute('aria-label'))"
    )


def test_every_formatting_tool_names_its_field_and_block_and_follows_a_move(
    page: Page, owner, live_server
):
    """ "Bold", "Italic", "Link" were named the same in every block: a screen reader's list of
    buttons held ten "Bold"s, with nothing to tell which text each would change."""
    ensure_default_layout()
    sign_in(page)
    page.goto("/campaigns/templates/new/?starter=newsletter")
    expect(page.locator(".block-editor.enhanced")).to_be_visible()
    names = tool_names(page)
    assert len(names) > 20
    assert len(set(names)) == len(names), sorted(n for n in names if names.count(n) > 1)
    # The accessible name a screen reader reads (and a speech user says) starts with the tool.
    bold = page.get_by_role("button", name="Bold, Text, block 3 (Text)", exact=True)
    expect(bold).to_have_count(1)
    expect(
        page.get_by_role("button", name="Link, Left: text, block 7 (Two columns)", exact=True)
    ).to_have_count(1)
    expect(
        page.get_by_role(
            "combobox", name="Insert a placeholder into Heading, block 1 (Heading)", exact=True
        )
    ).to_have_count(1)
    expect(page.get_by_role("toolbar", name="Formatting, Text, block 3 (Text)")).to_have_count(1)

    # Moved up, the block's tools say its new place.
    page.get_by_role("button", name="Move up block 3 (Text)").focus()
    page.keyboard.press("Enter")
    expect(page.get_by_role("button", name="Move up block 2 (Text)")).to_be_focused()
    expect(page.get_by_role("button", name="Bold, Text, block 2 (Text)", exact=True)).to_have_count(
        1
    )
    # A block added later is named too.
    add_block_by_keyboard(page, "Text")
    count = page.locator("#block-list > li").count()
    expect(
        page.get_by_role("button", name=f"Italic, Text, block {count} (Text)", exact=True)
    ).to_have_count(1)


def test_link_asks_for_the_address_in_a_dialog_that_checks_it_by_keyboard(
    page: Page, owner, live_server
):
    """ "Link" opened window.prompt: it could take any text as an address, say nothing about a
    wrong one, and left focus wherever the browser put it."""
    prompts = no_prompt(page)
    ensure_default_layout()
    sign_in(page)
    page.goto("/campaigns/templates/new/?starter=blank")
    add_block_by_keyboard(page, "Text")
    text = page.locator("#block-0-text")
    text.fill("Read the news today.")
    text.evaluate("t => t.setSelectionRange(9, 13)")  # "news"

    page.get_by_role("button", name="Link, Text, block 1 (Text)").focus()
    page.keyboard.press("Enter")
    dialog = page.get_by_role("dialog", name="Insert a link")
    expect(dialog).to_be_visible()
    address = dialog.get_by_role("textbox", name="Link address")
    expect(address).to_be_focused()
    expect(dialog.get_by_role("textbox", name="Link text")).to_have_value("news")
    expect(dialog).to_contain_text("Into Text, block 1 (Text).")

    # A javascript: address is refused, with a message at the field; the dialog stays open.
    address.fill("javascript:alert(1)")
    page.keyboard.press("Enter")
    expect(dialog.get_by_role("alert")).to_contain_text(
        "must start with https://, http://, mailto: or tel:"
    )
    expect(address).to_have_attribute("aria-invalid", "true")
    expect(address).to_be_focused()
    expect(dialog).to_be_visible()
    address.fill("https://")
    page.keyboard.press("Enter")
    expect(dialog.get_by_role("alert")).to_contain_text("Write the link address")
    address.fill("https://example.com/a page")
    page.keyboard.press("Enter")
    expect(dialog.get_by_role("alert")).to_contain_text("cannot contain spaces")
    expect(text).to_have_value("Read the news today.")

    address.fill("https://example.com/news")
    expect(address).not_to_have_attribute("aria-invalid", "true")
    page.keyboard.press("Enter")
    expect(dialog).to_be_hidden()
    expect(text).to_have_value("Read the [news](https://example.com/news) today.")
    expect(text).to_be_focused()  # back where the typing was, the link's words selected
    assert text.evaluate("t => t.value.slice(t.selectionStart, t.selectionEnd)") == "news"
    # The preview follows: the link is in the email.
    phone = page.frame_locator(".preview-phone:not(.preview-dark) iframe")
    expect(phone.get_by_role("link", name="news")).to_have_count(1)

    # Escape cancels: nothing changes, focus goes back to the text as it was.
    text.evaluate("t => t.setSelectionRange(0, 4)")
    page.get_by_role("button", name="Link, Text, block 1 (Text)").click()
    expect(dialog).to_be_visible()
    expect(address).to_be_focused()
    page.keyboard.press("Escape")
    expect(dialog).to_be_hidden()
    expect(text).to_be_focused()
    assert text.evaluate("t => [t.selectionStart, t.selectionEnd]") == [0, 4]
    expect(text).to_have_value("Read the [news](https://example.com/news) today.")

    # A mail address works too; without words chosen, the address is the link's words.
    text.evaluate("t => t.setSelectionRange(t.value.length, t.value.length)")
    page.get_by_role("button", name="Link, Text, block 1 (Text)").click()
    address.fill("mailto:hello@example.com")
    dialog.get_by_role("button", name="Insert link").click()
    expect(text).to_have_value(
        "Read the [news](https://example.com/news) today."
        "[hello@example.com](mailto:hello@example.com)"
    )
    assert prompts == []


def test_each_tool_shows_the_word_its_name_starts_with_and_fits_a_phone(
    page: Page, owner, live_server
):
    """Bold and Italic showed "B" and "I" while their names were "Bold, …" and "Italic, …": a
    speech user saying "click B" (what they see) matched no button (WCAG 2.5.3, label in
    name)."""
    ensure_default_layout()
    page.set_viewport_size({"width": 375, "height": 800})
    sign_in(page)
    page.goto("/campaigns/templates/new/?starter=newsletter")
    expect(page.locator(".block-editor.enhanced")).to_be_visible()
    tools = page.locator(".field-tools button[data-tool]").evaluate_all(
        """els => els.map(e => [e.innerText.replace(/[^\\p{L}\\p{N} ]/gu, "").trim(),
                              e.getAttribute("aria-label")])"""
    )
    assert tools
    for shown, name in tools:
        # The name starts with the whole of what is shown, as a word: "B" is not "Bold".
        assert re.match(re.escape(shown) + r"\b", name), (shown, name)
    bold = page.get_by_role("button", name="Bold, Text, block 3 (Text)", exact=True)
    expect(bold).to_have_text("Bold")
    expect(page.get_by_role("button", name="List, Text, block 3 (Text)", exact=True)).to_have_text(
        "• List"
    )
    # At phone width the toolbars wrap: nothing is wider than the screen.
    assert page.evaluate("document.documentElement.scrollWidth") <= 375
    bar = page.get_by_role("toolbar", name="Formatting, Text, block 3 (Text)").bounding_box()
    assert bar is not None and bar["x"] + bar["width"] <= 375


def test_link_takes_phone_numbers_and_link_placeholders_but_no_word_placeholder(
    page: Page, owner, live_server
):
    """The dialog took only http(s) and mailto: a "tel:" link, "{{ unsubscribe_url }}" or an
    address carrying "{{ contact.company }}" (all of which the email takes) were refused, so
    they could only be typed as Markdown by hand."""
    ensure_default_layout()
    sign_in(page)
    page.goto("/campaigns/templates/new/?starter=blank")
    add_block_by_keyboard(page, "Text")
    text = page.locator("#block-0-text")
    text.fill("")
    dialog = page.get_by_role("dialog", name="Insert a link")
    address = dialog.get_by_role("textbox", name="Link address")
    words = dialog.get_by_role("textbox", name="Link text")
    link = page.get_by_role("button", name="Link, Text, block 1 (Text)")

    def add_link(url: str, link_words: str) -> None:
        text.evaluate("t => t.setSelectionRange(t.value.length, t.value.length)")
        link.focus()
        page.keyboard.press("Enter")
        expect(address).to_be_focused()
        expect(address).to_have_accessible_description(
            re.compile(r"tel:.*\{\{ unsubscribe_url \}\}")
        )
        address.fill(url)
        words.fill(link_words)
        page.keyboard.press("Enter")

    # A phone number as people write it: its link loses the spaces.
    add_link("tel:+44 1244 000 000", "Call us")
    expect(dialog).to_be_hidden()
    expect(text).to_have_value("[Call us](tel:+441244000000)")
    add_link("{{ unsubscribe_url }}", "Leave this list")
    expect(dialog).to_be_hidden()
    add_link("https://example.com/?ref={{ contact.company }}", "Our shop")
    expect(dialog).to_be_hidden()
    expect(text).to_have_value(
        "[Call us](tel:+441244000000)[Leave this list]({{ unsubscribe_url }})"
        "[Our shop](https://example.com/?ref={{ contact.company }})"
    )
    # A placeholder that is words, not an address, is refused, naming the ones that are links.
    add_link("{{contact.first_name}}", "Me")
    expect(dialog.get_by_role("alert")).to_contain_text(
        "{{ contact.first_name }} is not a link address"
    )
    expect(dialog.get_by_role("alert")).to_contain_text("{{ unsubscribe_url }}")
    expect(address).to_have_attribute("aria-invalid", "true")
    address.fill("tel:call-me")
    page.keyboard.press("Enter")
    expect(dialog.get_by_role("alert")).to_contain_text("After tel: comes a phone number")
    page.keyboard.press("Escape")
    expect(dialog).to_be_hidden()

    # The email takes each of them as a link.
    phone = page.frame_locator(".preview-phone:not(.preview-dark) iframe")
    expect(phone.get_by_role("link", name="Call us")).to_have_attribute("href", "tel:+441244000000")
    expect(phone.get_by_role("link", name="Leave this list")).to_have_count(1)
    expect(phone.get_by_role("link", name="Our shop")).to_have_count(1)


def test_the_placeholder_menu_is_browsed_with_arrow_keys_and_inserts_on_enter(
    page: Page, owner, live_server
):
    """An arrow key on the closed menu changed its value, and every change inserted: the first
    press put {{ contact.name }} into the text and moved the focus there, so a keyboard user
    could reach no other placeholder."""
    ensure_default_layout()
    sign_in(page)
    page.goto("/campaigns/templates/new/?starter=blank")
    add_block_by_keyboard(page, "Text")
    text = page.locator("#block-0-text")
    text.fill("Hello ")
    text.evaluate("t => t.setSelectionRange(6, 6)")
    menu = page.get_by_role("combobox", name="Insert a placeholder into Text, block 1 (Text)")
    expect(menu).to_have_accessible_description(re.compile("arrow keys, then press Enter"))
    menu.focus()
    options = menu.locator("option").evaluate_all("os => os.map(o => o.value)")
    for _ in range(3):
        page.keyboard.press("ArrowDown")
    expect(menu).to_be_focused()
    expect(menu).to_have_value(options[3])
    expect(text).to_have_value("Hello ")  # nothing inserted while browsing
    page.keyboard.press("Enter")
    expect(text).to_have_value("Hello " + options[3])
    expect(text).to_be_focused()
    expect(menu).to_have_value("")

    # Browsed, then left with Tab: nothing inserted, the menu as it was.
    menu.focus()
    page.keyboard.press("ArrowDown")
    page.keyboard.press("Tab")
    expect(text).to_have_value("Hello " + options[3])
    expect(menu).to_have_value("")
    # Chosen with the mouse: inserted at once.
    menu.select_option(value=options[1])
    expect(text).to_have_value(re.compile(re.escape(options[1])))
