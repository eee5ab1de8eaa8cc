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
