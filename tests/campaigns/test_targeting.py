"""Who a campaign goes to: lists and segments, only with consent to its topic, each person once."""

from datetime import timedelta

import pytest
from django.utils import timezone

from tests.campaigns.lifecycle_helpers import (
    make_campaign,
    make_list,
    person,
    queue,
    subscriber,
)
from tidings.audience.actions import do_subscribe, do_unsubscribe, do_unsubscribe_all
from tidings.audience.models import ConsentEvent, Segment, SuppressedDomain
from tidings.audience.operator import do_add_to_list
from tidings.audience.suppression import do_suppress
from tidings.campaigns.models import Delivery
from tidings.campaigns.targeting import (
    audience_count,
    audience_for,
    skip_suppressed_deliveries,
)

pytestmark = pytest.mark.django_db


@pytest.fixture
def news():
    return make_list("Product news", "product news")


@pytest.fixture
def events():
    return make_list("Events", "events and webinars")


def names(campaign) -> list[str]:
    from tidings.audience.models import Contact

    ids = list(audience_for(campaign))
    assert len(ids) == len(set(ids)), "a contact appears more than once"
    return sorted(Contact.objects.filter(pk__in=ids).values_list("name", flat=True))


def test_a_list_campaign_goes_to_the_lists_confirmed_subscribers(news):
    subscriber("Ada Lovelace", news)
    pending = person("Pending Person")
    do_subscribe(pending, news, source="form", wording_text="Yes", confirmed=False)
    person("Not Subscribed")
    assert names(make_campaign(news)) == ["Ada Lovelace"]


def test_lists_and_segments_are_joined_and_each_person_counted_once(news):
    second = make_list("Product news (EU)", "product news")
    subscriber("Ada Lovelace", news, second, company="Analytical")
    subscriber("Grace Hopper", second, company="Navy")
    subscriber("Alan Turing", news, company="Bletchley")
    engineers = Segment.objects.create(name="Navy", query='company = "Navy"')
    campaign = make_campaign(news, segments=[engineers])
    assert names(campaign) == ["Ada Lovelace", "Alan Turing", "Grace Hopper"]
    assert audience_count(campaign) == 3


def test_a_segment_match_alone_is_not_consent(news, events):
    subscriber("Ada Lovelace", news)
    subscriber("Grace Hopper", events)  # agreed to events, not product news
    person("Alan Turing")  # agreed to nothing
    everyone = Segment.objects.create(name="Everyone", query='email ~ "@"')
    assert names(make_campaign(segments=[everyone])) == ["Ada Lovelace"]


def test_a_list_of_another_topic_does_not_give_consent_to_this_topic(news, events):
    subscriber("Ada Lovelace", news, events)
    subscriber("Grace Hopper", events)
    assert names(make_campaign(events, topic="product news")) == ["Ada Lovelace"]


def test_people_who_left_the_list_are_not_mailed(news):
    ada = subscriber("Ada Lovelace", news)
    subscriber("Grace Hopper", news)
    do_unsubscribe(ada, news, source="unsubscribe")
    assert names(make_campaign(news)) == ["Grace Hopper"]


def test_closed_lists_are_neither_a_target_nor_consent(news):
    old = make_list("Old news", "product news", closed_at=timezone.now())
    subscriber("Ada Lovelace", old)
    subscriber("Grace Hopper", news, old)
    everyone = Segment.objects.create(name="Everyone", query='email ~ "@"')
    assert names(make_campaign(old)) == []
    assert names(make_campaign(old, news)) == ["Grace Hopper"]
    assert names(make_campaign(segments=[everyone])) == ["Grace Hopper"]


def test_unsubscribing_from_everything_removes_a_person(news):
    ada = subscriber("Ada Lovelace", news)
    subscriber("Grace Hopper", news)
    do_unsubscribe_all(ada, source="unsubscribe")
    assert names(make_campaign(news)) == ["Grace Hopper"]


def test_a_withdrawal_of_email_marketing_overrides_older_list_consent_until_granted_again(news):
    ada = subscriber("Ada Lovelace", news)
    campaign = make_campaign(news)
    later = timezone.now() + timedelta(seconds=1)
    marketing = {"purpose": "marketing", "channel": "email", "source": "preferences"}
    ConsentEvent.objects.create(contact=ada, action="withdrawn", at=later, **marketing)
    assert names(campaign) == []
    ConsentEvent.objects.create(
        contact=ada, action="granted", at=later + timedelta(seconds=1), **marketing
    )
    assert names(campaign) == ["Ada Lovelace"]


def test_list_consent_given_after_unsubscribing_from_everything_counts(news, owner):
    ada = subscriber("Ada Lovelace", news)
    do_unsubscribe_all(ada, source="unsubscribe")
    # Later an operator records that she asked to join again (consent given by phone, say).
    do_add_to_list([ada.pk], news, consent_source="asked us by phone", actor=owner)
    assert names(make_campaign(news)) == ["Ada Lovelace"]


def test_suppressed_addresses_and_domains_are_skipped_when_the_queue_is_made(news):
    ada = subscriber("Ada Lovelace", news)
    grace = subscriber("Grace Hopper", news, email="grace@blocked.example")
    alan = subscriber("Alan Turing", news, email="alan@mail.blocked.example")
    edsger = subscriber("Edsger Dijkstra", news, email="edsger@notblocked.example")
    barbara = subscriber("Barbara Liskov", news)
    do_suppress(ada.email, "complaint")
    SuppressedDomain.objects.create(domain="blocked.example")
    campaign = make_campaign(news, status="sending")
    # An HMAC cannot be computed in SQL: the audience still holds them all ...
    assert len(names(campaign)) == 5
    queue(campaign, [ada, grace, alan, edsger, barbara])
    # ... and their queued rows are skipped, in batches, before any worker can claim them.
    assert skip_suppressed_deliveries(campaign, batch=2) == 3
    rows = dict(Delivery.objects.values_list("contact_id", "status"))
    assert rows == {
        ada.pk: "skipped",
        grace.pk: "skipped",
        alan.pk: "skipped",
        edsger.pk: "queued",
        barbara.pk: "queued",
    }
    errors = set(Delivery.objects.filter(status="skipped").values_list("error", flat=True))
    assert errors == {"suppressed"}


def test_a_campaign_with_no_list_or_segment_goes_to_nobody(news):
    subscriber("Ada Lovelace", news)
    campaign = make_campaign()
    assert names(campaign) == []
    assert audience_count(campaign) == 0


def test_the_audience_is_one_query_and_the_count_one_more(news, django_assert_max_num_queries):
    for i in range(5):
        subscriber(f"Person {i}", news)
    segment = Segment.objects.create(name="Persons", query='name ^= "person"')
    campaign = make_campaign(news, segments=[segment])
    # lists, segments (each compiled: one look-up of list names), then the COUNT itself
    with django_assert_max_num_queries(4):
        assert audience_count(campaign) == 5
