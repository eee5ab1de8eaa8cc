"""One writer of a subscription's end (issue 18.3): unsubscribing, an operator's removal and a
hard bounce all go through ``do_set_subscription_status``, and each end looks the same."""

from __future__ import annotations

import pytest
from django.contrib.auth import get_user_model

from tidings.audience.actions import do_create_contact, do_subscribe, do_unsubscribe
from tidings.audience.models import MailingList, Subscription
from tidings.audience.operator import do_remove_from_list
from tidings.audience.subscriptions import do_set_subscription_status
from tidings.audience.suppression import do_record_hard_bounce

pytestmark = pytest.mark.django_db


@pytest.fixture
def news():
    return MailingList.objects.create(name="Product news", topic="product news")


def subscribed(news, email):
    contact, _ = do_create_contact({"name": "Someone", "email": email}, purpose="newsletter")
    do_subscribe(contact, news, source="form", wording_text="Yes", confirmed=True)
    return contact


def test_an_unsubscribe_a_removal_and_a_bounce_end_subscriptions_alike(news):
    ada, grace, alan = (subscribed(news, f"{n}@example.com") for n in ("ada", "grace", "alan"))
    before = {s.contact_id: s.updated_at for s in Subscription.objects.all()}

    do_unsubscribe(ada, news, source="unsubscribe")
    operator = get_user_model().objects.create_user("owner", is_staff=True)
    do_remove_from_list([grace.pk], news, actor=operator)
    do_record_hard_bounce([alan.pk], source="delivery")

    ends = {s.contact_id: s for s in Subscription.objects.all()}
    assert ends[ada.pk].status == ends[grace.pk].status == Subscription.Status.UNSUBSCRIBED
    assert ends[ada.pk].unsubscribed_at and ends[grace.pk].unsubscribed_at
    # A bounce is the mailbox's doing, not the person's: no moment of leaving.
    assert ends[alan.pk].status == Subscription.Status.BOUNCED
    assert ends[alan.pk].unsubscribed_at is None
    assert all(ends[pk].updated_at > before[pk] for pk in before)


def test_only_an_end_can_be_written_there(news):
    sub = Subscription.objects.get(contact=subscribed(news, "ada@example.com"))
    with pytest.raises(ValueError, match="not an end"):
        do_set_subscription_status([sub], Subscription.Status.CONFIRMED)
    assert Subscription.objects.get().status == Subscription.Status.CONFIRMED
