"""Builder processes (``TIDINGS_DELIVERY_BUILDERS``): campaign messages rendered, tracked, built
and DKIM-signed in other processes arrive exactly as the event loop would have built them."""

from __future__ import annotations

import re
from email import policy
from email.parser import BytesParser

import dkim as dkimpy
import pytest
from django.core.management import call_command

from tests.campaigns.delivery_helpers import (
    SmtpSink,
    make_list,
    sending_campaign,
    subscribers,
    transports_for,
)
from tidings.campaigns.engine import deliver_pending
from tidings.campaigns.models import Delivery

pytestmark = pytest.mark.django_db


@pytest.fixture
def signing(settings, tmp_path):
    settings.TIDINGS_DKIM_DIR = str(tmp_path / "dkim")
    settings.TIDINGS_DKIM_SELECTOR = "news2026"
    out = __import__("io").StringIO()
    call_command("dkim", "keygen", "example.co.uk", stdout=out)
    name = re.search(r"^Name:\s+(\S+)$", out.getvalue(), re.M).group(1)
    value = re.search(r"^Value: (.+)$", out.getvalue(), re.M).group(1)

    def lookup(qname, timeout=5):
        return value.encode() if qname.decode().rstrip(".") == name else None

    return lookup


def send(settings, builders: int) -> dict[str, bytes]:
    settings.TIDINGS_DELIVERY_BUILDERS = builders
    with SmtpSink() as sink:
        settings.TIDINGS_TRANSPORTS = transports_for(sink)
        stats = deliver_pending(max_seconds=60)
    assert stats.failed == 0
    return {r.recipient: r.data for r in sink.received}


def parts(data: bytes) -> tuple[str, ...]:
    """Subject, List-Unsubscribe, text and HTML; the preference links' tokens carry the time
    they were made (so two sends a second apart differ there only)."""
    message = BytesParser(policy=policy.default).parsebytes(data)
    text = message.get_body(("plain",)).get_content()
    html = message.get_body(("html",)).get_content()
    found = (message["Subject"], message["List-Unsubscribe"], text, html)
    return tuple(re.sub(r"/p/[\w:-]+", "/p/TOKEN", part) for part in found)


def test_messages_built_in_builder_processes_equal_those_built_in_the_event_loop(settings, signing):
    news = make_list()
    subscribers(news, 30)
    body = "Hello {{ contact.name }}, [our news](https://example.net/news) and more."
    first = sending_campaign(news, body=body)
    in_loop = send(settings, builders=0)
    Delivery.objects.filter(campaign=first).update(status="queued", leased_by="")
    type(first).objects.filter(pk=first.pk).update(status="sending", finished_at=None)

    in_builders = send(settings, builders=2)

    assert len(in_builders) == 30 and in_builders.keys() == in_loop.keys()
    for recipient, data in in_builders.items():
        assert dkimpy.verify(data, dnsfunc=signing), recipient
        assert parts(data) == parts(in_loop[recipient])
        _subject, _unsubscribe, text, html = parts(data)
        assert "/t/c/" in html  # tracked: the link rewritten
        assert "https://example.net/news" in text  # the text part keeps the real address
    assert Delivery.objects.filter(campaign=first, status="sent").count() == 30


def test_a_template_over_its_limits_in_a_builder_pauses_the_campaign(settings, signing):
    news = make_list()
    subscribers(news, 3)
    loop = "{% for i in range(10000) %}{% for j in range(10000) %}x{% endfor %}{% endfor %}"
    campaign = sending_campaign(news, body="Hello {{ contact.name }}")
    # The body is checked when saved; a campaign changed behind the checks' back still stops.
    type(campaign).objects.filter(pk=campaign.pk).update(body=loop)
    settings.TIDINGS_DELIVERY_BUILDERS = 1
    with SmtpSink() as sink:
        settings.TIDINGS_TRANSPORTS = transports_for(sink)
        deliver_pending(max_seconds=30)
    campaign.refresh_from_db()
    assert sink.received == []
    assert campaign.status == "paused"
    assert "template" in campaign.paused_reason
    assert not Delivery.objects.filter(campaign=campaign, status="sent").exists()
