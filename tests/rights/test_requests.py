"""The public request page: ask, verify by the emailed link, and only then anything happens."""

from __future__ import annotations

from datetime import UTC, date, datetime
from urllib.parse import unquote

import pytest
import time_machine
from django.core import mail, signing
from django.core.cache import cache

from tests.rights.helpers import link_in, mails_to, unzip
from tidings import signals
from tidings.audience.actions import do_create_contact
from tidings.audience.models import Contact
from tidings.lib.models import AuditEntry
from tidings.rights.actions import do_create_rights_request, due_date
from tidings.rights.models import RightsRequest

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def _fresh():
    cache.clear()


def ask(client, kind="access", email="ada@example.com", **extra):
    return client.post("/rights/", {"kind": kind, "email": email, **extra})


def test_the_page_offers_every_right_and_works_as_a_plain_form(client):
    page = client.get("/rights/").content.decode()

    for words in ("copy of the personal data", "Correct", "Erase", "Stop all marketing"):
        assert words in page
    assert "<script" not in page
    assert 'for="id_email"' in page
    assert "Information Commissioner" in page  # the complaint route, from the policy


def test_a_known_and_an_unknown_address_get_the_same_answer_and_an_email(
    client, django_capture_on_commit_callbacks
):
    do_create_contact({"name": "Ada", "email": "ada@example.com"}, purpose="newsletter")

    with django_capture_on_commit_callbacks(execute=True):
        known = ask(client, email="ada@example.com")
        unknown = ask(client, email="nobody@example.com")

    assert known.status_code == unknown.status_code == 303
    assert known["Location"] == unknown["Location"] == "/rights/sent"
    assert len(mails_to("ada@example.com")) == len(mails_to("nobody@example.com")) == 1
    assert "Check your inbox" in client.get("/rights/sent").content.decode()


def test_the_verification_email_holds_a_link_and_no_address_in_it(
    client, django_capture_on_commit_callbacks
):
    with django_capture_on_commit_callbacks(execute=True):
        ask(client, kind="erase")

    (message,) = mail.outbox
    assert "confirm" in message.subject.lower()
    path = link_in(message, "/rights/v/")
    # The token is signed base64 and may spell "ada" by chance; what matters is that neither the
    # address nor any part of it is in the link, readable or encoded.
    token = path.removeprefix("/rights/v/").strip("/")
    payload = signing.b64_decode(token.split(":")[0].encode()).decode()
    assert "ada" not in payload and "example" not in payload
    assert "ada@" not in unquote(path).lower() and "example" not in path.lower()
    assert "erasure of your personal data" in message.body


def test_nothing_happens_until_the_button_behind_the_link_is_pressed(
    client, django_capture_on_commit_callbacks
):
    contact, _ = do_create_contact(
        {"name": "Ada", "email": "ada@example.com"}, purpose="newsletter"
    )
    with django_capture_on_commit_callbacks(execute=True):
        ask(client, kind="erase")
    path = link_in(mail.outbox[0], "/rights/v/")

    page = client.get(path)  # a mail scanner opening the link

    assert page.status_code == 200
    assert "Confirm my request" in page.content.decode()
    assert Contact.objects.filter(pk=contact.pk).exists()
    assert RightsRequest.objects.get().state == "received"

    with django_capture_on_commit_callbacks(execute=True):
        done = client.post(path)

    assert done.status_code == 303
    assert not Contact.objects.filter(pk=contact.pk).exists()
    request = RightsRequest.objects.get()
    assert request.state == "completed"
    assert request.email == "" and request.contact is None  # the address is not kept
    assert "Done" in client.get(path).content.decode()


def test_an_invalid_address_is_a_form_error_and_nothing_is_recorded(client):
    response = ask(client, email="not an address")

    assert response.status_code == 200
    assert "Enter a valid email address." in response.content.decode()
    assert not RightsRequest.objects.exists()


def test_a_bot_filling_the_honeypot_gets_the_same_answer_and_nothing_happens(client):
    response = ask(client, homepage="http://spam.example")

    assert response["Location"] == "/rights/sent"
    assert not RightsRequest.objects.exists()
    assert not mail.outbox


def test_too_many_requests_from_one_address_are_refused(client, settings):
    settings.TIDINGS_RIGHTS_LIMIT = (2, 600)
    ask(client)
    ask(client)

    response = ask(client)

    assert response.status_code == 429
    assert RightsRequest.objects.count() == 2


def test_one_address_gets_at_most_three_verification_emails_an_hour(
    client, settings, django_capture_on_commit_callbacks
):
    settings.TIDINGS_RIGHTS_LIMIT = (100, 600)
    with django_capture_on_commit_callbacks(execute=True):
        for _ in range(5):
            ask(client)

    assert len(mails_to("ada@example.com")) == 3


def test_an_expired_link_says_so_and_does_nothing(client, django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks(execute=True):
        ask(client, kind="object")
    path = link_in(mail.outbox[0], "/rights/v/")

    with time_machine.travel(datetime.now(UTC).replace(microsecond=0), tick=False) as traveller:
        traveller.shift(8 * 24 * 3600)
        response = client.post(path)

    assert response.status_code == 410
    assert "expired" in response.content.decode()
    assert RightsRequest.objects.get().state == "received"


def test_an_altered_link_does_not_work(client):
    assert client.get("/rights/v/not-a-token").status_code == 404


def test_a_request_is_due_one_calendar_month_after_it_arrived():
    assert due_date(datetime(2026, 1, 31, 12, tzinfo=UTC)) == date(2026, 2, 28)
    assert due_date(datetime(2026, 3, 15, 9, tzinfo=UTC)) == date(2026, 4, 15)


def test_receiving_a_request_is_audited_and_signalled_with_ids_only(
    django_capture_on_commit_callbacks,
):
    received = []
    signals.rights_request_received.connect(
        lambda **kw: received.append(kw), weak=False, dispatch_uid="test-listener"
    )
    try:
        with django_capture_on_commit_callbacks(execute=True):
            request = do_create_rights_request("access", "ada@example.com")
    finally:
        signals.rights_request_received.disconnect(dispatch_uid="test-listener")

    assert received[0]["request_id"] == request.pk and received[0]["kind"] == "access"
    entry = AuditEntry.objects.get(action="rights.request_received")
    assert "ada" not in str(entry.details).lower()
    assert request.email_hmac and request.due_on == due_date(request.received_at)


def test_the_preference_centre_and_the_privacy_notice_link_to_the_request_page(client):
    from tidings.audience.tokens import preferences_url

    contact, _ = do_create_contact(
        {"name": "Ada", "email": "ada@example.com"}, purpose="newsletter"
    )
    path = preferences_url(contact).split("://", 1)[1].split("/", 1)[1]

    assert 'href="/rights/"' in client.get("/" + path).content.decode()
    assert 'href="/rights/"' in client.get("/privacy").content.decode()


def test_a_request_from_the_ascii_form_of_an_idn_address_finds_the_person(
    client, django_capture_on_commit_callbacks
):
    contact, _ = do_create_contact(
        {"name": "Anna", "email": "anna@bücher.example"}, purpose="newsletter"
    )

    with django_capture_on_commit_callbacks(execute=True):
        ask(client, email="anna@xn--bcher-kva.example")

    assert RightsRequest.objects.get().contact == contact


def test_a_request_answered_after_an_erasure_cleared_its_address_does_not_promise_a_receipt(
    client, django_capture_on_commit_callbacks
):
    # Erasure and access asked for together; the erasure, confirmed first, clears the address
    # of the person's other requests, so the access request's receipt cannot be emailed.
    do_create_contact({"name": "Ada", "email": "ada@example.com"}, purpose="newsletter")
    with django_capture_on_commit_callbacks(execute=True):
        ask(client, kind="erase")
        ask(client, kind="access")
    erase, access = (link_in(message, "/rights/v/") for message in mail.outbox[-2:])
    with django_capture_on_commit_callbacks(execute=True):
        client.post(erase)
    sent = len(mail.outbox)

    with django_capture_on_commit_callbacks(execute=True):
        client.post(access)
    page = client.get(access).content.decode()

    assert len(mail.outbox) == sent  # no address left to email
    assert "We have emailed you a receipt" not in page
    assert "this page is your receipt" in page
    erased = client.get(erase).content.decode()
    assert "We have emailed you a receipt" in erased


@pytest.mark.parametrize("kind", ["access", "erase"])
def test_a_link_to_an_address_the_person_no_longer_has_releases_and_erases_nothing_of_theirs(
    client, django_capture_on_commit_callbacks, kind
):
    # Ada asked from her old work address; before the link was followed an operator corrected
    # her address to her new one.  Whoever reads the old mailbox now proves only that mailbox.
    from tidings.audience.operator import do_update_contact

    ada, _ = do_create_contact(
        {"name": "Ada Lovelace", "email": "ada@old-employer.example"}, purpose="newsletter"
    )
    with django_capture_on_commit_callbacks(execute=True):
        ask(client, kind=kind, email="ada@old-employer.example")
    do_update_contact(ada, {"email": "ada@new-home.example"}, actor=None)
    path = link_in(mail.outbox[-1], "/rights/v/")

    with django_capture_on_commit_callbacks(execute=True):
        client.post(path)

    request = RightsRequest.objects.get()
    assert request.state == "completed" and request.contact is None
    assert Contact.objects.filter(pk=ada.pk, email="ada@new-home.example").exists()
    if kind == "access":
        package = unzip(client.get(link_in(mail.outbox[-1], "/rights/download/")).content)
        assert "Lovelace" not in package["data.json"] and "new-home" not in package["data.json"]


def test_a_person_imported_with_an_international_address_can_make_a_request(
    client, django_capture_on_commit_callbacks
):
    # Imports and the API took jörg@bücher.example (SMTPUTF8); this form refused it (Django's
    # EmailField wants ASCII before the @), so the person could not exercise their rights.
    contact, _ = do_create_contact(
        {"name": "Jörg", "email": "jörg@bücher.example"}, purpose="newsletter"
    )

    with django_capture_on_commit_callbacks(execute=True):
        response = ask(client, email="JÖRG@Bücher.example")

    assert response.status_code == 303
    assert RightsRequest.objects.get().contact == contact
    (message,) = mail.outbox
    assert message.to == ["JÖRG@bücher.example"]


def test_an_address_over_the_rfc_5321_limits_is_a_form_error_saying_why(client):
    response = ask(client, email="a" * 65 + "@example.com")

    page = response.content.decode()
    assert response.status_code == 200
    assert "65 bytes long; the most an address may have is 64" in page
    assert not RightsRequest.objects.exists()


def test_the_verification_email_has_a_message_id_at_the_from_domain(
    client, settings, django_capture_on_commit_callbacks
):
    """It went out with Django's ``<…@localhost>`` (the host's name) while the rest of tidings'
    mail has its Message-ID at the From address's domain; spam filters score the mismatch.
    Captured as sent: over SMTP to a real server (aiosmtpd), and into the outbox."""
    from tests.campaigns.delivery_helpers import SmtpSink
    from tidings.campaigns.models import OutboxMessage
    from tidings.settings import _mailer

    settings.DEFAULT_FROM_EMAIL = "privacy@example.co.uk"
    with SmtpSink() as sink:
        settings.MAILERS = {"default": _mailer(sink.url)}
        with django_capture_on_commit_callbacks(execute=True):
            ask(client, kind="erase")
        assert sink.wait_for(1, timeout=5)
    (received,) = sink.received
    assert received.message["From"].addresses[0].domain == "example.co.uk"
    assert received.message_id.startswith("<") and received.message_id.endswith("@example.co.uk>")
    settings.MAILERS = {"default": _mailer("outbox://")}
    with django_capture_on_commit_callbacks(execute=True):
        ask(client, kind="access", email="grace@example.com")
    raw = bytes(OutboxMessage.objects.get(to="grace@example.com").message)
    assert b"@example.co.uk>" in raw.split(b"Message-ID:", 1)[1].split(b"\r\n", 1)[0]
