"""Journeys started by a person's click in a campaign and by a sign-up form, through the public
doors: a real tracked click request, a real form POST and its confirmation."""

from __future__ import annotations

import pytest
from django.urls import reverse

from tests.audience.public_helpers import link_in, mails_to, make_form, sign_up, use_outbox
from tests.campaigns.event_helpers import sent_campaign
from tests.journeys.helpers import make_list, welcome
from tidings.campaigns import tracking
from tidings.campaigns.models import TrackedLink
from tidings.campaigns.tracking import make_token
from tidings.journeys.actions import activation_problems
from tidings.journeys.models import Enrolment, Journey
from tidings.lib import ingest

pytestmark = pytest.mark.django_db

BROWSER = "Mozilla/5.0 (X11; Linux x86_64; rv:128.0) Gecko/20100101 Firefox/128.0"
PRICING = "https://example.net/pricing"


@pytest.fixture(autouse=True)
def _fresh_link_cache():
    tracking.forget_links()


def _click(client, delivery, index, agent=BROWSER):
    token = make_token(delivery.pk, delivery.campaign_id, index)
    return client.get(reverse("track:click", args=[token]), HTTP_USER_AGENT=agent)


def test_a_persons_click_on_the_chosen_link_starts_the_journey_and_a_scanners_does_not(
    client, django_capture_on_commit_callbacks
):
    campaign, (ann, bob, cid) = sent_campaign(people=3)
    campaign.topic = "product news"
    campaign.save()
    TrackedLink.objects.create(campaign=campaign, index=0, url="https://example.net/blog")
    TrackedLink.objects.create(campaign=campaign, index=1, url=PRICING)
    journey = welcome(
        name="Pricing nudge",
        trigger=Journey.Trigger.LINK,
        trigger_params={"campaign": campaign.pk, "url": PRICING},
    )
    assert journey.status == Journey.Status.ACTIVE
    with django_capture_on_commit_callbacks(execute=True):
        assert _click(client, ann, 1).status_code == 302
        _click(client, bob, 0)  # another link of the campaign
        _click(client, cid, 1, agent="curl/8.5.0")  # a link checker, not Cid
        ingest.flush()
    assert [e.contact_id for e in Enrolment.objects.all()] == [ann.contact_id]


def test_a_click_trigger_for_another_topics_campaign_cannot_send_marketing():
    campaign, _ = sent_campaign(people=1)  # its topic is "newsletter"
    journey = welcome(
        name="Pricing nudge",
        activate=False,
        trigger=Journey.Trigger.LINK,
        trigger_params={"campaign": campaign.pk},
    )
    [problem] = activation_problems(journey)
    assert problem.field == "trigger" and "lawful basis is consent" in problem.message


def test_a_sign_up_through_the_form_starts_the_journey_once_the_address_is_confirmed(
    client, settings, django_capture_on_commit_callbacks
):
    use_outbox(settings)
    news = make_list()
    form = make_form([news])
    welcome(
        name="Form welcome",
        trigger=Journey.Trigger.FORM,
        trigger_params={"form": form.pk},
    )
    with django_capture_on_commit_callbacks(execute=True):
        sign_up(client, form, email="ada@example.com")
    assert not Enrolment.objects.exists()  # anyone could have typed the address
    (confirmation,) = mails_to("ada@example.com")
    with django_capture_on_commit_callbacks(execute=True):
        response = client.post(link_in(confirmation, "/c/"))
    assert response.status_code == 303
    enrolment = Enrolment.objects.get()
    assert enrolment.contact.email == "ada@example.com"


def test_a_form_trigger_needs_a_form_and_its_lists_to_be_of_the_topic():
    other = make_form([make_list("Events", topic="events")], slug="events")
    journey = welcome(
        name="Form welcome",
        activate=False,
        trigger=Journey.Trigger.FORM,
        trigger_params={"form": other.pk},
    )
    assert [p.field for p in activation_problems(journey)] == ["trigger"]
    journey.trigger_params = {"form": 999999}
    assert next(p.field for p in activation_problems(journey)) == "trigger_params.form"
