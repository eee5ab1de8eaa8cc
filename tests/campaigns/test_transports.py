"""Transports: SMTP (TLS, STARTTLS, AUTH, several servers, rate limits), any Django email
backend, and the embedded outbox with its operator pages."""

from __future__ import annotations

import shutil
import smtplib
import ssl
import subprocess
import time
from types import SimpleNamespace

import pytest
from aiosmtpd.smtp import AuthResult, LoginPassword
from django.core import mail
from django.core.exceptions import ImproperlyConfigured

from tests.campaigns.delivery_helpers import (
    SmtpSink,
    fast_retries,
    make_list,
    sending_campaign,
    subscribers,
    transports_for,
)
from tidings.campaigns.engine import deliver_pending
from tidings.campaigns.mail import send_system_email
from tidings.campaigns.models import Campaign, Delivery, OutboxMessage
from tidings.campaigns.queue import delivery_counts
from tidings.campaigns.transports.base import RateLimiter, TransportError, classify_smtp_reply
from tidings.campaigns.transports.config import parse_rate, transport_configs
from tidings.campaigns.transports.django_backend import _translate

pytestmark = pytest.mark.django_db


@pytest.fixture
def news():
    return make_list()


# --- the embedded outbox ---------------------------------------------------------------------
@pytest.fixture
def outbox(settings):
    settings.TIDINGS_TRANSPORTS = None
    settings.TIDINGS_SMTP_URL = "outbox://"


def test_the_outbox_keeps_each_whole_message_exactly_once(outbox, news):
    people = subscribers(news, 3)
    campaign = sending_campaign(news)
    deliver_pending()
    stored = list(OutboxMessage.objects.order_by("pk"))
    assert sorted(m.to for m in stored) == sorted(p.email for p in people)
    message = stored[0].parsed()
    assert message["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
    assert message["Message-ID"].startswith("<d")
    assert "We shipped the thing" in stored[0].body("plain")
    assert "We shipped the thing" in stored[0].body("html")
    assert stored[0].subject.startswith("News for ")
    assert delivery_counts(campaign)["sent"] == 3


def test_the_outbox_pages_list_messages_and_show_one_in_a_sandboxed_frame(
    outbox, news, owner_client
):
    (ada,) = subscribers(news, 1)
    sending_campaign(news)
    deliver_pending()
    stored = OutboxMessage.objects.get()
    listing = owner_client.get("/outbox/")
    assert listing.status_code == 200
    assert ada.email in listing.text and f"/outbox/{stored.pk}/" in listing.text
    page = owner_client.get(f"/outbox/{stored.pk}/")
    assert page.status_code == 200
    assert '<iframe class="email-preview" sandbox=""' in page.text
    assert 'srcdoc="&lt;' in page.text  # the HTML is escaped into the attribute
    assert "List-Unsubscribe" in page.text
    assert owner_client.get("/outbox/999999/").status_code == 404


def test_the_outbox_pages_are_for_operators_only(client, outbox, django_user_model):
    assert client.get("/outbox/").status_code == 302
    visitor = django_user_model.objects.create_user("visitor", "v@example.org", "x" * 12)
    client.force_login(visitor)
    assert client.get("/outbox/").status_code == 403


# --- any Django email backend --------------------------------------------------------------------
def test_a_django_backend_sends_campaign_mail_with_its_headers(settings, news):
    settings.TIDINGS_TRANSPORTS = {"esp": {"mailer": "default"}}  # locmem in tests
    (ada,) = subscribers(news, 1)
    campaign = sending_campaign(news)
    deliver_pending()
    (message,) = mail.outbox
    assert message.to == [ada.email]
    assert message.subject == f"News for {ada.name}"
    assert message.extra_headers["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
    assert message.extra_headers["List-Unsubscribe"].startswith("<http")
    assert message.extra_headers["Message-ID"].startswith("<d")
    assert message.alternatives[0].mimetype == "text/html"
    assert Delivery.objects.get().transport == "esp"
    assert Campaign.objects.get(pk=campaign.pk).status == "finished"


def test_a_django_backend_sends_system_email_too(settings, news):
    settings.TIDINGS_TRANSPORTS = {
        "esp": {"backend": "django.core.mail.backends.locmem.EmailBackend"}
    }
    (ada,) = subscribers(news, 1)
    send_system_email(ada, "preferences_link", {"preferences_url": "https://x/p/t"})
    deliver_pending()
    assert [m.to for m in mail.outbox] == [[ada.email]]
    assert "https://x/p/t" in mail.outbox[0].body


class _ProviderError(Exception):
    """What django-anymail raises for an API error: the HTTP status on the exception."""

    def __init__(self, status_code: int, text: str = "") -> None:
        super().__init__(text or f"HTTP {status_code}")
        self.status_code = status_code


def test_errors_of_django_backends_become_transport_errors():
    refused = _translate(
        smtplib.SMTPRecipientsRefused({"a@example.org": (550, b"5.1.1 User unknown")})
    )
    assert (refused.permanent, refused.kind, refused.code) == (True, "user_unknown", 550)
    # A refused envelope sender is about us, not the recipient's mailbox: never a hard bounce.
    sender = _translate(
        smtplib.SMTPSenderRefused(550, b"5.1.0 Sender address rejected: User unknown", "a@b.c")
    )
    assert (sender.permanent, sender.kind, sender.code) == (True, "sender", 550)
    assert _translate(_ProviderError(429)).kind == "throttled"
    assert _translate(_ProviderError(400)).permanent is True
    # An ESP refusing our unverified sender is our set-up, never the recipient's fault: a
    # refused sender (counted apart, nobody suppressed), the ESP's words (addresses) not kept.
    for text in (
        "Email address is not verified. The following identities failed the check in region "
        "EU-WEST-1: news@example.org",  # SES
        "The 'From' address you supplied (news@example.org) is not a Sender Signature on your "
        "account. Please add and confirm this address",  # Postmark
        "The from address does not match a verified Sender Identity.",  # SendGrid (as a 400)
        "Sending domain example.org has not been verified",
    ):
        unverified = _translate(_ProviderError(400, text))
        assert (unverified.permanent, unverified.kind) == (True, "sender"), text
        assert "example.org" not in unverified.describe()
    for text in ("'to' parameter is not a valid address", "Invalid recipient: verified list"):
        assert _translate(_ProviderError(400, text)).kind == "rejected", text
    assert _translate(_ProviderError(503)).permanent is False
    assert _translate(_ProviderError(401)).kind == "auth"
    assert _translate(ConnectionResetError("reset")).kind == "connection"
    assert _translate(RuntimeError("odd")).permanent is False


# --- SMTP ----------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def certificate(tmp_path_factory):
    if shutil.which("openssl") is None:
        pytest.skip("needs openssl to make a test certificate")
    folder = tmp_path_factory.mktemp("tls")
    subprocess.run(
        [
            "openssl",
            "req",
            "-x509",
            "-newkey",
            "rsa:2048",
            "-nodes",
            "-days",
            "1",
            "-subj",
            "/CN=localhost",
            "-keyout",
            str(folder / "key.pem"),
            "-out",
            str(folder / "cert.pem"),
        ],
        check=True,
        capture_output=True,
    )
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(folder / "cert.pem", folder / "key.pem")
    return context


def _accept(expected: tuple[bytes, bytes]):
    def authenticator(server, session, envelope, mechanism, auth_data):
        ok = (
            isinstance(auth_data, LoginPassword)
            and (auth_data.login, auth_data.password) == expected
        )
        return AuthResult(success=ok, handled=False)  # aiosmtpd answers 535 itself

    return authenticator


def test_smtp_with_starttls_and_a_password(settings, news, certificate):
    options = {
        "tls_context": certificate,
        "require_starttls": True,
        "auth_required": True,
        "authenticator": _accept((b"mailer", b"s3cret")),
    }
    with SmtpSink(options=options) as sink:
        url = f"smtp://mailer:s3cret@127.0.0.1:{sink.port}?tls=starttls&verify=no"
        settings.TIDINGS_TRANSPORTS = transports_for(url)
        people = subscribers(news, 3)
        sending_campaign(news)
        deliver_pending()
    assert sorted(r.recipient for r in sink.received) == sorted(p.email for p in people)


@pytest.mark.parametrize("pipelining", [True, False], ids=["pipelining", "in-step"])
def test_refusals_at_rcpt_and_data_leave_the_connection_in_step(settings, news, pipelining):
    """One connection carries every message, with or without PIPELINING (RFC 2920: MAIL, RCPT
    and DATA written at once): a recipient refused at RCPT, a message refused or deferred at the
    end of DATA, and the messages after them still go out, each once, to the right person."""
    with SmtpSink(pipelining=pipelining) as sink:
        settings.TIDINGS_TRANSPORTS = transports_for(sink, concurrency=1)
        fast_retries(settings)
        people = subscribers(news, 6)
        unknown, spam, later = people[1], people[2], people[4]
        sink.answers[unknown.email] = [f"550 5.1.1 <{unknown.email}>: no such user"]
        sink.answers[spam.email] = ["554 5.7.1 Message rejected as spam"]
        sink.answers[later.email] = ["451 4.3.0 Try again later"]
        campaign = sending_campaign(news)
        deadline = time.monotonic() + 20
        while Delivery.objects.filter(campaign=campaign, status__in=("queued", "sending")):
            assert time.monotonic() < deadline
            deliver_pending(max_seconds=5)
            time.sleep(0.05)
        rows = {d.contact_id: d for d in Delivery.objects.filter(campaign=campaign)}
    accepted = [p for p in people if p not in (unknown, spam)]
    assert sorted(r.recipient for r in sink.received) == sorted(p.email for p in accepted)
    assert all(r.message["To"].addresses[0].addr_spec == r.recipient for r in sink.received)
    assert (rows[unknown.pk].status, rows[unknown.pk].error_code) == ("failed", 550)
    assert (rows[spam.pk].status, rows[spam.pk].error_code) == ("failed", 554)
    assert (rows[later.pk].status, rows[later.pk].attempts) == ("sent", 2)
    assert {rows[p.pk].status for p in accepted} == {"sent"}
    # Pipelined when offered (every message's MAIL came with its RCPT and DATA), never when not.
    assert sink.pipelined == (len(people) + 1 if pipelining else 0)


def test_smtps_with_tls_from_the_first_byte(settings, news, certificate):
    with SmtpSink(options={"ssl_context": certificate}) as sink:
        settings.TIDINGS_TRANSPORTS = transports_for(f"smtps://127.0.0.1:{sink.port}?verify=no")
        subscribers(news, 2)
        sending_campaign(news)
        deliver_pending()
    assert len(sink.received) == 2


def test_a_refused_password_pauses_the_campaign_without_spending_attempts(
    settings, news, certificate
):
    options = {
        "tls_context": certificate,
        "auth_required": True,
        "authenticator": _accept((b"mailer", b"right")),
    }
    settings.TIDINGS_UNREACHABLE_PAUSE_SECONDS = 0.3
    with SmtpSink(options=options) as sink:
        url = f"smtp://mailer:wrong@127.0.0.1:{sink.port}?tls=starttls&verify=no"
        settings.TIDINGS_TRANSPORTS = transports_for(url, concurrency=2)
        subscribers(news, 10)
        campaign = sending_campaign(news)
        deliver_pending(max_seconds=10)
    campaign.refresh_from_db()
    assert campaign.status == "paused"
    assert "auth" in campaign.paused_reason and "535" in campaign.paused_reason
    assert set(Delivery.objects.values_list("status", "attempts")) == {("queued", 0)}
    assert not sink.received


class _RelayDenyingSink(SmtpSink):
    """Postfix without our client in mynetworks nor a login: every recipient gets
    "554 5.7.1 <...>: Relay access denied" (smtpd_relay_restrictions)."""

    async def handle_RCPT(self, server, session, envelope, address, rcpt_options):
        return f"554 5.7.1 <{address}>: Relay access denied"


@pytest.mark.parametrize("refusal", ["login required", "relaying denied"])
def test_a_server_that_will_not_send_for_us_pauses_the_campaign_and_suppresses_nobody(
    settings, news, certificate, refusal
):
    """Our SMTP settings are wrong: no user name for a server that needs a login ("530 5.7.0
    Authentication required", at MAIL), or a relay that does not relay for us ("554 5.7.1
    Relay access denied", at RCPT).  Before, the 5.7 made each a policy block: every row
    failed for good and counted as the list's refusals.  Nothing is spent now: the campaign
    pauses saying what to check, the rows wait, nobody is suppressed."""
    from tidings.audience.models import Suppression

    settings.TIDINGS_UNREACHABLE_PAUSE_SECONDS = 0.3
    if refusal == "login required":
        sink = SmtpSink(options={"tls_context": certificate, "auth_required": True})
        url = f"smtp://127.0.0.1:{sink.port}?tls=starttls&verify=no"
    else:
        sink = _RelayDenyingSink()
        url = sink.url
    with sink:
        settings.TIDINGS_TRANSPORTS = transports_for(url, concurrency=2)
        subscribers(news, 10)
        campaign = sending_campaign(news)
        deliver_pending(max_seconds=10)
    campaign.refresh_from_db()
    assert campaign.status == "paused"
    assert "refused to send for us" in campaign.paused_reason
    assert ("530" if refusal == "login required" else "Relay access denied") in (
        campaign.paused_reason
    )
    assert "user name and password" in campaign.paused_reason
    assert set(Delivery.objects.values_list("status", "attempts")) == {("queued", 0)}
    assert not Suppression.objects.exists()
    assert not sink.received


def test_two_smtp_servers_share_the_load_and_nobody_gets_two_copies(settings, news):
    with SmtpSink() as first, SmtpSink() as second:
        settings.TIDINGS_TRANSPORTS = transports_for(first, second, concurrency=2)
        people = subscribers(news, 40)
        sending_campaign(news)
        deliver_pending()
    assert first.received and second.received
    everyone = [r.recipient for r in first.received + second.received]
    assert sorted(everyone) == sorted(p.email for p in people)
    assert set(Delivery.objects.values_list("transport", flat=True)) == {"default", "smtp1"}


def test_a_campaign_can_be_sent_through_one_named_transport(settings, news):
    with SmtpSink() as first, SmtpSink() as second:
        settings.TIDINGS_TRANSPORTS = transports_for(first, second)
        subscribers(news, 10)
        sending_campaign(news, transport="smtp1")
        deliver_pending()
    assert not first.received and len(second.received) == 10


def test_a_campaign_naming_a_transport_that_does_not_exist_is_paused(settings, news):
    with SmtpSink() as sink:
        settings.TIDINGS_TRANSPORTS = transports_for(sink)
        subscribers(news, 2)
        campaign = sending_campaign(news, transport="nowhere")
        deliver_pending()
    campaign.refresh_from_db()
    assert campaign.status == "paused" and "nowhere" in campaign.paused_reason


def test_the_rate_limit_of_a_transport_is_kept(settings, news):
    with SmtpSink() as sink:
        settings.TIDINGS_TRANSPORTS = transports_for(sink, rate="20/s", concurrency=4)
        subscribers(news, 30)
        sending_campaign(news)
        started = time.monotonic()
        deliver_pending()
        elapsed = time.monotonic() - started
    assert len(sink.received) == 30
    assert elapsed >= 1.3  # 30 messages at 20/s, a burst of 2 at most


def test_rate_limits_are_shared_between_workers(monkeypatch):
    # The limiter's own clock, moved by the test a millisecond at a time: a loaded machine
    # cannot take turns away from the loop, so the count is exact.
    from tidings.campaigns.transports import base

    now = [1000.0]
    monkeypatch.setattr(base, "time", SimpleNamespace(monotonic=lambda: now[0]))
    limiter = RateLimiter(parse_rate("100/s"))
    limiter.share = 0.5
    sent = 0
    for _ in range(500):
        if limiter.delay() == 0:
            sent += 1
        now[0] += 0.001
    # 50/s for half a second (25), plus the burst of a tenth of a second's worth (5); a whole
    # share would have sent 60.
    assert 29 <= sent <= 31


# --- configuration and errors ---------------------------------------------------------------------
def test_transports_come_from_a_toml_file(settings, tmp_path):
    path = tmp_path / "transports.toml"
    path.write_text(
        '[main]\nurl = "smtp://u:p@mail1.example.com:587"\nconcurrency = 8\n'
        'rate = "50/s, 100000/h"\n\n[esp]\nbackend = "anymail.backends.amazon_ses.EmailBackend"\n'
        'options = { region = "eu-west-1" }\n'
    )
    settings.TIDINGS_TRANSPORTS = str(path)
    main, esp = transport_configs()
    assert (main.name, main.kind, main.concurrency) == ("main", "smtp", 8)
    assert main.limits == ((50, 1.0), (100000, 3600.0))
    assert main.describe() == "main (SMTP mail1.example.com:587)"  # no credentials
    assert (esp.kind, esp.options) == ("django_backend", {"region": "eu-west-1"})


def test_without_transports_the_smtp_url_is_the_default_transport(settings):
    settings.TIDINGS_TRANSPORTS = None
    settings.TIDINGS_SMTP_URL = "smtps://u:p@mail.example.com"
    settings.TIDINGS_SMTP_RATE = "14/s"
    (default,) = transport_configs()
    assert (default.name, default.kind, default.limits) == ("default", "smtp", ((14, 1.0),))


@pytest.mark.parametrize(
    ("table", "message"),
    [
        ({"x": {"url": "ftp://host"}}, "expected outbox"),
        ({"x": {"url": "smtp://h", "rate": "fast"}}, "rate"),
        ({"x": {"url": "smtp://h", "colour": "red"}}, "unknown setting"),
        ({"x": {"url": "smtp://h", "mailer": "default"}}, "exactly one"),
        ({"X Y": {"url": "smtp://h"}}, "named with"),
    ],
)
def test_a_broken_transport_setting_says_what_is_wrong(settings, table, message):
    settings.TIDINGS_TRANSPORTS = table
    with pytest.raises(ImproperlyConfigured, match=message):
        transport_configs()


@pytest.mark.parametrize(
    ("code", "text", "permanent", "kind"),
    [
        (
            550,
            "5.1.1 <bob@example.org>: Recipient address rejected: User unknown",
            True,
            "user_unknown",
        ),
        (550, "Requested action not taken: mailbox unavailable", True, "rejected"),
        # Postfix checks the sender at RCPT (smtpd_delay_reject=yes, its default): a refusal of
        # our envelope sender arrives as the recipient's reply, and is no hard bounce.
        (
            550,
            "5.1.0 <news@example.org>: Sender address rejected: User unknown in local table",
            True,
            "sender",
        ),
        # Our envelope sender refused (RFC 3463 X.1.7, X.1.8), with or without the code: a
        # sender problem, counted apart for the pause, never the recipient's hard bounce.
        (
            553,
            "5.1.8 <news@example.org>: Sender address rejected: Domain not found",
            True,
            "sender",
        ),
        (553, "5.1.7 The sender address <news@x> is not a valid RFC-5321 address", True, "sender"),
        (550, "5.1.8 Access denied, bad outbound sender", True, "sender"),
        (550, "Verification failed for <news@example.org> Sender verify failed", True, "sender"),
        (553, "Domain of sender address news@example.invalid does not exist", True, "sender"),
        (
            504,
            "5.5.2 <news>: Sender address rejected: need fully-qualified address",
            True,
            "sender",
        ),
        (554, "5.7.60 Client does not have permissions to send as this sender", True, "sender"),
        # Our SMTP server refusing to send for us (RFC 4954's 530, relaying denied): our set-up,
        # not the message nor the recipient: no attempt spent, nobody suppressed.
        (530, "5.7.0 Authentication required", False, "auth"),
        (530, "5.7.0 Must issue a STARTTLS command first", False, "auth"),
        (
            550,
            "5.7.57 Client was not authenticated to send anonymous mail during MAIL FROM",
            False,
            "auth",
        ),
        (554, "5.7.1 <bob@example.org>: Relay access denied", False, "auth"),
        (550, "5.7.1 Unable to relay", False, "auth"),
        (550, "relay not permitted", False, "auth"),
        (550, "5.7.64 TenantAttribution; Relay Access Denied", False, "auth"),
        (553, "sorry, that domain isn't in my list of allowed rcpthosts", False, "auth"),
        # 5.7.1 for the content or our reputation stays a policy block.
        (550, "5.7.1 Message content rejected", True, "blocked"),
        (
            550,
            "5.7.1 [1.2.3.4] Our system has detected that this message is likely unsolicited mail",
            True,
            "blocked",
        ),
        (
            550,
            "5.7.1 Unfortunately, messages from [1.2.3.4] weren't sent. Please contact your "
            "Internet service provider since part of their network is on our block list (S3150)",
            True,
            "blocked",
        ),
        (554, "5.7.9 Message not accepted for policy reasons", True, "blocked"),
        (
            550,
            "5.7.515 Access denied, sending domain does not meet the required authentication level",
            True,
            "blocked",
        ),
        (554, "5.7.1 Spam", True, "blocked"),
        # A policy block is not about the address, whatever its words.
        (550, "5.7.1 Sender unknown to our reputation service: blocked", True, "blocked"),
        (550, "5.7.26 Unauthenticated email is not accepted due to DMARC policy", True, "blocked"),
        # Without an enhanced code, the words of a content or reputation refusal say the same.
        (554, "Message rejected as spam", True, "blocked"),
        (554, "Rejected content", True, "blocked"),
        (550, "Sender unknown to our reputation service", True, "blocked"),
        (554, "Service unavailable; client host blocked using zen.spamhaus.org", True, "blocked"),
        # An address code says more than words around it.
        (550, "5.1.1 No such user (spam trap)", True, "user_unknown"),
        (550, "No such user here", True, "user_unknown"),
        # Mailbox full: RFC 3463 says persistent, but it empties (Gmail): tried again later.
        (552, "5.2.2 The recipient's inbox is out of storage space", False, "temporary"),
        (552, "Mailbox full", False, "temporary"),
        (454, "Throttling failure: Maximum sending rate exceeded.", False, "throttled"),
        (421, "4.7.0 Try again later, closing connection", False, "throttled"),
        (451, "4.7.1 Greylisted, please retry", False, "temporary"),
    ],
)
def test_smtp_replies_are_classified(code, text, permanent, kind):
    error = classify_smtp_reply(code, text)
    assert (error.permanent, error.kind, error.code) == (permanent, kind, code)
    assert "@" not in error.describe()


def test_transport_errors_never_carry_an_address():
    error = TransportError("bad <zoe.m@example.org> and also bob@ex.co", permanent=True)
    assert error.text == "bad <<address>> and also <address>"


class _SenderRefusingSink(SmtpSink):
    """A server that refuses our envelope sender, as Postfix's reject_unlisted_sender does: at
    MAIL, or (Postfix's default, smtpd_delay_reject=yes) in its reply to RCPT."""

    stage: str = "MAIL"
    REPLY = "550 5.1.0 <{}>: Sender address rejected: User unknown in local recipient table"

    async def handle_MAIL(self, server, session, envelope, address, mail_options):
        if self.stage == "MAIL":
            return self.REPLY.format(address)
        envelope.mail_from = address
        return "250 OK"

    async def handle_RCPT(self, server, session, envelope, address, rcpt_options):
        return self.REPLY.format(envelope.mail_from)


@pytest.mark.parametrize("stage", ["MAIL", "RCPT"])
@pytest.mark.parametrize("pipelining", [True, False], ids=["pipelining", "in-step"])
def test_a_refused_envelope_sender_suppresses_no_recipient(settings, news, pipelining, stage):
    """A refusal of our sender address says our sender address is wrong, not that the
    recipient's mailbox does not exist: the rows fail (the breaker then pauses the campaign,
    "retry failed" sends them once the sender is fixed), but nobody is suppressed as a hard
    bounce.  Before, "User unknown" in it made every recipient a hard bounce, for good."""
    from tidings.audience.models import Suppression

    sink = _SenderRefusingSink(pipelining=pipelining)
    sink.stage = stage
    with sink:
        settings.TIDINGS_TRANSPORTS = transports_for(sink, concurrency=1)
        subscribers(news, 3)
        campaign = sending_campaign(news)
        deliver_pending(max_seconds=15)  # ends as soon as every row is done
    rows = list(Delivery.objects.filter(campaign=campaign).values_list("status", "error"))
    assert {status for status, _ in rows} == {"failed"}
    assert all(error.startswith("sender: 550") for _, error in rows), rows
    assert "sender" in rows[0][1].lower()
    assert not Suppression.objects.exists()
    assert not sink.received


def _international_reader(mailing_list):
    from tidings.audience.actions import do_create_contact, do_subscribe

    jorg, _ = do_create_contact(
        {"name": "Jörg", "email": "jörg@bücher.example"}, purpose="newsletter"
    )
    do_subscribe(jorg, mailing_list, source="form", wording_text="Yes", confirmed=True)
    return jorg


@pytest.mark.parametrize("pipelining", [True, False], ids=["pipelining", "in-step"])
def test_an_international_address_goes_out_with_smtputf8_when_the_server_offers_it(
    settings, news, pipelining
):
    with SmtpSink(pipelining=pipelining, options={"enable_SMTPUTF8": True}) as sink:
        settings.TIDINGS_TRANSPORTS = transports_for(sink, concurrency=1)
        people = subscribers(news, 2)
        _international_reader(news)
        campaign = sending_campaign(news)
        deliver_pending(max_seconds=5)
    assert set(Delivery.objects.filter(campaign=campaign).values_list("status", flat=True)) == {
        "sent"
    }
    recipients = sorted(r.recipient for r in sink.received)
    assert recipients == sorted([*(p.email for p in people), "jörg@xn--bcher-kva.example"])


@pytest.mark.parametrize("pipelining", [True, False], ids=["pipelining", "in-step"])
def test_an_international_address_fails_alone_and_clearly_when_the_server_lacks_smtputf8(
    settings, news, pipelining
):
    # Sent regardless, MAIL FROM ... SMTPUTF8 drew the server's own words ("501 Error:
    # SMTPUTF8 disabled" here, "555 Unsupported option" from others), taken for a refusal of
    # our envelope sender.  It is this one recipient's fault: the row fails saying why, the
    # others go out, nobody is suppressed, the campaign is not paused.
    from tidings.audience.models import Suppression

    # aiosmtpd's Controller offers SMTPUTF8 unless told not to.
    with SmtpSink(pipelining=pipelining, options={"enable_SMTPUTF8": False}) as sink:
        settings.TIDINGS_TRANSPORTS = transports_for(sink, concurrency=1)
        people = subscribers(news, 2)
        jorg = _international_reader(news)
        campaign = sending_campaign(news)
        deliver_pending(max_seconds=5)
    rows = {d.contact_id: d for d in Delivery.objects.filter(campaign=campaign)}
    assert rows[jorg.pk].status == "failed"
    assert "does not offer SMTPUTF8" in rows[jorg.pk].error, rows[jorg.pk].error
    assert "jörg" not in rows[jorg.pk].error
    assert {rows[p.pk].status for p in people} == {"sent"}
    assert sorted(r.recipient for r in sink.received) == sorted(p.email for p in people)
    assert not Suppression.objects.exists()
    campaign.refresh_from_db()
    assert campaign.status != Campaign.Status.PAUSED
