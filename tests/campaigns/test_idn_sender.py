"""Mail from an address at an internationalised domain (``news@bücher.example``): every header
names the domain in its ASCII form (``xn--bcher-kva.example``), as header values must be, the
SMTP server takes the message without SMTPUTF8, and its DKIM signature verifies."""

from __future__ import annotations

import dkim as dkimpy
import pytest

from tests.campaigns.delivery_helpers import (
    SmtpSink,
    make_list,
    sending_campaign,
    subscribers,
    transports_for,
)
from tests.campaigns.test_dkim import dns_from, keygen
from tidings.campaigns.engine import deliver_pending
from tidings.campaigns.mail import send_system_email
from tidings.campaigns.models import Sender

pytestmark = pytest.mark.django_db

ACE = "xn--bcher-kva.example"


@pytest.fixture
def lookup(settings, tmp_path):
    settings.TIDINGS_DKIM_DIR = str(tmp_path / "dkim")
    settings.TIDINGS_DKIM_SELECTOR = "news2026"
    name, found = dns_from(keygen("bücher.example"))
    assert name == f"news2026._domainkey.{ACE}"
    return found


def header_block(data: bytes) -> bytes:
    return data.split(b"\r\n\r\n", 1)[0]


def assert_ascii_headers_at_the_ace_domain(received, lookup) -> None:
    head = header_block(received.data)
    assert head.isascii(), "a header value is not ASCII"
    message = received.message
    assert received.mail_from.endswith("@" + ACE)
    assert str(message["Message-ID"]).endswith(f"@{ACE}>")
    assert f"<news@{ACE}>" in str(message["From"])
    assert "d=" + ACE in str(message["DKIM-Signature"])
    assert dkimpy.verify(received.data, dnsfunc=lookup)


def test_a_campaign_from_an_international_domain_goes_out_with_its_ascii_form(settings, lookup):
    news = make_list()
    subscribers(news, 2)
    sender = Sender.objects.create(email="news@bücher.example", name="Bücher News", verified=True)
    sending_campaign(news, sender=sender)
    with SmtpSink() as sink:
        settings.TIDINGS_TRANSPORTS = transports_for(sink)
        deliver_pending()
    assert len(sink.received) == 2
    for received in sink.received:
        assert_ascii_headers_at_the_ace_domain(received, lookup)
        message = received.message
        assert str(message["List-Id"]).endswith(f".{ACE}>")
        assert f"<mailto:unsubscribe@{ACE}?subject=" in str(message["List-Unsubscribe"])
        assert str(message["From"]) == f"Bücher News <news@{ACE}>"


def test_journey_mail_from_an_international_domain_goes_out_with_its_ascii_form(settings, lookup):
    from tests.journeys.helpers import welcome_mail_on_the_wire

    sender = Sender.objects.create(email="news@bücher.example", name="Bücher News", verified=True)
    received = welcome_mail_on_the_wire(settings, sender)
    assert_ascii_headers_at_the_ace_domain(received, lookup)
    assert str(received.message["List-Id"]).endswith(f".{ACE}>")
    assert f"<mailto:unsubscribe@{ACE}?subject=" in str(received.message["List-Unsubscribe"])


def test_system_mail_from_an_international_domain_goes_out_with_its_ascii_form(settings, lookup):
    settings.DEFAULT_FROM_EMAIL = "news@bücher.example"
    [ada] = subscribers(make_list(), 1)
    send_system_email(ada, "preferences_link", {"preferences_url": "https://x.example/p/t"})
    with SmtpSink() as sink:
        settings.TIDINGS_TRANSPORTS = transports_for(sink)
        deliver_pending()
    [received] = sink.received
    assert_ascii_headers_at_the_ace_domain(received, lookup)
