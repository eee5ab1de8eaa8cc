"""Test messages go through the delivery engine's transport, built like the real send (same
From, envelope sender, DKIM signature), so what the operator sees is what subscribers get."""

from __future__ import annotations

import re

import dkim as dkimpy
import pytest
from django.urls import reverse

from tests.campaigns.delivery_helpers import SmtpSink, transports_for
from tests.campaigns.lifecycle_helpers import make_campaign, make_list, make_sender
from tests.campaigns.test_dkim import dns_from, keygen
from tidings.campaigns.samples import do_test_send

pytestmark = pytest.mark.django_db


@pytest.fixture
def campaign():
    news = make_list()
    return make_campaign(news, sender=make_sender(), with_template=True)


def test_a_test_send_goes_through_the_configured_smtp_transport_signed(
    campaign, owner, settings, tmp_path, django_capture_on_commit_callbacks
):
    settings.TIDINGS_DKIM_DIR = str(tmp_path / "dkim")
    settings.TIDINGS_BOUNCE_ADDRESS = "bounces@example.co.uk"
    _, lookup = dns_from(keygen("example.co.uk"))
    with SmtpSink() as sink:
        settings.TIDINGS_TRANSPORTS = transports_for(sink)
        with django_capture_on_commit_callbacks(execute=True):
            result = do_test_send(campaign, ["me@example.com"], actor=owner)
    assert (result.sent, result.errors) == (1, [])
    (received,) = sink.received
    assert received.recipient == "me@example.com"
    assert received.mail_from == "bounces@example.co.uk"
    message = received.message
    assert message["Subject"] == "[Test] News for you"
    assert message["From"] == "Example News <news@example.co.uk>"
    assert message["X-Tidings-Test"] == "yes"
    assert message["List-Unsubscribe"] is None  # its links are inert: nothing to unsubscribe
    assert re.fullmatch(r"<test\.[0-9a-f]{32}@example\.co\.uk>", message["Message-ID"])
    assert dkimpy.verify(received.data, dnsfunc=lookup)
    assert "We shipped the thing" in message.get_body(("plain",)).get_content()


def test_a_test_send_uses_the_campaigns_own_transport(campaign, owner, settings):
    from django.test import TestCase

    with SmtpSink() as first, SmtpSink() as second:
        settings.TIDINGS_TRANSPORTS = transports_for(first, second)  # "default", "smtp1"
        campaign.transport = "smtp1"
        with TestCase.captureOnCommitCallbacks(execute=True):
            do_test_send(campaign, ["me@example.com"], actor=owner)
    assert not first.received and len(second.received) == 1


def test_a_refused_test_message_is_reported_without_the_address(
    campaign, owner, settings, django_capture_on_commit_callbacks
):
    with SmtpSink(refuse_all="550 5.7.1 <me@example.com> message refused") as sink:
        settings.TIDINGS_TRANSPORTS = transports_for(sink)
        with django_capture_on_commit_callbacks(execute=True):
            result = do_test_send(campaign, ["me@example.com"], actor=owner)
    assert result.sent == 0
    assert result.errors == ["blocked: 550 5.7.1 <<address>> message refused"]


@pytest.mark.django_db(transaction=True)  # the messages go when the action commits
def test_the_page_says_when_the_server_refused_a_test_message(campaign, owner_client, settings):
    with SmtpSink(refuse_all="550 5.7.1 message refused") as sink:
        settings.TIDINGS_TRANSPORTS = transports_for(sink)
        response = owner_client.post(
            reverse("campaigns:test", args=[campaign.pk]),
            {"addresses": "me@example.com"},
            follow=True,
        )
    page = response.content.decode()
    assert "0 of 1 test message(s) sent" in page and "550 5.7.1 message refused" in page
