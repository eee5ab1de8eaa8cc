"""An operator enrols an authenticator, signs out, and signs in with password and code; repeated
wrong passwords lock the sign-in out with a clear message."""

from __future__ import annotations

import base64
import re

import pytest
from django_otp.oath import totp
from playwright.sync_api import Page, expect

from tests.conftest import OPERATOR_PASSWORD


@pytest.fixture(autouse=True)
def _second_factor_as_installed(settings):
    settings.TIDINGS_REQUIRE_2FA = "privileged"


def code(secret: str, steps_ahead: int = 0) -> str:
    """What an authenticator app shows for the key on the enrolment page."""
    key = base64.b32decode(secret.replace(" ", ""))
    return f"{totp(key, step=30, digits=6, drift=steps_ahead):06d}"


def sign_in_with_password(page: Page, password: str = OPERATOR_PASSWORD) -> None:
    page.goto("/login/")
    page.get_by_label("Username").fill("owner")
    page.get_by_label("Password").fill(password)
    page.get_by_role("button", name="Sign in").click()


def test_an_owner_enrols_two_factor_then_signs_in_with_a_code(page: Page, owner, live_server):
    sign_in_with_password(page)

    # The owner's role can export personal data: enrolment comes first.
    expect(page.get_by_role("heading", level=1)).to_have_text("Set up two-factor sign-in")
    expect(page.locator("figure.qr-code svg")).to_be_visible()
    secret = page.locator("#otp-secret").inner_text()
    page.get_by_label("Code from the app").fill(code(secret))
    page.get_by_role("button", name="Turn on two-factor sign-in").click()

    expect(page.get_by_role("heading", level=1)).to_have_text("Your recovery codes")
    expect(page.get_by_role("list", name="Recovery codes").get_by_role("listitem")).to_have_count(
        10
    )
    page.get_by_role("link", name="I have saved them: continue").click()
    expect(page.get_by_role("heading", level=1)).to_have_text("Dashboard")

    page.get_by_role("button", name="Sign out").click()
    expect(page).to_have_url(f"{live_server.url}/login/")

    sign_in_with_password(page)
    expect(page.get_by_role("heading", level=1)).to_have_text("Enter your code")
    page.get_by_label("Code").fill("000000")
    page.get_by_role("button", name="Verify").click()
    expect(page.get_by_role("alert")).to_contain_text("That code is not right")
    page.wait_for_timeout(1100)  # django-otp makes a second try wait a second after a miss
    page.get_by_label("Code").fill(code(secret, steps_ahead=1))
    page.get_by_role("button", name="Verify").click()

    expect(page).to_have_url(f"{live_server.url}/")
    expect(page.get_by_role("heading", level=1)).to_have_text("Dashboard")


def test_repeated_wrong_passwords_lock_the_sign_in_out_with_a_clear_message(page: Page, owner):
    for _ in range(4):
        sign_in_with_password(page, "not the password")
        expect(page.get_by_role("alert")).to_contain_text("correct username and password")

    sign_in_with_password(page, "not the password")

    expect(page.get_by_role("heading", level=1)).to_have_text("Too many failed sign-ins")
    expect(page.get_by_role("alert")).to_contain_text(re.compile(r"Try again in 15 minutes"))
    sign_in_with_password(page)
    expect(page.get_by_role("heading", level=1)).to_have_text("Too many failed sign-ins")
