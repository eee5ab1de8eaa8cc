"""An internationalised address (SMTPUTF8: jörg@bücher.example) is taken by the public pages
exactly as imports and the API take it, and works through every step: sign up, confirm, the
preference centre, unsubscribe."""

from __future__ import annotations

import pytest

from tests.api.helpers import Api, token_for
from tests.audience.public_helpers import (
    audit_page,
    link_in,
    make_form,
    next_ip,
    sent_mail,
    sign_up,
)
from tidings.audience.models import Contact, Subscription

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.usefixtures("public_pages")]

JORG = "Jörg@bücher.example"


def mail_to(address: str, words: str):
    """Messages to ``address`` (as sent: the domain in its ASCII form, the local part as is)."""
    local = address.rpartition("@")[0]
    return [m for m in sent_mail() if f"{local}@" in m.to and words in m.subject.lower()]


def test_signing_up_confirming_and_leaving_work_for_an_international_address(client, news):
    form = make_form([news])

    response = sign_up(client, form, email="Jörg@BÜCHER.example", name="Jörg")

    assert response.status_code in (200, 303), response.content.decode()
    assert "Enter a valid email address" not in response.content.decode()
    contact = Contact.objects.get()
    assert contact.email == JORG and contact.email_key == "jörg@bücher.example"
    (confirmation,) = mail_to(JORG, "confirm")
    assert client.post(link_in(confirmation, "/c/")).status_code == 303
    assert Subscription.objects.get().status == Subscription.Status.CONFIRMED

    (welcome,) = mail_to(JORG, "welcome")
    left = client.post(link_in(welcome, "/u/"), {"List-Unsubscribe": "One-Click"})

    assert left.status_code == 200
    assert Subscription.objects.get().status == Subscription.Status.UNSUBSCRIBED


def test_the_preference_link_is_sent_to_an_international_address_whatever_its_case(client, news):
    form = make_form([news])
    sign_up(client, form, email=JORG, name="Jörg")
    before = len(sent_mail())  # the confirmation

    sent = client.post("/p/", {"email": "JÖRG@bücher.example"}, REMOTE_ADDR=next_ip())

    assert sent.status_code == 303 and "Enter a valid" not in sent.content.decode()
    (message,) = sent_mail()[before:]
    assert message.to.startswith("Jörg@")
    assert client.get(link_in(message, "/p/")).status_code == 200


def test_the_address_box_lets_a_browser_submit_an_international_address(client, news):
    # type="email" would make the browser itself refuse "jörg@…" (the HTML standard's valid
    # e-mail address is ASCII before the @); inputmode keeps the address keyboard on phones.
    form = make_form([news])
    page = audit_page(client.get(f"/f/{form.slug}").content.decode())

    (box,) = [i for i in page.inputs if i.get("name") == "email"]
    assert box["type"] == "text" and box["inputmode"] == "email"
    assert box["autocomplete"] == "email"


def test_an_address_over_64_octets_before_the_at_is_refused_by_the_form_saying_why(client, news):
    form = make_form([news])

    response = sign_up(client, form, email="ö" * 33 + "@example.com")

    assert response.status_code == 200
    assert "66 bytes long; the most an address may have is 64" in response.content.decode()
    assert not Contact.objects.exists()


@pytest.mark.parametrize(
    ("address", "words"),
    [
        ("a" * 65 + "@example.com", "65 bytes"),
        ("x@" + "b" * 64 + ".example", "at most 63 characters"),
        ("x@" + ("b" * 60 + ".") * 4 + "example.com", "at most 254 characters"),
    ],
)
def test_the_api_refuses_an_address_over_the_limits_as_a_problem(address, words):
    api = Api(token_for("owner"))

    response = api.post("/contacts", {"email": address, "name": "Long"})

    assert response.status_code == 422
    assert response["Content-Type"] == "application/problem+json"
    problem = response.json()
    assert words in problem["detail"] + problem["errors"][0]["message"]
    assert problem["errors"][0]["field"].endswith("email")
    assert address.split("@")[0] not in problem["detail"]
    assert not Contact.objects.exists()


def test_the_api_takes_an_international_address_as_imports_do():
    api = Api(token_for("owner"))

    created = api.post("/contacts", {"email": "JÖRG@Bücher.example", "name": "Jörg"})

    assert created.status_code == 201
    assert created.json()["email"] == "JÖRG@bücher.example"
