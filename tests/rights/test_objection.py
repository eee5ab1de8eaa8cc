"""Objection to marketing (Art. 21): every list, every channel, at once, and for good."""

from __future__ import annotations

import pytest
from django.core import mail
from django.core.cache import cache

from tests.rights.helpers import link_in, plant_person
from tidings.audience.consent import current_state, may_email
from tidings.audience.emails import email_hmac
from tidings.audience.models import ConsentEvent, Subscription, Suppression
from tidings.lib.models import AuditEntry
from tidings.policy import get_policy
from tidings.rights.actions import do_object_to_marketing
from tidings.rights.models import RightsRequest

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def _fresh():
    cache.clear()


def test_objecting_through_the_link_stops_all_marketing_on_every_channel(
    client, django_capture_on_commit_callbacks
):
    ada = plant_person("ada")
    mail.outbox.clear()
    with django_capture_on_commit_callbacks(execute=True):
        client.post("/rights/", {"kind": "object", "email": "ada@example.com"})
    with django_capture_on_commit_callbacks(execute=True):
        client.post(link_in(mail.outbox[0], "/rights/v/"))

    assert not Subscription.objects.filter(
        contact=ada.contact, status__in=["pending", "confirmed"]
    ).exists()
    state = current_state(ada.contact)
    for channel in get_policy().marketing.channels:
        standing = state.standing("marketing", channel)
        assert standing is not None and not standing.granted, channel
    for sub in Subscription.objects.filter(contact=ada.contact):
        assert not may_email(ada.contact.pk, sub.mailing_list_id)
    assert Suppression.objects.get(email_hmac=email_hmac("ada@example.com")).reason == (
        "unsubscribed"
    )
    assert RightsRequest.objects.filter(kind="object").get().state == "completed"
    assert "not contact you for marketing by email, phone, post" in mail.outbox[-1].body


def test_every_channel_gets_a_withdrawal_even_one_never_granted():
    ada = plant_person("ada")  # granted email (lists) and phone; never post

    do_object_to_marketing(ada.contact)

    withdrawn = set(
        ConsentEvent.objects.filter(
            contact=ada.contact, purpose="marketing", action="withdrawn"
        ).values_list("channel", flat=True)
    )
    assert withdrawn == {"email", "phone", "post"}


def test_objecting_twice_adds_nothing():
    ada = plant_person("ada")
    do_object_to_marketing(ada.contact)
    events = ConsentEvent.objects.count()

    assert do_object_to_marketing(ada.contact) == 0
    assert ConsentEvent.objects.count() == events


def test_an_objection_is_audited_with_counts_only():
    ada = plant_person("ada")

    do_object_to_marketing(ada.contact)

    entry = AuditEntry.objects.get(action="contact.objected_to_marketing")
    assert entry.details["lists"] == 1 and entry.details["channels"] == ["email", "phone", "post"]
    assert "ada" not in str(entry.details).lower()
