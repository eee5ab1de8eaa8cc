"""What a campaign message looks like on the wire: its headers, links, encodings, Message-ID."""

from __future__ import annotations

import email
import re
from email import policy
from email.parser import BytesParser

import pytest

from tests.campaigns.delivery_helpers import (
    SmtpSink,
    make_list,
    sending_campaign,
    subscribers,
    transports_for,
)
from tidings.audience.tokens import (
    list_unsubscribe_headers,
    preferences_url,
    read_unsubscribe_token,
    unsubscribe_url,
)
from tidings.campaigns.engine import CampaignContext, deliver_pending
from tidings.campaigns.messages import (
    MessageFactory,
    encoded_words,
    message_id_for,
    row_for_message_id,
    to_header,
)
from tidings.campaigns.models import Delivery

pytestmark = pytest.mark.django_db


@pytest.fixture
def sink(settings):
    with SmtpSink() as server:
        settings.TIDINGS_TRANSPORTS = transports_for(server)
        yield server


@pytest.fixture
def news():
    return make_list()


def parse(data: bytes):
    return BytesParser(policy=policy.default).parsebytes(data)


def test_a_campaign_message_carries_the_list_headers_rfc_8058_asks_for(sink, news):
    (ada,) = subscribers(news, 1)
    campaign = sending_campaign(news)
    deliver_pending()
    (received,) = sink.received
    message = received.message
    row = Delivery.objects.get()

    assert message["From"] == "Example News <news@example.co.uk>"
    assert message["To"] == f"{ada.name} <{ada.email}>"
    assert message["Subject"] == f"News for {ada.name}"
    assert message["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
    https, mailto = re.fullmatch(
        r"<(https?://[^>]+)>, <(mailto:[^>]+)>", message["List-Unsubscribe"]
    ).groups()
    assert https == unsubscribe_url(ada, news, row.pk)
    assert mailto.startswith("mailto:unsubscribe@example.co.uk?")  # the sender's domain
    token = read_unsubscribe_token(https.rstrip("/").rpartition("/")[2])
    assert (token.contact_id, token.list_id, token.delivery_id) == (ada.pk, news.pk, row.pk)
    assert message["List-Id"] == f"Product news <list-{news.pk}.example.co.uk>"
    assert message["Feedback-ID"] == f"{campaign.pk}:product-news:campaign:tidings"
    assert message["Message-ID"] == message_id_for("d", row.pk, "example.co.uk")
    assert message["Date"]
    assert message.get_body(("plain",)) is not None and message.get_body(("html",)) is not None
    assert received.mail_from == "news@example.co.uk"


def test_every_message_has_its_own_message_id_that_leads_back_to_its_row(sink, news):
    subscribers(news, 5)
    sending_campaign(news)
    deliver_pending()
    ids = [r.message_id for r in sink.received]
    assert len(set(ids)) == 5
    rows = {row_for_message_id(i) for i in ids}
    assert rows == {("d", pk) for pk in Delivery.objects.values_list("pk", flat=True)}


def test_a_forged_message_id_leads_nowhere():
    real = message_id_for("d", 42, "example.co.uk")
    assert row_for_message_id(real) == ("d", 42)
    assert row_for_message_id(real.replace("d42.", "d43.")) is None
    assert row_for_message_id("<something@else.example>") is None


def test_the_engines_links_are_those_the_audience_app_makes(news):
    (ada,) = subscribers(news, 1)
    campaign = sending_campaign(news)
    context = CampaignContext(campaign)
    links, header = context.links_for(ada, 77)
    assert links.unsubscribe_url == unsubscribe_url(ada, news, 77)
    assert links.preferences_url == preferences_url(ada)
    made = list_unsubscribe_headers(ada, news, 77, from_header=context.from_header)
    assert header == made["List-Unsubscribe"]


def test_a_campaign_to_several_lists_unsubscribes_from_everything(news):
    events = make_list("Events", "product news")
    (ada,) = subscribers(news, 1)
    campaign = sending_campaign(news)
    campaign.lists.add(events)
    context = CampaignContext(campaign)
    links, header = context.links_for(ada, 5)
    assert links.unsubscribe_url == unsubscribe_url(ada, None, 5)
    made = list_unsubscribe_headers(ada, None, 5, from_header=context.from_header)
    assert header == made["List-Unsubscribe"]


def test_non_ascii_names_and_subjects_are_encoded_and_read_back_intact():
    factory = MessageFactory(from_header="Zoë’s News <news@example.co.uk>")
    data = factory.build(
        to=to_header("Zoë Müller", "zoe@example.org"),
        subject="Grüße aus Köln – " + "ü" * 60,
        text="Hallo Zoë,\n\n.a line starting with a dot\n",
        html="<p>Hallo Zoë</p>",
        message_id="<m1@example.co.uk>",
    )
    assert all(len(line) <= 998 for line in data.split(b"\r\n"))
    assert b"\n" not in data.replace(b"\r\n", b"")
    message = parse(data)
    assert message["Subject"] == "Grüße aus Köln – " + "ü" * 60
    assert str(message["To"]) == "Zoë Müller <zoe@example.org>"
    assert message["From"].addresses[0].display_name == "Zoë’s News"
    assert message.get_body(("plain",)).get_content().startswith("Hallo Zoë,")


@pytest.mark.parametrize(
    ("name", "address"),
    [
        ("=?utf-8?q?Admin?= Bob", "bob@example.org"),
        ('Ada "The Countess" Lovelace', "ada@bücher.example"),
        ('back\\slash "q" Zoë', "zoe@bücher.example"),
    ],
)
def test_a_name_reads_back_exactly_as_written(name, address):
    """A name that looked like an encoded word was decoded by mail programs ("Admin Bob"), and
    quotes in a name broke the To header of a message to a UTF-8 address."""
    factory = MessageFactory(from_header="news@example.co.uk")
    data = factory.build(
        to=to_header(name, address),
        subject="Hi",
        text="Hello",
        html="<p>Hello</p>",
        message_id="<m2@example.co.uk>",
    )
    # Read as a mail program does; an SMTPUTF8 message's headers are UTF-8.
    message = email.message_from_string(data.decode("utf-8"), policy=policy.default)
    (read,) = message["To"].addresses
    assert (read.display_name, read.addr_spec) == (name, address)


def test_bodies_go_as_they_are_when_they_can_and_quoted_printable_otherwise():
    factory = MessageFactory(from_header="news@example.co.uk")
    common = {"to": "a@example.org", "subject": "Hi", "message_id": "<m@example.co.uk>"}
    ascii_message = factory.build(text="plain ascii\n", **common)
    assert b"Content-Transfer-Encoding: 7bit" in ascii_message
    eight_bit = factory.build(text="Grüße\n", eight_bit=True, **common)
    assert b"Content-Transfer-Encoding: 8bit" in eight_bit and "Grüße".encode() in eight_bit
    seven_bit_only = factory.build(text="Grüße\n", **common)
    assert b"quoted-printable" in seven_bit_only and seven_bit_only.isascii()
    long_line = factory.build(text="x" * 2000 + "\n", eight_bit=True, **common)
    assert b"quoted-printable" in long_line
    for data in (ascii_message, eight_bit, seven_bit_only, long_line):
        body = parse(data).get_body(("plain",)).get_content().replace("\r\n", "\n")
        assert body.rstrip("\n") in ("plain ascii", "Grüße", "x" * 2000)


def test_a_server_gets_8bit_bodies_with_body_8bitmime_and_they_arrive_intact(sink, news):
    subscribers(news, 1)
    sending_campaign(news, body="Grüße an {{ contact.name }} ✓")
    deliver_pending()
    (received,) = sink.received
    assert "Grüße an" in received.message.get_body(("plain",)).get_content()


def test_encoded_words_stay_within_75_characters():
    encoded = encoded_words("ü" * 100)
    assert all(len(word.strip()) <= 75 for word in encoded.split("\r\n"))
