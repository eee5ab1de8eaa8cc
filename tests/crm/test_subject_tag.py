"""The conversation's tag in the subject: a person's reply that lost every header we set (sent
from another mail program, forwarded back to us, written to the plain support address) joins
its conversation by the tag "[#E-12-…]" in its subject, and only when its sender is that
conversation's person; the tag cannot be made up from the reference alone."""

from __future__ import annotations

import re

import pytest

from tests.campaigns.delivery_helpers import SmtpSink, transports_for
from tidings.campaigns.engine import deliver_pending
from tidings.campaigns.models import OutgoingMessage
from tidings.crm.conversations import do_reply, subject_tag
from tidings.crm.inbound.processing import do_receive_inbound
from tidings.crm.models import ConversationMessage, Enquiry, InboundMail, SupportRequest

from .helpers import SUPPORT, customer, mail, operator

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("support_address")]

GRACE = "Grace Hopper <grace@example.org>"
TAG = re.compile(r"\[#E-\d+-[0-9a-f]{10}\]")


@pytest.fixture
def sink(settings):
    with SmtpSink() as server:
        settings.TIDINGS_TRANSPORTS = transports_for(server, concurrency=1)
        yield server


def graces_enquiry() -> Enquiry:
    row = do_receive_inbound(mail(GRACE, subject="Courses", body="Any in March?"), "pipe")
    assert row.status == "processed", row.reason
    return Enquiry.objects.get()


def headerless(sender: str, subject: str, body: str = "April would suit me too.") -> bytes:
    """A reply as another mail program sends it: to the plain support address, no
    In-Reply-To, no References."""
    raw = mail(sender, SUPPORT, subject=subject, body=body)
    assert b"In-Reply-To" not in raw and b"References" not in raw
    return raw


def test_what_we_send_carries_the_conversations_tag_on_the_wire(sink):
    enquiry = graces_enquiry()
    do_reply(enquiry, text="Yes, every month.", actor=operator("ada"))
    deliver_pending(max_seconds=10)
    ack, answer = (r.message for r in sink.received)
    tag = subject_tag(enquiry)
    assert TAG.fullmatch(tag) and tag.startswith(f"[#E-{enquiry.pk}-")
    assert ack["Subject"] == f"Re: Courses {tag}"
    assert answer["Subject"] == f"Re: Courses {tag}"  # one subject, one tag, never two


def test_a_reply_that_lost_every_header_joins_its_conversation_by_the_subjects_tag():
    enquiry = graces_enquiry()
    subject = OutgoingMessage.objects.get().subject  # the acknowledgement's
    row = do_receive_inbound(headerless(GRACE, f"Re: {subject}"), "pipe")
    assert (row.status, row.reason) == (
        "processed",
        f"added to enquiry #{enquiry.pk} (by the conversation's tag in its subject)",
    )
    assert Enquiry.objects.count() == 1
    assert ConversationMessage.objects.get(direction="in").text == "April would suit me too."
    # Forwarded back to us from the person's own mail program: the same.
    do_receive_inbound(headerless(GRACE, f"Fwd: Re: {subject}", "See below."), "pipe")
    assert Enquiry.objects.count() == 1
    assert ConversationMessage.objects.filter(enquiry=enquiry, direction="in").count() == 2


def test_the_tag_from_someone_else_opens_a_conversation_of_their_own():
    """Grace forwards our answer to a colleague, who writes to us under its subject: never into
    Grace's conversation (they would read her history in our answers), nor kept back."""
    graces = graces_enquiry()
    subject = OutgoingMessage.objects.get().subject
    row = do_receive_inbound(
        headerless("Alan Turing <alan@else.example>", f"Fwd: {subject}"), "pipe"
    )
    alans = Enquiry.objects.get(contact__email="alan@else.example")
    assert (row.status, row.reason) == ("processed", f"new enquiry #{alans.pk}")
    assert not ConversationMessage.objects.filter(enquiry=graces, direction="in").exists()
    # Alan's own acknowledgement carries his conversation's tag, not Grace's.
    ack = OutgoingMessage.objects.get(contact__email="alan@else.example")
    assert subject_tag(graces) not in ack.subject and ack.subject.endswith(subject_tag(alans))


@pytest.mark.parametrize("made_up", ["0000000000", None], ids=["wrong-signature", "other-record"])
def test_a_made_up_tag_names_no_conversation(made_up):
    enquiry = graces_enquiry()
    real = subject_tag(enquiry)
    if made_up:
        tag = real[:-11] + made_up + "]"
    else:  # another enquiry's number with this one's signature
        tag = real.replace(f"#E-{enquiry.pk}-", f"#E-{enquiry.pk + 1}-")
    do_receive_inbound(headerless(GRACE, f"Re: Courses {tag}"), "pipe")
    assert Enquiry.objects.count() == 2
    assert not ConversationMessage.objects.filter(enquiry=enquiry, direction="in").exists()
    assert not InboundMail.objects.filter(status="unprocessed").exists()


def test_a_support_requests_tag_brings_its_contacts_reply_back():
    customer()
    peter = "Peter Gibbons <peter@initech.example>"
    do_receive_inbound(mail(peter, subject="Export fails", body="It crashes."), "pipe")
    request = SupportRequest.objects.get()
    subject = OutgoingMessage.objects.get().subject
    assert subject == f"Re: Export fails {subject_tag(request)}"
    assert subject_tag(request).startswith(f"[#R-{request.pk}-")
    row = do_receive_inbound(headerless(peter, f"RE: {subject}", "Still crashing."), "pipe")
    assert row.reason.startswith(f"added to request #{request.pk}")
    assert SupportRequest.objects.count() == 1
