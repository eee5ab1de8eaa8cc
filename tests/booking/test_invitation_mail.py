"""The invitation travels as a text/calendar attachment through every kind of transport, and
leaves nothing behind once sent."""

from __future__ import annotations

from email import policy
from email.parser import BytesParser

import pytest
from django.core import mail

from tidings.campaigns.engine import deliver_pending
from tidings.campaigns.messages import MessageFactory
from tidings.campaigns.models import OutgoingMessage

from .helpers import TUESDAY_9, book, hosts

pytestmark = pytest.mark.django_db

INVITE = {"filename": "invite.ics", "content_type": "text/calendar; method=REQUEST"}


def test_a_message_with_an_attachment_is_multipart_mixed_with_the_body_first():
    factory = MessageFactory(from_header="Example <news@example.co.uk>")
    data = factory.build(
        to="ada@example.com",
        subject="Your demo",
        text="Hello Zoë",
        html="<p>Hello Zoë</p>",
        message_id="<o1.abc@example.co.uk>",
        attachments=[{**INVITE, "content": "BEGIN:VCALENDAR\r\nEND:VCALENDAR\r\n"}],
    )
    message = BytesParser(policy=policy.default).parsebytes(data)
    assert message.get_content_type() == "multipart/mixed"
    assert message.get_body(("plain",)).get_content().strip() == "Hello Zoë"
    assert message.get_body(("html",)).get_content().strip() == "<p>Hello Zoë</p>"
    (attachment,) = message.iter_attachments()
    assert attachment.get_filename() == "invite.ics"
    assert attachment.get_content_type() == "text/calendar"
    assert attachment.get_param("method") == "REQUEST"
    assert attachment.get_content().startswith("BEGIN:VCALENDAR")


def test_a_django_backend_sends_the_invitation_as_an_attachment(settings, monday):
    settings.TIDINGS_TRANSPORTS = {
        "esp": {"backend": "django.core.mail.backends.locmem.EmailBackend"}
    }
    hosts("grace")
    book(TUESDAY_9)
    deliver_pending()
    (sent,) = mail.outbox
    ((filename, content, mimetype),) = sent.attachments
    assert filename == "invite.ics" and mimetype.startswith("text/calendar")
    assert "METHOD:REQUEST" in content


def test_the_queued_invitation_is_blanked_once_sent(monday):
    hosts("grace")
    book(TUESDAY_9)
    assert OutgoingMessage.objects.get().attachments
    deliver_pending()
    row = OutgoingMessage.objects.get()
    assert row.status == "sent" and row.attachments == [] and row.text == ""
