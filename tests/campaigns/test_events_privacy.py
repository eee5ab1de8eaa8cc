"""Events are personal data: in the access package, removed by erasure and by the retention
sweep, while the campaign's anonymous counters stay."""

from __future__ import annotations

from datetime import timedelta

import pytest

from tidings.audience.sources import sources
from tidings.campaigns.events import record_delivery_event
from tidings.campaigns.models import Delivery, Event, EventCounter, TrackedLink
from tidings.rights.retention import run_retention

from .event_helpers import sent_campaign

pytestmark = pytest.mark.django_db


def source():
    (found,) = [s for s in sources() if s.name == "email_events"]
    return found


def opens(campaign) -> tuple[int, int]:
    row = EventCounter.objects.get(campaign=campaign, kind="open", machine=False, link=-1, bucket=0)
    return row.total, row.people


def test_events_are_registered_as_personal_data_with_their_retention_rule():
    assert source().record_kind == "email_event"
    assert Event in source().models


def test_the_access_package_lists_the_persons_events_and_nobody_elses():
    campaign, (ada, bob) = sent_campaign(people=2)
    TrackedLink.objects.create(campaign=campaign, index=0, url="https://example.net/launch")
    record_delivery_event(ada.pk, "open")
    record_delivery_event(ada.pk, "click", link=0, machine=True)
    record_delivery_event(bob.pk, "open")
    rows = source().export(ada.contact)
    assert [(r["campaign"], r["event"], r["link"]) for r in rows] == [
        (campaign.name, "open", ""),
        (campaign.name, "click", "https://example.net/launch"),
    ]
    assert rows[1]["by"].startswith("a machine")


def test_erasure_removes_the_persons_events_and_the_counters_stay():
    campaign, (ada, bob) = sent_campaign(people=2)
    record_delivery_event(ada.pk, "open")
    record_delivery_event(bob.pk, "open")
    assert source().erase(ada.contact) == 1
    assert source().erase(ada.contact) == 0  # idempotent
    assert list(Event.objects.values_list("delivery_id", flat=True)) == [bob.pk]
    assert opens(campaign) == (2, 2)


def test_the_retention_sweep_removes_events_25_months_after_the_mail_was_sent():
    old, old_deliveries = sent_campaign(people=3, sent_ago=timedelta(days=31 * 26))
    _, (fresh,) = sent_campaign(people=1, sent_ago=timedelta(days=30))
    for d in old_deliveries:
        record_delivery_event(d.pk, "open", at=d.sent_at + timedelta(hours=1))
    record_delivery_event(fresh.pk, "open")
    run = run_retention(batch_size=2)
    assert run.counts["email_event"] == 3
    assert list(Event.objects.values_list("delivery_id", flat=True)) == [fresh.pk]
    assert run.batches >= 2  # in batches, not one long transaction
    assert opens(old) == (3, 3)  # the anonymous totals stay
    assert Delivery.objects.filter(campaign=old).count() == 3
