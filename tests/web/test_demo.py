"""`tidings demo` loads a usable installation, and loading it again adds nothing twice."""

import pytest
from django.contrib.auth import authenticate

from tidings.audience.models import ConsentEvent, Contact, MailingList, SignupForm, Subscription
from tidings.campaigns.models import Campaign, Sender
from tidings.web.demo import load_demo

pytestmark = pytest.mark.django_db


def test_the_demo_has_an_operator_lists_people_and_a_draft_campaign():
    result = load_demo()
    assert authenticate(username=result.username, password=result.password).is_superuser
    assert MailingList.objects.count() == 3  # one per topic of the example policy
    assert Contact.objects.count() == result.contacts == 12
    assert Subscription.objects.filter(status="confirmed").exists()
    assert ConsentEvent.objects.count() == Subscription.objects.count()
    assert Sender.objects.get().verified
    assert Campaign.objects.get().status == "draft"
    assert SignupForm.objects.get().slug == "newsletter"


def test_loading_the_demo_again_adds_nothing_but_a_new_password():
    first = load_demo()
    counts = (Contact.objects.count(), Subscription.objects.count(), ConsentEvent.objects.count())
    second = load_demo()
    assert counts == (
        Contact.objects.count(),
        Subscription.objects.count(),
        ConsentEvent.objects.count(),
    )
    assert first.password != second.password
    assert authenticate(username=second.username, password=second.password)
