"""The block editor's three previews (desktop, phone, dark) are there to be looked at, not used:
a keyboard user tabbing from the editor to "Save and preview" must not pass through every link of
the email three times.  The previews stay in the accessibility tree, each named by its title."""

from __future__ import annotations

from playwright.sync_api import Page, expect

from tests.e2e.helpers import sign_in
from tidings.campaigns.rendering import ensure_default_layout

# What has the keyboard focus, described, including inside a preview frame.
FOCUSED = """() => {
  const el = document.activeElement;
  if (el && el.tagName === "IFRAME") return "iframe: " + el.title;
  return el ? el.tagName + ": " + (el.innerText || el.value || "").trim().slice(0, 40) : "";
}"""


def test_tabbing_past_the_preview_takes_no_stop_in_its_links(page: Page, owner):
    ensure_default_layout()
    sign_in(page)
    page.wait_for_url("**/")
    page.goto("/campaigns/templates/new/?starter=newsletter")
    frames = page.locator(".block-preview iframe")
    expect(frames).to_have_count(3)
    # The previews hold the email's links (button, two in the columns, social, footer's).
    for frame in page.frames[1:]:
        assert frame.locator("a[href]").count() >= 4

    # The last control of the editor (with JavaScript the "Update the preview" button is hidden:
    # the preview follows every keystroke).
    page.locator(".block-settings > summary").focus()
    stops = []
    for _ in range(40):
        page.keyboard.press("Tab")
        stops.append(page.evaluate(FOCUSED))
        if page.get_by_role("button", name="Save and preview").evaluate(
            "b => b === document.activeElement"
        ):
            break
    assert stops == ["BUTTON: Save and preview"], stops

    # Still readable: each preview is a named frame whose document has its links and words.
    names = frames.evaluate_all("fs => fs.map(f => f.title)")
    assert all(names) and len(set(names)) == 3
    for frame in page.frames[1:]:
        expect(frame.get_by_role("link", name="Read the full story")).to_have_count(1)


def test_on_a_phone_the_phone_preview_keeps_its_375_px_and_scrolls_sideways(page: Page, owner):
    """On a 375 px screen the "Phone, 375 px" frame was squeezed to the screen (327 px) under a
    caption saying 375 px: the email showed at a width no 375 px phone has.  It keeps its true
    width and scrolls sideways, by touch or (keyboard only) with the arrow keys; the page itself
    does not scroll sideways."""
    ensure_default_layout()
    page.set_viewport_size({"width": 375, "height": 800})
    sign_in(page)
    page.wait_for_url("**/")
    page.goto("/campaigns/templates/new/?starter=newsletter")
    phone = page.locator(".preview-phone:not(.preview-dark)")
    expect(phone.locator("figcaption")).to_have_text("Phone, 375 px")
    expect(
        page.frame_locator(".preview-phone:not(.preview-dark) iframe").locator("body")
    ).to_contain_text("Read the full story")
    for figure in (phone, page.locator(".preview-dark")):
        width = figure.locator("iframe").evaluate("f => f.clientWidth")
        assert width == 375, width  # the email's viewport, as on the phone
        scroller = figure.locator(".frame-scroller")
        assert scroller.evaluate("s => s.scrollWidth > s.clientWidth")
    assert page.evaluate("() => document.documentElement.scrollWidth") <= 375

    # Keyboard only: Tab reaches the scrolling frame (not the email's links), arrows scroll it.
    scroller = phone.locator(".frame-scroller")
    scroller.scroll_into_view_if_needed()
    page.locator(".block-settings > summary").focus()
    for _ in range(10):
        page.keyboard.press("Tab")
        if scroller.evaluate("s => s === document.activeElement"):
            break
    expect(scroller).to_be_focused()
    page.keyboard.press("ArrowRight")
    page.keyboard.press("ArrowRight")
    page.wait_for_function(
        "() => document.querySelector('.preview-phone:not(.preview-dark) .frame-scroller')"
        ".scrollLeft > 0"
    )
