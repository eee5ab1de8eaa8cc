"""The dashboard's audience figures: exact for a small audience; for a large one, a snapshot
the worker refreshes every minute, recounted by the page itself once five minutes old."""

from __future__ import annotations

from datetime import timedelta

import pytest
import time_machine
from django.utils import timezone

from tests.audience.import_helpers import do_import, write
from tests.campaigns.lifecycle_helpers import make_list, person, subscriber
from tidings.audience import stats
from tidings.audience.actions import do_subscribe, do_unsubscribe
from tidings.audience.tasks import take_audience_snapshot
from tidings.lib.periodic import REGISTRY

pytestmark = pytest.mark.django_db


def cards(client) -> dict[str, int]:
    audience = client.get("/").context["audience"]
    return {k: audience[k] for k in ("contacts", "confirmed", "pending", "left")}


def today_in_growth_chart(client) -> tuple[int, int]:
    day, joined, left = client.get("/").context["reports"].growth[-1]
    assert day == timezone.localdate()
    return joined, left


@pytest.fixture
def news():
    return make_list()


@pytest.fixture
def large(monkeypatch):
    """An audience counted as large: the dashboard reads the snapshot."""
    monkeypatch.setattr(stats, "LIVE_BELOW", 2)


def test_a_small_audience_is_counted_on_every_view(owner_client, news):
    subscriber("Ada Lovelace", news)
    assert cards(owner_client) == {"contacts": 1, "confirmed": 1, "pending": 0, "left": 0}
    grace = subscriber("Grace Hopper", news)
    do_unsubscribe(grace, news, source="unsubscribe")
    assert cards(owner_client) == {"contacts": 2, "confirmed": 1, "pending": 0, "left": 1}
    assert owner_client.get("/").context["audience"]["live"] is True


def test_a_large_audience_shows_the_snapshot_until_the_worker_counts_again(
    owner_client, news, large
):
    ada = subscriber("Ada Lovelace", news)
    subscriber("Grace Hopper", news)
    take_audience_snapshot.call()
    assert cards(owner_client) == {"contacts": 2, "confirmed": 2, "pending": 0, "left": 0}

    linus = person("Linus Torvalds")
    do_subscribe(linus, news, source="form", wording_text="Yes", confirmed=False)
    do_unsubscribe(ada, news, source="unsubscribe")
    page = owner_client.get("/")
    assert page.context["audience"]["live"] is False
    assert "a large audience is recounted every minute" in page.content.decode()
    assert cards(owner_client) == {"contacts": 2, "confirmed": 2, "pending": 0, "left": 0}

    assert today_in_growth_chart(owner_client) == (2, 0)  # subscribed, unsubscribed today

    take_audience_snapshot.call()  # the periodic job's next run
    assert cards(owner_client) == {"contacts": 3, "confirmed": 1, "pending": 1, "left": 1}
    assert today_in_growth_chart(owner_client) == (2, 1)  # Ada joined and left today


def test_an_import_shows_once_the_snapshot_is_retaken(owner_client, news, large, tmp_path):
    subscriber("Ada Lovelace", news)
    subscriber("Grace Hopper", news)
    take_audience_snapshot.call()
    do_import(write(tmp_path, "email,name\nkatherine@example.com,Katherine Johnson\n"), news)
    assert cards(owner_client)["contacts"] == 2
    take_audience_snapshot.call()
    assert cards(owner_client) == {"contacts": 3, "confirmed": 3, "pending": 0, "left": 0}


def test_without_a_worker_the_page_recounts_a_snapshot_older_than_five_minutes(
    owner_client, news, large
):
    subscriber("Ada Lovelace", news)
    subscriber("Grace Hopper", news)
    take_audience_snapshot.call()
    subscriber("Linus Torvalds", news)
    with time_machine.travel(timezone.now() + timedelta(minutes=4)):
        assert cards(owner_client)["contacts"] == 2
    with time_machine.travel(timezone.now() + timedelta(minutes=6)):
        assert cards(owner_client)["contacts"] == 3
        assert owner_client.get("/").context["audience"]["live"] is False  # saved: read again


def test_the_worker_retakes_the_snapshot_every_minute():
    job = REGISTRY["audience.snapshot"]
    assert job.every == timedelta(minutes=1)
    assert job.task == "tidings.audience.tasks.take_audience_snapshot"
