"""Mail to the support address: threading (reply token, In-Reply-To), new conversations (support
contacts under contract, held requests, strangers' enquiries), loops and auto-replies, bounces,
bad input, and the pipe and mailbox that bring it."""

from __future__ import annotations

import io
from datetime import date, timedelta
from pathlib import Path
from urllib.parse import quote

import pytest
import time_machine
from django.core.management import CommandError, call_command
from django.utils import timezone

from tests.audience.public_helpers import reset
from tests.campaigns.bounce_helpers import sample
from tests.campaigns.mailbox_servers import Mailbox, imap_server, pop3_server
from tidings.campaigns.models import InboundReport, OutgoingMessage
from tidings.crm.actions import do_receive_enquiry, do_update_support_contact
from tidings.crm.conversations import reply_address, subject_tag
from tidings.crm.inbound.processing import do_receive_inbound
from tidings.crm.models import (
    ConversationAttachment,
    ConversationMessage,
    Enquiry,
    InboundMail,
    SupportRequest,
)
from tidings.lib.models import AuditEntry
from tidings.policy.commands import EXAMPLE_POLICY

from .helpers import SUPPORT, customer, mail

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("support_address")]

GRACE = "Grace Hopper <grace@example.org>"


def acknowledgements() -> list[OutgoingMessage]:
    return list(OutgoingMessage.objects.filter(kind__startswith="system:crm_").order_by("pk"))


def enquiry_by_mail(**kwargs) -> Enquiry:
    row = do_receive_inbound(mail(GRACE, **kwargs), source="pipe")
    assert row.status == "processed", row.reason
    return Enquiry.objects.get()


# --- new conversations ------------------------------------------------------------------------
def test_mail_from_a_stranger_opens_an_enquiry_and_is_acknowledged_in_the_policys_words():
    row = do_receive_inbound(
        mail(GRACE, subject="Courses", body="Do you run COBOL courses?"), source="pipe"
    )

    enquiry = Enquiry.objects.select_related("contact").get()
    assert (row.status, row.reason) == ("processed", f"new enquiry #{enquiry.pk}")
    assert bytes(row.raw) == b""  # done with: the enquiry holds what is kept
    assert (enquiry.channel, enquiry.subject, enquiry.message) == (
        "email",
        "Courses",
        "Do you run COBOL courses?",
    )
    assert (enquiry.contact.name, enquiry.contact.email) == ("Grace Hopper", "grace@example.org")
    (ack,) = acknowledgements()
    assert ack.contact_id == enquiry.contact_id and ack.kind == "system:crm_acknowledgement"
    assert ack.from_email == SUPPORT
    assert ack.headers["Reply-To"] == reply_address(enquiry)
    # In the conversation the person started (mail programs thread by subject too).
    assert ack.subject == f"Re: Courses {subject_tag(enquiry)}"
    assert "What we hold: your name, your email address and your messages" in ack.text
    assert "Why: Answering your enquiries (legitimate interests)." in ack.text
    assert "How long: we keep it 12 months after our last contact with you." in ack.text
    assert "Third-party database hosting provider (United States)" in ack.text
    assert "/privacy" in ack.text


def test_a_support_contact_under_a_contract_in_force_opens_a_support_request():
    _, contract, peter = customer(first_response_hours=4)
    row = do_receive_inbound(
        mail("Peter <peter@initech.example>", subject="TPS", body="The report fails."), "pipe"
    )

    request = SupportRequest.objects.get()
    assert row.reason == f"new support request #{request.pk}"
    assert (request.support_contact, request.contract, request.status) == (peter, contract, "new")
    assert request.response_due_at is not None
    assert acknowledgements()[0].kind == "system:crm_acknowledgement"
    assert not Enquiry.objects.exists()


@pytest.mark.parametrize("why", ["contract ended", "left the organisation"])
def test_a_request_from_someone_not_under_a_contract_in_force_is_held_and_they_are_told(why):
    if why == "contract ended":
        customer(end=date(2025, 12, 31))
    else:
        _, _, peter = customer()
        do_update_support_contact(peter, left_employer=date(2026, 1, 5), actor=None)
    with time_machine.travel("2026-02-02 10:00Z", tick=False):
        row = do_receive_inbound(mail("peter@initech.example", subject="Help"), source="pipe")

    request = SupportRequest.objects.get()
    assert request.status == "held" and request.response_due_at is None
    assert "held support request" in row.reason
    (told,) = acknowledgements()
    assert told.kind == "system:crm_held"
    assert "a member of our team will look at it first" in told.text
    assert "Servicing the contract we have with your employer (contract)" in told.text


@pytest.mark.parametrize(
    "sign_off",
    [
        "Sent from my iPhone",
        "Envoyé de mon iPhone",
        "Gesendet von meinem iPhone",
        "Von meinem iPad gesendet",
        "Enviado desde mi iPhone",
        "Verstuurd vanaf mijn iPhone",
        "Inviato da iPhone",
        "Wysłane z mojego iPhone'a",
        "Sent from Outlook for Android",
        "Get Outlook for iOS",
    ],
)
def test_a_mobile_mail_programs_sign_off_in_any_language_is_not_kept(sign_off):
    body = f"Do you run COBOL courses in March?\n\nThanks\nGrace\n\n{sign_off}\n"
    do_receive_inbound(mail(GRACE, subject="Courses", body=body), source="pipe")

    assert Enquiry.objects.get().message == "Do you run COBOL courses in March?\n\nThanks\nGrace"


def test_a_sentence_that_names_a_phone_or_mail_program_is_kept_whole():
    body = "My colleague sent it from Outlook for Android.\nSent from Outlook for Android? Yes."
    do_receive_inbound(mail(GRACE, subject="Courses", body=body), source="pipe")

    assert Enquiry.objects.get().message == body


# --- threading --------------------------------------------------------------------------------
def test_a_reply_to_the_reply_address_joins_the_conversation_stripped_and_screened():
    enquiry = enquiry_by_mail(subject="Courses")
    with time_machine.travel(timezone.now() + timedelta(days=40), tick=False):
        row = do_receive_inbound(
            mail(
                GRACE,
                reply_address(enquiry),
                subject="Re: Courses",
                body=(
                    "Thanks. I was off last week with a migraine. Is March possible?\n\n"
                    "Best regards,\nGrace Hopper\nNavy\n\n"
                    "On Mon, 2 Mar 2026 at 10:00, Example Support <support@example.co.uk> "
                    "wrote:\n> We run them monthly.\n> Which month suits you?\n"
                ),
            ),
            source="pipe",
        )
        later = timezone.now()

    assert row.reason == f"added to enquiry #{enquiry.pk} (by reply address)"
    message = ConversationMessage.objects.get(direction="in")
    assert message.enquiry == enquiry
    assert message.text == "Thanks. [removed: health] Is March possible?"
    assert message.redacted_categories == ["health"]
    assert "monthly" not in message.text and "Navy" not in message.text
    enquiry.refresh_from_db()
    assert enquiry.last_contact_at == later  # the enquiry's retention clock moved on
    assert len(acknowledgements()) == 1  # a reply is not acknowledged again


def test_a_reply_is_found_by_in_reply_to_when_the_reply_address_was_lost():
    enquiry = enquiry_by_mail()
    ack = ConversationMessage.objects.get(automatic=True)
    row = do_receive_inbound(
        mail(
            GRACE, SUPPORT, subject="Re: x", body="More.", headers={"In-Reply-To": ack.message_id}
        ),
        source="pipe",
    )
    assert row.reason == f"added to enquiry #{enquiry.pk} (by In-Reply-To)"
    assert Enquiry.objects.count() == 1


def test_a_forged_reply_address_opens_no_one_elses_conversation():
    enquiry = enquiry_by_mail()
    forged = reply_address(enquiry).replace("+e", "+e9", 1)
    wrong_signature = reply_address(enquiry)[:-22] + "0000000000000000@example.co.uk"
    for address in (forged, wrong_signature):
        do_receive_inbound(mail("Mallory <mallory@evil.example>", address), source="pipe")
    assert not ConversationMessage.objects.filter(direction="in").exists()
    assert Enquiry.objects.count() == 3  # two new enquiries of Mallory's own


def test_a_reply_from_another_address_is_kept_for_an_operator_to_check():
    enquiry = enquiry_by_mail()
    row = do_receive_inbound(mail("someone@else.example", reply_address(enquiry)), source="pipe")
    assert row.status == "unprocessed"
    assert "from an address that is not the person's" in row.reason
    assert bytes(row.raw)  # kept for the operator's look
    assert not ConversationMessage.objects.filter(direction="in").exists()


def test_an_operator_sees_who_sent_a_reply_from_another_address_and_opens_it_as_new(client):
    """A colleague in copy answers Grace's conversation: kept for a check, and "Try again" could
    only fail again.  The operator sees who wrote what and opens it as the colleague's own
    enquiry (acknowledged); Grace's conversation never gets it."""
    from django.urls import reverse

    from .helpers import operator

    enquiry = enquiry_by_mail()
    row = do_receive_inbound(
        mail(
            "Alan Turing <alan@else.example>",
            reply_address(enquiry),
            subject="Re: Hello",
            body="Count me in too.",
        ),
        source="pipe",
    )
    ada = operator("ada")
    client.force_login(ada)
    page = client.get(reverse("crm:inbound")).text
    assert "From Alan Turing &lt;alan@else.example&gt;: “Re: Hello”" in page
    assert reverse("crm:inbound-open", args=[row.pk]) in page
    client.post(reverse("crm:inbound-open", args=[row.pk]))
    row.refresh_from_db()
    alans = Enquiry.objects.get(contact__email="alan@else.example")
    assert (row.status, row.reason) == ("processed", f"new enquiry #{alans.pk}")
    assert alans.message == "Count me in too."
    assert not ConversationMessage.objects.filter(enquiry=enquiry, direction="in").exists()
    assert [a.contact_id for a in acknowledgements()] == [enquiry.contact_id, alans.contact_id]
    assert AuditEntry.objects.filter(action="inbound_mail.opened_as_new", actor=ada).exists()


def test_only_a_reply_from_another_address_can_be_opened_as_new(client):
    from django.urls import reverse

    from .helpers import operator

    row = do_receive_inbound(b"not mail at all", source="pipe")
    client.force_login(operator("ada"))
    client.post(reverse("crm:inbound-open", args=[row.pk]))
    row.refresh_from_db()
    assert row.status == "unprocessed" and not Enquiry.objects.exists()


def test_a_reply_to_a_closed_enquiry_opens_it_again_and_tells_its_owner():
    from tidings.crm.work import do_update_work

    from .helpers import operator

    ada = operator("ada", notify="each")
    enquiry = enquiry_by_mail()
    do_update_work(enquiry, actor=ada, owner=ada, status="won")
    do_receive_inbound(mail(GRACE, reply_address(enquiry), body="One more thing."), "pipe")
    enquiry.refresh_from_db()
    assert enquiry.status == "open" and enquiry.closed_at is None
    from tidings.crm.models import OperatorNotification

    assert OperatorNotification.objects.filter(user=ada, event="reply").count() == 1


def test_the_same_mail_twice_joins_the_conversation_once():
    enquiry = enquiry_by_mail()
    raw = mail(GRACE, reply_address(enquiry), body="Once.")
    do_receive_inbound(raw, source="imap")
    again = do_receive_inbound(raw, source="imap")
    assert again.reason == "already received (the same Message-ID)"
    assert ConversationMessage.objects.filter(direction="in").count() == 1


# --- automatic mail and loops -----------------------------------------------------------------
@pytest.mark.parametrize(
    "headers",
    [
        {"Auto-Submitted": "auto-replied"},
        {"Auto-Submitted": "auto-generated"},
        {"Precedence": "bulk"},
        {"Precedence": "auto_reply"},
        {"X-Autoreply": "yes"},
        {"X-Autorespond": "Out of office"},
        {"List-Id": "<news.example.org>"},
        {"Return-Path": "<>"},
    ],
)
def test_automatic_mail_never_opens_a_ticket_nor_gets_an_answer(headers):
    row = do_receive_inbound(mail(GRACE, headers=headers, subject="Out of office"), "pipe")
    assert row.status == "ignored" and "no ticket opened, nothing sent" in row.reason
    assert not Enquiry.objects.exists() and not OutgoingMessage.objects.exists()


def test_two_auto_responders_stop_after_the_first_auto_reply():
    enquiry = enquiry_by_mail()
    assert len(acknowledgements()) == 1
    # Their out-of-office answers our acknowledgement; we answer nothing, so it cannot answer us.
    row = do_receive_inbound(
        mail(
            GRACE,
            reply_address(enquiry),
            subject="Automatic reply: We have your message",
            body="I am away until Monday.",
            headers={"Auto-Submitted": "auto-replied"},
        ),
        source="pipe",
    )
    assert row.status == "ignored" and "noted in enquiry" in row.reason
    noted = ConversationMessage.objects.get(direction="in")
    assert noted.automatic and noted.enquiry == enquiry
    assert OutgoingMessage.objects.count() == 1
    enquiry.refresh_from_db()
    assert enquiry.status == "new"


def test_an_auto_responder_that_marks_nothing_is_acknowledged_at_most_three_times_a_day():
    for n in range(6):
        do_receive_inbound(mail("robot@spam.example", subject=f"Re: Re: {n}"), source="pipe")
    assert Enquiry.objects.count() == 6  # nothing is dropped...
    assert len(acknowledgements()) == 3  # ...but the loop runs dry


def test_our_own_mail_coming_back_is_recognised():
    row = do_receive_inbound(mail(GRACE, headers={"X-Loop": "support@example.co.uk"}), "pipe")
    assert row.status == "ignored" and "X-Loop" in row.reason


def test_a_bounce_to_the_support_address_goes_to_bounce_processing():
    enquiry_by_mail()
    bounce = sample("postfix_hard.eml", recipient="grace@example.org")
    row = do_receive_inbound(bounce, source="pipe")
    assert row.status == "ignored" and "passed to bounce processing" in row.reason
    assert InboundReport.objects.filter(source="support:pipe").count() == 1
    assert Enquiry.objects.count() == 1 and len(acknowledgements()) == 1


# --- what is kept of a message ----------------------------------------------------------------
def test_an_html_only_mail_is_sanitised_and_its_quoted_history_dropped():
    message = mail(GRACE, body="x", html="<p>Hi <b>there</b></p>")
    html = (
        "<html><head><style>p{color:red}</style><script>steal()</script></head><body>"
        "<p>Can we <b>talk</b> on Friday?</p><img src=x onerror=alert(1)>"
        "<blockquote>An old message of yours</blockquote></body></html>"
    )
    from email import message_from_bytes, policy

    parsed = message_from_bytes(message, policy=policy.default)
    parsed.clear_content()
    parsed.set_content(html, subtype="html")
    do_receive_inbound(bytes(parsed), source="pipe")
    text = Enquiry.objects.get().message
    assert "Can we talk on Friday?" in text
    assert "steal" not in text and "<" not in text and "old message" not in text


def test_attachments_are_not_kept_unless_the_purpose_lists_them_and_the_sender_is_told():
    do_receive_inbound(
        mail(GRACE, attachments=[("cv.pdf", "application/pdf", b"%PDF-1.4 secret")]), "pipe"
    )
    assert not ConversationAttachment.objects.exists()
    told = [m for m in acknowledgements() if m.kind == "system:crm_attachments"]
    assert len(told) == 1 and "we did not keep the 1 file attached" in told[0].text


def keep_attachments(settings, tmp_path: Path) -> None:
    """The example policy with `attachments` among what the enquiry purpose collects."""
    text = Path(EXAMPLE_POLICY).read_text(encoding="utf-8")
    text = text.replace(
        'order = ["order_reference"', 'documents = ["attachments"]\norder = ["order_reference"'
    ).replace(
        'optional = ["phone", "company", "job_title", "work_address"] }\nsources = ["web form"',
        'optional = ["phone", "company", "job_title", "work_address", "attachments"] }\n'
        'sources = ["web form"',
    )
    assert '"attachments"] }' in text
    policy = tmp_path / "policy.toml"
    policy.write_text(text, encoding="utf-8")
    settings.TIDINGS_POLICY = policy
    reset()


def test_attachments_are_kept_where_the_policy_lists_them(settings, tmp_path: Path):
    keep_attachments(settings, tmp_path)
    enquiry = enquiry_by_mail(attachments=[("plan.txt", "text/plain", b"the plan")])
    kept = ConversationAttachment.objects.get()
    assert kept.message.enquiry == enquiry and bytes(kept.data) == b"the plan"
    assert not [m for m in acknowledgements() if m.kind == "system:crm_attachments"]


def forward_as_attachment(*, with_file: bool = False) -> bytes:
    """What Outlook's, Thunderbird's and Apple Mail's "Forward as attachment" send: the
    forwarder's words and the forwarded mail as a message/rfc822 part."""
    from email import message_from_bytes, policy
    from email.message import EmailMessage

    forwarded = EmailMessage()
    forwarded["From"] = "A Customer <customer@elsewhere.example>"
    forwarded["Subject"] = "Invoice question"
    forwarded.set_content("Why was I charged twice?")
    if with_file:
        forwarded.add_attachment(
            b"%PDF-1.4", maintype="application", subtype="pdf", filename="invoice.pdf"
        )
    raw = mail(GRACE, subject="Fwd: Invoice question")
    message = message_from_bytes(raw, policy=policy.default)
    message.clear_content()
    message.set_content("Please see the customer's mail below.")
    message.add_attachment(forwarded, filename="Invoice question.eml")
    return bytes(message)


def test_a_forwarded_mail_is_an_attachment_the_sender_is_told_was_not_kept():
    do_receive_inbound(forward_as_attachment(), "pipe")
    enquiry = Enquiry.objects.get()
    assert enquiry.message == "Please see the customer's mail below."
    assert "charged twice" not in enquiry.message
    # The forwarded mail is a file attached: its sender is told it was not kept.
    told = [m for m in acknowledgements() if m.kind == "system:crm_attachments"]
    assert len(told) == 1 and "we did not keep the 1 file attached" in told[0].text


def test_a_forwarded_mail_is_kept_whole_where_the_policy_keeps_attachments(settings, tmp_path):
    keep_attachments(settings, tmp_path)
    do_receive_inbound(forward_as_attachment(with_file=True), "pipe")
    kept = ConversationAttachment.objects.get()  # one file: its own PDF travels inside it
    assert kept.content_type == "message/rfc822" and kept.filename == "Invoice question.eml"
    assert b"Why was I charged twice?" in bytes(kept.data) and b"invoice.pdf" in bytes(kept.data)


# --- bad input, and the pipe ------------------------------------------------------------------
def run_pipe(tmp_path: Path, raw: bytes) -> str:
    path = tmp_path / "message.eml"
    path.write_bytes(raw)
    out = io.StringIO()
    call_command("inbound", "process", "--file", str(path), stdout=out)
    return out.getvalue()


def test_the_pipe_fails_only_for_input_that_is_not_mail_and_keeps_it_all(tmp_path):
    with pytest.raises(CommandError, match="not a mail message"):
        run_pipe(tmp_path, b"\x00\x01\x02 binary")
    with pytest.raises(CommandError, match="not a mail message"):
        run_pipe(tmp_path, b"just some words\n")
    enquiry = enquiry_by_mail()
    # Mail that matches nothing usable exits 0 (the server keeps nothing queued): kept to check.
    out = run_pipe(tmp_path, mail("other@else.example", reply_address(enquiry)))
    assert "unprocessed" in out
    rows = InboundMail.objects.order_by("pk")
    assert [r.status for r in rows] == ["unprocessed", "unprocessed", "processed", "unprocessed"]
    assert bytes(rows[0].raw) == b"\x00\x01\x02 binary"


def test_a_mail_over_the_size_limit_is_kept_unprocessed(settings):
    settings.TIDINGS_INBOUND_MAX_BYTES = 2000
    row = do_receive_inbound(mail(GRACE, body="x" * 5000), source="pipe")
    assert row.status == "unprocessed" and row.reason.startswith("too large:")
    assert not Enquiry.objects.exists() and len(bytes(row.raw)) > 5000


def test_the_subject_of_kept_mail_is_shown_screened(settings, client):
    """A mail kept unprocessed (too large: a 20 MB scan attached) is listed for an operator
    with its sender and subject; the subject is screened like any text we show or keep, so
    what the person said about their health is not put in front of every operator."""
    from django.urls import reverse

    from .helpers import operator

    settings.TIDINGS_INBOUND_MAX_BYTES = 2000
    raw = mail(GRACE, subject="My HIV test results, for the accessibility form", body="x" * 5000)
    assert do_receive_inbound(raw, source="pipe").status == "unprocessed"
    client.force_login(operator("ada"))
    page = client.get(reverse("crm:inbound")).text
    assert "From Grace Hopper &lt;grace@example.org&gt;: “[removed: health]" in page
    assert "HIV" not in page


def test_retrying_processes_kept_mail_once_the_reason_is_gone(settings):
    settings.TIDINGS_INBOUND_MAX_BYTES = 2000
    do_receive_inbound(mail(GRACE, body="x" * 5000), source="pipe")
    settings.TIDINGS_INBOUND_MAX_BYTES = 100_000
    out = io.StringIO()
    call_command("inbound", "retry", stdout=out)
    assert out.getvalue().strip() == "1 unprocessed mail(s) tried again: 1 processed"
    assert Enquiry.objects.count() == 1


def test_unprocessed_mail_loses_its_message_after_the_keeping_period():
    from tidings.crm.inbound.processing import purge_kept_mail

    row = do_receive_inbound(b"not mail at all", source="pipe")
    assert purge_kept_mail(timezone.now() + timedelta(days=29)) == 0
    purge_kept_mail(timezone.now() + timedelta(days=31))
    row.refresh_from_db()
    assert bytes(row.raw) == b"" and row.reason.startswith("not a mail message")


def test_mail_when_the_policy_takes_no_enquiries_by_email_is_kept_with_the_reason(
    settings, tmp_path
):
    text = Path(EXAMPLE_POLICY).read_text(encoding="utf-8")
    text = text.replace('sources = ["web form", "email", ', 'sources = ["web form", ')
    policy = tmp_path / "policy.toml"
    policy.write_text(text, encoding="utf-8")
    settings.TIDINGS_POLICY = policy
    reset()
    row = do_receive_inbound(mail(GRACE), source="pipe")
    assert row.status == "unprocessed" and '"email" is not one of' in row.reason
    assert not Enquiry.objects.exists()


# --- the mailbox ------------------------------------------------------------------------------
@pytest.mark.parametrize("server", [imap_server, pop3_server])
def test_the_worker_fetches_the_support_mailbox_and_empties_it(server, settings):
    from tidings.crm.tasks import inbound_mailbox_task

    box = Mailbox(user="support", messages=[mail(GRACE, body="Hi"), b"garbage"])
    with server(box) as running:
        protocol = "imap" if server is imap_server else "pop3"
        folder = "/INBOX" if protocol == "imap" else ""
        settings.TIDINGS_INBOUND_MAILBOX_URL = (
            f"{protocol}://support:{quote(box.password, safe='')}@127.0.0.1:{running.port}{folder}"
        )
        outcome = inbound_mailbox_task.call()
    assert (outcome["fetched"], outcome["unprocessed"]) == (2, 1)
    assert box.messages == []
    assert Enquiry.objects.count() == 1
    assert set(InboundMail.objects.values_list("source", flat=True)) == {protocol}


def test_a_bad_mailbox_url_is_a_clear_error_naming_the_setting(settings):
    settings.TIDINGS_INBOUND_MAILBOX_URL = "ftp://x@host/"
    with pytest.raises(CommandError, match=r"^TIDINGS_INBOUND_MAILBOX_URL: expected imaps://"):
        call_command("inbound", "fetch")


def test_a_web_enquiry_then_mail_from_the_same_person_opens_a_second_enquiry():
    do_receive_enquiry(
        {"name": "Grace Hopper", "email": "grace@example.org"}, channel="web form", message="Hi"
    )
    do_receive_inbound(mail(GRACE, body="Another question"), source="pipe")
    assert Enquiry.objects.count() == 2


def _nested_multiparts(depth: int) -> bytes:
    opening = "".join(
        f'Content-Type: multipart/mixed; boundary="b{i}"\r\n\r\n--b{i}\r\n' for i in range(depth)
    )
    closing = "".join(f"\r\n--b{i}--\r\n" for i in reversed(range(depth)))
    head = f"From: {GRACE}\r\nTo: {SUPPORT}\r\nSubject: help\r\nMIME-Version: 1.0\r\n"
    return (head + opening + "Content-Type: text/plain\r\n\r\nhello\r\n" + closing).encode()


def _nested_messages(depth: int) -> bytes:
    inner = f"From: {GRACE}\r\nSubject: leaf\r\n\r\nhello\r\n"
    for _ in range(depth):
        inner = f"From: {GRACE}\r\nTo: {SUPPORT}\r\nContent-Type: message/rfc822\r\n\r\n{inner}"
    return inner.encode()


@pytest.mark.parametrize("hostile", [_nested_multiparts(3000), _nested_messages(3000)])
def test_mime_nested_thousands_deep_is_kept_unprocessed_with_the_reason(tmp_path, hostile):
    """The email package recurses once per level; the pipe must keep such mail with the reason
    and exit 0 (a non-zero exit makes the mail server bounce it back), never crash."""
    out = run_pipe(tmp_path, hostile)
    (row,) = InboundMail.objects.all()
    assert row.status == "unprocessed"
    assert row.reason == "unreadable: its MIME parts are nested more than 30 levels deep"
    assert bytes(row.raw) == hostile
    assert f"inbound mail #{row.pk}: unprocessed: unreadable" in out
    assert not Enquiry.objects.exists()


def test_screening_is_ready_before_the_mail_is_acted_on_in_a_transaction(engine_builds):
    """Building screening's engine takes seconds; inside the transaction that acts on the mail it
    held SQLite's write lock all that while, and the demo's worker gave up ("database is
    locked") and stopped sending mail.  The engine is built before the transaction opens."""
    row = do_receive_inbound(mail(GRACE, subject="Courses", body="Any courses?"), source="pipe")
    assert row.status == "processed", row.reason
    assert engine_builds == [False]


@pytest.mark.parametrize("declared", ["x-unknown-charset", "utf-8", "us-ascii", None], ids=str)
def test_a_mail_in_another_charset_than_it_says_keeps_its_letters(declared):
    """Mail whose bytes are Windows-1252 but that names an unknown charset, the wrong one or
    none showed "Gr��e aus M�nchen" to the operator; its letters are read as written."""
    charset = f"; charset={declared}" if declared else ""
    raw = (
        f"From: {GRACE}\r\nTo: {SUPPORT}\r\nSubject: Hello\r\nMessage-ID: <cs@example.org>\r\n"
        f"MIME-Version: 1.0\r\nContent-Type: text/plain{charset}\r\n"
        "Content-Transfer-Encoding: 8bit\r\n\r\n"
    ).encode() + "Grüße aus München, a price for “10” seats please\r\n".encode("cp1252")
    row = do_receive_inbound(raw, source="pipe")
    assert row.status == "processed", row.reason
    assert Enquiry.objects.get().message == "Grüße aus München, a price for “10” seats please"


def test_a_mail_in_the_charset_it_names_is_read_in_it():
    raw = (
        f"From: {GRACE}\r\nTo: {SUPPORT}\r\nSubject: Hello\r\nMessage-ID: <sj@example.org>\r\n"
        "MIME-Version: 1.0\r\nContent-Type: text/plain; charset=shift_jis\r\n"
        "Content-Transfer-Encoding: 8bit\r\n\r\n"
    ).encode() + "見積もりをお願いします。\r\n".encode("shift_jis")
    do_receive_inbound(raw, source="pipe")
    assert Enquiry.objects.get().message == "見積もりをお願いします。"


@pytest.mark.parametrize(
    ("encoded", "kept"),
    [
        # Valid characters, a wrong length: its last bytes are no UTF-8.
        ("SGVsbG8gd29ybGQsIGEgcHJpY2UgcGxlYXNlLsKj1toK5c", "Hello world, a price please.£"),
        # Characters that are not base64 at all, after a padded line.
        ("SGVsbG8gd29ybGQsIGEgcHJpY2UgcGxlYXNlLg==\r\n!!*&^%", "Hello world, a price please."),
    ],
    ids=["wrong-length", "not-base64"],
)
def test_a_text_in_broken_base64_keeps_what_decodes_and_says_the_rest_could_not_be(encoded, kept):
    """Invalid base64 was decoded leniently: the person's words ended in garbage ("Hello
    world'¢ÖÚ…", its bytes read as Windows-1252).  What decodes cleanly is kept, then a note."""
    from tidings.crm.inbound.mail import UNDECODABLE

    raw = (
        f"From: {GRACE}\r\nTo: {SUPPORT}\r\nSubject: Hello\r\nMessage-ID: <b64@example.org>\r\n"
        "MIME-Version: 1.0\r\nContent-Type: text/plain; charset=utf-8\r\n"
        f"Content-Transfer-Encoding: base64\r\n\r\n{encoded}\r\n"
    ).encode()
    row = do_receive_inbound(raw, source="pipe")
    assert row.status == "processed", row.reason
    assert Enquiry.objects.get().message == f"{kept}\n\n{UNDECODABLE}"


def test_a_text_in_valid_base64_padded_line_by_line_is_read_whole():
    raw = (
        f"From: {GRACE}\r\nTo: {SUPPORT}\r\nSubject: Hello\r\nMessage-ID: <b64@example.org>\r\n"
        "MIME-Version: 1.0\r\nContent-Type: text/plain; charset=utf-8\r\n"
        "Content-Transfer-Encoding: base64\r\n\r\nSGVsbG8=\r\nIHdvcmxk\r\n"
    ).encode()
    do_receive_inbound(raw, source="pipe")
    assert Enquiry.objects.get().message == "Hello world"


def test_the_pipe_asks_the_mail_server_to_try_again_when_the_database_cannot_store(tmp_path):
    """A mail server's pipe bounces mail on any non-zero status but 75 (EX_TEMPFAIL), which
    means "keep it and try again later": a database that is down must not bounce a person's
    mail back to them.  The error's text (it may quote data) is not repeated."""
    from django.db import OperationalError, connection

    def gone(execute, sql, params, many, context):
        raise OperationalError("connection to server failed: ada@example.org")

    with connection.execute_wrapper(gone), pytest.raises(CommandError) as failed:
        run_pipe(tmp_path, mail("ada@example.org", SUPPORT))
    assert failed.value.returncode == 75
    assert "tries again later" in str(failed.value) and "ada@" not in str(failed.value)
    out = run_pipe(tmp_path, mail("ada@example.org", SUPPORT))  # the server's retry
    assert InboundMail.objects.filter(status="processed").count() == 1, out


def test_a_mail_with_many_dashed_rules_keeps_what_follows_the_ninth():
    """mail-parser-reply 1.36 drops a line of 32+ dashes or underscores after a blank line
    (Outlook's rule above a quoted reply) with ``re.sub(..., re.MULTILINE)``: the flag lands in
    ``count``, 8, so only the first eight go.  From the ninth on, its signature pattern took
    the rule for Outlook's and everything after it for quoted history: a booking list with
    one rule per attendee lost its last attendee and the question under it."""
    rule = "-" * 40
    attendees = "\n".join(f"\nAttendee {n}: 2 days, vegetarian\n\n{rule}" for n in range(1, 11))
    body = f"Hello,\n\nOur bookings for March:\n{attendees}\n\nPlease invoice us for all."
    do_receive_inbound(mail(GRACE, subject="Bookings", body=body), source="pipe")
    message = Enquiry.objects.get().message
    assert "Attendee 9:" in message and "Attendee 10: 2 days, vegetarian" in message
    assert message.endswith("\nPlease invoice us for all.")
    assert rule not in message  # as for the first eight: every such rule goes alike


def test_a_text_in_base64_cut_in_the_middle_of_a_letter_is_not_read_as_another_charset():
    """Base64 cut on a four-character boundary is valid base64, but its last letter's bytes
    are cut in two: the UTF-8 failed, and the whole text was read as Windows-1252 ("GrÃ¼ÃŸe
    aus MÃ¼nchen").  What decodes is kept, in its charset, then the note."""
    import base64

    from tidings.crm.inbound.mail import UNDECODABLE

    text = "Grüße aus München, wir möchten zehn Plätze buchen. Schöne Grüße"
    encoded = base64.b64encode(text.encode()).decode()[:80]  # "Sch" and half an "ö"
    raw = (
        f"From: {GRACE}\r\nTo: {SUPPORT}\r\nSubject: Plätze\r\nMessage-ID: <b64@example.org>\r\n"
        "MIME-Version: 1.0\r\nContent-Type: text/plain; charset=utf-8\r\n"
        f"Content-Transfer-Encoding: base64\r\n\r\n{encoded}\r\n"
    ).encode()
    assert do_receive_inbound(raw, source="pipe").status == "processed"
    assert Enquiry.objects.get().message == (
        f"Grüße aus München, wir möchten zehn Plätze buchen. Sch\n\n{UNDECODABLE}"
    )
