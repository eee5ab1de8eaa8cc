"""No address or name reaches the logs, over a subscriber's whole story.

Every logger is turned up to DEBUG while a person signs up through a public form, confirms, gets a
campaign through the outbox, unsubscribes with one click, an operator looks them up, exports
their list, and mistypes the person's address as a username at sign-in, and finally the person
asks for erasure on the rights page and confirms it from the email.  Then the captured lines
are searched for the address, its local part and domain-specific parts, and each word of the name.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator

import pytest
from django.test import Client

from tests.audience.public_helpers import link_in, mails_to, make_form, reset, sign_up, use_outbox
from tests.campaigns.lifecycle_helpers import make_campaign, make_sender, schedule_confirmed
from tests.operators import make_operator, sign_in
from tidings.audience.models import Contact, MailingList, Subscription
from tidings.campaigns.engine import deliver_pending
from tidings.campaigns.lifecycle import start_due_campaigns
from tidings.campaigns.models import OutboxMessage

pytestmark = pytest.mark.django_db

EMAIL = "wilhelmina.quartermaine@example.net"
NAME = "Wilhelmina Quartermaine"


@pytest.fixture
def every_log_line(caplog) -> Iterator[pytest.LogCaptureFixture]:
    """The logs as TIDINGS_LOG_LEVEL=DEBUG makes them: the root logger at DEBUG, so every logger
    without a level of its own in settings.LOGGING (ours, Django's, every library's) logs all."""
    disabled = [lg for lg in logging.root.manager.loggerDict.values() if getattr(lg, "disabled", 0)]
    for lg in disabled:
        lg.disabled = False
    caplog.set_level(logging.DEBUG)
    try:
        yield caplog
    finally:
        for lg in disabled:
            lg.disabled = True


def test_a_whole_subscriber_story_leaves_no_address_or_name_in_the_logs(
    every_log_line, settings, django_capture_on_commit_callbacks
):
    reset()
    use_outbox(settings)
    settings.TIDINGS_SMTP_RATE = ""
    news = MailingList.objects.create(name="News", topic="product news")
    form = make_form([news])
    visitor = Client()

    # Signs up, confirms from the email.
    sign_up(visitor, form, email=EMAIL, name=NAME)
    confirm = link_in(mails_to(EMAIL)[-1], "/c/")
    assert visitor.post(confirm).status_code in {200, 302, 303}
    contact = Contact.objects.get(email=EMAIL)
    assert Subscription.objects.get(contact=contact).status == "confirmed"

    # An operator sends a campaign to the list through the outbox.
    owner = Client()
    sign_in(owner, make_operator("olivia", "owner"))
    campaign = make_campaign(news, sender=make_sender(), with_template=True)
    response = schedule_confirmed(owner, campaign, {"send_now": "1"})
    assert response.status_code == 302, response.content[:2000]
    assert start_due_campaigns() == [campaign.pk]
    deliver_pending(max_seconds=30)
    message = OutboxMessage.objects.filter(to=EMAIL, subject=campaign.subject).get()

    # Unsubscribes with one click (RFC 8058 POST), and through the page.
    unsubscribe = link_in(message, "/u/").rstrip(").,>")
    assert Client().post(unsubscribe, {"List-Unsubscribe": "One-Click"}).status_code in {200, 202}
    assert Subscription.objects.get(contact=contact).status == "unsubscribed"

    # Operators look the person up, open their record, export the list, and someone mistypes the
    # address into the sign-in form; a broken link is followed.
    owner.get("/audience/contacts/", {"q": EMAIL})
    owner.get(f"/audience/contacts/{contact.pk}/")
    b"".join(owner.get(f"/audience/lists/{news.pk}/export.csv").streaming_content)
    Client().post("/login/", {"username": EMAIL, "password": "wrong"})
    Client().get(unsubscribe[:-5] + "xxxxx/")

    # Asks for erasure on the public page and confirms from the email: everything goes.
    with django_capture_on_commit_callbacks(execute=True):
        response = Client().post("/rights/", {"kind": "erase", "email": EMAIL})
    assert response.status_code == 303
    verify = link_in(mails_to(EMAIL)[-1], "/rights/v/")
    with django_capture_on_commit_callbacks(execute=True):
        assert Client().post(verify).status_code == 303
    assert not Contact.objects.filter(email=EMAIL).exists()

    text = "\n".join(
        f"{r.name} {r.levelname} {r.getMessage()} {r.exc_text or ''}"
        for r in every_log_line.records
    )
    assert every_log_line.records, "nothing was logged: the capture is not working"
    local = EMAIL.split("@")[0]
    for needle in (EMAIL, local, "quartermaine", "wilhelmina"):
        leaks = [line for line in text.lower().splitlines() if needle in line]
        assert leaks == [], f"{needle!r} appears in the logs"


def test_mail_from_a_person_read_as_a_dmarc_report_leaves_no_address_in_the_logs(every_log_line):
    """The bounce mailbox gets mail from people too; one with a .zip attached is handed to the
    DMARC reader (parsedmarc), which logs the sender at INFO unless told not to."""
    from tidings.campaigns.bounces.processing import do_record_inbound_mail

    raw = (
        f"From: {NAME} <{EMAIL}>\r\nTo: bounces@example.com\r\nSubject: our report\r\n"
        'MIME-Version: 1.0\r\nContent-Type: multipart/mixed; boundary="b"\r\n\r\n--b\r\n'
        "Content-Type: text/plain\r\n\r\nsee attached\r\n--b\r\n"
        'Content-Type: application/zip; name="report.zip"\r\n'
        "Content-Transfer-Encoding: base64\r\n\r\nUEsFBgAAAAAAAAAAAAAAAAAAAAAAAA==\r\n--b--\r\n"
    ).encode()
    do_record_inbound_mail(raw, source="pipe")
    text = every_log_line.text.lower()
    for part in (EMAIL, EMAIL.split("@")[0], *NAME.lower().split()):
        assert part.lower() not in text, part
