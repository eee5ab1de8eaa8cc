"""What many browser tests do the same way."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from playwright.sync_api import Browser, Page

from tests.conftest import OPERATOR_PASSWORD


def sign_in(page: Page, username: str = "owner", password: str = OPERATOR_PASSWORD) -> None:
    """Sign in on the login page as an operator made by the fixtures (``owner`` by default)."""
    page.goto("/login/")
    page.get_by_label("Username").fill(username)
    page.get_by_label("Password").fill(password)
    page.get_by_role("button", name="Sign in").click()


@contextmanager
def signed_in_page(browser: Browser, base_url: str, width: int) -> Iterator[Page]:
    """A page in a fresh browser context of this width (800 px high), signed in as ``owner``
    and past the login page; the context is closed afterwards."""
    context = browser.new_context(base_url=base_url, viewport={"width": width, "height": 800})
    page = context.new_page()
    try:
        sign_in(page)
        page.wait_for_url(f"{base_url}/**")
        yield page
    finally:
        context.close()
