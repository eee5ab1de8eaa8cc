"""An operator builds an email from blocks in the browser — by drag and drop and by keyboard —
previews it at phone width, sends it through the delivery engine to an SMTP server, and the
message that arrives renders at 375 px and 1200 px without overflowing, with its pictures, and
with its button's link tracked.  The README's editor screenshot is taken here."""

from __future__ import annotations

import io
import re
from email import policy
from email.parser import BytesParser

from PIL import Image
from playwright.sync_api import Page, expect

from tests.campaigns.delivery_helpers import SmtpSink, transports_for
from tests.campaigns.lifecycle_helpers import make_list, make_sender, subscriber
from tests.e2e.conftest import readme_screenshot
from tests.e2e.helpers import browser_page, sign_in
from tidings.campaigns.engine import deliver_pending
from tidings.campaigns.lifecycle import do_create_campaign, start_due_campaigns
from tidings.campaigns.models import Campaign, Template
from tidings.campaigns.rendering import ensure_default_layout
from tidings.media.actions import do_upload_image


def block_types(page: Page) -> list[str]:
    return page.locator("#block-list > li").evaluate_all("els => els.map(e => e.dataset.type)")


def add_block_by_keyboard(page: Page, kind_label: str) -> None:
    page.get_by_label("Add a block").select_option(label=kind_label)
    page.get_by_label("Add a block").focus()
    page.keyboard.press("Tab")  # to "Add block"
    expect(page.locator("#add-block-button")).to_be_focused()
    page.keyboard.press("Enter")


def photo() -> bytes:
    image = Image.new("RGB", (600, 300), (31, 95, 184))
    image.paste((255, 204, 0), (0, 0, 300, 300))
    out = io.BytesIO()
    image.save(out, "JPEG")
    return out.getvalue()


def test_an_email_built_from_blocks_arrives_responsive_with_pictures_and_tracked_links(
    page: Page, owner, live_server, settings, tmp_path
):
    settings.TIDINGS_BASE_URL = live_server.url  # pictures and tracked links point here
    ensure_default_layout()
    news = make_list()
    subscriber("Ada Lovelace", news, email="ada@example.com")
    sender = make_sender()
    picture, _ = do_upload_image(photo(), name="Team photo", alt="The team at work", actor=owner)

    sign_in(page)
    page.goto("/campaigns/templates/new/?format=blocks")
    page.get_by_label("Name").fill("Blocks newsletter")
    page.get_by_label("Subject").fill("Hello {{ contact.first_name }}")

    # Keyboard: add four blocks with the "Add a block" control.
    for label in ("Heading", "Text", "Image", "Button"):
        add_block_by_keyboard(page, label)
    expect(page.locator("#block-list > li")).to_have_count(4)
    page.locator("#block-0-text").fill("Hello {{ contact.first_name }}")
    text = page.locator("#block-1-text")
    text.fill("Thanks,\nThe team")
    page.locator("#block-2-src-pick").select_option(value=picture.path)
    expect(page.locator("#block-2-src")).to_have_value(picture.path)
    page.locator("#block-2-alt").fill("The team at work")
    page.locator("#block-3-label").fill("Read the story")
    page.locator("#block-3-url").fill("https://example.com/story")

    # Keyboard: move the button up twice, with Enter on its "Move up"; focus stays on it.
    move_up = page.get_by_role("button", name="Move up block 4 (Button)")
    move_up.focus()
    page.keyboard.press("Enter")
    moved = page.get_by_role("button", name="Move up block 3 (Button)")
    expect(moved).to_be_focused()
    page.keyboard.press("Enter")
    expect(page.get_by_role("button", name="Move up block 2 (Button)")).to_be_focused()
    assert block_types(page) == ["heading", "button", "text", "image"]
    expect(page.locator("#block-announcer")).to_contain_text("moved to position 2 of 4")

    # Drag and drop: the picture's handle onto the button's place (a tall window: the mouse
    # stays in view from one block to the other).
    page.set_viewport_size({"width": 1280, "height": 3000})
    handle = page.locator("#block-list > li[data-type=image] .drag-handle")
    target = page.locator("#block-list > li[data-type=button] legend")
    box_from, box_to = handle.bounding_box(), target.bounding_box()
    page.mouse.move(box_from["x"] + 5, box_from["y"] + 5)
    page.mouse.down()
    for step in range(1, 21):
        y = box_from["y"] + (box_to["y"] - box_from["y"] - 10) * step / 20
        page.mouse.move(box_from["x"] + 5, y)
        page.wait_for_timeout(20)
    page.mouse.up()
    expect(page.locator("#block-list > li").nth(1)).to_have_attribute("data-type", "image")
    assert block_types(page) == ["heading", "image", "button", "text"]
    # The names follow the new order, so the server reads the form as shown.
    expect(page.locator("#block-list > li").nth(1).locator("input[type=hidden]")).to_have_attribute(
        "name", "blocks-1-type"
    )

    # The live preview at phone width: 375 px, no sideways scrolling, the content in it.
    phone = page.frame_locator(".preview-phone:not(.preview-dark) iframe")
    expect(phone.locator("body")).to_contain_text("Thanks,")
    expect(phone.locator("img[alt='The team at work']")).to_be_visible()
    frame_width = page.locator(".preview-phone:not(.preview-dark) iframe").evaluate(
        "f => f.clientWidth"
    )
    assert frame_width == 375  # the email's own width, inside the frame's border
    overflow = phone.locator("html").evaluate("e => e.scrollWidth - e.clientWidth")
    assert overflow <= 0
    expect(page.frame_locator(".preview-dark iframe").locator("body")).to_contain_text("Thanks,")
    page.set_viewport_size({"width": 1280, "height": 1000})
    page.locator("#blocks-heading").scroll_into_view_if_needed()
    page.wait_for_timeout(300)
    readme_screenshot(page, "editor.png", tmp_path)

    page.get_by_role("button", name="Save and preview").click()
    expect(page.get_by_role("heading", level=1)).to_contain_text(
        "Preview: Template Blocks newsletter"
    )
    template = Template.objects.get(name="Blocks newsletter")
    assert template.format == "blocks"

    campaign = do_create_campaign(
        template,
        name="Blocks",
        topic=news.topic,
        sender=sender,
        lists=[news],
        segments=[],
        actor=owner,
    )
    with SmtpSink() as sink:
        settings.TIDINGS_TRANSPORTS = transports_for(sink)
        page.goto(f"/campaigns/{campaign.pk}/schedule/")
        page.get_by_role("button", name="Send now").click()
        page.get_by_role("button", name="Confirm: send to 1 now").click()
        expect(page).to_have_url(f"{live_server.url}/campaigns/{campaign.pk}/")
        assert start_due_campaigns() == [campaign.pk]
        deliver_pending(max_seconds=10)
    assert Campaign.objects.get(pk=campaign.pk).status == "finished"
    (received,) = sink.received
    message = BytesParser(policy=policy.default).parsebytes(received.data)
    assert message["Subject"] == "Hello Ada"
    html = message.get_body(("html",)).get_content()
    assert "Thanks,\r\nThe team" in message.get_body(("plain",)).get_content()

    button = re.search(r'<a href="([^"]+)"[^>]*>\s*Read the story', html)
    assert button and button.group(1).startswith(f"{live_server.url}/t/c/"), "button not tracked"
    for width in (375, 1200):
        page.set_viewport_size({"width": width, "height": 900})
        page.set_content(html, wait_until="load")
        assert page.evaluate("document.documentElement.scrollWidth") <= width, width
        images = page.locator("img[alt='The team at work']")
        expect(images).to_have_count(1)
        assert images.evaluate("img => img.complete && img.naturalWidth") == 600
        assert images.evaluate("img => img.getBoundingClientRect().right") <= width
        expect(page.get_by_text("Read the story")).to_be_visible()


def test_picking_a_library_picture_by_keyboard_fills_its_description_as_alt_text(
    page: Page, owner, live_server
):
    """With JavaScript the pick is copied into the address field in the browser, so the
    server never saw it: the library's description has to reach the alt field there too."""
    ensure_default_layout()
    picture, _ = do_upload_image(photo(), name="fair.jpg", alt="Our stand at the fair", actor=None)
    sign_in(page)
    page.goto("/campaigns/templates/new/?starter=blank")
    add_block_by_keyboard(page, "Image")
    pick = page.locator("select[data-image-pick]").first
    pick.focus()
    pick.select_option(value=picture.path)
    block = page.locator("#block-list > li").last
    expect(block.locator("[data-image-src]")).to_have_value(picture.path)
    expect(block.get_by_role("textbox", name="Description (alt text)")).to_have_value(
        "Our stand at the fair"
    )


def test_two_columns_stacked_on_a_phone_line_up_with_the_rest_of_the_email(browser):
    """On a phone the two halves stack, and the right one kept its 12 px gutter: its words sat
    further in than the left half's and every other block's."""
    import json

    from tidings.campaigns.blocks import blocks_to_html
    from tidings.campaigns.rendering import SAMPLE_CONTACT, CompiledMessage, MessageLinks

    source = json.dumps(
        {
            "version": 1,
            "settings": {},
            "blocks": [
                {"type": "text", "text": "Above both"},
                {"type": "columns", "left_text": "Left words", "right_text": "Right words"},
            ],
        }
    )
    compiled = CompiledMessage.from_sources(subject="Hi", body=blocks_to_html(source), fmt="html")
    links = MessageLinks(
        unsubscribe_url="https://news.example.co.uk/u/T",
        preferences_url="https://news.example.co.uk/p/T",
        view_url="https://news.example.co.uk/archive/1/",
    )
    html = compiled.render(SAMPLE_CONTACT, links).html
    lefts = (
        "['Above both', 'Left words', 'Right words'].map(words => Array.from("
        "document.querySelectorAll('p, div')).filter(e => e.textContent.trim() === words)"
        ".pop().getBoundingClientRect().left)"
    )
    for width, stacked in ((375, True), (1200, False)):
        with browser_page(browser, width=width) as page:
            page.set_content(html, wait_until="load")
            above, left, right = page.evaluate(lefts)
            assert left == above, width
            assert (right == left) if stacked else (right > left + 100), (width, left, right)


def test_a_picture_uploaded_in_the_tab_the_upload_link_opens_can_be_picked_on_return(
    page: Page, owner, live_server, tmp_path
):
    """The pickers were filled when the page loaded: with an empty library there was no
    picker at all, and a picture uploaded in the new tab could be chosen only after reloading
    (losing the edits)."""
    ensure_default_layout()
    sign_in(page)
    page.goto("/campaigns/templates/new/?starter=blank")
    add_block_by_keyboard(page, "Image")
    block = page.locator("#block-list > li").last
    pick = block.locator("select[data-image-pick]")
    expect(pick.locator("option")).to_have_count(1)

    with page.context.expect_page() as opened:
        block.get_by_role("link", name="Upload a picture to the library").click()
    library = opened.value
    file = tmp_path / "stand.jpg"
    file.write_bytes(photo())
    library.get_by_label("Picture").set_input_files(str(file))
    library.get_by_label("Description").fill("Our stand at the fair")
    library.get_by_role("button", name="Upload").click()
    expect(library.get_by_role("heading", level=1)).to_be_visible()
    library.close()

    page.bring_to_front()
    page.evaluate("window.dispatchEvent(new Event('focus'))")  # headless: no real focus change
    expect(pick.locator("option")).to_have_count(2)
    pick.select_option(index=1)
    expect(block.locator("[data-image-src]")).to_have_value(re.compile(r"^/media/\w+/"))
    expect(block.get_by_role("textbox", name="Description (alt text)")).to_have_value(
        "Our stand at the fair"
    )
    # A block added after the upload offers the picture too.
    add_block_by_keyboard(page, "Two columns")
    expect(
        page.locator("#block-list > li")
        .last.locator("select[data-image-pick]")
        .first.locator("option")
    ).to_have_count(2)


def test_an_arabic_paragraph_is_right_aligned_with_its_full_stop_at_its_left_end(browser):
    """Arabic blocks were sent with no direction: Chromium drew the paragraph from the left, and
    the full stop typed after the last word showed at the right end, beside the first word."""
    import json

    from tidings.campaigns.blocks import blocks_to_html
    from tidings.campaigns.rendering import SAMPLE_CONTACT, CompiledMessage, MessageLinks

    arabic = "شكرا لاشتراكك في نشرتنا."
    source = json.dumps(
        {
            "version": 1,
            "settings": {},
            "blocks": [
                {"type": "text", "text": "Above"},
                {"type": "text", "text": arabic},
                {"type": "button", "label": "هل أنت مستعد؟", "url": "https://example.com/"},
            ],
        }
    )
    compiled = CompiledMessage.from_sources(subject="Hi", body=blocks_to_html(source), fmt="html")
    links = MessageLinks(
        unsubscribe_url="https://news.example.co.uk/u/T",
        preferences_url="https://news.example.co.uk/p/T",
        view_url="",
    )
    html = compiled.render(SAMPLE_CONTACT, links).html
    measure = """(words) => {
        const p = Array.from(document.querySelectorAll('p, span'))
            .filter(e => e.textContent.trim() === words).pop();
        const node = p.firstChild;
        const range = document.createRange();
        const at = (i) => { range.setStart(node, i); range.setEnd(node, i + 1);
                            return range.getBoundingClientRect(); };
        const box = p.parentElement.getBoundingClientRect();
        return {direction: getComputedStyle(p).direction,
                first: at(0).left, stop: at(node.length - 1).left,
                textRight: at(0).right, contentRight: box.right};
    }"""
    with browser_page(browser, width=600) as page:
        page.set_content(html, wait_until="load")
        found = page.evaluate(measure, arabic)
        assert found["direction"] == "rtl"
        # The first letter is at the right, where the content's right edge is (right-aligned);
        # the full stop, typed last, is left of every letter.
        assert abs(found["textRight"] - found["contentRight"]) <= 2, found
        assert found["stop"] < found["first"], found
        label = page.evaluate(measure, "هل أنت مستعد؟")
        assert label["direction"] == "rtl" and label["stop"] < label["first"], label


def test_a_removed_block_can_be_put_back_by_keyboard_until_the_next_change(
    page: Page, owner, live_server
):
    """ "Remove" lost the block and everything typed in it at once, with no way back."""
    ensure_default_layout()
    sign_in(page)
    page.goto("/campaigns/templates/new/?starter=blank")
    for label in ("Heading", "Text", "Button"):
        add_block_by_keyboard(page, label)
    page.locator("#block-1-text").fill("Words worth keeping")

    page.get_by_role("button", name="Remove block 2 (Text)").focus()
    page.keyboard.press("Enter")
    assert block_types(page) == ["heading", "button"]
    undo = page.get_by_role("button", name="Undo")
    expect(undo).to_be_focused()  # reachable at once, by keyboard
    status = page.locator("#block-undo")
    expect(status).to_have_attribute("role", "status")
    expect(status).to_contain_text("Block 2 (Text) removed.")
    page.keyboard.press("Enter")
    assert block_types(page) == ["heading", "text", "button"]
    expect(page.locator("#block-1-text")).to_have_value("Words worth keeping")
    expect(page.get_by_role("button", name="Remove block 2 (Text)")).to_be_focused()
    expect(undo).to_be_hidden()
    expect(page.locator("#block-announcer")).to_contain_text("Text put back as block 2.")

    # The next change ends the chance to undo; focus is not lost with the button.
    page.get_by_role("button", name="Remove block 3 (Button)").focus()
    page.keyboard.press("Enter")
    expect(undo).to_be_focused()
    page.keyboard.press("Shift+Tab")
    page.locator("#block-0-text").focus()
    page.keyboard.type(" again")
    expect(undo).to_be_hidden()
    assert block_types(page) == ["heading", "text"]
    expect(status).not_to_contain_text("removed")


def test_the_undo_offer_ends_by_itself_and_focus_moves_to_where_the_block_was(
    page: Page, owner, live_server
):
    ensure_default_layout()
    sign_in(page)
    page.goto("/campaigns/templates/new/?starter=blank")
    page.clock.install()
    for label in ("Heading", "Text"):
        add_block_by_keyboard(page, label)
    page.get_by_role("button", name="Remove block 1 (Heading)").focus()
    page.keyboard.press("Enter")
    undo = page.get_by_role("button", name="Undo")
    expect(undo).to_be_focused()
    page.clock.run_for(11_000)
    expect(undo).to_be_hidden()
    expect(page.get_by_role("button", name="Remove block 1 (Text)")).to_be_focused()
    assert block_types(page) == ["text"]
