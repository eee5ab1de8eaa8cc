"""The List-Unsubscribe mailto address of real messages: at the sender's own domain, never
``unsubscribe@localhost`` (what every message carried when TIDINGS_FROM_EMAIL was unset)."""

from __future__ import annotations

import re

import pytest
from django.test import Client

from tests.audience.public_helpers import link_in, mails_to, make_form, reset, sign_up, use_outbox
from tests.campaigns.delivery_helpers import (
    SmtpSink,
    make_list,
    sending_campaign,
    subscribers,
    transports_for,
)
from tidings.audience.models import MailingList
from tidings.audience.tokens import unsubscribe_mailto_address
from tidings.campaigns.engine import deliver_pending

pytestmark = pytest.mark.django_db


def list_unsubscribe(message) -> tuple[str, str | None]:
    match = re.fullmatch(r"<(https?://[^>]+)>(?:, <(mailto:[^>]+)>)?", message["List-Unsubscribe"])
    assert match, message["List-Unsubscribe"]
    return match.group(1), match.group(2)


@pytest.fixture
def sink(settings):
    with SmtpSink() as server:
        settings.TIDINGS_TRANSPORTS = transports_for(server)
        yield server


def test_a_campaign_offers_unsubscribing_by_mail_at_its_senders_domain(sink, settings):
    settings.DEFAULT_FROM_EMAIL = "newsletter@localhost"  # TIDINGS_FROM_EMAIL not set
    settings.TIDINGS_UNSUBSCRIBE_MAILTO = ""
    news = make_list()
    subscribers(news, 1)
    sending_campaign(news)  # from Example News <news@example.co.uk>

    deliver_pending()

    (received,) = sink.received
    assert received.message["From"] == "Example News <news@example.co.uk>"
    _https, mailto = list_unsubscribe(received.message)
    assert mailto is not None and mailto.startswith("mailto:unsubscribe@example.co.uk?subject=")
    assert "localhost" not in received.message["List-Unsubscribe"]


def test_a_configured_address_wins(sink, settings):
    settings.TIDINGS_UNSUBSCRIBE_MAILTO = "leave@lists.example.org"
    news = make_list()
    subscribers(news, 1)
    sending_campaign(news)
    deliver_pending()
    (received,) = sink.received
    assert list_unsubscribe(received.message)[1].startswith("mailto:leave@lists.example.org?")


def test_mail_from_a_localhost_address_carries_the_https_link_only(settings):
    """The welcome mail while TIDINGS_FROM_EMAIL is unset: no made-up mailto address, the
    one-click link still there (it is what Gmail and Yahoo use)."""
    reset()
    use_outbox(settings)
    settings.TIDINGS_SMTP_RATE = ""
    settings.DEFAULT_FROM_EMAIL = "newsletter@localhost"
    settings.TIDINGS_UNSUBSCRIBE_MAILTO = ""
    form = make_form([MailingList.objects.create(name="News", topic="product news")])
    visitor = Client()
    sign_up(visitor, form, email="ada@example.net", name="Ada")
    visitor.post(link_in(mails_to("ada@example.net")[-1], "/c/"))

    welcome = mails_to("ada@example.net")[-1].parsed()
    value = welcome["List-Unsubscribe"]
    assert value.startswith("<http") and "mailto:" not in value, value


@pytest.mark.parametrize(
    ("from_header", "expected"),
    [
        ("Example News <news@example.co.uk>", "unsubscribe@example.co.uk"),
        ("news@Lists.Example.ORG", "unsubscribe@lists.example.org"),
        ("newsletter@localhost", ""),
        ("news@host.local", ""),
        ("no address at all", ""),
    ],
)
def test_the_mailto_address_follows_the_from_domain(settings, from_header, expected):
    settings.TIDINGS_UNSUBSCRIBE_MAILTO = ""
    assert unsubscribe_mailto_address(from_header) == expected
