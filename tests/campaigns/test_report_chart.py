"""The report's over-time chart in the first hours: five-minute steps, not one hourly dot."""

from datetime import UTC, datetime, timedelta

import pytest

from tidings.campaigns.events import record_delivery_event
from tidings.campaigns.models import Event
from tidings.campaigns.reports import campaign_report

from .event_helpers import sent_campaign

pytestmark = pytest.mark.django_db


def test_the_first_hour_is_shown_five_minutes_at_a_time():
    campaign, (a, b, c) = sent_campaign(people=3, sent_ago=timedelta(days=2))
    start = datetime(2026, 11, 1, 8, tzinfo=UTC)
    record_delivery_event(a.pk, "open", at=start + timedelta(minutes=2))
    record_delivery_event(b.pk, "open", at=start + timedelta(minutes=7))
    record_delivery_event(b.pk, "click", at=start + timedelta(minutes=8), link=0)
    record_delivery_event(c.pk, "open", at=start + timedelta(minutes=31))
    report = campaign_report(campaign)
    assert report.step == "minute"
    assert [p.at for p in report.timeline][:2] == [start, start + timedelta(minutes=5)]
    assert [p.opens for p in report.timeline] == [1, 1, 0, 0, 0, 0, 1]
    assert [p.clicks for p in report.timeline] == [0, 1, 0, 0, 0, 0, 0]
    assert report.step_label == "5 minutes at a time"
    assert str(report.chart()).count("<circle") >= 7 or "points=" in str(report.chart())


def test_without_the_events_the_hourly_counters_still_draw_the_chart():
    campaign, (a, b, _) = sent_campaign(people=3, sent_ago=timedelta(days=2))
    start = datetime(2026, 11, 1, 8, tzinfo=UTC)
    record_delivery_event(a.pk, "open", at=start + timedelta(minutes=2))
    record_delivery_event(b.pk, "open", at=start + timedelta(minutes=50))
    Event.objects.all().delete()  # as the retention sweep leaves it: counters only
    report = campaign_report(campaign)
    assert report.step == "hour"
    assert [p.opens for p in report.timeline] == [2]


def test_the_report_page_says_how_the_table_steps(client, owner):
    campaign, (a, _, _) = sent_campaign(people=3, sent_ago=timedelta(days=2))
    record_delivery_event(a.pk, "open", at=datetime(2026, 11, 1, 8, 3, tzinfo=UTC))
    client.force_login(owner)
    page = client.get(f"/campaigns/{campaign.pk}/report/").text
    assert "The numbers, 5 minutes at a time" in page
