"""The cookie banner and the statistics script on a website page, in a real browser.

The "website" is a page the browser is handed for ``<live server>/website/...`` (Playwright
answers it; Django never sees it), carrying the snippet exactly as the snippet page gives it.
The browser identifies as an ordinary desktop Chrome: headless Chrome's own user agent is (rightly)
not counted as a visitor.
"""

from __future__ import annotations

import re
from collections.abc import Iterator

import pytest
from playwright.sync_api import Browser, Page, expect

from tests.e2e.helpers import DEFAULT_TIMEOUT_MS
from tidings.analytics.models import ConsentRecord, PageView
from tidings.lib import ingest

DESKTOP_CHROME = (
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) "
    "Chrome/131.0.0.0 Safari/537.36"
)
WEBSITE = """<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>Example Software</title>
<script>
  window.consentEvents = [];
  document.addEventListener("tidings:consent", e => consentEvents.push(e.detail.choice));
</script>
<script src="/static/analytics/banner.js" defer></script>
<script src="/static/analytics/a.js" data-consent="analytics" defer></script>
</head><body><main><h1>Example Software</h1><p><a href="/website/pricing">Pricing</a></p></main>
</body></html>"""


@pytest.fixture
def site(browser: Browser, live_server, settings) -> Iterator[tuple[Page, list[str]]]:
    """A page of the website, and the list of statistics requests it sent (URLs)."""
    settings.TIDINGS_BASE_URL = live_server.url
    settings.TIDINGS_ANALYTICS_SITES = ["localhost"]
    context = browser.new_context(
        base_url=live_server.url, user_agent=DESKTOP_CHROME, locale="en-GB"
    )
    context.set_default_timeout(DEFAULT_TIMEOUT_MS)
    context.route(
        re.compile(r".*/website/.*"),
        lambda route: route.fulfill(body=WEBSITE, content_type="text/html; charset=utf-8"),
    )
    page = context.new_page()
    sent: list[str] = []
    page.on("request", lambda r: sent.append(r.url) if "/a/collect" in r.url else None)
    answered = _answered.setdefault(page, [])
    for event in ("requestfinished", "requestfailed"):
        page.on(event, lambda r: answered.append(r.url) if "/a/collect" in r.url else None)
    try:
        yield page, sent
    finally:
        # A beacon still on its way when the context closes can reach the live server (shared by
        # every test of this process) after this test's buffered rows were discarded, and be
        # written into the next test's database (seen in CI under load: two page views where
        # one page sent one).  Wait until the server has answered each request the page sent.
        for _ in range(100):
            if len(answered) >= len(sent):
                break
            page.wait_for_timeout(100)
        _answered.pop(page, None)
        context.close()


# The statistics requests the live server has answered, per page.  The server thread shares the
# test's SQLite connection (in memory): the test reads the database only once none is in flight.
_answered: dict[Page, list[str]] = {}


def flushed_page_views(page: Page, expected: int) -> list[PageView]:
    """The page views stored once the ingest buffer is written (a beacon may still be on its
    way: wait up to 5 s for ``expected`` of them)."""
    views: list[PageView] = []
    for _ in range(50):
        if len(_answered.get(page, ())) < expected:
            page.wait_for_timeout(100)
            continue
        ingest.flush()
        views = list(PageView.objects.order_by("id"))
        if len(views) >= expected:
            return views
        page.wait_for_timeout(100)
    return views


def consent_cookie(page: Page) -> str | None:
    cookies = {c["name"]: c["value"] for c in page.context.cookies()}
    return cookies.get("tidings_consent")


def banner(page: Page):
    return page.get_by_role("region", name="Your choice about cookies and statistics")


def test_nothing_is_sent_before_consent_and_rejecting_sends_nothing_ever(site):
    page, sent = site
    page.goto("/website/")

    expect(banner(page)).to_be_visible()
    accept = page.get_by_role("button", name="Accept all")
    reject = page.get_by_role("button", name="Reject all")
    # "Reject" is exactly as prominent as "Accept": same size, colours and weight.
    style = (
        "e => { const s = getComputedStyle(e); "
        "return [s.backgroundColor, s.color, s.fontSize, s.fontWeight, s.padding, "
        "e.offsetHeight]; }"
    )
    assert accept.evaluate(style) == reject.evaluate(style)
    page.wait_for_timeout(300)  # the script has had every chance to send
    assert sent == []

    reject.click()

    expect(banner(page)).to_be_hidden()
    assert consent_cookie(page).endswith("|analytics=0")
    assert page.evaluate("window.tidings.consent.allowed('analytics')") is False
    assert page.evaluate("window.consentEvents") == [{"analytics": False}]
    page.goto("/website/pricing")
    expect(page.get_by_role("button", name="Cookie settings")).to_be_visible()
    expect(banner(page)).to_have_count(0)
    page.wait_for_timeout(300)
    assert sent == []
    assert flushed_page_views(page, 0) == []
    record = ConsentRecord.objects.get()
    assert (record.choice, record.how) == ({"analytics": False}, "reject")


def test_accepting_counts_the_page_and_the_settings_link_withdraws_it(site):
    page, sent = site
    page.goto("/website/?utm_campaign=autumn&email=ada@example.com")
    page.get_by_role("button", name="Choose").click()
    checkbox = page.get_by_role("checkbox", name="Understanding how visitors use our website")
    expect(checkbox).not_to_be_checked()  # nothing ticked in advance
    assert sent == []

    page.get_by_role("button", name="Accept all").click()

    page.wait_for_function("window.consentEvents.length == 1")
    page.wait_for_timeout(300)
    assert len(sent) == 1
    (view,) = flushed_page_views(page, 1)
    assert (view.path, view.utm_campaign, view.browser) == ("/website/", "autumn", "Chrome")
    assert consent_cookie(page).endswith("|analytics=1")

    page.get_by_role("button", name="Cookie settings").click()
    dialog = page.get_by_role("dialog", name="Your choice about cookies and statistics")
    expect(dialog).to_be_visible()
    expect(checkbox).to_be_checked()  # the settings show the choice made
    checkbox.uncheck()
    page.get_by_role("button", name="Save my choices").click()

    expect(dialog).to_be_hidden()
    expect(page.get_by_role("status").filter(has_text="Your choice is saved.")).to_have_count(1)
    assert consent_cookie(page).endswith("|analytics=0")
    page.goto("/website/pricing")
    page.wait_for_timeout(300)
    assert len(sent) == 1
    assert [r.how for r in ConsentRecord.objects.order_by("id")] == ["accept", "reject"]


def test_the_banner_works_with_the_keyboard_alone(site):
    page, _ = site
    page.goto("/website/")
    expect(banner(page)).to_be_visible()

    page.keyboard.press("Tab")
    expect(page.get_by_role("link", name="Privacy notice")).to_be_focused()
    page.keyboard.press("Tab")
    expect(page.get_by_role("button", name="Accept all")).to_be_focused()
    page.keyboard.press("Tab")
    expect(page.get_by_role("button", name="Reject all")).to_be_focused()
    page.keyboard.press("Tab")
    choose = page.get_by_role("button", name="Choose")
    expect(choose).to_be_focused()
    expect(choose).to_have_attribute("aria-expanded", "false")
    page.keyboard.press("Enter")
    checkbox = page.get_by_role("checkbox", name="Understanding how visitors use our website")
    expect(checkbox).to_be_focused()
    page.keyboard.press("Space")
    expect(checkbox).to_be_checked()
    for _ in range(3):  # Accept all, Reject all, Save my choices
        page.keyboard.press("Tab")
    expect(page.get_by_role("button", name="Save my choices")).to_be_focused()
    page.keyboard.press("Enter")

    settings_button = page.get_by_role("button", name="Cookie settings")
    expect(settings_button).to_be_focused()  # focus lands somewhere sensible, not on <body>
    page.wait_for_function("window.consentEvents.length == 1")
    assert consent_cookie(page).endswith("|analytics=1")

    page.keyboard.press("Enter")
    expect(page.get_by_role("dialog")).to_be_visible()
    expect(checkbox).to_be_focused()
    page.keyboard.press("Escape")
    expect(page.get_by_role("dialog")).to_be_hidden()
    expect(settings_button).to_be_focused()
    assert consent_cookie(page).endswith("|analytics=1")  # Escape changes nothing


def test_global_privacy_control_means_no_statistics_even_after_accepting(site):
    page, sent = site
    page.add_init_script("Object.defineProperty(navigator, 'globalPrivacyControl', {value: true})")
    page.goto("/website/")
    page.get_by_role("button", name="Accept all").click()
    page.wait_for_function("window.consentEvents.length == 1")
    page.wait_for_timeout(300)
    assert sent == []


def test_an_answer_to_an_earlier_banner_is_asked_again_and_counts_nothing(site):
    """The cookie keeps the version of the banner answered; it was never compared, so "yes" to
    a banner that said "without cookies" went on counting after the policy changed what the
    banner says (and the stored answer was acted on before the banner's texts had arrived)."""
    page, sent = site
    old = {"name": "tidings_consent", "value": "000000000000|analytics=1", "path": "/"}
    page.context.add_cookies([{**old, "domain": "localhost"}])
    page.goto("/website/")

    expect(banner(page)).to_be_visible()
    page.wait_for_timeout(300)
    assert sent == []
    assert page.evaluate("window.tidings.consent.allowed('analytics')") is False

    page.get_by_role("button", name="Accept all").click()
    page.wait_for_function("window.consentEvents.length == 1")
    assert not consent_cookie(page).startswith("000000000000|")
    assert len(flushed_page_views(page, 1)) == 1
    assert len(sent) == 1


OWN_SETTINGS_LINK = WEBSITE.replace(
    "</main>", '<p><a href="#" data-tidings-cookie-settings>Manage cookies</a></p></main>'
)


def test_on_a_site_with_its_own_settings_link_focus_moves_to_it_after_answering(site):
    page, _ = site
    page.route(
        re.compile(r".*/own-link/.*"),
        lambda route: route.fulfill(body=OWN_SETTINGS_LINK, content_type="text/html"),
    )
    page.goto("/own-link/")
    reject = page.get_by_role("button", name="Reject all")
    reject.focus()
    page.keyboard.press("Enter")

    expect(banner(page)).to_be_hidden()
    own_link = page.get_by_role("link", name="Manage cookies")
    expect(own_link).to_be_focused()  # not lost on <body>
    expect(page.get_by_role("button", name="Cookie settings")).to_have_count(0)
    page.keyboard.press("Enter")
    expect(page.get_by_role("dialog")).to_be_visible()  # withdrawing is as easy as giving


def test_on_a_short_phone_screen_the_whole_banner_stays_reachable(site):
    page, _ = site
    page.set_viewport_size({"width": 375, "height": 420})  # a phone held sideways, zoomed
    page.goto("/website/")
    page.get_by_role("button", name="Choose").click()

    box = banner(page).bounding_box()
    assert box is not None and box["y"] >= 0 and box["y"] + box["height"] <= 420
    assert page.evaluate("document.documentElement.scrollWidth") <= 375
    title = page.get_by_role("heading", name="Your choice about cookies and statistics")
    title.scroll_into_view_if_needed()
    title_box = title.bounding_box()
    assert title_box is not None and title_box["y"] >= 0  # scrolled to, not cut off above
    page.get_by_role("button", name="Save my choices").click()
    expect(banner(page)).to_be_hidden()
