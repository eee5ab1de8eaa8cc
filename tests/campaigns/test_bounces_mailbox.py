"""``tidings bounces fetch``: the bounce mailbox over IMAP and POP3 (real sockets, small
in-test servers: see mailbox_servers), messages removed only once stored, and clear errors."""

from __future__ import annotations

import io
from urllib.parse import quote

import pytest
from django.core.management import CommandError, call_command
from django.db import DatabaseError

from tests.campaigns.bounce_helpers import delivered, sample
from tests.campaigns.delivery_helpers import free_port
from tidings.audience.emails import email_hmac
from tidings.audience.models import Suppression
from tidings.campaigns.bounces import mailbox, processing
from tidings.campaigns.bounces.tasks import bounce_mailbox_task
from tidings.campaigns.models import InboundReport
from tidings.lib.periodic import REGISTRY

from .mailbox_servers import Mailbox, imap_server, pop3_server

pytestmark = pytest.mark.django_db

SERVERS = {"imap": imap_server, "pop3": pop3_server}


def mailbox_url(protocol: str, port: int, box: Mailbox, password: str | None = None) -> str:
    secret = quote(box.password if password is None else password, safe="")
    folder = "/INBOX" if protocol == "imap" else ""
    return f"{protocol}://{box.user}:{secret}@127.0.0.1:{port}{folder}"


@pytest.fixture
def two_reports():
    _, [(ada, delivery)] = delivered()
    bounce = sample("postfix_hard.eml", recipient=ada.email, row=("d", delivery.pk))
    chatter = sample("out_of_office.eml", recipient=ada.email)
    return ada, [bounce, chatter]


@pytest.mark.parametrize("protocol", ["imap", "pop3"])
def test_fetch_processes_the_mailbox_and_empties_it(protocol, settings, two_reports):
    ada, messages = two_reports
    box = Mailbox(messages=list(messages))
    with SERVERS[protocol](box) as server:
        settings.TIDINGS_BOUNCE_MAILBOX_URL = mailbox_url(protocol, server.port, box)
        out = io.StringIO()
        call_command("bounces", "fetch", stdout=out)
    assert out.getvalue().strip() == "2 message(s) fetched: 1 processed, 1 unprocessed"
    assert box.messages == [] and box.logins == 1
    assert Suppression.objects.filter(email_hmac=email_hmac(ada.email)).exists()
    reports = InboundReport.objects.order_by("pk")
    assert [(r.source, r.status) for r in reports] == [
        (protocol, "processed"),
        (protocol, "unprocessed"),
    ]
    assert bytes(reports[1].raw) == messages[1]  # kept as it was, for a second look


@pytest.mark.parametrize("protocol", ["imap", "pop3"])
def test_a_message_stays_in_the_mailbox_until_its_report_is_stored(
    protocol, settings, two_reports, monkeypatch
):
    _, messages = two_reports
    box = Mailbox(messages=list(messages))
    stored = []
    original = processing.do_record_inbound_mail

    def store_then_fail(raw, *, source):
        if stored:
            raise DatabaseError("the database went away")
        stored.append(raw)
        return original(raw, source=source)

    monkeypatch.setattr(processing, "do_record_inbound_mail", store_then_fail)
    with SERVERS[protocol](box) as server:
        settings.TIDINGS_BOUNCE_MAILBOX_URL = mailbox_url(protocol, server.port, box)
        with pytest.raises(DatabaseError):
            mailbox.fetch_configured()
    # The first was stored (and may go, or come again: processing it twice changes nothing);
    # the second, never stored, is still there.
    assert messages[1] in box.messages
    assert InboundReport.objects.count() == 1


@pytest.mark.parametrize("protocol", ["imap", "pop3"])
def test_a_wrong_password_is_one_line_without_the_password(protocol, settings):
    box = Mailbox(messages=[b"Subject: x\r\n\r\nx\r\n"])
    with SERVERS[protocol](box) as server:
        settings.TIDINGS_BOUNCE_MAILBOX_URL = mailbox_url(
            protocol, server.port, box, password="not-it"
        )
        with pytest.raises(CommandError) as caught:
            call_command("bounces", "fetch")
    message = str(caught.value)
    assert message.startswith(f"{protocol}://127.0.0.1:{server.port}: ")
    assert "not-it" not in message and "\n" not in message
    assert len(box.messages) == 1


@pytest.mark.parametrize(
    ("url", "error"),
    [
        ("", "TIDINGS_BOUNCE_MAILBOX_URL is not set"),
        ("ftp://u:p@host/", "expected imaps://, imap://, pop3s:// or pop3://"),
        ("imaps://host/INBOX", "give user:password@host"),
    ],
)
def test_a_missing_or_bad_mailbox_url_is_a_clear_error(settings, url, error):
    settings.TIDINGS_BOUNCE_MAILBOX_URL = url
    with pytest.raises(CommandError, match=error):
        call_command("bounces", "fetch")


def test_an_unreachable_server_is_a_clear_error(settings):
    settings.TIDINGS_BOUNCE_MAILBOX_URL = f"pop3://u:secret@127.0.0.1:{free_port()}"
    with pytest.raises(CommandError, match=r"^pop3://127\.0\.0\.1:\d+: ") as caught:
        call_command("bounces", "fetch")
    assert "secret" not in str(caught.value)


def test_urls_give_defaults_ports_and_decoded_credentials():
    config = mailbox.parse_url("imaps://bounce%40example.org:p%2Fw@mail.example.org/Bounces")
    assert (config.protocol, config.tls, config.port, config.folder) == (
        "imap",
        True,
        993,
        "Bounces",
    )
    assert (config.user, config.password) == ("bounce@example.org", "p/w")
    assert mailbox.parse_url("pop3s://u:p@h").port == 995
    assert mailbox.parse_url("pop3://u:p@h").port == 110


def test_the_periodic_job_fetches_when_a_mailbox_is_configured(settings, two_reports):
    assert "campaigns.bounces" in REGISTRY
    _, messages = two_reports
    box = Mailbox(messages=list(messages))
    with pop3_server(box) as server:
        settings.TIDINGS_BOUNCE_MAILBOX_URL = mailbox_url("pop3", server.port, box)
        outcome = bounce_mailbox_task.call()
    assert outcome == {"fetched": 2, "processed": 1, "purged": 0}
    settings.TIDINGS_BOUNCE_MAILBOX_URL = ""
    assert bounce_mailbox_task.call() == {"fetched": 0, "processed": 0, "purged": 0}
