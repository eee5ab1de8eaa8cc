"""What many browser tests do the same way."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any
from urllib.parse import urlsplit

from playwright.sync_api import Browser, Page

from tests.conftest import OPERATOR_PASSWORD

# How long a browser test waits for a page, an element or an `expect` to come true.  Generous:
# under a loaded machine (CI, helpers' test runs side by side) a page can take several seconds,
# and a wait that passes returns as soon as it is true, so only a failure waits this long.
DEFAULT_TIMEOUT_MS = 30_000


def sign_in(page: Page, username: str = "owner", password: str = OPERATOR_PASSWORD) -> None:
    """Sign in on the login page as an operator made by the fixtures (``owner`` by default)."""
    page.goto("/login/")
    page.get_by_label("Username").fill(username)
    page.get_by_label("Password").fill(password)
    page.get_by_role("button", name="Sign in").click()


@contextmanager
def browser_page(
    browser: Browser,
    base_url: str | None = None,
    width: int = 1280,
    *,
    height: int = 800,
    javascript: bool = True,
    **options: Any,
) -> Iterator[Page]:
    """A page in a fresh browser context with a viewport of ``width`` × ``height``, JavaScript
    on or off, and any other ``Browser.new_context`` options (``locale``, ...); the context is
    closed afterwards."""
    if base_url is not None:
        options["base_url"] = base_url
    context = browser.new_context(
        viewport={"width": width, "height": height}, java_script_enabled=javascript, **options
    )
    context.set_default_timeout(DEFAULT_TIMEOUT_MS)
    try:
        yield context.new_page()
    finally:
        context.close()


@contextmanager
def signed_in_page(
    browser: Browser,
    base_url: str,
    width: int,
    *,
    height: int = 800,
    javascript: bool = True,
    **options: Any,
) -> Iterator[Page]:
    """A page as ``browser_page`` gives it, signed in as ``owner`` and past the login page
    (the sign-in's redirect has arrived, so the test's first ``goto`` cannot race it)."""
    with browser_page(
        browser, base_url, width, height=height, javascript=javascript, **options
    ) as page:
        sign_in(page)
        page.wait_for_url(lambda url: urlsplit(url).path != "/login/")
        yield page
