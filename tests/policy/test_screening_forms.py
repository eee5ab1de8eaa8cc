"""Public forms that screen free text tell the person what was taken out, in plain words, next
to the field, keep the rest of what they typed, and store or log none of the removed words."""

from __future__ import annotations

import html as htmllib
import logging

import pytest
from django.core.cache import cache
from django.test import Client

from tests.audience.public_helpers import audit_page, next_ip, reset, use_outbox, write_policy
from tidings.audience.models import Contact
from tidings.crm.models import Enquiry
from tidings.lib.models import AuditEntry
from tidings.rights.models import RightsRequest

pytestmark = pytest.mark.django_db

CHEMO = "Since my chemo finished I only work three days a week."
MESSAGE = f"Hi, we'd like a demo of the newsletter tool. {CHEMO} Could you call on a Monday?"
KEPT = "Hi, we'd like a demo of the newsletter tool. Could you call on a Monday?"


@pytest.fixture(autouse=True)
def _fresh(settings):
    use_outbox(settings)
    reset()
    cache.clear()
    yield
    reset()


def contact(client: Client, message: str):
    data = {"name": "Ada Lovelace", "email": "ada@example.com", "company": "Engines Ltd"}
    return client.post("/contact", {**data, "message": message}, REMOTE_ADDR=next_ip())


def textarea(html: str, name: str) -> str:
    start = html.index(f'name="{name}"')
    start = html.index(">", start) + 1
    return htmllib.unescape(html[start : html.index("</textarea>", start)]).strip()


def test_the_contact_form_says_what_it_took_out_and_keeps_the_rest(client):
    response = contact(client, MESSAGE)

    assert response.status_code == 200
    html = response.text
    # Next to the message field, in plain words, quoting the person's own words.
    assert f"We took out the part about health (\u201c{CHEMO}\u201d)" in htmllib.unescape(html)
    assert "We do not keep information about health" in html
    # The rest of the message, and the other fields, are still in the form.
    assert textarea(html, "message") == KEPT
    assert 'value="Ada Lovelace"' in html and 'value="Engines Ltd"' in html
    # The error is tied to the field, and the page needs no JavaScript.
    page = audit_page(html)
    assert page.scripts == 0 and page.handlers == []
    assert 'aria-describedby="id_message_error"' in html
    assert "no-store" in response["Cache-Control"]
    # Nothing is stored until they send it again.
    assert not Enquiry.objects.exists() and not Contact.objects.exists()
    assert not AuditEntry.objects.exists()


def test_sending_the_rest_again_stores_it_without_the_removed_part(client):
    first = contact(client, MESSAGE)
    second = contact(client, textarea(first.text, "message"))

    assert second.status_code == 303
    enquiry = Enquiry.objects.get()
    assert enquiry.message == KEPT
    assert "chemo" not in repr(list(Enquiry.objects.values()))


def test_several_parts_are_each_named(client):
    text = (
        "I'm a Unite shop steward at the depot.\n"
        "We need a newsletter for the branch.\n"
        "I have a spent conviction for theft, if that matters."
    )
    response = contact(client, text)

    html = response.text
    assert "We took out 2 parts" in html
    assert "the part about trade union membership" in html
    assert "the part about criminal convictions and offences" in html
    assert textarea(html, "message") == "We need a newsletter for the branch."


def test_a_message_that_is_only_sensitive_leaves_an_empty_field_to_fill_in(client):
    response = contact(client, "I was diagnosed with depression last year.")

    assert response.status_code == 200
    assert "the part about health" in response.text
    assert textarea(response.text, "message") == ""
    assert not Enquiry.objects.exists()


def test_the_reject_policy_gives_the_same_answer_and_stores_nothing(client, tmp_path, settings):
    write_policy(tmp_path, settings, ('on_detect = "redact"', 'on_detect = "reject"'))
    response = contact(client, MESSAGE)

    assert response.status_code == 200
    assert "the part about health" in response.text
    assert textarea(response.text, "message") == KEPT
    assert not Enquiry.objects.exists() and not Contact.objects.exists()


def test_the_removed_words_reach_no_log_and_no_stored_row(client, caplog):
    with caplog.at_level(logging.DEBUG):
        first = contact(client, MESSAGE)
        contact(client, textarea(first.text, "message"))

    logged = "\n".join(
        [r.getMessage() for r in caplog.records] + [repr(r.args) for r in caplog.records]
    )
    assert "chemo" not in logged
    stored = repr(list(Enquiry.objects.values())) + repr(list(AuditEntry.objects.values()))
    stored += repr(list(Contact.objects.values()))
    assert "chemo" not in stored


def test_the_rights_form_screens_the_details_of_a_correction(client):
    details = "My job title is wrong. I am registered blind, so please use large print."
    response = client.post(
        "/rights/", {"kind": "rectify", "email": "ada@example.com", "details": details}
    )

    assert response.status_code == 200
    assert "the part about health" in response.text
    assert textarea(response.text, "details") == "My job title is wrong."
    assert 'value="ada@example.com"' in response.text
    assert not RightsRequest.objects.exists()

    again = client.post(
        "/rights/",
        {"kind": "rectify", "email": "ada@example.com", "details": "My job title is wrong."},
    )
    assert again.status_code == 303
    assert RightsRequest.objects.get().details == "My job title is wrong."


def test_the_rights_form_ignores_details_for_other_requests(client):
    # Details are kept only with a correction, so there is nothing to screen otherwise.
    response = client.post(
        "/rights/", {"kind": "access", "email": "ada@example.com", "details": CHEMO}
    )
    assert response.status_code == 303
    assert RightsRequest.objects.get().details == ""


def test_showing_a_screened_form_starts_building_the_engine(client):
    # The engine takes seconds to build; it is built while the person types, not when they send.
    import time

    from tidings.policy import screening

    screening.forget_screener()
    assert not screening.engine_ready()
    assert client.get("/contact").status_code == 200

    deadline = time.monotonic() + 120
    while not screening.engine_ready() and time.monotonic() < deadline:
        time.sleep(0.2)
    assert screening.engine_ready()
