"""`tidings inbound serve`: the LMTP server a mail server delivers support mail and bounces to,
spoken to by a real LMTP client (Python's smtplib.LMTP) over a real socket.  Each message must
end as the pipe (`tidings inbound process`, `tidings bounces process`) would end it."""

from __future__ import annotations

import io
import logging
import smtplib
import socket
import threading
from pathlib import Path

import pytest
from django.core.management import CommandError, call_command
from django.core.signals import Signal
from django.db import OperationalError
from django.db.backends.signals import connection_created

from tests.campaigns.bounce_helpers import sample
from tidings.campaigns.models import InboundReport
from tidings.crm.inbound import lmtp
from tidings.crm.models import Enquiry, InboundMail

from .helpers import mail

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.usefixtures("support_address")]

GRACE = "Grace Hopper <grace@example.org>"
BOUNCES = "bounces@example.co.uk"


@pytest.fixture
def serve(settings):
    """Start a receiver on a free port of 127.0.0.1 (as `tidings inbound serve` does); stopped
    at the end of the test.  Returns a function that starts one and returns it."""
    settings.TIDINGS_BOUNCE_ADDRESS = BOUNCES
    started: list[lmtp.Receiver] = []

    def start() -> lmtp.Receiver:
        receiver = lmtp.Receiver(lmtp.Listen(host="127.0.0.1", port=0))
        receiver.start()
        started.append(receiver)
        return receiver

    yield start
    for receiver in started:
        receiver.stop(timeout=30)


def client(receiver: lmtp.Receiver) -> smtplib.LMTP:
    host, _, port = receiver.address.rpartition(":")
    return smtplib.LMTP(host, int(port), timeout=60)


def wire(raw: bytes) -> bytes:
    """A message as a mail server sends it: lines end in CRLF (smtplib leaves bytes alone)."""
    return raw.replace(b"\r\n", b"\n").replace(b"\n", b"\r\n")


def send(receiver: lmtp.Receiver, raw: bytes, to: str = "support@example.co.uk") -> dict:
    with client(receiver) as peer:
        return peer.sendmail("mta@example.org", [to], wire(raw))


def pipe(tmp_path: Path, raw: bytes) -> str:
    path = tmp_path / "message.eml"
    path.write_bytes(raw)
    out = io.StringIO()
    call_command("inbound", "process", "--file", str(path), stdout=out)
    return out.getvalue()


# --- mail the pipe would take -----------------------------------------------------------------
def test_a_support_mail_delivered_over_lmtp_opens_an_enquiry_as_the_pipe_would(serve):
    receiver = serve()
    refused = send(receiver, mail(GRACE, subject="Courses", body="Do you run COBOL courses?"))

    assert refused == {}  # 250 for its one recipient
    enquiry = Enquiry.objects.select_related("contact").get()
    row = InboundMail.objects.get()
    assert (row.source, row.status, row.reason) == (
        "lmtp",
        "processed",
        f"new enquiry #{enquiry.pk}",
    )
    assert (enquiry.channel, enquiry.subject, enquiry.message) == (
        "email",
        "Courses",
        "Do you run COBOL courses?",
    )
    assert enquiry.contact.email == "grace@example.org"


def test_special_category_text_is_screened_over_lmtp_exactly_as_through_the_pipe(serve, tmp_path):
    body = "I was off last week with a migraine. Do you run COBOL courses in March?"
    pipe(tmp_path, mail(GRACE, subject="Courses", body=body))
    send(serve(), mail("Ada Lovelace <ada@example.org>", subject="Courses", body=body))

    piped, delivered = Enquiry.objects.order_by("pk")
    assert piped.message == "[removed: health] Do you run COBOL courses in March?"
    assert delivered.message == piped.message
    assert "migraine" not in delivered.message
    assert [r.source for r in InboundMail.objects.order_by("pk")] == ["pipe", "lmtp"]


def test_a_reply_address_is_a_recipient_and_mail_both_addresses_get_is_taken_once(serve):
    receiver = serve()
    raw = mail(GRACE, subject="Courses", body="Any courses?")
    with client(receiver) as peer:
        refused = peer.sendmail(
            "mta@example.org", ["support@example.co.uk", "Support+e1.abc@Example.co.uk"], wire(raw)
        )
        # smtplib reads one reply after DATA; LMTP sends one a recipient: the second is here.
        assert peer.getreply()[0] == 250
    assert refused == {}
    assert InboundMail.objects.count() == 1 and Enquiry.objects.count() == 1


def test_a_bounce_to_the_bounce_address_becomes_a_report_as_the_bounce_pipe_would(serve):
    send(
        serve(),
        sample("postfix_hard.eml", recipient="reader@example.org"),
        to="bounces+d12.sig@example.co.uk",
    )
    report = InboundReport.objects.get()
    assert report.source == "lmtp"
    assert not InboundMail.objects.exists()


# --- what is refused --------------------------------------------------------------------------
def test_what_is_not_mail_gets_a_550_and_is_kept_as_the_pipe_keeps_it(serve, tmp_path):
    with pytest.raises(CommandError, match="not a mail message"):
        pipe(tmp_path, b"just some words\n")
    with pytest.raises(smtplib.SMTPDataError) as refused:
        send(serve(), b"just some words\r\n")

    assert refused.value.smtp_code == 550
    piped, delivered = InboundMail.objects.order_by("pk")
    assert (delivered.status, delivered.reason) == (piped.status, piped.reason)
    assert bytes(delivered.raw) == b"just some words\r\n"


def test_mail_with_a_stray_nul_in_its_text_opens_an_enquiry_and_binary_is_still_refused(serve):
    """A customer's mail program put a NUL byte in the plain-text body: the mail was refused
    550 "not a mail message" (a bounce to them, no enquiry).  Mail is taken, the NUL dropped
    (from an encoded-word subject too); a file with no mail headers is still refused."""
    receiver = serve()
    raw = mail(GRACE, subject="Courses", body="Do you run\x00 COBOL courses?\x00")
    raw = raw.replace(b"Subject: Courses", b"Subject: =?utf-8?q?COBOL=00_courses?=")
    assert b"\x00" in raw[:4096]

    assert send(receiver, raw) == {}  # 250
    enquiry = Enquiry.objects.get()
    assert (enquiry.subject, enquiry.message) == ("COBOL courses", "Do you run COBOL courses?")
    assert InboundMail.objects.get().status == "processed"

    for binary in (b"\x00\x01\x02 binary", b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR\r\n\r\n\x00"):
        with pytest.raises(smtplib.SMTPDataError) as refused:
            send(receiver, binary)
        assert refused.value.smtp_code == 550
    assert [r.reason for r in InboundMail.objects.order_by("pk")][1:] == [
        "not a mail message: the input is binary, not a mail message"
    ] * 2
    assert Enquiry.objects.count() == 1


def test_a_recipient_that_is_not_ours_is_refused_at_rcpt(serve):
    with pytest.raises(smtplib.SMTPRecipientsRefused) as refused:
        send(serve(), mail(GRACE), to="sales@example.co.uk")
    assert refused.value.recipients["sales@example.co.uk"][0] == 550
    with pytest.raises(smtplib.SMTPRecipientsRefused):
        send(serve(), mail(GRACE), to="support@elsewhere.example")
    assert not InboundMail.objects.exists()


def test_the_size_limit_is_announced_and_a_larger_message_is_refused_with_552(serve, settings):
    settings.TIDINGS_INBOUND_MAX_BYTES = 4000
    receiver = serve()
    with client(receiver) as peer:
        peer.ehlo()  # LHLO
        assert peer.esmtp_features["size"] == "4000"
    # A client that says the size in MAIL FROM is refused there ...
    with pytest.raises(smtplib.SMTPSenderRefused) as refused:
        send(receiver, mail(GRACE, body="Long enough.\n" * 400))
    assert refused.value.smtp_code == 552
    # ... and one that does not, after DATA, with one reply for each of its recipients.
    with client(receiver) as peer:
        peer.ehlo()
        assert peer.mail("mta@example.org")[0] == 250
        assert peer.rcpt("support@example.co.uk")[0] == 250
        assert peer.rcpt(BOUNCES)[0] == 250
        assert peer.data(wire(mail(GRACE, body="Long enough.\n" * 400)))[0] == 552
        assert peer.getreply()[0] == 552
        assert peer.noop()[0] == 250  # still in step with the server
    assert not InboundMail.objects.exists()


# --- a database that is down ------------------------------------------------------------------
@pytest.fixture
def database_down():
    """While set, every query of the LMTP server's processing thread fails as it does when the
    database server is gone (Django's documented query hook, on that thread's connection)."""
    down = threading.Event()

    def gone(execute, sql, params, many, context):
        if down.is_set():
            raise OperationalError("connection to server failed: Connection refused")
        return execute(sql, params, many, context)

    def on_connect(sender, connection, **kwargs):
        ours = threading.current_thread().name.startswith("lmtp-processing")
        if ours and gone not in connection.execute_wrappers:
            connection.execute_wrappers.append(gone)

    signal: Signal = connection_created
    signal.connect(on_connect)
    yield down
    signal.disconnect(on_connect)


def test_mail_that_cannot_be_stored_gets_a_451_and_is_processed_when_sent_again(
    serve, database_down
):
    receiver = serve()
    raw = mail(GRACE, subject="Courses", body="Do you run COBOL courses?")
    send(receiver, mail("Ada Lovelace <ada@example.org>"))  # the thread's connection is open

    database_down.set()
    with pytest.raises(smtplib.SMTPDataError) as deferred:
        send(receiver, raw)
    assert deferred.value.smtp_code == 451  # the mail server keeps it and tries again
    database_down.clear()
    assert send(receiver, raw) == {}

    assert Enquiry.objects.filter(contact__email="grace@example.org").count() == 1
    assert receiver.counts["deferred"] == 1


# --- one process, one engine --------------------------------------------------------------------
def test_screening_s_engine_is_built_once_for_many_messages(serve, engine_builds):
    receiver = serve()
    assert engine_builds == [False]  # at start, before any mail
    for n in range(3):
        send(receiver, mail(f"Person {n} <p{n}@example.org>", body="Any courses?"))
    with client(receiver) as peer:  # several in one connection, as a mail server sends them
        for n in range(3, 6):
            peer.sendmail("mta@example.org", ["support@example.co.uk"], wire(mail(f"p{n}@x.org")))
    assert Enquiry.objects.count() == 6
    assert engine_builds == [False]


# --- stopping -----------------------------------------------------------------------------------
@pytest.fixture
def slow_database():
    """The processing thread's queries wait until ``release`` is set; ``entered`` says one does."""
    entered, release = threading.Event(), threading.Event()

    def slow(execute, sql, params, many, context):
        if sql.lstrip().upper().startswith("INSERT"):
            entered.set()
            release.wait(30)
        return execute(sql, params, many, context)

    def on_connect(sender, connection, **kwargs):
        ours = threading.current_thread().name.startswith("lmtp-processing")
        if ours and slow not in connection.execute_wrappers:
            connection.execute_wrappers.append(slow)

    connection_created.connect(on_connect)
    yield entered, release
    release.set()
    connection_created.disconnect(on_connect)


def test_stopping_takes_no_new_connection_and_answers_the_message_in_hand(serve, slow_database):
    entered, release = slow_database
    receiver = serve()
    host, _, port = receiver.address.rpartition(":")
    answers: list[dict | Exception] = []

    def deliver() -> None:
        try:
            answers.append(send(receiver, mail(GRACE, body="Any courses?")))
        except Exception as exc:
            answers.append(exc)

    sender = threading.Thread(target=deliver)
    sender.start()
    assert entered.wait(30)  # the message is being stored
    stopping = threading.Thread(target=receiver.stop)
    stopping.start()
    threading.Event().wait(0.5)  # stop() closes the listening socket at once (asynchronously)
    with pytest.raises(ConnectionRefusedError):
        socket.create_connection((host, int(port)), timeout=5)
    assert stopping.is_alive()  # waiting for the message in hand
    release.set()
    stopping.join(30)
    sender.join(30)
    assert answers == [{}]  # answered 250 before the connection closed
    assert Enquiry.objects.count() == 1


# --- the command and its log ------------------------------------------------------------------
def test_serve_refuses_a_bad_listen_address_and_nothing_to_receive_in_one_line(
    settings, monkeypatch
):
    monkeypatch.setenv("TIDINGS_BASE_URL", "https://news.example.com")
    with pytest.raises(CommandError, match=r"give HOST:PORT \(127.0.0.1:2424\) or unix:/path"):
        call_command("inbound", "serve", "--listen", "localhost")
    with pytest.raises(CommandError, match="must be absolute"):
        call_command("inbound", "serve", "--listen", "unix:relative.sock")
    settings.TIDINGS_SUPPORT_ADDRESS = ""
    settings.TIDINGS_BOUNCE_ADDRESS = ""
    with pytest.raises(CommandError, match="no address to receive mail for"):
        call_command("inbound", "serve")


@pytest.mark.parametrize(
    "command",
    [["inbound", "serve", "--listen"], ["worker", "--no-delivery", "--no-scheduler", "--lmtp"]],
    ids=["inbound serve", "worker --lmtp"],
)
def test_the_server_refuses_to_start_without_the_address_its_acknowledgements_link_to(
    command, monkeypatch
):
    """Started on its own (systemd, a shell) without TIDINGS_BASE_URL, the server acknowledged
    every support mail with links to http://127.0.0.1:8000, the default, which is the server's
    own machine and not where the customer reaches tidings.  It refuses, in one line naming the
    setting, before it builds screening's engine or listens."""
    monkeypatch.delenv("TIDINGS_BASE_URL", raising=False)
    with pytest.raises(CommandError, match=r"^TIDINGS_BASE_URL is not set: acknowledgements") as e:
        call_command(*command, f"127.0.0.1:{free_port()}")
    assert "\n" not in str(e.value)


def test_it_listens_on_a_unix_socket_the_mail_servers_group_can_reach(serve, tmp_path, settings):
    settings.TIDINGS_BOUNCE_ADDRESS = BOUNCES
    path = tmp_path / "lmtp.sock"
    receiver = lmtp.Receiver(lmtp.parse_listen(f"unix:{path}"))
    receiver.start()
    try:
        assert path.is_socket() and path.stat().st_mode & 0o777 == 0o660
        peer = smtplib.LMTP(f"{path}")
        assert peer.sendmail("mta@example.org", ["support@example.co.uk"], wire(mail(GRACE))) == {}
        peer.quit()
    finally:
        receiver.stop(timeout=30)
    assert Enquiry.objects.count() == 1
    assert not path.exists()


def test_the_log_says_sizes_and_outcomes_never_addresses_or_what_was_written(
    serve, caplog, settings
):
    # aiosmtpd's logger as settings.LOGGING has it (the SMTP test helpers quieten it on import).
    level = settings.LOGGING["loggers"].get("mail.log", {}).get("level", logging.NOTSET)
    caplog.set_level(level, logger="mail.log")
    caplog.set_level(logging.DEBUG, logger="tidings")
    caplog.set_level(logging.INFO)
    receiver = serve()
    send(receiver, mail(GRACE, subject="My hospital stay", body="About my diagnosis."))
    with pytest.raises(smtplib.SMTPRecipientsRefused):
        send(receiver, mail(GRACE), to="sales@example.co.uk")

    assert "bytes for 1 recipient(s) (support): 250 processed" in caplog.text
    for secret in ("grace", "Grace", "hospital", "diagnosis", "sales@", "mta@", "support@"):
        assert secret not in caplog.text


# --- the commands, as a service manager runs them -------------------------------------------
def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@pytest.mark.parametrize(
    "command",
    [["inbound", "serve", "--listen"], ["worker", "--no-delivery", "--no-scheduler", "--lmtp"]],
    ids=["inbound serve", "worker --lmtp"],
)
def test_the_command_receives_until_sigterm_then_exits_0_having_answered(command, tmp_path):
    """The real command in its own process (as systemd runs it), on the test's database."""
    import os
    import signal
    import subprocess
    import sys
    import time

    from django.db import connection

    if connection.vendor != "postgresql":
        pytest.skip("another process reaches the test database only on PostgreSQL")
    db = connection.settings_dict
    port = free_port()
    env = {
        **os.environ,
        "DATABASE_URL": f"postgres://{db['USER']}@{db['HOST']}:{db['PORT']}/{db['NAME']}",
        "TIDINGS_DATA_DIR": str(tmp_path),
        "TIDINGS_SUPPORT_ADDRESS": "Example Support <support@example.co.uk>",
        "TIDINGS_BASE_URL": "https://news.example.com",
    }
    tidings = Path(sys.executable).with_name("tidings")
    process = subprocess.Popen(
        [tidings, *command, f"127.0.0.1:{port}"],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        deadline = time.monotonic() + 240  # the engine takes seconds to build, more when busy
        while True:
            try:
                peer = smtplib.LMTP("127.0.0.1", port, timeout=60)
                break
            except ConnectionRefusedError:
                assert process.poll() is None and time.monotonic() < deadline
                time.sleep(0.5)
        with peer:
            assert (
                peer.sendmail("mta@example.org", ["support@example.co.uk"], wire(mail(GRACE))) == {}
            )
        process.send_signal(signal.SIGTERM)
        output, _ = process.communicate(timeout=120)
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
    assert process.returncode == 0, output
    assert "lmtp: stopped: 1 processed" in output
    assert "grace@" not in output and "support@" not in output
    assert Enquiry.objects.get().contact.email == "grace@example.org"


def test_an_exchange_out_of_office_delivered_over_lmtp_opens_nothing_and_gets_no_answer(serve):
    """Exchange's out-of-office reply carries only X-Auto-Response-Suppress: All (no
    Auto-Submitted, no In-Reply-To).  Delivered by the mail server, it is taken (250: nothing
    for the server to keep or bounce) and opens no enquiry, and nothing is sent back."""
    from tidings.campaigns.models import OutgoingMessage

    from .test_inbound_real_mail import EXCHANGE_OUT_OF_OFFICE

    assert send(serve(), EXCHANGE_OUT_OF_OFFICE) == {}
    row = InboundMail.objects.get()
    assert (row.source, row.status) == ("lmtp", "ignored")
    assert not Enquiry.objects.exists() and not OutgoingMessage.objects.exists()


# --- messy mail that is still a person's mail ------------------------------------------------
def test_a_nul_byte_in_a_mails_headers_is_dropped_and_the_mail_taken_with_a_note(serve):
    """A web form's mailer (C strings, their terminator written out) ended the Subject and
    X-Mailer with a NUL byte: the mail was refused 550 "binary, not a mail message", a bounce to
    the customer and no enquiry.  It is taken; the operator's list says which headers had one."""
    receiver = serve()
    raw = mail(GRACE, subject="Courses", body="Do you run COBOL courses?")
    raw = raw.replace(b"Subject: Courses", b"X-Mailer: FormMail 1.9\x00\r\nSubject: Courses\x00")
    assert b"\x00" in raw[:4096]

    assert send(receiver, raw) == {}  # 250
    enquiry = Enquiry.objects.get()
    assert (enquiry.subject, enquiry.message) == ("Courses", "Do you run COBOL courses?")
    row = InboundMail.objects.get()
    assert row.status == "processed"
    assert row.reason == (
        f"new enquiry #{enquiry.pk}; NUL bytes dropped from its headers (X-Mailer, Subject)"
    )


def test_a_nul_byte_in_who_sent_a_mail_keeps_it_for_an_operator_who_can_open_it(serve):
    """Where the NUL sits in the From header, which address sent the mail depends on who reads
    it: a program that stops at the NUL (the mail server's sender checks) reads another one
    than tidings, which drops it.  Taken (250), never matched to anyone's conversation on its
    own; kept for an operator, who may open a conversation for its sender."""
    from tidings.crm.inbound.processing import do_open_as_new, headers_of, may_open_as_new

    receiver = serve()
    raw = mail("Grace Hopper <grace@exam\x00ple.org>", subject="Courses", body="Any courses?")
    assert send(receiver, raw) == {}  # 250: kept, not bounced
    row = InboundMail.objects.get()
    assert row.status == "unprocessed"
    assert row.reason.startswith("a NUL byte in who sent it (From)")
    assert bytes(row.raw) == wire(raw)
    assert not Enquiry.objects.exists()

    assert may_open_as_new(row)
    assert headers_of(row)[0] == "Grace Hopper <grace@exam\ufffdple.org>"  # where it sits
    row = do_open_as_new(row)
    assert row.status == "processed", row.reason
    assert Enquiry.objects.get().contact.email == "grace@example.org"


# --- a message that fails at every try --------------------------------------------------------
# An address literal cut short: the standard library's header parser itself fails on it
# (AttributeError in Python 3.13's email._header_value_parser), at every try.
UNREADABLE_FROM = "From: Grace Hopper <grace@[10.0.0.1  "


def test_a_message_that_fails_at_every_try_is_kept_for_an_operator_and_answered_250(
    serve, client, caplog
):
    """A parsing bug on one message answered 451: the mail server retried it for days, a new
    row at each try, then bounced it to the customer.  It is taken once (250), kept whole for
    an operator, who sees that a message could not be read; only an owner or privacy officer
    downloads it (the message is unscreened), and the download is audited.  The log says
    where it failed, never what the message says."""
    from django.urls import reverse

    from tidings.lib.models import AuditEntry

    from .helpers import operator

    caplog.set_level(logging.INFO)
    receiver = serve()
    raw = wire(mail(GRACE, subject="My migraine", body="Do you run COBOL courses?"))
    raw = raw.replace(b"From: Grace Hopper <grace@example.org>", UNREADABLE_FROM.encode())
    assert send(receiver, raw) == {}  # 250: nothing for the mail server to retry or bounce
    row = InboundMail.objects.get()
    assert (row.status, row.reason) == (
        "unprocessed",
        "a message could not be read (AttributeError): kept as it came, for an operator to "
        "download and read",
    )
    assert bytes(row.raw) == raw
    assert "migraine" not in caplog.text and "grace@" not in caplog.text

    download = reverse("crm:inbound-message", args=[row.pk])
    client.force_login(operator("ed", role="editor"))
    page = client.get(reverse("crm:inbound")).text
    assert "A message could not be read" in page
    assert download not in page and "an owner or a privacy officer can download" in page
    assert client.get(download).status_code == 403

    officer = operator("pat", role="privacy_officer")
    client.force_login(officer)
    assert download in client.get(reverse("crm:inbound")).text
    response = client.get(download)
    assert response.status_code == 200
    assert response["Content-Type"] == "message/rfc822"
    assert response["Content-Disposition"] == f'attachment; filename="inbound-mail-{row.pk}.eml"'
    assert b"".join(response.streaming_content) == raw
    assert AuditEntry.objects.filter(action="inbound_mail.downloaded", actor=officer).count() == 1
