"""The registry's SQL helpers: deleting exactly the rows found (and what goes with them), and ids
travelling as one array."""

from __future__ import annotations

import pytest
from django.db import IntegrityError, connection, transaction

from tidings.audience.models import MailingList
from tidings.audience.sources import delete_ids
from tidings.campaigns.models import Campaign, Delivery, TrackedLink

pytestmark = pytest.mark.django_db


def test_rows_that_go_with_their_parent_and_belong_to_no_source_are_deleted_with_it():
    news = MailingList.objects.create(name="News", topic="product news")
    campaign = Campaign.objects.create(name="Spring", subject="Spring", topic="product news")
    campaign.lists.add(news)
    TrackedLink.objects.create(campaign=campaign, index=0, url="https://example.co.uk/")

    assert delete_ids(Campaign, [campaign.pk]) == 1

    connection.check_constraints()
    assert not TrackedLink.objects.exists()
    assert not Campaign.lists.through.objects.exists()
    assert MailingList.objects.filter(pk=news.pk).exists()


def test_rows_a_source_owns_are_never_deleted_behind_its_back():
    campaign = Campaign.objects.create(name="Spring", subject="Spring", topic="product news")
    Delivery.objects.create(campaign=campaign, status="sent")  # the campaigns source's rows

    with pytest.raises(IntegrityError), transaction.atomic():
        delete_ids(Campaign, [campaign.pk])
        connection.check_constraints()


@pytest.mark.skipif(connection.vendor != "postgresql", reason="PostgreSQL's array literals")
def test_ids_and_texts_travel_as_one_array_literal_intact():
    from tidings.audience.sources import array_literal

    values = ["12", 'a "quoted", {braced} \\ value', "NULL", "", "x y", "ünï"]
    for sent in ([1, 2, 300000000], values, values[:1], ["9e24ef56", "0a1b"]):
        literal, kind = array_literal(sent)
        with connection.cursor() as cursor:
            cursor.execute(f"SELECT %s::{kind}", [literal])
            assert cursor.fetchone()[0] == sent
