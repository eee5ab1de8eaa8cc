"""The audience app sits below campaigns and reaches it only through doors the campaigns app
opens when it starts (issue 18): system mail (``lib.system_mail``), the in-transaction
``unsubscribe_recorded`` signal, and the contact page's sections (``audience.contact_panels``).
These tests go through the audience's own actions and pages and see the campaigns' side act."""

from __future__ import annotations

import pytest
from django.db import transaction

from tests.campaigns.lifecycle_helpers import make_campaign, make_list, queue, subscriber
from tidings.audience.actions import do_unsubscribe
from tidings.campaigns.models import Delivery, Event, OutgoingMessage

pytestmark = pytest.mark.django_db


def test_an_unsubscribe_from_a_campaign_link_counts_in_that_campaigns_report():
    news = make_list()
    ada = subscriber("Ada", news)
    campaign = make_campaign(news)
    [delivery] = queue(campaign, [ada], status=Delivery.Status.SENT)

    assert do_unsubscribe(ada, news, source="link", source_ref=f"delivery:{delivery.pk}")

    kinds = list(Event.objects.filter(delivery=delivery).values_list("kind", flat=True))
    assert kinds == [Event.Kind.UNSUBSCRIBE]


def test_the_count_rolls_back_with_the_unsubscribe():
    news = make_list()
    ada = subscriber("Ada", news)
    campaign = make_campaign(news)
    [delivery] = queue(campaign, [ada], status=Delivery.Status.SENT)

    class Abandon(Exception):
        pass

    with pytest.raises(Abandon), transaction.atomic():
        do_unsubscribe(ada, news, source="link", source_ref=f"delivery:{delivery.pk}")
        assert Event.objects.filter(delivery=delivery).count() == 1  # written in the transaction
        raise Abandon

    assert not Event.objects.filter(delivery=delivery).exists()


def test_a_preference_link_request_queues_system_mail_on_the_campaigns_outbox():
    from tidings.audience.actions import do_send_preferences_link

    news = make_list()
    ada = subscriber("Ada", news, email="ada@example.org")

    do_send_preferences_link("ada@example.org")

    assert OutgoingMessage.objects.filter(contact=ada, kind="system:preferences_link").count() == 1


def test_the_contact_page_lists_the_campaigns_sent_to_the_person(owner_client):
    news = make_list()
    ada = subscriber("Ada", news)
    campaign = make_campaign(news, name="Spring launch")
    queue(campaign, [ada], status=Delivery.Status.SENT)

    page = owner_client.get(f"/audience/contacts/{ada.pk}/").content.decode()

    assert "Campaigns received" in page
    assert "Spring launch" in page
    assert f"/campaigns/{campaign.pk}/" in page


def test_a_contact_without_campaigns_says_so(owner_client):
    ada = subscriber("Ada", make_list())

    page = owner_client.get(f"/audience/contacts/{ada.pk}/").content.decode()

    assert "No campaign has been sent to this person." in page
