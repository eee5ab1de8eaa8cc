"""The email a block document makes, looked at in chromium as readers see it: the starter's
example picture shows (in the editor's preview and in the message), two columns of pictures
stack on a phone, and the message has its own dark-mode colours."""

from __future__ import annotations

from playwright.sync_api import Page, expect

from tests.e2e.helpers import sign_in
from tidings.campaigns.rendering import ensure_default_layout


def test_the_announcement_starters_picture_shows_in_the_preview_and_is_still_flagged(
    page: Page, owner, live_server, settings
):
    """The Announcement's placeholder picture pointed at https://example.com/your-picture.png,
    which holds no picture: every preview showed a broken image."""
    from tidings.campaigns.blocks.starters import STARTERS, leftovers

    settings.TIDINGS_BASE_URL = live_server.url
    ensure_default_layout()
    sign_in(page)
    page.goto("/campaigns/templates/new/?starter=announcement")
    for frame in ("desktop", "phone:not(.preview-dark)"):
        picture = page.frame_locator(f".preview-{frame} iframe").get_by_role(
            "img", name="Replace this picture with one of your own"
        )
        expect(picture).to_be_visible()
        expect(picture).to_have_js_property("complete", True)
        assert picture.evaluate("img => img.naturalWidth") == 1120
    # It is still the starter's, and the send confirmation still says so.
    assert any(
        "example picture" in line for line in leftovers(STARTERS["announcement"].body(), "blocks")
    )


def _render(document: dict) -> str:
    """The message a block document makes for the made-up reader, as sent."""
    import json

    from tidings.campaigns.blocks import blocks_to_html
    from tidings.campaigns.rendering import SAMPLE_CONTACT, CompiledMessage, MessageLinks

    compiled = CompiledMessage.from_sources(
        subject="Hi", body=blocks_to_html(json.dumps(document)), fmt="html"
    )
    links = MessageLinks(
        unsubscribe_url="https://news.example.co.uk/u/T",
        preferences_url="https://news.example.co.uk/p/T",
        view_url="",
    )
    return compiled.render(SAMPLE_CONTACT, links).html


def _serve_pictures(page: Page) -> None:
    """Every https://pictures.example/… address answers with a 600 × 300 PNG."""
    import io

    from PIL import Image

    out = io.BytesIO()
    Image.new("RGB", (600, 300), (31, 95, 184)).save(out, "PNG")
    page.route(
        "https://pictures.example/**",
        lambda route: route.fulfill(body=out.getvalue(), content_type="image/png"),
    )


BOXES = """() => Object.fromEntries(
  ["Above", "Story", "Left", "Right"].map(alt => [alt,
    (({left, right, top, width}) => ({left, right, top, width}))(
      document.querySelector(`img[alt="${alt}"]`).getBoundingClientRect())]))"""


def test_two_columns_with_pictures_stack_full_width_on_a_phone(browser):
    """On a phone the two halves stacked, but each picture kept its desktop width (268 px),
    centred in a 343 px column with the words beside it starting 37 px further left; and the
    layout's table-cell padding (6 px 8px, meant for Markdown tables) shrank every picture."""
    from tests.e2e.helpers import browser_page

    html = _render(
        {
            "version": 1,
            "blocks": [
                {"type": "text", "text": "Above both"},
                {"type": "image", "src": "https://pictures.example/story.png", "alt": "Story"},
                {
                    "type": "columns",
                    "left_image": "https://pictures.example/l.png",
                    "left_alt": "Left",
                    "left_text": "Left words, long enough to wrap onto a second line on a phone",
                    "right_image": "https://pictures.example/r.png",
                    "right_alt": "Right",
                    "right_text": "Right words",
                },
                {"type": "image", "src": "https://pictures.example/a.png", "alt": "Above"},
            ],
        }
    )
    for width in (375, 1280):
        with browser_page(browser, width=width, height=900) as page:
            _serve_pictures(page)
            page.set_content(html, wait_until="load")
            assert page.evaluate("document.documentElement.scrollWidth") <= width, width
            words = page.get_by_text("Above both").evaluate("e => e.getBoundingClientRect().left")
            box = page.evaluate(BOXES)
            story, left, right = box["Story"], box["Left"], box["Right"]
            assert story["left"] == words, (width, story, words)
            if width == 375:
                # Stacked, each as wide as the full-width picture, lined up with the words.
                assert story["width"] == 375 - 2 * 16, story
                for half in (left, right):
                    assert (half["left"], half["width"]) == (story["left"], story["width"])
                assert right["top"] > left["top"] + left["width"] / 2
            else:
                # Side by side, the content's width (536 px) shared with a 24 px gutter.
                assert story["width"] == 536, story
                assert left["top"] == right["top"]
                assert left["left"] == story["left"] and right["right"] == story["right"]
                assert right["left"] - left["right"] == 24


# Every piece of text on the page: its colour and the colour painted behind it (the nearest
# ancestor with a background), and their WCAG contrast.
CONTRASTS = """() => {
  const rgb = (c) => (c.match(/[\\d.]+/g) || []).map(Number);
  const lum = ([r, g, b]) => [r, g, b].map((v) => { v /= 255;
      return v <= 0.04045 ? v / 12.92 : ((v + 0.055) / 1.055) ** 2.4; })
    .reduce((sum, v, i) => sum + v * [0.2126, 0.7152, 0.0722][i], 0);
  const behind = (el) => { for (; el; el = el.parentElement) {
      const c = rgb(getComputedStyle(el).backgroundColor);
      if (c.length === 3 || (c.length === 4 && c[3] > 0)) return c.slice(0, 3); }
    return [255, 255, 255]; };
  const walker = document.createTreeWalker(document.body, NodeFilter.SHOW_TEXT);
  const found = [];
  for (let node; (node = walker.nextNode());) {
    const el = node.parentElement, words = node.textContent.trim();
    if (!words || !el.getClientRects().length || getComputedStyle(el).opacity === "0") continue;
    const fg = rgb(getComputedStyle(el).color).slice(0, 3), bg = behind(el);
    const [a, b] = [lum(fg), lum(bg)].sort((x, y) => y - x);
    found.push({words: words.slice(0, 30), ratio: (a + 0.05) / (b + 0.05), background: lum(bg)});
  }
  return found;
}"""


def _starting(found: list[dict], words: str) -> dict:
    return next(f for f in found if f["words"].startswith(words))


def test_the_email_has_dark_mode_colours_and_every_word_reads_in_both_schemes(browser):
    """The email had no dark-mode rules: Apple Mail showed it white in dark mode, and the
    preview's "dark mode" was only an imitation of the programs that invert colours."""
    from tests.e2e.helpers import browser_page
    from tidings.campaigns.blocks.pages import dark
    from tidings.campaigns.rendering import SAMPLE_CONTACT, CompiledMessage, MessageLinks

    blocks = _render(
        {
            "version": 1,
            "settings": {"text_colour": "#333333", "link_colour": "#1f5fb8"},
            "blocks": [
                {"type": "heading", "text": "Spring news", "level": 1},
                {"type": "text", "text": "Above both, with [a link](https://example.com/)"},
                {"type": "columns", "left_text": "Left *words*", "right_text": "- Right"},
                {"type": "button", "label": "Read on", "url": "https://example.com/"},
                {"type": "social", "links": [{"network": "website", "url": "https://a.example"}]},
                {"type": "footer", "text": "Small print, [unsubscribe](https://example.com/u)"},
            ],
        }
    )
    assert '<meta name="color-scheme" content="light dark">' in blocks
    assert '<meta name="supported-color-schemes" content="light dark">' in blocks
    # A pasted HTML body with its own dark text keeps a white content area in dark mode.
    pasted = (
        CompiledMessage.from_sources(
            subject="Hi",
            body='<p style="color:#333333">Pasted words</p><p>More <a href="https://a.example">x</a></p>',
            fmt="html",
        )
        .render(
            SAMPLE_CONTACT,
            MessageLinks(
                unsubscribe_url="https://news.example.co.uk/u/T",
                preferences_url="https://news.example.co.uk/p/T",
                view_url="https://news.example.co.uk/v/T",
            ),
        )
        .html
    )
    for scheme in ("light", "dark"):
        for name, html in (("blocks", blocks), ("pasted", pasted)):
            with browser_page(browser, width=375, color_scheme=scheme) as page:
                page.set_content(html, wait_until="load")
                found = page.evaluate(CONTRASTS)
                assert len(found) > 8, found
                faint = [f for f in found if f["ratio"] < 4.5]
                assert faint == [], (scheme, name, faint)
                first = _starting(found, "Spring news" if name == "blocks" else "Pasted words")
                if scheme == "dark" and name == "blocks":
                    assert first["background"] < 0.05, first  # dark behind the words
                    footer = _starting(found, "You are receiving this email")
                    assert footer["background"] < 0.05, footer
                else:
                    assert first["background"] == 1, (scheme, name, first)
    # The editor's dark preview shows the email's own dark rules, whatever the frame's scheme.
    with browser_page(browser, width=375, color_scheme="light") as page:
        page.set_content(dark(blocks), wait_until="load")
        found = page.evaluate(CONTRASTS)
        assert _starting(found, "Spring news")["background"] < 0.05
        assert all(f["ratio"] >= 4.5 for f in found)
