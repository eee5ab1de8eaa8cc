"""Events and the counters reports read: record_delivery_event and batch writes."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from django.db import transaction

from tidings.campaigns.events import NewEvent, record_delivery_event, record_events
from tidings.campaigns.models import Delivery, Event, EventCounter

from .event_helpers import sent_campaign

pytestmark = pytest.mark.django_db


def counter(campaign, kind, *, machine=False, link=-1):
    row = EventCounter.objects.filter(
        campaign=campaign, kind=kind, machine=machine, link=link, bucket=0
    ).first()
    return (row.total, row.people) if row else (0, 0)


def test_a_bounce_is_recorded_with_its_campaign_and_counted():
    campaign, (delivery, *_) = sent_campaign()
    record_delivery_event(delivery.pk, "bounce_hard")
    event = Event.objects.get()
    assert (event.delivery, event.campaign, event.kind, event.machine) == (
        delivery,
        campaign,
        "bounce_hard",
        False,
    )
    assert counter(campaign, "bounce_hard") == (1, 1)


def test_recording_joins_the_callers_transaction():
    campaign, (delivery, *_) = sent_campaign()
    with pytest.raises(RuntimeError), transaction.atomic():
        record_delivery_event(delivery.pk, "complaint")
        raise RuntimeError("the caller fails after recording")
    assert not Event.objects.exists()
    assert counter(campaign, "complaint") == (0, 0)


def test_an_unknown_kind_is_refused():
    _, (delivery, *_) = sent_campaign()
    with pytest.raises(ValueError, match="unknown event kind"):
        record_delivery_event(delivery.pk, "opened")


def test_an_unknown_delivery_is_refused():
    with pytest.raises(Delivery.DoesNotExist):
        record_delivery_event(999_999, "bounce_soft")


def test_a_person_opening_many_times_counts_once_as_a_person():
    campaign, (first, second, _) = sent_campaign()
    for _ in range(3):
        record_delivery_event(first.pk, "open")
    record_events([NewEvent(first.pk, "open", datetime.now(UTC))] * 2)
    record_delivery_event(second.pk, "open")
    assert counter(campaign, "open") == (6, 2)


def test_proxy_opens_are_counted_apart_from_people():
    campaign, (first, *_) = sent_campaign()
    record_delivery_event(first.pk, "open", machine=True)
    record_delivery_event(first.pk, "open", machine=True)
    record_delivery_event(first.pk, "open")
    assert counter(campaign, "open") == (1, 1)
    assert counter(campaign, "open", machine=True) == (2, 1)


def test_clicks_are_counted_per_link_and_per_person():
    campaign, (first, second, _) = sent_campaign()
    now = datetime.now(UTC)
    record_events(
        [
            NewEvent(first.pk, "click", now, link=0),
            NewEvent(first.pk, "click", now, link=0),
            NewEvent(first.pk, "click", now, link=1),
            NewEvent(second.pk, "click", now, link=1),
        ]
    )
    record_delivery_event(second.pk, "click", link=1)
    assert counter(campaign, "click") == (5, 2)
    assert counter(campaign, "click", link=0) == (2, 1)
    assert counter(campaign, "click", link=1) == (3, 2)


def test_events_are_counted_per_hour_for_the_chart():
    campaign, (first, second, _) = sent_campaign()
    at = datetime(2026, 11, 2, 9, 30, tzinfo=UTC)
    record_delivery_event(first.pk, "open", at=at)
    record_delivery_event(second.pk, "open", at=at.replace(minute=59))
    record_delivery_event(second.pk, "open", at=at.replace(hour=10))
    hours = dict(
        EventCounter.objects.filter(campaign=campaign, kind="open")
        .exclude(bucket=0)
        .values_list("bucket", "total")
    )
    nine = int(at.replace(minute=0).timestamp() // 3600)
    assert hours == {nine: 2, nine + 1: 1}


def test_events_of_a_deleted_delivery_are_skipped_in_a_batch():
    campaign, (first, *_) = sent_campaign()
    now = datetime.now(UTC)
    written = record_events([NewEvent(first.pk, "open", now), NewEvent(999_999, "open", now)])
    assert written == 1
    assert counter(campaign, "open") == (1, 1)


def test_an_unsubscribe_from_a_campaigns_link_counts_once_in_its_report(client):
    from tidings.audience.actions import do_subscribe
    from tidings.audience.tokens import make_unsubscribe_token

    from .delivery_helpers import make_list

    news = make_list()
    campaign, (delivery, other) = sent_campaign(people=2)
    do_subscribe(delivery.contact, news, source="form", wording_text="Yes", confirmed=True)
    token = make_unsubscribe_token(delivery.contact_id, news.pk, delivery.pk)
    for _ in range(2):
        response = client.post(f"/u/{token}", {"List-Unsubscribe": "One-Click"})
        assert response.status_code == 200
    assert counter(campaign, "unsubscribe") == (1, 1)
    # A link naming someone else's delivery counts nothing.
    do_subscribe(other.contact, news, source="form", wording_text="Yes", confirmed=True)
    forged = make_unsubscribe_token(other.contact_id, news.pk, delivery.pk)
    client.post(f"/u/{forged}", {"List-Unsubscribe": "One-Click"})
    assert counter(campaign, "unsubscribe") == (1, 1)
