"""Mail as it really arrives at a small company's support address, written out as the .eml
files the mail programs send: out-of-office replies that say nothing of what they are
(Exchange), vacation responders, lists, delivery reports and no-reply senders must never open
a ticket nor be answered (two responders would loop), and what tidings answers automatically
says it is an auto-reply (RFC 3834)."""

from __future__ import annotations

import pytest

from tests.campaigns.delivery_helpers import SmtpSink, transports_for
from tidings.campaigns.engine import deliver_pending
from tidings.campaigns.models import InboundReport, OutgoingMessage
from tidings.crm.inbound.processing import do_receive_inbound
from tidings.crm.models import ConversationMessage, Enquiry, InboundMail

from .helpers import mail

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("support_address")]

GRACE = "Grace Hopper <grace@example.org>"


def eml(head: str, body: bytes | str) -> bytes:
    """An .eml as a mail program writes it: the headers as given, CRLF line ends, the body."""
    data = body.encode() if isinstance(body, str) else body
    lines = head.strip().replace("\r\n", "\n").replace("\n", "\r\n").encode()
    return lines + b"\r\n\r\n" + data.replace(b"\r\n", b"\n").replace(b"\n", b"\r\n")


# Exchange Online / Exchange 2016's out-of-office reply, headers as it writes them: no
# Auto-Submitted, no In-Reply-To, no References; only X-Auto-Response-Suppress says anything.
EXCHANGE_OUT_OF_OFFICE = eml(
    """
Received: from EXCH01.corp.example (10.0.0.5) by EXCH02.corp.example with Microsoft SMTP
 Server id 15.1.2507.23; Mon, 7 Dec 2026 10:00:03 +0000
From: Peter Jones <peter.jones@corp.example>
To: Example Support <support@example.co.uk>
Subject: Automatic reply: We have your message (E-1)
Thread-Topic: We have your message (E-1)
Thread-Index: AQHX5cRZ0p0sO2Vwz0mA7JcZ9T3Zxw==
Date: Mon, 7 Dec 2026 10:00:02 +0000
Message-ID: <b2f0c1a9e3d24f6b8c4f1a2b3c4d5e6f@EXCH01.corp.example>
Accept-Language: en-GB
Content-Language: en-GB
X-MS-Has-Attach:
X-MS-Exchange-Organization-SCL: -1
X-MS-TNEF-Correlator:
X-Auto-Response-Suppress: All
Content-Type: text/plain; charset="us-ascii"
Content-Transfer-Encoding: quoted-printable
MIME-Version: 1.0
""",
    "I am out of the office until 14 December with limited access to email. For urgent matte=\n"
    "rs please contact my colleague Mary on 020 7946 0000.\n",
)

# Gmail's vacation responder.
GMAIL_VACATION = eml(
    """
From: Alan Turing <alan.turing@gmail.example>
To: support@example.co.uk
Subject: Away until January
Date: Mon, 7 Dec 2026 10:05:00 +0000
Message-ID: <CAF=vacation.123@mail.gmail.example>
In-Reply-To: <somewhere-else@mail.example>
References: <somewhere-else@mail.example>
Auto-Submitted: auto-replied
Precedence: bulk
X-Autoreply: yes
MIME-Version: 1.0
Content-Type: text/plain; charset="UTF-8"
""",
    "Thanks for your mail. I am travelling and will answer in January.\n",
)

# A mailing list's digest that reached the support address (GNU Mailman).
MAILMAN_DIGEST = eml(
    """
From: users-request@lists.example.org
To: users@lists.example.org
Subject: Users Digest, Vol 12, Issue 3
Date: Mon, 7 Dec 2026 11:00:00 +0000
Message-ID: <mailman.12.3@lists.example.org>
Precedence: list
List-Id: Users of Example <users.lists.example.org>
List-Unsubscribe: <https://lists.example.org/mailman/options/users>
MIME-Version: 1.0
Content-Type: text/plain; charset="us-ascii"
""",
    "Today's Topics:\n\n   1. Re: How do I export? (Someone)\n",
)

# A plain-text delivery report (qmail: no multipart/report), from MAILER-DAEMON.
QMAIL_BOUNCE = eml(
    """
From: MAILER-DAEMON@mx.corp.example
To: support@example.co.uk
Subject: failure notice
Date: Mon, 7 Dec 2026 12:00:00 +0000
Message-ID: <bounce.1@mx.corp.example>
MIME-Version: 1.0
Content-Type: text/plain
""",
    "Hi. This is the qmail-send program at mx.corp.example.\n"
    "I'm afraid I wasn't able to deliver your message to the following addresses.\n"
    "This is a permanent error; I've given up. Sorry it didn't work out.\n\n"
    "<grace@corp.example>:\nSorry, no mailbox here by that name. (#5.1.1)\n",
)


def nothing_opened_nor_sent(row: InboundMail) -> None:
    assert row.status == "ignored", row.reason
    assert not Enquiry.objects.exists()
    assert not OutgoingMessage.objects.exists()


def test_an_exchange_out_of_office_without_in_reply_to_opens_nothing_and_gets_no_answer():
    """Exchange's out-of-office reply to one of our acknowledgements that lost its way (its
    In-Reply-To is not sent): it opened an enquiry of its own and was acknowledged, which
    Peter's Exchange then answered again."""
    row = do_receive_inbound(EXCHANGE_OUT_OF_OFFICE, "pipe")
    nothing_opened_nor_sent(row)
    assert "X-Auto-Response-Suppress: All" in row.reason


@pytest.mark.parametrize(
    "subject",
    [
        "Automatic reply: Courses",
        "Autoreply: Courses",
        "Out of Office: Courses",
        "Out of office reply: Courses",
        "Réponse automatique : Cours",
        "Abwesenheitsnotiz: Kurse",
        "Automatische Antwort: Kurse",
        "Respuesta automática: Cursos",
        "Risposta automatica: Corsi",
        "Automatisch antwoord: Cursussen",
        "Automatyczna odpowiedź: Kursy",
        "Autosvar: Kurser",
    ],
)
def test_an_out_of_office_reply_known_only_by_its_subject_opens_nothing(subject):
    """Out-of-office replies that carry no header at all (older Exchange, a gateway that drops
    X-… headers, small hosted mail) are known by the subject their program gives them."""
    raw = mail("Peter Jones <peter.jones@corp.example>", subject=subject, body="Away.")
    nothing_opened_nor_sent(do_receive_inbound(raw, "pipe"))


def test_a_persons_subject_that_merely_mentions_an_automatic_reply_is_theirs():
    raw = mail(GRACE, subject="Your automatic reply: it says you are closed?", body="Are you?")
    assert do_receive_inbound(raw, "pipe").status == "processed"
    raw = mail(GRACE, subject="Re: Out of office hours support", body="Do you offer it?")
    assert do_receive_inbound(raw, "pipe").status == "processed"
    assert Enquiry.objects.count() == 2


@pytest.mark.parametrize(
    "raw", [GMAIL_VACATION, MAILMAN_DIGEST], ids=["gmail-vacation", "mailman-digest"]
)
def test_vacation_responders_and_list_mail_open_nothing(raw):
    nothing_opened_nor_sent(do_receive_inbound(raw, "pipe"))


def test_a_plain_text_bounce_from_mailer_daemon_goes_to_the_bounce_processing():
    row = do_receive_inbound(QMAIL_BOUNCE, "pipe")
    assert row.status == "ignored" and "passed to bounce processing" in row.reason
    assert InboundReport.objects.filter(source="support:pipe").exists()
    assert not Enquiry.objects.exists() and not OutgoingMessage.objects.exists()


@pytest.mark.parametrize(
    ("sender", "headers"),
    [
        ("Grace Hopper <grace@example.org>", {"X-Auto-Response-Suppress": "OOF, AutoReply"}),
        ("Shop <noreply@shop.example>", {}),
        ("Shop <no-reply@shop.example>", {}),
        ("Shop <donotreply@shop.example>", {}),
        ("users-request@lists.example.org", {}),
        ("owner-users@lists.example.org", {}),
    ],
)
def test_mail_whose_sender_wants_no_automatic_answer_is_opened_but_not_acknowledged(
    sender, headers
):
    """A person's mail sent with X-Auto-Response-Suppress (a mail-merge, a system) and mail
    from an address nobody reads (RFC 3834 3.2): an operator may still answer it, but an
    acknowledgement would go unread (or bounce, or answer a list)."""
    raw = mail(sender, subject="Order 123", body="Where is it?", headers=headers)
    row = do_receive_inbound(raw, "pipe")
    enquiry = Enquiry.objects.get()
    assert row.status == "processed"
    assert row.reason.startswith(f"new enquiry #{enquiry.pk}; nothing sent: ")
    assert not OutgoingMessage.objects.exists()


def test_files_from_a_no_reply_sender_are_not_answered_either():
    raw = mail("noreply@shop.example", attachments=[("a.pdf", "application/pdf", b"%PDF")])
    do_receive_inbound(raw, "pipe")
    assert Enquiry.objects.count() == 1 and not OutgoingMessage.objects.exists()


@pytest.fixture
def sink(settings):
    from tests.audience.public_helpers import reset

    reset()
    with SmtpSink() as server:
        settings.TIDINGS_TRANSPORTS = transports_for(server, concurrency=1)
        yield server
    reset()


def test_our_acknowledgement_of_a_mail_says_it_is_an_auto_reply_on_the_wire(sink):
    """RFC 3834 5.2: a response to a mail is "auto-replied", which every responder knows not
    to answer; it also asks Exchange for no out-of-office reply."""
    do_receive_inbound(mail(GRACE, subject="Courses", body="Any courses?"), "pipe")
    deliver_pending(max_seconds=10)
    (ack,) = (r.message for r in sink.received)
    assert ack.get_all("Auto-Submitted") == ["auto-replied"]
    assert ack.get_all("X-Auto-Response-Suppress") == ["OOF, AutoReply"]
    assert ack["In-Reply-To"] == Enquiry.objects.get().message_id


def test_an_out_of_office_reply_to_our_acknowledgement_is_noted_quietly():
    do_receive_inbound(mail(GRACE, subject="Courses", body="Any courses?"), "pipe")
    enquiry = Enquiry.objects.get()
    ack = ConversationMessage.objects.get(automatic=True)
    reply = EXCHANGE_OUT_OF_OFFICE.replace(
        b"peter.jones@corp.example", b"grace@example.org"
    ).replace(b"MIME-Version", b"In-Reply-To: " + ack.message_id.encode() + b"\r\nMIME-Version")
    row = do_receive_inbound(reply, "pipe")
    assert row.status == "ignored" and f"noted in enquiry #{enquiry.pk}" in row.reason
    assert OutgoingMessage.objects.count() == 1  # the acknowledgement, and nothing since
    enquiry.refresh_from_db()
    assert enquiry.status == "new"
