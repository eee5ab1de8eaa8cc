"""CRM record pages keep to the screen's width whatever people wrote: a 200-letter subject with
no space in it (mail sets no limit on a word) wraps, at desktop width and on a phone."""

from __future__ import annotations

import pytest
from playwright.sync_api import Page

from tests.audience.public_helpers import reset
from tests.conftest import OPERATOR_PASSWORD
from tests.crm.helpers import customer, operator
from tidings.crm.actions import do_create_support_request, do_receive_enquiry


@pytest.mark.parametrize("width", [375, 1280])
def test_a_long_unbroken_subject_does_not_widen_the_record_pages(page: Page, width):
    reset()
    operator("ada")
    word = "A" * 200
    enquiry = do_receive_enquiry(
        {"name": "Grace Hopper", "email": "grace@example.org"},
        channel="email",
        subject=word,
        message="B" * 400,
    )
    _, _, peter = customer()
    request = do_create_support_request(peter, subject=word, notes="C" * 400, check_contract=False)
    page.set_viewport_size({"width": width, "height": 900})
    page.goto("/login/")
    page.get_by_label("Username").fill("ada")
    page.get_by_label("Password").fill(OPERATOR_PASSWORD)
    page.get_by_role("button", name="Sign in").click()
    for url in (f"/crm/enquiries/{enquiry.pk}/", f"/crm/support-requests/{request.pk}/"):
        page.goto(url)
        assert page.get_by_text(word[:50], exact=False).first.is_visible()
        assert page.evaluate("document.documentElement.scrollWidth") <= width, url
