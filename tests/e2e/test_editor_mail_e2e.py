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
