"""Conversation messages under the policy: in the access package (in words), erased with the
person, swept with their record's retention rule (a new message moves an enquiry's clock on)."""

from __future__ import annotations

from datetime import timedelta

import pytest
import time_machine
from django.utils import timezone

from tidings.audience.models import Contact
from tidings.crm.actions import do_create_support_request
from tidings.crm.conversations import reply_address
from tidings.crm.inbound.processing import do_receive_inbound
from tidings.crm.models import ConversationMessage, Enquiry, InboundMail, SupportRequest
from tidings.rights.actions import do_erase_contact
from tidings.rights.package import sections_for
from tidings.rights.retention import expiry, run_retention

from .helpers import customer, mail

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("support_address")]
GRACE = "Grace Hopper <grace@example.org>"


def conversation() -> Enquiry:
    do_receive_inbound(mail(GRACE, subject="Courses", body="Do you run courses?"), "pipe")
    enquiry = Enquiry.objects.get()
    do_receive_inbound(mail(GRACE, reply_address(enquiry), body="In March?"), "pipe")
    return enquiry


def test_the_access_package_has_the_messages_in_words():
    enquiry = conversation()
    grace = Contact.objects.get(email="grace@example.org")
    section = next(s for s in sections_for(grace) if s.source.name == "enquiry_messages")
    texts = [(row["from"], row["text"]) for row in section.rows]
    assert ("From them", "In March?") in texts
    assert any(frm == "us (automatic)" for frm, _ in texts)
    assert {row["conversation"] for row in section.rows} == {f"enquiry E-{enquiry.pk}"}
    assert section.why["purposes"][0]["purpose"] == "Answering your enquiries"
    assert section.why["retention"] == "Kept 12 months after our last contact with you."


def test_the_access_package_has_an_emailed_enquirys_subject():
    """The subject of a mail that opened an enquiry is what the person wrote, kept with the
    enquiry and shown to operators: their copy of their data has it too."""
    conversation()
    grace = Contact.objects.get(email="grace@example.org")
    section = next(s for s in sections_for(grace) if s.source.name == "enquiries")
    assert [(row["subject"], row["message"]) for row in section.rows] == [
        ("Courses", "Do you run courses?")
    ]


def test_erasure_removes_the_messages_and_the_support_mail_with_the_person():
    conversation()
    do_receive_inbound(mail("Alan <alan@example.net>", body="Hello"), "pipe")
    alans = Enquiry.objects.get(contact__email="alan@example.net")
    # Grace writes into Alan's conversation: kept unprocessed, found by her address's HMAC.
    held = do_receive_inbound(mail(GRACE, reply_address(alans), body="Oops"), "pipe")
    assert held.status == "unprocessed"
    grace = Contact.objects.get(email="grace@example.org")
    do_erase_contact(grace)
    assert not ConversationMessage.objects.exclude(enquiry=alans).exists()
    assert list(Enquiry.objects.all()) == [alans]
    assert not InboundMail.objects.filter(pk=held.pk).exists()
    assert InboundMail.objects.filter(contact__email="alan@example.net").exists()


def test_an_enquirys_messages_go_with_it_twelve_months_after_the_last_message():
    enquiry = conversation()
    first_expiry = expiry(enquiry)
    later = timezone.now() + timedelta(days=200)
    with time_machine.travel(later, tick=False):
        do_receive_inbound(mail(GRACE, reply_address(enquiry), body="Still there?"), "pipe")
    enquiry.refresh_from_db()
    assert expiry(enquiry) > first_expiry  # the new message moved the clock on
    dry = run_retention(dry_run=True, now=first_expiry + timedelta(days=1))
    assert dry.counts["enquiry"] == 0
    run = run_retention(now=expiry(enquiry) + timedelta(seconds=1))
    assert run.counts["enquiry"] == 1
    assert not ConversationMessage.objects.exists()


def test_support_messages_go_with_the_support_contact():
    _, _, peter = customer()
    request = do_create_support_request(peter, subject="Printer", notes="Jammed")
    do_receive_inbound(
        mail("peter@initech.example", reply_address(request), body="Still jammed."), "pipe"
    )
    assert ConversationMessage.objects.filter(support_request=request, direction="in").exists()
    do_erase_contact(peter.contact)
    assert not SupportRequest.objects.exists() and not ConversationMessage.objects.exists()


def test_the_privacy_notice_still_names_the_crms_processors_and_where_they_are(client):
    page = client.get("/privacy").text
    assert "Third-party database hosting provider" in page and "Helpdesk software" in page
    assert "United States" in page
