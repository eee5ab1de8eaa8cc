"""Sending at a local hour in each recipient's time zone (only where the policy lets us hold one),
and follow-ups to the people who did not open or click (people, not machines), skipping anyone
who unsubscribed meanwhile."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
import time_machine
from django.urls import reverse
from django.utils import timezone

from tests.campaigns.delivery_helpers import SmtpSink, transports_for
from tests.campaigns.lifecycle_helpers import make_campaign, make_list, make_sender, subscriber
from tidings.audience.actions import do_unsubscribe_all
from tidings.audience.models import Contact
from tidings.campaigns import lifecycle
from tidings.campaigns.engine import deliver_pending
from tidings.campaigns.events import NewEvent, record_events
from tidings.campaigns.followups import do_create_follow_up
from tidings.campaigns.models import Campaign, Delivery
from tidings.campaigns.queue import release_due
from tidings.campaigns.sendtime import next_local_hour, time_zone_field
from tidings.campaigns.targeting import audience_for
from tidings.policy.commands import EXAMPLE_POLICY

pytestmark = pytest.mark.django_db

NOON = datetime(2026, 3, 2, 12, 0, tzinfo=UTC)  # 07:00 in New York, 21:00 in Tokyo, noon in London


@pytest.fixture
def policy_with_time_zones(tmp_path, settings):
    text = EXAMPLE_POLICY.read_text(encoding="utf-8")
    # The example declares time_zone (category "locale") and lets no purpose collect it.
    text = text.replace(
        'collects = { required = ["name", "email"], optional = ["phone", "company", "job_title"] }',
        'collects = { required = ["name", "email"], optional = ["phone", "company", "job_title", '
        '"time_zone"] }',
    )
    assert '"time_zone"] }' in text
    path = tmp_path / "policy.toml"
    path.write_text(text, encoding="utf-8")
    settings.TIDINGS_POLICY = path
    yield


def start_at(campaign: Campaign, now: datetime) -> None:
    with time_machine.travel(now, tick=False):
        lifecycle.do_schedule(campaign, None, actor=None, confirmed=True)
        lifecycle.do_start(campaign.pk, now=now)


def due_times(campaign) -> dict[str, datetime]:
    return dict(
        Delivery.objects.filter(campaign=campaign).values_list("contact__email", "next_attempt_at")
    )


# --- local hours --------------------------------------------------------------------------------
def test_the_next_local_hour_is_today_while_it_lasts_and_tomorrow_after():
    from zoneinfo import ZoneInfo

    new_york = ZoneInfo("America/New_York")
    assert next_local_hour(9, new_york, NOON) == datetime(2026, 3, 2, 14, 0, tzinfo=UTC)
    assert next_local_hour(7, new_york, NOON) == datetime(2026, 3, 2, 12, 0, tzinfo=UTC)
    assert next_local_hour(6, new_york, NOON) == datetime(2026, 3, 3, 11, 0, tzinfo=UTC)


def test_each_recipient_gets_it_at_nine_in_their_own_time_zone(policy_with_time_zones, settings):
    settings.TIME_ZONE = "Europe/London"
    assert time_zone_field() == "time_zone"
    news = make_list()
    subscriber("Nat York", news, email="nat@example.com", time_zone="America/New_York")
    subscriber("Toki Yo", news, email="toki@example.com", time_zone="Asia/Tokyo")
    # A zone that is not one: refused when collected now, but one stored before that check (or
    # by hand) must still not break the send.
    bogus = subscriber("Bo Gus", news, email="bogus@example.com")
    Contact.objects.filter(pk=bogus.pk).update(attributes={"time_zone": "Mars/Olympus_Mons"})
    subscriber("Lon Don", news, email="london@example.com")
    campaign = make_campaign(news, sender=make_sender(), with_template=True, local_hour=9)
    start_at(campaign, NOON)
    times = due_times(campaign)
    slot = {
        email: timedelta(minutes=5 * (pk % 12))
        for email, pk in Delivery.objects.filter(campaign=campaign).values_list(
            "contact__email", "pk"
        )
    }
    assert (
        times["nat@example.com"]
        == datetime(2026, 3, 2, 14, 0, tzinfo=UTC) + slot["nat@example.com"]
    )
    assert (
        times["toki@example.com"]
        == datetime(2026, 3, 3, 0, 0, tzinfo=UTC) + slot["toki@example.com"]
    )
    # An unknown zone, and none at all: the company's (London, GMT in March).
    for email in ("bogus@example.com", "london@example.com"):
        assert times[email] == datetime(2026, 3, 3, 9, 0, tzinfo=UTC) + slot[email]
    assert set(Delivery.objects.filter(campaign=campaign).values_list("status", flat=True)) == {
        "held"
    }


def test_without_the_policy_field_everyone_gets_the_company_hour(settings):
    settings.TIME_ZONE = "Europe/London"
    assert time_zone_field() is None
    news = make_list()
    subscriber("Nat York", news, email="nat@example.com")
    campaign = make_campaign(news, sender=make_sender(), with_template=True, local_hour=15)
    start_at(campaign, NOON)
    when = due_times(campaign)["nat@example.com"]
    assert datetime(2026, 3, 2, 15, 0, tzinfo=UTC) <= when < datetime(2026, 3, 2, 16, 0, tzinfo=UTC)


def test_held_rows_go_out_when_their_hour_comes(policy_with_time_zones, settings):
    news = make_list()
    subscriber("Nat York", news, email="nat@example.com", time_zone="America/New_York")
    subscriber("Toki Yo", news, email="toki@example.com", time_zone="Asia/Tokyo")
    campaign = make_campaign(news, sender=make_sender(), with_template=True, local_hour=9)
    start_at(campaign, NOON)

    def deliver():  # the worker, with its clock at noon on the day (it releases due rows too)
        with time_machine.travel(NOON, tick=True):
            deliver_pending(max_seconds=10)

    with SmtpSink() as sink:
        settings.TIDINGS_TRANSPORTS = transports_for(sink)
        assert release_due(NOON) == 0
        deliver()
        assert sink.received == []
        assert release_due(datetime(2026, 3, 2, 15, 0, tzinfo=UTC)) == 1  # New York's 09:00
        deliver()
        assert [r.recipient for r in sink.received] == ["nat@example.com"]
        campaign.refresh_from_db()
        assert campaign.status == "sending"  # Tokyo is still waiting
        assert release_due(datetime(2026, 3, 3, 1, 0, tzinfo=UTC)) == 1
        deliver()
        assert sorted(r.recipient for r in sink.received) == ["nat@example.com", "toki@example.com"]
    campaign.refresh_from_db()
    assert campaign.status == "finished"


def test_the_local_hour_is_set_on_the_edit_page(owner_client):
    news = make_list()
    campaign = make_campaign(news, sender=make_sender(), with_template=True)
    page = owner_client.get(reverse("campaigns:edit", args=[campaign.pk]))
    data = {k: v for k, v in page.context["form"].initial.items() if k not in ("lists", "segments")}
    data.update(
        sender=campaign.sender.pk,
        lists=[news.pk],
        layout=campaign.layout.pk,
        local_hour="25",
        archive="",
    )
    refused = owner_client.post(reverse("campaigns:edit", args=[campaign.pk]), data)
    assert "less than or equal to 23" in str(refused.context["form"].errors["local_hour"])
    data["local_hour"] = "9"
    owner_client.post(reverse("campaigns:edit", args=[campaign.pk]), data)
    assert Campaign.objects.get(pk=campaign.pk).local_hour == 9


# --- follow-ups ---------------------------------------------------------------------------------
def sent_original(news, people):
    original = make_campaign(
        news, sender=make_sender(), with_template=True, status="finished", started_at=NOON
    )
    Delivery.objects.bulk_create(
        [Delivery(campaign=original, contact=p, status="sent", sent_at=NOON) for p in people]
    )
    return original


def engage(original, person, kind, *, machine=False):
    delivery = Delivery.objects.get(campaign=original, contact=person)
    record_events(
        [
            NewEvent(
                delivery.pk,
                kind,
                NOON + timedelta(hours=1),
                0 if kind == "click" else None,
                machine,
            )
        ]
    )


def test_a_follow_up_goes_to_people_who_did_not_open_never_counting_machines():
    news = make_list()
    opened, proxied, clicked, silent, left = (
        subscriber(name, news)
        for name in ("Ann Opened", "Pat Proxy", "Cal Clicked", "Sid Silent", "Lee Left")
    )
    original = sent_original(news, [opened, proxied, clicked, silent, left])
    engage(original, opened, "open")
    engage(original, proxied, "open", machine=True)  # Apple's proxy fetched the pixel
    engage(original, clicked, "click")  # images off: a click without an open
    do_unsubscribe_all(left, source="unsubscribe")
    not_opened = do_create_follow_up(
        original, audience="not_opened", days=3, subject="In case you missed it", actor=None
    )
    assert set(audience_for(not_opened)) == {proxied.pk, silent.pk}
    not_clicked = do_create_follow_up(
        original, audience="not_clicked", days=3, subject="Did you see?", actor=None
    )
    assert set(audience_for(not_clicked)) == {opened.pk, proxied.pk, silent.pk}
    assert not_opened.follow_up_of == original and not_opened.subject == "In case you missed it"


def test_a_clone_of_a_follow_up_keeps_its_audience():
    """Cloning "…: to people who did not open" made a campaign to the whole list: the opener
    got the "in case you missed it" mail too."""
    news = make_list()
    opened, silent = subscriber("Ann Opened", news), subscriber("Sid Silent", news)
    original = sent_original(news, [opened, silent])
    engage(original, opened, "open")
    follow_up = do_create_follow_up(
        original, audience="not_opened", days=3, subject="In case you missed it", actor=None
    )
    copy = lifecycle.do_clone(follow_up, actor=None)
    assert copy.follow_up_of == original and copy.follow_up_audience == "not_opened"
    assert copy.follow_up_days == 3
    assert set(audience_for(copy)) == {silent.pk}


def test_a_follow_up_is_drafted_from_the_page_with_its_time_filled_in(owner_client):
    news = make_list()
    reader = subscriber("Sid Silent", news)
    original = sent_original(news, [reader])
    response = owner_client.post(
        reverse("campaigns:follow-up", args=[original.pk]),
        {"audience": "not_opened", "days": "3", "subject": "A second look"},
    )
    follow_up = Campaign.objects.get(follow_up_of=original)
    assert response.url == reverse("campaigns:detail", args=[follow_up.pk])
    assert follow_up.status == "draft" and follow_up.follow_up_days == 3
    page = owner_client.get(reverse("campaigns:schedule", args=[follow_up.pk]))
    assert page.context["form"].initial["when"] == timezone.localtime(NOON + timedelta(days=3))


def test_a_follow_up_of_a_campaign_not_sent_is_refused():
    news = make_list()
    draft = make_campaign(news, sender=make_sender(), with_template=True)
    with pytest.raises(lifecycle.CampaignNotReady, match="not been sent yet"):
        do_create_follow_up(draft, audience="not_opened", days=2, subject="x", actor=None)
