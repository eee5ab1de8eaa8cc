"""One timeline on the contact's and the organisation's pages: every purpose, with the date of
erasure; campaigns received with what the person (not a machine) did."""

from __future__ import annotations

from datetime import date

import pytest
import time_machine
from django.urls import reverse

from tests.audience.public_helpers import reset
from tests.campaigns.event_helpers import sent_campaign
from tidings.crm.actions import do_create_order, do_create_support_request, do_receive_enquiry
from tidings.crm.timeline import contact_timeline, organisation_timeline
from tidings.crm.work import do_add_note

from .helpers import customer, operator

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def _fresh():
    reset()
    yield
    reset()


def test_a_persons_timeline_lists_every_purpose_newest_first_with_its_erasure_date():
    with time_machine.travel("2026-03-01 10:00Z", tick=False):
        initech, _, peter = customer()
        enquiry = do_receive_enquiry(
            {"name": "Peter Gibbons", "email": "peter@initech.example"},
            channel="telephone",
            message="Training?",
        )
    with time_machine.travel("2026-03-02 10:00Z", tick=False):
        do_add_note(enquiry, text="Sent the brochure", actor=operator("ada"))
        do_create_order(
            {"name": "Peter Gibbons", "email": "peter@initech.example", "company": "Initech"},
            organisation=initech,
            order_reference="INV-1",
        )
    with time_machine.travel("2026-03-03 10:00Z", tick=False):
        do_create_support_request(peter, subject="Printer")
        lines = contact_timeline(peter.contact)
    whats = [line.what for line in lines]
    assert whats[0].startswith("Support request R-") and whats[0].endswith(": Printer")
    by_what = {line.what: line for line in lines}
    enquiry_line = by_what[f"Enquiry E-{enquiry.pk} received (telephone): new"]
    assert (enquiry_line.purpose, enquiry_line.erased) == (
        "Answering your enquiries",
        "Erased on 2027-03-01",
    )
    note = by_what[f"Internal note about enquiry E-{enquiry.pk}"]
    assert note.erased == "Erased on 2027-03-01"  # with its enquiry
    order = by_what["Order INV-1 placed"]
    assert order.erased == "Erased on 2032-03-02 (legal minimum)"
    role = by_what["Support contact at Initech"]
    assert role.purpose == "Servicing the contract we have with your employer"
    assert role.erased == "No erasure date yet"  # the contract runs on
    assert [line.at for line in lines] == sorted((line.at for line in lines), reverse=True)


def test_campaigns_received_count_what_the_person_did_not_machines():
    from tidings.campaigns.models import Delivery, Event

    _, (human,) = sent_campaign(1)
    contact = human.contact
    other, _ = sent_campaign(0)
    machine_only = Delivery.objects.create(
        campaign=other, contact=contact, status=Delivery.Status.SENT, sent_at=human.sent_at
    )

    Event.objects.create(delivery=human, campaign=human.campaign, kind="open", machine=False)
    Event.objects.create(
        delivery=machine_only, campaign=machine_only.campaign, kind="open", machine=True
    )
    lines = [line.what for line in contact_timeline(contact) if "campaign" in line.what]
    assert f"Received campaign {human.campaign.name}; opened by them" in lines
    assert f"Received campaign {machine_only.campaign.name}" in lines


def test_the_pages_show_the_timeline_and_renewals_due(client):
    client.force_login(operator("ada"))
    with time_machine.travel("2026-03-01 10:00Z", tick=False):
        initech, _, peter = customer(end=date(2026, 4, 15))
        lines = organisation_timeline(initech)
        page = client.get(reverse("crm:organisation", args=[initech.pk])).text
        person = client.get(reverse("audience:contact", args=[peter.contact_id])).text
    assert "Contract C-1 ends — renewal due in 45 days" in [line.what for line in lines]
    assert "renewal due in 45 days" in page and "Timeline" in page
    assert "Support contact at Initech" in person
