"""The campaign report, its CSV, and the dashboard's campaign figures."""

from __future__ import annotations

import csv
import io
from datetime import UTC, datetime, timedelta

import pytest
from django.contrib.auth import get_user_model
from django.utils import timezone

from tests.operators import make_operator
from tests.pages import other_scripts
from tidings.campaigns.events import NewEvent, record_delivery_event, record_events
from tidings.campaigns.models import Campaign, Delivery, TrackedLink
from tidings.campaigns.reports import campaign_report, level, svg_line_chart

from .event_helpers import sent_campaign

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def _empty_cache():
    # Finished campaigns' counts are cached; campaign ids repeat from test to test.
    from django.core.cache import cache

    cache.clear()


@pytest.fixture
def analyst_client(client):
    client.force_login(make_operator("ana", "analyst"))
    return client


@pytest.fixture
def mailed():
    """A finished campaign to 12 people: 10 at big.example, 2 at their own domains."""
    campaign, deliveries = sent_campaign(people=10, domain="big.example")
    _, more = sent_campaign(people=2, domain="ada-lovelace.example")
    Delivery.objects.filter(pk__in=[d.pk for d in more]).update(campaign=campaign)
    for d in more:
        d.campaign = campaign
    deliveries += more
    TrackedLink.objects.create(campaign=campaign, index=0, url="https://example.net/launch")
    TrackedLink.objects.create(campaign=campaign, index=1, url="https://example.net/manual")
    at = timezone.now() - timedelta(minutes=30)
    events = []
    for d in deliveries[:4]:  # four people open, twice each
        events += [NewEvent(d.pk, "open", at), NewEvent(d.pk, "open", at)]
    for d in deliveries[:6]:  # six messages prefetched by Apple's proxy
        events.append(NewEvent(d.pk, "open", at, machine=True))
    events += [
        NewEvent(deliveries[0].pk, "click", at, link=0),
        NewEvent(deliveries[0].pk, "click", at, link=1),
        NewEvent(deliveries[1].pk, "click", at, link=0),
        NewEvent(deliveries[2].pk, "click", at, link=0, machine=True),
    ]
    record_events(events)
    record_delivery_event(deliveries[7].pk, "bounce_hard")
    record_delivery_event(deliveries[8].pk, "bounce_soft")
    record_delivery_event(deliveries[9].pk, "complaint")
    record_delivery_event(deliveries[9].pk, "unsubscribe")
    Delivery.objects.filter(pk=deliveries[11].pk).update(status="failed")
    return campaign, deliveries


def test_the_report_counts_people_once_and_machines_apart(mailed):
    campaign, _ = mailed
    report = campaign_report(campaign)
    assert (report.recipients, report.sent, report.failed) == (12, 11, 1)
    assert (report.opens.people, report.opens.total) == (4, 8)
    assert (report.machine_opens.people, report.machine_opens.total) == (6, 6)
    assert (report.clicks.people, report.clicks.total) == (2, 3)
    assert report.machine_clicks.people == 1
    assert [(link.url, link.clicks.people, link.clicks.total) for link in report.links] == [
        ("https://example.net/launch", 2, 2),
        ("https://example.net/manual", 1, 1),
    ]
    assert (report.bounced_hard.people, report.bounced_soft.people) == (1, 1)
    assert (report.complaints.people, report.unsubscribes.people) == (1, 1)
    assert report.open_rate == pytest.approx(4 / 11)


def test_domains_are_aggregates_and_small_ones_are_folded_together(mailed):
    campaign, _ = mailed
    assert campaign_report(campaign).domains == [("big.example", 10), ("", 2)]


def test_domains_are_counted_only_once_the_campaign_has_finished(mailed):
    campaign, _ = mailed
    Campaign.objects.filter(pk=campaign.pk).update(status="sending")
    campaign.refresh_from_db()
    assert campaign_report(campaign).domains is None


def test_the_report_page_shows_the_numbers_a_chart_and_no_person(analyst_client, mailed):
    campaign, deliveries = mailed
    response = analyst_client.get(f"/campaigns/{campaign.pk}/report/")
    assert response.status_code == 200
    html = response.content.decode()
    assert '<svg class="chart"' in html and not other_scripts(html)
    assert "https://example.net/launch" in html
    assert "big.example" in html
    assert "ada-lovelace.example" not in html  # a domain of fewer than 5: "other domains"
    for d in deliveries:
        assert d.contact.email not in html


def test_the_report_reads_counters_in_a_few_queries(
    analyst_client, mailed, django_assert_max_num_queries
):
    campaign, _ = mailed
    analyst_client.get(f"/campaigns/{campaign.pk}/report/")  # counts the domains once
    with django_assert_max_num_queries(12):
        analyst_client.get(f"/campaigns/{campaign.pk}/report/")


def test_the_report_downloads_as_csv(analyst_client, mailed):
    campaign, deliveries = mailed
    response = analyst_client.get(f"/campaigns/{campaign.pk}/report.csv")
    assert response.status_code == 200
    assert response["Content-Type"].startswith("text/csv")
    text = b"".join(response.streaming_content).decode("utf-8-sig")
    rows = list(csv.reader(io.StringIO(text)))
    assert rows[0] == ["section", "item", "people", "total"]
    assert ["events", "opens", "4", "8"] in rows
    assert ["link", "https://example.net/launch", "2", "2"] in rows
    assert ["domain", "other domains", "2", ""] in rows
    assert not any(d.contact.email in text for d in deliveries)


@pytest.mark.parametrize("path", ["/campaigns/{pk}/report/", "/campaigns/{pk}/report.csv"])
def test_only_operators_who_may_see_reports_get_them(client, mailed, path):
    campaign, _ = mailed
    url = path.format(pk=campaign.pk)
    assert client.get(url).status_code == 302  # to sign in
    outsider = get_user_model().objects.create_user("staffer", "s@example.co.uk", "x" * 12)
    outsider.is_staff = True
    outsider.save()
    client.force_login(outsider)  # staff, but no role
    assert client.get(url).status_code == 403
    client.force_login(make_operator("ed", "editor"))
    assert client.get(url).status_code == 200


def test_an_unknown_campaigns_report_is_404(analyst_client):
    assert analyst_client.get("/campaigns/999999/report/").status_code == 404


def test_over_time_is_hourly_for_short_spans_and_daily_for_long_ones():
    campaign, (a, b) = sent_campaign(people=2, sent_ago=timedelta(days=20))
    start = datetime(2026, 11, 1, 8, tzinfo=UTC)
    record_delivery_event(a.pk, "open", at=start)
    record_delivery_event(b.pk, "open", at=start + timedelta(hours=3))
    report = campaign_report(campaign)
    assert report.step == "hour"
    assert [p.opens for p in report.timeline] == [1, 0, 0, 1]
    record_delivery_event(b.pk, "click", at=start + timedelta(days=5), link=0)
    report = campaign_report(campaign)
    assert report.step == "day"
    assert len(report.timeline) == 6
    assert sum(p.opens for p in report.timeline) == 2
    assert sum(p.clicks for p in report.timeline) == 1


def test_the_chart_escapes_its_labels():
    svg = svg_line_chart(["<b>"], [("a & b", [1], "series-opens")], title="T <x>")
    assert "<b>" not in svg and "&lt;b&gt;" in svg and "a &amp; b" in svg


@pytest.mark.parametrize(
    "rate, expected",
    [(None, "none"), (0.0, "ok"), (0.001, "ok"), (0.0011, "warn"), (0.003, "alarm")],
)
def test_complaint_rates_warn_above_a_tenth_of_a_percent_and_alarm_at_three_tenths(rate, expected):
    assert level(rate, 0.001, 0.003) == expected


# --- the dashboard ---------------------------------------------------------------------------
def test_the_dashboard_shows_health_growth_and_recent_campaigns_to_analysts(analyst_client, mailed):
    campaign, _ = mailed
    Campaign.objects.filter(pk=campaign.pk).update(started_at=timezone.now() - timedelta(days=1))
    html = analyst_client.get("/").content.decode()
    assert "Deliverability, last 30 days" in html
    assert "List growth" in html and '<svg class="chart"' in html
    assert campaign.name in html
    # 1 complaint in 11 sent: far above 0.3%.
    assert "health-alarm" in html and "Alarm: at or above 0.3%" in html


def test_the_dashboard_leaves_campaign_figures_out_for_operators_without_reports(client):
    outsider = get_user_model().objects.create_user("staffer", "s@example.co.uk", "x" * 12)
    outsider.is_staff = True
    outsider.save()
    client.force_login(outsider)
    response = client.get("/")
    assert response.status_code == 200
    assert "Deliverability" not in response.content.decode()


def test_the_periodic_job_counts_finished_campaigns_domains_before_anyone_looks(mailed):
    from tidings.campaigns.models import RecipientDomain
    from tidings.campaigns.reports import count_finished_domains

    campaign, _ = mailed
    assert count_finished_domains() == 1
    assert set(
        RecipientDomain.objects.filter(campaign=campaign).values_list("domain", "recipients")
    ) == {
        ("big.example", 10),
        ("", 2),
    }
    assert count_finished_domains() == 0  # once
