"""Bounces and complaints that arrive as mail (the MTA pipe, the bounce mailbox): realistic
DSNs from Postfix, Exim, Gmail and Outlook, an ARF complaint, mail that is no report, and input
that is no mail; what each does to the person it is about."""

from __future__ import annotations

import io
import sys
from datetime import timedelta

import pytest
import time_machine
from django.core.management import CommandError, call_command
from django.utils import timezone
from hypothesis import HealthCheck, given
from hypothesis import settings as hypothesis_settings
from hypothesis import strategies as st

from tests.campaigns.bounce_helpers import delivered, sample
from tests.hypothesis_profiles import examples
from tidings import signals
from tidings.audience.consent import CHANNEL_EMAIL, PURPOSE_MARKETING
from tidings.audience.emails import email_hmac
from tidings.audience.models import ConsentEvent, Subscription, Suppression
from tidings.audience.sources import sources
from tidings.campaigns.bounces.processing import (
    do_record_inbound_mail,
    do_retry_inbound_report,
    purge_kept_messages,
)
from tidings.campaigns.models import Delivery, Event, InboundReport
from tidings.campaigns.queue import enqueue_message
from tidings.lib.models import AuditEntry

pytestmark = pytest.mark.django_db


@pytest.fixture
def received(django_capture_on_commit_callbacks):
    """Signals fired (on commit) while a test runs: [(signal name, kwargs)]."""
    fired = []

    def listener(name):
        def receive(sender, **kwargs):
            fired.append((name, {k: v for k, v in kwargs.items() if k != "signal"}))

        return receive

    bounced, complained = listener("bounced"), listener("complained")
    signals.delivery_bounced.connect(bounced)
    signals.delivery_complained.connect(complained)
    yield fired
    signals.delivery_bounced.disconnect(bounced)
    signals.delivery_complained.disconnect(complained)


def suppression_of(contact) -> str | None:
    entry = Suppression.objects.filter(email_hmac=email_hmac(contact.email)).first()
    return entry.reason if entry else None


def statuses(contact) -> set[str]:
    return set(Subscription.objects.filter(contact=contact).values_list("status", flat=True))


@pytest.mark.parametrize(
    ("name", "code"),
    [
        ("postfix_hard.eml", "5.1.1"),
        ("exim_hard.eml", "5.1.1"),
        ("gmail_hard.eml", "5.1.1"),
        ("outlook_hard.eml", "5.5.0"),
    ],
)
def test_a_hard_bounce_suppresses_the_address_and_marks_the_subscription_bounced(
    name, code, received, django_capture_on_commit_callbacks
):
    _, [(ada, delivery)] = delivered()
    raw = sample(name, recipient=ada.email, row=("d", delivery.pk))
    with django_capture_on_commit_callbacks(execute=True):
        report = do_record_inbound_mail(raw, source="pipe")
    report.refresh_from_db()
    assert report.status == "processed" and report.kind == "bounce_hard"
    assert report.detail == code
    assert report.delivery == delivery and report.contact == ada
    assert report.reason == "hard bounce: address suppressed"
    assert suppression_of(ada) == "hard_bounce"
    assert statuses(ada) == {"bounced"}
    assert received == [
        ("bounced", {"contact_id": ada.pk, "delivery_id": delivery.pk, "hard": True})
    ]
    # Once processed, only the facts are kept: no message, no address in clear.
    assert bytes(report.raw) == b""
    assert report.recipient_hmac == email_hmac(ada.email)
    assert ada.email not in str(InboundReport.objects.filter(pk=report.pk).values().get())
    assert AuditEntry.objects.filter(action="bounce.processed", object_id=str(report.pk)).exists()
    # The campaign's report counts it.
    assert list(Event.objects.filter(delivery=delivery).values_list("kind", flat=True)) == [
        "bounce_hard"
    ]


def test_the_verp_address_alone_leads_to_the_message():
    """A bounce that quotes a Message-ID we did not make (rewritten by a relay) but was sent to
    the per-message envelope sender still finds its delivery."""
    _, [(ada, delivery)] = delivered()
    raw = sample(
        "exim_hard.eml",
        recipient=ada.email,
        row=("d", delivery.pk),
        message_id="<rewritten.by.relay@example.net>",
        verp=True,
    )
    report = do_record_inbound_mail(raw, source="pipe")
    assert report.status == "processed" and report.delivery == delivery
    assert suppression_of(ada) == "hard_bounce"


def test_a_forged_message_id_is_not_matched_to_anyone():
    _, [(ada, delivery)] = delivered()
    genuine = sample("postfix_hard.eml", recipient=ada.email, row=("d", delivery.pk))
    forged = genuine.replace(f"<d{delivery.pk}.".encode(), f"<d{delivery.pk + 1}.".encode())
    report = do_record_inbound_mail(forged, source="pipe")
    assert report.status == "unprocessed"
    assert report.reason.startswith("no message of ours found in it")
    assert suppression_of(ada) is None


def test_soft_bounces_suppress_only_at_the_limit_within_the_window(settings, received):
    settings.TIDINGS_SOFT_BOUNCE_LIMIT = 3
    settings.TIDINGS_SOFT_BOUNCE_DAYS = 14
    _, [(ada, delivery)] = delivered()
    raw = sample("postfix_delayed.eml", recipient=ada.email, row=("d", delivery.pk))
    now = timezone.now()
    with time_machine.travel(now - timedelta(days=20)):  # outside the window: not counted
        do_record_inbound_mail(raw, source="pipe")
    first = do_record_inbound_mail(raw, source="pipe")
    second = do_record_inbound_mail(raw, source="pipe")
    assert (first.kind, first.detail) == ("bounce_soft", "4.2.2")
    assert second.reason == "soft bounce 2 of 3 within 14 days"
    assert suppression_of(ada) is None and statuses(ada) == {"confirmed"}
    third = do_record_inbound_mail(raw, source="pipe")
    assert third.reason == "soft bounce 3 of 3 within 14 days: address suppressed"
    assert suppression_of(ada) == "hard_bounce" and statuses(ada) == {"bounced"}


@pytest.mark.parametrize(
    ("name", "code"),
    [
        # Postfix gives up after its queue lifetime with "Action: failed" and a 4.x.x status
        # (the receiving server was unreachable for days), Exim with "retry timeout exceeded"
        # after a 452: the address may be good.
        ("postfix_expired.eml", "4.4.1"),
        ("exim_retry_timeout.eml", "4.2.2"),
        # Gmail's "552 5.2.2 ... out of storage space" comes as "Action: failed" with a 5.x.x
        # status, but says nothing against the address: the mailbox takes mail once emptied.
        ("gmail_mailbox_full.eml", "5.2.2"),
        # A server answering "552 Mailbox full" with no enhanced code: Postfix reports
        # "Status: 5.0.0" (undefined), which says nothing against the address either.
        ("postfix_quota_no_enhanced_code.eml", "5.0.0"),
    ],
)
def test_a_failure_that_says_nothing_against_the_address_is_a_soft_bounce(
    name, code, settings, received
):
    """These count towards the soft-bounce limit instead of suppressing the address at once."""
    settings.TIDINGS_SOFT_BOUNCE_LIMIT = 3
    _, [(ada, delivery)] = delivered()
    raw = sample(name, recipient=ada.email, row=("d", delivery.pk))
    report = do_record_inbound_mail(raw, source="pipe")
    assert (report.status, report.kind, report.detail) == ("processed", "bounce_soft", code)
    assert report.reason == "soft bounce 1 of 3 within 14 days"
    assert suppression_of(ada) is None and statuses(ada) == {"confirmed"}


@pytest.mark.parametrize(
    ("diagnostic", "kind", "detail"),
    [
        # The enhanced code in the reply says what 5.0.0 does not.
        (
            "552 5.2.2 The email account that you tried to reach is over quota",
            "bounce_soft",
            "5.2.2",
        ),
        ("550 5.1.1 No such user here", "bounce_hard", "5.1.1"),
        ("550 5.7.1 Message rejected as spam", "blocked", "5.7.1"),
        # Nothing more in the reply, and nothing about a full mailbox: the address is refused.
        ("550 Requested action not taken: mailbox unavailable", "bounce_hard", ""),
    ],
)
def test_an_undefined_status_5_0_0_is_read_from_the_servers_reply(diagnostic, kind, detail):
    """Status 5.0.0 was taken at its word, a hard bounce: a person whose mailbox was full at a
    server without enhanced codes was suppressed for good."""
    _, [(ada, delivery)] = delivered()
    raw = sample("postfix_quota_no_enhanced_code.eml", recipient=ada.email, row=("d", delivery.pk))
    raw = raw.replace(b"552 Mailbox full,\r\n    user quota exceeded", b"refused it")
    raw = raw.replace(b"552 Mailbox full, user quota exceeded", diagnostic.encode())
    report = do_record_inbound_mail(raw, source="pipe")
    assert (report.kind, report.detail) == (kind, detail or report.detail)
    assert (suppression_of(ada) is not None) == (kind == "bounce_hard")


def test_each_recipient_of_a_report_is_judged_by_its_own_status_after_an_alias_too():
    """flufl.bounce names a recipient by its Original-Recipient; the statuses were found by
    Final-Recipient only, so an aliased address whose mailbox was full took the report's first
    5.x.x — another recipient's "user unknown" — and was suppressed for good."""
    from tidings.campaigns.bounces import dsn
    from tidings.campaigns.bounces.mail import read

    raw = (
        b"From: MAILER-DAEMON@mx.example.net\r\nTo: bounces@example.co.uk\r\n"
        b"Subject: Undelivered Mail Returned to Sender\r\nMIME-Version: 1.0\r\n"
        b'Content-Type: multipart/report; report-type=delivery-status; boundary="B"\r\n\r\n'
        b"--B\r\nContent-Type: text/plain\r\n\r\nThis is the mail system.\r\n\r\n"
        b"--B\r\nContent-Type: message/delivery-status\r\n\r\n"
        b"Reporting-MTA: dns; mx.example.net\r\n\r\n"
        b"Final-Recipient: rfc822; gone@example.net\r\nAction: failed\r\nStatus: 5.1.1\r\n"
        b"Diagnostic-Code: smtp; 550 5.1.1 user unknown\r\n\r\n"
        b"Original-Recipient: rfc822; info@shop.example\r\n"
        b"Final-Recipient: rfc822; jane@mail.shop.example\r\nAction: failed\r\n"
        b"Status: 5.2.2\r\nDiagnostic-Code: smtp; 552 5.2.2 mailbox full\r\n\r\n--B--\r\n"
    )
    found = {f.recipient: (f.kind, f.detail) for f in dsn.parse(read(raw))}
    assert found["gone@example.net"] == ("bounce_hard", "5.1.1")
    assert found["info@shop.example"] == ("bounce_soft", "5.2.2")


def utf8_report(delivery_id: int, status_part: bytes) -> bytes:
    """A report about Delivery ``delivery_id`` whose recipient block is ``status_part``."""
    from tests.campaigns.bounce_helpers import DOMAIN
    from tidings.campaigns.messages import message_id_for

    message_id = message_id_for("d", delivery_id, DOMAIN).encode()
    return (
        b"From: MAILER-DAEMON@mx.example.net\r\nTo: bounces@example.co.uk\r\n"
        b"Subject: Undelivered Mail Returned to Sender\r\nMIME-Version: 1.0\r\n"
        b'Content-Type: multipart/report; report-type=delivery-status; boundary="B"\r\n\r\n'
        b"--B\r\nContent-Type: text/plain\r\n\r\nThis is the mail system.\r\n\r\n"
        + status_part
        + b"--B\r\nContent-Type: text/rfc822-headers\r\n\r\n"
        b"From: Example News <news@example.co.uk>\r\nMessage-ID: " + message_id + b"\r\n"
        b"Subject: Our November news\r\n\r\n--B--\r\n"
    )


UTF8_STATUS_PARTS = {
    # RFC 6533: a global delivery status, the address in UTF-8 as it is.
    "global, raw UTF-8": (
        "--B\r\nContent-Type: message/global-delivery-status\r\n"
        "Content-Transfer-Encoding: 8bit\r\n\r\n"
        "Reporting-MTA: dns; mx.example.net\r\n\r\n"
        "Final-Recipient: utf-8; jörg@bücher.example\r\nAction: failed\r\nStatus: 5.1.1\r\n"
        "Diagnostic-Code: smtp; 550 5.1.1 user unknown\r\n\r\n"
    ).encode(),
    # RFC 6533 section 3: in a plain (ASCII) delivery status, non-ASCII embedded as \x{HEX}.
    "plain, embedded": (
        b"--B\r\nContent-Type: message/delivery-status\r\n\r\n"
        b"Reporting-MTA: dns; mx.example.net\r\n\r\n"
        b"Final-Recipient: utf-8; j\\x{F6}rg@b\\x{fc}cher.example\r\n"
        b"Action: failed\r\nStatus: 5.1.1\r\n"
        b"Diagnostic-Code: smtp; 550 5.1.1 user unknown\r\n\r\n"
    ),
    # Original-Recipient (before an alias) is the address we sent to.
    "original, embedded": (
        b"--B\r\nContent-Type: message/delivery-status\r\n\r\n"
        b"Reporting-MTA: dns; mx.example.net\r\n\r\n"
        b"Original-Recipient: utf-8;J\\x{F6}rg@B\\x{DC}CHER.example\r\n"
        b"Final-Recipient: utf-8; j\\x{F6}rg@mail.b\\x{FC}cher.example\r\n"
        b"Action: failed\r\nStatus: 5.1.1\r\n\r\n"
    ),
}


@pytest.mark.parametrize("form", UTF8_STATUS_PARTS)
def test_a_bounce_of_an_internationalised_address_suppresses_it(form, received):
    """RFC 6533 reports an internationalised address with the ``utf-8`` address type, which
    flufl.bounce does not know: such a report was "not a bounce" and the person kept getting
    mail to a mailbox that does not exist."""
    _, [(ada, delivery)] = delivered()
    ada.email = "jörg@bücher.example"
    ada.save()
    report = do_record_inbound_mail(
        utf8_report(delivery.pk, UTF8_STATUS_PARTS[form]), source="pipe"
    )
    report.refresh_from_db()
    assert (report.status, report.kind, report.detail) == ("processed", "bounce_hard", "5.1.1")
    assert report.contact == ada
    if form != "original, embedded":
        assert report.recipient_hmac == email_hmac("jörg@bücher.example")
    else:  # the local part as the report wrote it; the domain folded
        assert report.recipient_hmac == email_hmac("Jörg@bücher.example")
    assert suppression_of(ada) == "hard_bounce"
    assert statuses(ada) == {"bounced"}


POLICY_BLOCKS = [
    ("5.7.1", "550 5.7.1 Message rejected as spam"),
    ("5.7.1", "554 5.7.1 Service unavailable; client host blocked using zen.spamhaus.org"),
    ("5.7.26", "550 5.7.26 Unauthenticated email is not accepted due to DMARC policy"),
]


def policy_block_report(recipient: str, delivery_id: int, status: str, reply: str) -> bytes:
    """Gmail's report of a message its spam filter refused, with another status and reply."""
    raw = sample("gmail_policy_block.eml", recipient=recipient, row=("d", delivery_id))
    raw = raw.replace(b"Status: 5.7.1", f"Status: {status}".encode())
    return raw.replace(
        b"550-5.7.1 Our system has detected that this message is likely unsolicited mail.",
        reply.encode(),
    )


def test_a_policy_block_never_suppresses_nor_counts_towards_the_soft_bounce_limit(
    settings, received
):
    """5.7.x says the receiver refused the message or its sender (as spam, a blocklisted
    server, DMARC), not the address: three of them for one person within the window (the
    soft-bounce limit) suppress nobody and count as no bounce; each is a failed, blocked
    message with its code in the campaign's report and in "Why didn't they get it?"."""
    from tests.campaigns.delivery_helpers import make_list, sending_campaign
    from tidings.campaigns.deliverability.lookup import messages_to
    from tidings.campaigns.reports import campaign_report

    settings.TIDINGS_SOFT_BOUNCE_LIMIT = 3
    first, [(ada, _)] = delivered()
    campaigns = [first, sending_campaign(make_list()), sending_campaign(make_list())]
    Delivery.objects.update(status="sent", sent_at=timezone.now())
    for campaign, (status, reply) in zip(campaigns, POLICY_BLOCKS, strict=True):
        delivery = Delivery.objects.get(campaign=campaign, contact=ada)
        report = do_record_inbound_mail(
            policy_block_report(ada.email, delivery.pk, status, reply), source="pipe"
        )
        assert (report.status, report.kind, report.detail) == ("processed", "blocked", status)
        assert "not counted as a bounce" in report.reason
        delivery.refresh_from_db()
        assert delivery.status == "failed"
        assert delivery.error.startswith(f"blocked: {status}")
        assert "spam" not in delivery.error and "DMARC" not in delivery.error  # the code only
        assert campaign_report(campaign).failed == 1
        assert campaign_report(campaign).bounced_soft.people == 0
    assert suppression_of(ada) is None and statuses(ada) == {"confirmed"}
    assert not Event.objects.filter(kind__startswith="bounce").exists()
    assert received == []  # no delivery_bounced: journeys keep the person
    dmarc = next(m for m in messages_to(ada.email).messages if m.what.endswith(campaigns[2].name))
    assert dmarc.outcome == "Not delivered"
    assert "authentication" in dmarc.explanation  # 5.7.26: DMARC
    assert "5.7.26" in dmarc.afterwards[0]


def sender_refused_postfix(recipient: str, delivery_id: int) -> bytes:
    """Postfix's report that the recipient's server refused our envelope sender's domain."""
    raw = sample("postfix_hard.eml", recipient=recipient, row=("d", delivery_id))
    for old, new in (
        (b"5.1.1", b"5.1.8"),
        (b"550 5.1.8", b"553 5.1.8"),
        (b"Recipient address rejected", b"Sender address rejected"),
        (b"User unknown in virtual", b"Domain not found;"),
    ):
        raw = raw.replace(old, new)
    return raw


def exim_saying(recipient: str, delivery_id: int, reply: str, body: str = "") -> bytes:
    """Exim's report (no Status fields) quoting ``reply``, the server's own words."""
    raw = sample("exim_hard.eml", recipient=recipient, row=("d", delivery_id))
    raw = raw.replace(
        b"550 5.1.1 The email account that you tried to reach does not exist", reply.encode()
    )
    return raw.replace(b"Hello, here is our news.", body.encode() or b"Hello, here is our news.")


@pytest.mark.parametrize(
    "report",
    [
        pytest.param(sender_refused_postfix, id="postfix-5.1.8"),
        pytest.param(lambda r, d: exim_saying(r, d, "550 Sender verify failed"), id="exim-no-code"),
        pytest.param(
            lambda r, d: exim_saying(
                r, d, "553 Domain of sender address bounces@example.co.uk does not exist"
            ),
            id="sendmail-words",
        ),
    ],
)
def test_a_refusal_of_our_sender_suppresses_nobody_and_says_so(report, received):
    """A misconfigured sender domain (5.1.8, or the words of a server giving no code) was a
    hard bounce: every recipient of the campaign was suppressed for good.  It is our problem:
    the message failed ("sender: ..."), nobody is suppressed, no bounce is counted or
    signalled, and "Why didn't they get it?" says it was our sender."""
    from tidings.campaigns.deliverability.lookup import messages_to

    _, [(ada, delivery)] = delivered()
    Delivery.objects.filter(pk=delivery.pk).update(sent_at=timezone.now())
    result = do_record_inbound_mail(report(ada.email, delivery.pk), source="pipe")
    assert (result.status, result.kind) == ("processed", "sender")
    assert "nobody suppressed" in result.reason
    delivery.refresh_from_db()
    assert (delivery.status, delivery.error[:7]) == ("failed", "sender:")
    assert suppression_of(ada) is None and statuses(ada) == {"confirmed"}
    assert not Event.objects.filter(kind__startswith="bounce").exists()
    assert received == []
    (message,) = messages_to(ada.email).messages
    assert "our sender address" in message.explanation
    assert "our sender address" in message.afterwards[0]


def test_a_code_less_refusal_is_read_in_the_reports_words_never_in_our_returned_message():
    """Exim quotes the reply as the server gave it: "550 Message rejected as spam" (no code)
    is a policy block, not a hard bounce.  The words of the message we sent, quoted below it,
    say nothing: "No spam, ever" in a newsletter leaves "No such user" a hard bounce."""
    _, [(ada, spam), (bob, unknown)] = delivered(2)
    raw = exim_saying(ada.email, spam.pk, "550 Message rejected as spam")
    assert do_record_inbound_mail(raw, source="pipe").kind == "blocked"
    body = "No spam, ever. Sender address rejected? Relay access denied? Not here."
    raw = exim_saying(bob.email, unknown.pk, "550 No such user here", body=body)
    assert do_record_inbound_mail(raw, source="pipe").kind == "bounce_hard"
    assert suppression_of(ada) is None and suppression_of(bob) == "hard_bounce"


def test_a_policy_block_after_soft_bounces_does_not_tip_the_person_over_the_limit(
    settings, received
):
    settings.TIDINGS_SOFT_BOUNCE_LIMIT = 3
    _, [(ada, delivery)] = delivered()
    delayed = sample("postfix_delayed.eml", recipient=ada.email, row=("d", delivery.pk))
    do_record_inbound_mail(delayed, source="pipe")
    do_record_inbound_mail(delayed, source="pipe")
    status, reply = POLICY_BLOCKS[0]
    blocked = do_record_inbound_mail(
        policy_block_report(ada.email, delivery.pk, status, reply), source="pipe"
    )
    assert blocked.kind == "blocked"
    assert suppression_of(ada) is None and statuses(ada) == {"confirmed"}
    third = do_record_inbound_mail(delayed, source="pipe")
    assert third.reason == "soft bounce 3 of 3 within 14 days: address suppressed"


def test_a_complaint_unsubscribes_from_everything_on_every_channel(
    received, django_capture_on_commit_callbacks
):
    _, [(ada, delivery)] = delivered()
    ConsentEvent.objects.create(  # she had also agreed to marketing calls
        contact=ada, purpose=PURPOSE_MARKETING, channel="phone", action="granted", source="form"
    )
    raw = sample("arf_complaint.eml", recipient=ada.email, row=("d", delivery.pk))
    with django_capture_on_commit_callbacks(execute=True):
        report = do_record_inbound_mail(raw, source="imap")
    assert report.status == "processed" and report.kind == "complaint"
    assert report.detail == "feedback-type abuse"
    assert suppression_of(ada) == "complaint"
    assert statuses(ada) == {"complained"}
    withdrawn = ConsentEvent.objects.filter(contact=ada, action="withdrawn")
    assert set(withdrawn.values_list("source", "source_ref").distinct()) == {
        ("system", f"complaint:{report.pk}")
    }
    assert withdrawn.filter(mailing_list__isnull=False).count() == 1  # the list
    channels = set(withdrawn.filter(purpose=PURPOSE_MARKETING).values_list("channel", flat=True))
    assert channels == {CHANNEL_EMAIL, "phone"}  # post was never granted: nothing to withdraw
    assert ("complained", {"contact_id": ada.pk, "delivery_id": delivery.pk}) in received
    assert Event.objects.filter(delivery=delivery, kind="complaint").count() == 1


def test_a_complaint_outranks_an_earlier_unsubscribe_suppression():
    from tidings.audience.suppression import do_suppress

    _, [(ada, delivery)] = delivered()
    do_suppress(ada.email, "unsubscribed")
    do_record_inbound_mail(
        sample("arf_complaint.eml", recipient=ada.email, row=("d", delivery.pk)), source="pipe"
    )
    assert suppression_of(ada) == "complaint"


def test_a_bounce_of_a_one_off_message_suppresses_too():
    _, [(ada, _)] = delivered()
    message = enqueue_message(
        ada, kind="system:welcome", subject="Welcome", text="Hi", from_email="n@example.co.uk"
    )
    report = do_record_inbound_mail(
        sample("gmail_hard.eml", recipient=ada.email, row=("o", message.pk)), source="pipe"
    )
    assert report.outgoing == message and report.delivery is None
    assert report.status == "processed" and suppression_of(ada) == "hard_bounce"


def test_mail_that_is_no_report_is_kept_unprocessed_with_the_reason():
    _, [(ada, delivery)] = delivered()
    raw = sample("out_of_office.eml", recipient=ada.email, row=("d", delivery.pk))
    report = do_record_inbound_mail(raw, source="pipe")
    assert report.status == "unprocessed"
    assert report.reason.startswith("not a bounce or complaint")
    assert bytes(report.raw) == raw  # kept, for a second look
    assert suppression_of(ada) is None


def test_an_unmatched_report_is_matched_on_retry_once_its_message_is_known():
    _, [(ada, delivery)] = delivered()
    raw = sample("postfix_hard.eml", recipient=ada.email, row=("d", delivery.pk))
    # Arrives while the row it names does not exist (yet, or any more: here, not yet).
    pk = delivery.pk
    delivery.delete()
    report = do_record_inbound_mail(raw, source="pipe")
    assert report.status == "unprocessed"
    delivery.pk = pk
    delivery.save(force_insert=True)
    report = do_retry_inbound_report(report)
    assert report.status == "processed" and suppression_of(ada) == "hard_bounce"


def test_a_report_about_an_erased_person_changes_nothing():
    _, [(ada, delivery)] = delivered()
    raw = sample("postfix_hard.eml", recipient=ada.email, row=("d", delivery.pk))
    type(delivery).objects.filter(pk=delivery.pk).update(contact=None)
    report = do_record_inbound_mail(raw, source="pipe")
    assert report.status == "processed"
    assert report.reason == "the person was erased: nothing to do"
    assert suppression_of(ada) is None


def test_an_unexpected_error_keeps_the_report_unprocessed(monkeypatch):
    from tidings.campaigns.bounces import dsn

    def broken(message):
        raise LookupError("a detector fell over")

    monkeypatch.setattr(dsn, "all_failures", broken)
    _, [(ada, delivery)] = delivered()
    raw = sample("postfix_hard.eml", recipient=ada.email, row=("d", delivery.pk))
    report = do_record_inbound_mail(raw, source="pipe")
    report.refresh_from_db()
    assert report.status == "unprocessed"
    assert report.reason == "could not be processed (LookupError); try again later"
    assert bytes(report.raw) == raw


def test_kept_messages_are_dropped_after_the_keep_period(settings):
    settings.TIDINGS_BOUNCE_KEEP_DAYS = 30
    old = InboundReport.objects.create(
        source="pipe", raw=b"From: x\r\n\r\nold", received_at=timezone.now() - timedelta(days=31)
    )
    new = InboundReport.objects.create(source="pipe", raw=b"From: x\r\n\r\nnew")
    assert purge_kept_messages() == 1
    old.refresh_from_db()
    new.refresh_from_db()
    assert bytes(old.raw) == b"" and bytes(new.raw) != b""


def test_reports_are_in_the_access_package_and_removed_by_erasure():
    _, [(ada, delivery)] = delivered()
    do_record_inbound_mail(
        sample("postfix_hard.eml", recipient=ada.email, row=("d", delivery.pk)), source="pipe"
    )
    # An unmatched report naming the same address is found by its HMAC.
    do_record_inbound_mail(sample("postfix_hard.eml", recipient=ada.email), source="pipe")
    (source,) = [s for s in sources() if InboundReport in s.models]
    exported = source.export(ada)
    assert [row["kind"] for row in exported] == ["Hard bounce", "Hard bounce"]
    assert source.erase(ada) == 2
    assert not InboundReport.objects.exists()


def test_xtext_escapes_in_a_reports_recipient_fields_are_decoded():
    """RFC 3461 writes the address the sender gave (ORCPT) as xtext: a "+" in it is "+2B", an
    "=" is "+3D" (Postfix copies it so into Original-Recipient, some MTAs into
    Final-Recipient too).  Read as written, a report about ada+news@example.com named
    "ada+2Bnews@example.com": "Why didn't they get it?" showed no bounce for her, and erasure
    left her unmatched reports behind."""
    from tidings.campaigns.deliverability.lookup import messages_to

    _, [(ada, delivery)] = delivered()
    ada.email = "ada+news=uk@example.com"
    ada.save()
    Delivery.objects.filter(pk=delivery.pk).update(sent_at=timezone.now())

    def encoded(row=None) -> bytes:
        raw = sample("postfix_hard.eml", recipient=ada.email, row=row)
        for field in (b"Final-Recipient: rfc822; ", b"Original-Recipient: rfc822;"):
            raw = raw.replace(field + b"ada+news=uk@", field + b"ada+2Bnews+3Duk@")
        assert b"+2Bnews+3Duk" in raw
        return raw

    report = do_record_inbound_mail(encoded(("d", delivery.pk)), source="pipe")
    report.refresh_from_db()
    assert (report.status, report.kind, report.detail) == ("processed", "bounce_hard", "5.1.1")
    assert report.recipient_hmac == email_hmac("ada+news=uk@example.com")
    unmatched = do_record_inbound_mail(encoded(), source="pipe")
    unmatched.refresh_from_db()
    assert unmatched.recipient_hmac == email_hmac("ada+news=uk@example.com")
    notes = [note for m in messages_to(ada.email).messages for note in m.afterwards]
    assert any(note.startswith("bounced afterwards") for note in notes)
    (source,) = [s for s in sources() if InboundReport in s.models]
    assert source.erase(ada) == 2


@pytest.mark.parametrize(
    ("written", "meant"),
    [
        ("ada+2Btag@example.com", "ada+tag@example.com"),
        ("j+C3+B6rg@example.com", "jörg@example.com"),  # UTF-8 octets, each escaped
        # A plus-address written without xtext (a sender that did not encode it): "+20", "+41"
        # would decode to a space or a letter no encoder escapes, "+AB" to a lone byte that is
        # no UTF-8: left as written.
        ("ada+2026@example.com", "ada+2026@example.com"),
        ("ada+41@example.com", "ada+41@example.com"),
        ("ada+AB@example.com", "ada+AB@example.com"),
        ("ada+news@example.com", "ada+news@example.com"),
    ],
)
def test_xtext_is_decoded_only_where_an_encoder_would_have_escaped(written, meant):
    from tidings.campaigns.bounces.dsn import xtext_decoded

    assert xtext_decoded(written) == meant


# --- the command ------------------------------------------------------------------------------
def test_the_pipe_command_processes_a_bounce_from_standard_input(monkeypatch):
    _, [(ada, delivery)] = delivered()
    raw = sample("postfix_hard.eml", recipient=ada.email, row=("d", delivery.pk))
    monkeypatch.setattr(sys, "stdin", io.TextIOWrapper(io.BytesIO(raw)))
    out = io.StringIO()
    call_command("bounces", "process", stdout=out)
    report = InboundReport.objects.get()
    assert out.getvalue().strip() == (
        f"report #{report.pk}: processed: hard bounce: address suppressed"
    )
    assert ada.email not in out.getvalue()
    assert suppression_of(ada) == "hard_bounce"


def test_the_pipe_command_succeeds_on_an_unmatched_report(tmp_path):
    path = tmp_path / "bounce.eml"
    path.write_bytes(sample("postfix_hard.eml", recipient="someone@example.net"))
    out = io.StringIO()
    call_command("bounces", "process", "--file", str(path), stdout=out)
    assert ": unprocessed: no message of ours found in it" in out.getvalue()
    assert InboundReport.objects.get().status == "unprocessed"


def test_the_pipe_command_refuses_empty_input(tmp_path):
    path = tmp_path / "input"
    path.write_bytes(b"  \n")
    with pytest.raises(CommandError) as caught:
        call_command("bounces", "process", "--file", str(path))
    assert str(caught.value) == "not a mail message: the input is empty"
    assert not InboundReport.objects.exists()


@pytest.mark.parametrize(
    ("data", "reason"),
    [
        (b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR", "unreadable: the input is binary"),
        (b"just some words, no headers\n", "unreadable: the input has no mail headers"),
    ],
)
def test_the_pipe_command_keeps_input_that_is_no_mail_with_the_reason(tmp_path, data, reason):
    path = tmp_path / "input"
    path.write_bytes(data)
    out = io.StringIO()
    call_command("bounces", "process", "--file", str(path), stdout=out)
    report = InboundReport.objects.get()
    assert report.status == "unprocessed" and report.reason.startswith(reason)
    assert bytes(report.raw) == data
    assert out.getvalue().strip() == f"report #{report.pk}: unprocessed: {report.reason}"


def test_the_retry_command_says_how_many_it_matched():
    _, [(ada, _delivery)] = delivered()
    do_record_inbound_mail(sample("out_of_office.eml", recipient=ada.email), source="pipe")
    out = io.StringIO()
    call_command("bounces", "retry", stdout=out)
    assert out.getvalue().strip() == "1 unprocessed report(s) tried again: 0 processed"


# --- VERP: the envelope sender the engine gives each message ---------------------------------
def test_with_verp_each_message_bounces_to_its_own_address_which_leads_back_to_it(settings):
    from tests.campaigns.delivery_helpers import SmtpSink, transports_for
    from tidings.campaigns.engine import deliver_pending

    settings.TIDINGS_BOUNCE_ADDRESS = "bounces@example.co.uk"
    settings.TIDINGS_BOUNCE_VERP = True
    _, [(ada, delivery), (bob, other)] = delivered(2)
    type(delivery).objects.filter(pk__in=[delivery.pk, other.pk]).update(status="queued")
    with SmtpSink() as sink:
        settings.TIDINGS_TRANSPORTS = transports_for(sink)
        deliver_pending()
    envelope = {r.recipient: r.mail_from for r in sink.received}
    assert envelope[ada.email].startswith(f"bounces+d{delivery.pk}.")
    assert envelope[ada.email].endswith("@example.co.uk")
    assert envelope[bob.email] != envelope[ada.email]
    # A bounce that quotes nothing of the message, sent to Ada's envelope sender.
    bounce = sample(
        "exim_hard.eml", recipient=ada.email, message_id="<gone@relay.example>"
    ).replace(b"bounces@example.co.uk", envelope[ada.email].encode())
    report = do_record_inbound_mail(bounce, source="pipe")
    assert report.status == "processed" and report.delivery_id == delivery.pk
    assert suppression_of(ada) == "hard_bounce" and suppression_of(bob) is None


# --- whatever arrives -----------------------------------------------------------------------
@hypothesis_settings(
    max_examples=examples(60),
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture],
)
@given(
    st.one_of(
        st.binary(max_size=2000),
        st.text(max_size=2000).map(lambda t: t.encode("utf-8", "surrogatepass")),
        st.sampled_from(
            ["postfix_hard.eml", "gmail_hard.eml", "arf_complaint.eml", "outlook_hard.eml"]
        ).flatmap(
            lambda name: st.integers(min_value=0, max_value=3000).map(
                lambda cut: sample(name, recipient="x@example.net")[:cut]
            )
        ),
    )
)
def test_no_input_crashes_processing_or_is_lost(data):
    """Truncated reports, random text and bytes: each is stored (processed, or unprocessed
    with a reason and the input kept); nothing raises.  tests/campaigns/test_bounces_hostile.py
    fuzzes MIME structures too."""
    before = InboundReport.objects.count()
    report = do_record_inbound_mail(data, source="pipe")
    assert InboundReport.objects.count() == before + 1
    assert report.status == "processed" or report.reason


def test_a_bounce_that_returns_a_message_with_a_zip_attachment_is_a_bounce_not_a_dmarc_report(
    received, django_capture_on_commit_callbacks
):
    """The returned message is attached to the bounce; a .zip inside it (a support reply's
    attachment) is not a DMARC aggregate report, and the bounce must still suppress."""
    _, [(ada, delivery)] = delivered()
    raw = sample("postfix_hard.eml", recipient=ada.email, row=("d", delivery.pk)).decode()
    original_body = 'Content-Type: text/plain; charset="utf-8"\r\nContent-Transfer-Encoding: 7bit'
    assert original_body in raw
    raw = raw.replace(
        original_body,
        'Content-Type: multipart/mixed; boundary="inner"\r\n\r\n--inner\r\n'
        "Content-Type: text/plain\r\n\r\nThe files you asked for.\r\n--inner\r\n"
        'Content-Type: application/zip; name="invoice.zip"\r\n'
        'Content-Disposition: attachment; filename="invoice.zip"\r\n'
        "Content-Transfer-Encoding: base64\r\n\r\nUEsFBgAAAAAAAAAAAAAAAAAAAAAAAA==\r\n--inner--",
    )
    with django_capture_on_commit_callbacks(execute=True):
        report = do_record_inbound_mail(raw.encode(), source="pipe")
    assert isinstance(report, InboundReport)
    report.refresh_from_db()
    assert (report.status, report.kind) == ("processed", "bounce_hard")
    assert suppression_of(ada) == "hard_bounce"


def test_a_mail_to_the_list_unsubscribe_mailto_unsubscribes_as_the_link_does(settings):
    """Every campaign message offers ``mailto:unsubscribe@…?subject=unsubscribe <token>`` beside
    the https link, and the deployment guide sends that address to the bounce mailbox.  Mail
    programs that use it (Outlook, Apple Mail, Gmail for some senders) send exactly that: it
    used to be kept as "not a bounce", and the person stayed subscribed."""
    from urllib.parse import unquote

    from tidings.audience.tokens import list_unsubscribe_headers

    settings.TIDINGS_UNSUBSCRIBE_MAILTO = "unsubscribe@example.com"
    campaign, [(ada, delivery), (bob, _)] = delivered(2)
    header = list_unsubscribe_headers(ada, campaign.lists.get(), delivery.pk)["List-Unsubscribe"]
    mailto = header.split("<mailto:")[1].rstrip(">")
    address, _, query = mailto.partition("?subject=")
    raw = (
        f"From: {ada.email}\r\nTo: {address}\r\nSubject: {unquote(query)}\r\n"
        "Message-ID: <x1@mail.example.org>\r\n\r\nThis message was sent by your mail program.\r\n"
    ).encode()

    report = do_record_inbound_mail(raw, source="pipe")

    assert statuses(ada) == {"unsubscribed"}
    assert statuses(bob) == {"confirmed"}
    assert report.status == InboundReport.Status.PROCESSED
    withdrawn = ConsentEvent.objects.get(contact=ada, action="withdrawn")
    assert withdrawn.source_ref == f"delivery:{delivery.pk}"
    assert not bytes(report.raw)  # nothing of the mail is kept


def test_a_forged_unsubscribe_token_by_mail_unsubscribes_nobody():
    _, [(ada, _)] = delivered(1)
    raw = b"From: x@example.org\r\nSubject: unsubscribe eyJjIjoxLCJsIjoxfQ:forged\r\n\r\nhi\r\n"

    report = do_record_inbound_mail(raw, source="pipe")

    assert statuses(ada) == {"confirmed"}
    assert report.status == InboundReport.Status.UNPROCESSED
