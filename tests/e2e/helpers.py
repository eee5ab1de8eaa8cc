"""What many browser tests do the same way."""

from __future__ import annotations

from playwright.sync_api import Page

from tests.conftest import OPERATOR_PASSWORD


def sign_in(page: Page, username: str = "owner", password: str = OPERATOR_PASSWORD) -> None:
    """Sign in on the login page as an operator made by the fixtures (``owner`` by default)."""
    page.goto("/login/")
    page.get_by_label("Username").fill(username)
    page.get_by_label("Password").fill(password)
    page.get_by_role("button", name="Sign in").click()
