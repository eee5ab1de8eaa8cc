"""Answering from tidings: the operator's reply goes through the delivery engine to a real SMTP
server, from the support address, with the conversation's reply address and threading headers;
the person's answer comes back into the same conversation."""

from __future__ import annotations

import re

import pytest
from django.urls import reverse

from tests.audience.public_helpers import reset
from tests.campaigns.delivery_helpers import SmtpSink, transports_for
from tidings.campaigns.engine import deliver_pending
from tidings.crm.actions import do_receive_enquiry
from tidings.crm.conversations import (
    NotConfigured,
    ReplyRefused,
    do_reply,
    reply_address,
    subject_tag,
)
from tidings.crm.inbound.processing import do_receive_inbound
from tidings.crm.models import ConversationMessage, Enquiry
from tidings.lib.models import AuditEntry

from .helpers import SUPPORT, mail, operator

pytestmark = pytest.mark.django_db


@pytest.fixture
def sink(settings):
    reset()
    settings.TIDINGS_SUPPORT_ADDRESS = SUPPORT
    with SmtpSink() as server:
        # One connection: mail arrives in the order it was queued (the acknowledgement, then
        # the reply); with several, the two race.
        settings.TIDINGS_TRANSPORTS = transports_for(server, concurrency=1)
        yield server
    reset()


@pytest.fixture
def enquiry() -> Enquiry:
    return do_receive_enquiry(
        {"name": "Grace Hopper", "email": "grace@example.org"},
        channel="web form",
        message="Do you run courses?",
        acknowledge=True,
    )


def test_the_acknowledgement_and_a_reply_reach_the_person_threaded_from_the_support_address(
    sink, enquiry
):
    ada = operator("ada")
    do_reply(enquiry, text="Yes, every month. Which suits you?", actor=ada)
    deliver_pending(max_seconds=10)

    ack, answer = (r.message for r in sink.received)
    assert [r.recipient for r in sink.received] == ["grace@example.org"] * 2
    tag = subject_tag(enquiry)
    assert ack["Subject"] == f"We have your message (E-{enquiry.pk}) {tag}"
    assert "How long: we keep it 12 months after our last contact with you." in (
        ack.get_body(("plain",)).get_content()
    )
    for message in (ack, answer):
        assert message["From"] == SUPPORT
        assert message["Reply-To"] == reply_address(enquiry)
    # One subject for the whole conversation: Gmail threads by subject as well as References,
    # and "Re: Your enquiry to …" under "We have your message" made two conversations.
    assert answer["Subject"] == f"Re: We have your message (E-{enquiry.pk}) {tag}"
    # RFC 3834: the acknowledgement is automatic, the operator's reply is written by a person
    # (an auto-responder may answer it; a single header each).
    assert ack.get_all("Auto-Submitted") == ["auto-generated"]
    assert answer.get_all("Auto-Submitted") == ["no"]
    assert answer["In-Reply-To"] == ack["Message-ID"]
    assert answer["References"] == ack["Message-ID"]
    stored = ConversationMessage.objects.get(direction="out", automatic=False)
    assert stored.message_id == answer["Message-ID"] and stored.author == ada
    enquiry.refresh_from_db()
    assert enquiry.status == "waiting" and enquiry.first_response_at == stored.created_at
    assert AuditEntry.objects.filter(action="enquiry.replied", actor=ada).exists()


def test_the_persons_answer_to_our_reply_threads_under_it(sink, enquiry):
    ada = operator("ada")
    reply = do_reply(enquiry, text="Which month?", actor=ada)
    deliver_pending(max_seconds=10)
    answer = sink.received[-1].message
    incoming = mail(
        "Grace Hopper <grace@example.org>",
        str(answer["Reply-To"]),
        subject=f"Re: {answer['Subject']}",
        body="March, please.\n\nOn Tue, Ada wrote:\n> Which month?\n",
        headers={"In-Reply-To": answer["Message-ID"], "References": answer["Message-ID"]},
    )
    do_receive_inbound(incoming, source="pipe")
    last = ConversationMessage.objects.filter(enquiry=enquiry).order_by("-pk").first()
    assert (last.direction, last.text) == ("in", "March, please.")
    assert reply.pk < last.pk
    enquiry.refresh_from_db()
    assert enquiry.status == "open"  # the person answered: it is ours to act on again


def test_an_operators_reply_is_sent_and_kept_as_written(sink, enquiry, client):
    """A reply that starts with a command to run lost its first line's indentation."""
    client.force_login(operator("ada"))
    written = "    tidings export --format csv\n\nRun this, then try again.\n  Ada"
    response = client.post(
        reverse("crm:enquiry-reply", args=[enquiry.pk]),
        {"text": f"\n\n{written}  \n\n", "status": "waiting"},
    )
    assert response.status_code == 302
    deliver_pending(max_seconds=10)
    kept = ConversationMessage.objects.get(direction="out", automatic=False)
    assert kept.text == written
    sent = sink.received[-1].message.get_body(("plain",)).get_content()
    assert sent.replace("\r\n", "\n").rstrip() == written
    blank = client.post(
        reverse("crm:enquiry-reply", args=[enquiry.pk]), {"text": " \n \n", "status": "open"}
    )
    assert blank.status_code == 400


def test_an_internal_note_is_kept_as_written_and_a_blank_one_refused(enquiry, client):
    """A note that starts with a command lost its first line's indentation."""
    client.force_login(operator("ada"))
    written = "    tidings export --format csv\n\nRan this for them.\n  Ada"
    url = reverse("crm:enquiry-note", args=[enquiry.pk])
    response = client.post(url, {"text": f"\n\n{written}  \n\n"})
    assert response.status_code == 302
    assert ConversationMessage.objects.get(direction="note").text == written
    blank = client.post(url, {"text": " \n \t\n"}, follow=True)
    assert "Write the note first." in blank.content.decode()
    assert ConversationMessage.objects.filter(direction="note").count() == 1


def test_a_reply_that_mentions_health_is_refused_and_nothing_is_sent(sink, enquiry):
    with pytest.raises(ReplyRefused, match="health"):
        do_reply(enquiry, text="Sorry to hear about your cancer diagnosis.", actor=None)
    assert not ConversationMessage.objects.filter(automatic=False).exists()


def test_replies_need_a_support_address(settings, enquiry):
    settings.TIDINGS_SUPPORT_ADDRESS = ""
    with pytest.raises(NotConfigured, match="TIDINGS_SUPPORT_ADDRESS"):
        do_reply(enquiry, text="Hello", actor=None)


def test_an_operator_replies_from_the_enquirys_page(sink, enquiry, client):
    ada = operator("ada")
    client.force_login(ada)
    page = client.get(reverse("crm:enquiry", args=[enquiry.pk])).text
    assert "Reply by email" in page and "We have your message" in page
    response = client.post(
        reverse("crm:enquiry-reply", args=[enquiry.pk]),
        {"text": "Yes, monthly.", "status": "open"},
    )
    assert response.status_code == 302
    refused = client.post(
        reverse("crm:enquiry-reply", args=[enquiry.pk]),
        {"text": "I hope your depression is better.", "status": "open"},
    )
    assert refused.status_code == 400 and "Please rephrase it" in refused.text
    # Brought into view with its error (the page is long; on a phone it came back at its top,
    # the refusal out of sight), the operator's text kept to rephrase.
    assert re.search(r'<textarea name="text"[^>]* autofocus[^>]*>\nI hope your', refused.text)
    enquiry.refresh_from_db()
    assert enquiry.status == "open"
    assert ConversationMessage.objects.filter(direction="out", automatic=False).count() == 1


@pytest.mark.parametrize("action", ["reply", "note"])
def test_screening_is_ready_before_an_operators_reply_or_note_takes_the_database(
    action, enquiry, settings, engine_builds
):
    """The first reply (or note) after a start built screening's engine inside the action's
    transaction, which on SQLite takes the one write lock up front: for the seconds the build
    took, the worker logged "database is locked" and every other write (the contact form, the
    other operators) waited, and could fail.  The engine is built before the transaction."""
    from tidings.crm.work import do_add_note

    settings.TIDINGS_SUPPORT_ADDRESS = SUPPORT
    user = operator("ada")
    if action == "reply":
        do_reply(enquiry, text="Yes: every month.", actor=user)
    else:
        do_add_note(enquiry, text="Called back, wants the March course.", actor=user)
    assert engine_builds == [False]


def test_exchange_is_asked_not_to_answer_our_automatic_mail_with_an_out_of_office(sink, enquiry):
    """Exchange's and Outlook's out-of-office replies carry no Auto-Submitted header, so an
    acknowledgement sent to someone away came back as an ordinary reply in the conversation,
    and its owner was told.  Automatic mail asks them not to (X-Auto-Response-Suppress,
    which Exchange honours); an operator's own reply does not."""
    do_reply(enquiry, text="Yes, every month.", actor=operator("ada"))
    deliver_pending(max_seconds=10)
    ack, answer = (r.message for r in sink.received)
    assert ack.get_all("X-Auto-Response-Suppress") == ["OOF, AutoReply"]
    assert answer.get_all("X-Auto-Response-Suppress") is None
