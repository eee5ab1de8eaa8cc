"""The public archive and its RSS feed: only sent campaigns chosen for it, and nobody's data."""

from datetime import timedelta
from xml.etree import ElementTree

import pytest
from django.core.cache import cache
from django.test import Client
from django.urls import reverse
from django.utils import timezone

from tests.campaigns.lifecycle_helpers import make_campaign, make_list, queue, subscriber
from tidings.campaigns.samples import SAMPLE_CONTACT

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def _no_cached_copies():
    cache.clear()
    yield
    cache.clear()


@pytest.fixture
def news():
    return make_list("Product news", "product news")


@pytest.fixture
def recipients(news):
    return [
        subscriber("Ada Lovelace", news, email="ada.lovelace@example.org"),
        subscriber("Grace Hopper", news, email="grace.hopper@example.org"),
    ]


def sent(news, recipients, *, subject: str, archive: bool = True, days_ago: int = 1, **fields):
    """A campaign that went to the recipients (rows marked sent)."""
    finished = timezone.now() - timedelta(days=days_ago)
    campaign = make_campaign(
        news,
        status="finished",
        subject=subject,
        archive=archive,
        started_at=finished - timedelta(minutes=5),
        finished_at=finished,
        with_template=True,
        **fields,
    )
    queue(campaign, recipients, status="sent")
    return campaign


def assert_nobodys_data(text: str, recipients) -> None:
    for contact in recipients:
        assert contact.email not in text
        assert contact.name not in text
        assert contact.name.split()[0] not in text


def test_the_archive_lists_only_finished_campaigns_chosen_for_it_newest_first(news, recipients):
    older = sent(news, recipients, subject="June news", days_ago=30)
    newer = sent(news, recipients, subject="July news", days_ago=1)
    sent(news, recipients, subject="Private offer", archive=False)
    make_campaign(news, status="sending", subject="Still sending", archive=True, with_template=True)
    make_campaign(news, status="cancelled", subject="Cancelled one", archive=True)
    response = Client().get(reverse("archive:index"))
    assert response.status_code == 200
    assert [c.campaign_id for c in response.context["copies"]] == [newer.pk, older.pk]
    page = response.content.decode()
    for hidden in ("Private offer", "Still sending", "Cancelled one"):
        assert hidden not in page
    assert reverse("archive:feed") in page
    assert_nobodys_data(page, recipients)


def test_an_archived_campaign_is_shown_as_the_sample_person_never_a_recipient(news, recipients):
    campaign = sent(
        news,
        recipients,
        subject="July news",
        body="Dear {{ contact.name }} ({{ contact.email }}), here is the news.",
    )
    response = Client().get(reverse("archive:campaign", args=[campaign.pk]))
    assert response.status_code == 200
    page = response.content.decode()
    assert 'sandbox=""' in page
    assert_nobodys_data(page, recipients)
    assert f"Dear {SAMPLE_CONTACT['name']} ({SAMPLE_CONTACT['email']})" in page


@pytest.mark.parametrize(
    "fields",
    [{"archive": False}, {"status": "sending"}, {"status": "cancelled"}, {"status": "draft"}],
)
def test_campaigns_not_in_the_archive_are_not_found(news, fields):
    values = {"status": "finished", "archive": True, "finished_at": timezone.now(), **fields}
    campaign = make_campaign(news, with_template=True, **values)
    assert Client().get(reverse("archive:campaign", args=[campaign.pk])).status_code == 404


def test_the_feed_is_rss_2_of_the_archived_campaigns_only(news, recipients):
    shown = sent(news, recipients, subject="July news", preheader="All about July")
    sent(news, recipients, subject="Private offer", archive=False)
    response = Client().get(reverse("archive:feed"))
    assert response.status_code == 200
    assert response["Content-Type"].startswith("application/rss+xml")
    body = response.content.decode()
    root = ElementTree.fromstring(response.content)  # noqa: S314 - our own feed
    assert root.tag == "rss" and root.get("version") == "2.0"
    items = root.findall("./channel/item")
    assert [i.findtext("title") for i in items] == ["July news"]
    assert items[0].findtext("link").endswith(reverse("archive:campaign", args=[shown.pk]))
    assert items[0].findtext("description") == "All about July"
    assert items[0].findtext("pubDate")
    assert "Private offer" not in body
    assert_nobodys_data(body, recipients)


def test_a_personalised_preheader_is_shown_for_the_sample_person_not_as_template_code(
    news, recipients
):
    sent(news, recipients, subject="July news", preheader="Hi {{ contact.first_name }}!")
    expected = f"Hi {SAMPLE_CONTACT['name'].split()[0]}!"
    feed = Client().get(reverse("archive:feed"))
    root = ElementTree.fromstring(feed.content)  # noqa: S314 - our own feed
    assert root.find("./channel/item").findtext("description") == expected
    index = Client().get(reverse("archive:index")).content.decode()
    assert expected in index and "contact.first_name" not in index


def test_the_archive_sets_no_cookies(news, recipients):
    campaign = sent(news, recipients, subject="July news")
    client = Client()
    for url in (
        reverse("archive:index"),
        reverse("archive:campaign", args=[campaign.pk]),
        reverse("archive:feed"),
    ):
        response = client.get(url)
        assert response.status_code == 200
        assert not response.cookies, url
