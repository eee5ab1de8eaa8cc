"""A person asks for a copy of their data and downloads it: in a real browser with JavaScript off,
the verification link read from the outbox, the ZIP saved by the browser and opened here."""

import json
import re
import zipfile

import pytest
from playwright.sync_api import Browser, expect

from tests.e2e.helpers import browser_page
from tidings.audience.actions import do_create_contact
from tidings.campaigns.models import OutboxMessage

URL = re.compile(r"https?://\S+")


@pytest.fixture
def no_js_page(browser: Browser, live_server, settings):
    settings.TIDINGS_BASE_URL = live_server.url  # links in emails point at this server
    settings.MAILERS = {"default": {"BACKEND": "tidings.campaigns.transports.outbox.EmailBackend"}}
    settings.TIDINGS_SMTP_URL = "outbox://"
    with browser_page(browser, live_server.url, javascript=False, accept_downloads=True) as page:
        yield page


def test_a_person_requests_their_data_verifies_by_email_and_downloads_the_package(
    no_js_page, tmp_path
):
    page = no_js_page
    ada = {"email": "ada@example.com", "name": "Ada Lovelace", "company": "Analytical Engines"}
    do_create_contact(ada, purpose="enquiry")
    do_create_contact({"email": "bob@example.com", "name": "Bob Other"}, purpose="enquiry")

    page.goto("/privacy")
    page.get_by_role("link", name=re.compile("request", re.I)).first.click()
    page.get_by_label("Send me a copy of the personal data you hold about me").check()
    page.get_by_label("Your email address").fill("ada@example.com")
    page.get_by_role("button", name="Send my request").click()
    expect(page.get_by_role("main")).to_contain_text("email")

    message = OutboxMessage.objects.order_by("-pk").first()
    assert message is not None and "ada@example.com" in message.to
    verify = next(link for link in URL.findall(message.body("plain")) if "/rights/v/" in link)

    page.goto(verify)
    page.get_by_role("button", name="Confirm my request").click()
    with page.expect_download() as download_info:
        page.get_by_role("link", name=re.compile("Download your data")).click()
    saved = tmp_path / "package.zip"
    download_info.value.save_as(saved)

    with zipfile.ZipFile(saved) as package:
        names = package.namelist()
        assert "summary.html" in names and "data.json" in names
        data = package.read("data.json").decode()
        summary = package.read("summary.html").decode()
    assert "Ada Lovelace" in data and "Analytical Engines" in data
    assert "Bob" not in data and "bob@example.com" not in data  # nobody else
    assert json.loads(data)  # machine-readable (Art. 20)
    assert "complain" in summary.lower()  # the right to complain to the supervisory authority
