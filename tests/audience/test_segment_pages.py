"""Saved segments in the operator interface."""

import pytest
from django.urls import reverse

from tidings.audience.actions import do_create_contact, do_subscribe
from tidings.audience.models import MailingList, Segment

pytestmark = pytest.mark.django_db


@pytest.fixture
def people():
    news = MailingList.objects.create(name="Product news", topic="product news")
    for i, name in enumerate(["Ada Lovelace", "Grace Hopper", "Alan Turing"]):
        contact, _ = do_create_contact(
            {"name": name, "email": f"p{i}@example.com"}, purpose="newsletter"
        )
        if i < 2:
            do_subscribe(contact, news, source="form", wording_text="Yes", confirmed=True)
    return news


def test_a_segment_with_an_error_is_shown_with_the_column_and_not_saved(owner_client, people):
    response = owner_client.post(
        reverse("audience:segment-new"),
        {"name": "Broken", "query": 'list:"product news" and name =', "save": "1"},
    )
    assert response.status_code == 200
    page = response.content.decode()
    assert "column 31: expected a value after" in page
    assert not Segment.objects.exists()


def test_a_valid_segment_is_counted_saved_and_filters_the_contact_list(owner_client, people):
    response = owner_client.post(
        reverse("audience:segment-new"),
        {"name": "News readers", "query": 'list:"product news"', "check": "1"},
    )
    assert response.context["check"]["count"] == 2
    owner_client.post(
        reverse("audience:segment-new"),
        {"name": "News readers", "query": 'list:"product news"', "save": "1"},
    )
    segment = Segment.objects.get()
    listing = owner_client.get(reverse("audience:contacts"), {"segment": segment.pk})
    assert sorted(c.name for c in listing.context["page"].items) == ["Ada Lovelace", "Grace Hopper"]


def test_the_live_count_answers_in_json(owner_client, people):
    ok = owner_client.get(reverse("audience:segment-count"), {"q": 'name ^= "ada"'}).json()
    assert ok == {"count": 1, "errors": []}
    bad = owner_client.get(reverse("audience:segment-count"), {"q": "name = = 1"}).json()
    assert bad["count"] is None
    assert bad["errors"][0]["message"].startswith("column 8")
    assert bad["errors"][0]["caret"] == "       ^"


def test_a_segment_exports_its_contacts_as_csv(owner_client, people):
    segment = Segment.objects.create(name="Turing", query='name ~ "turing"')
    response = owner_client.get(reverse("audience:segment-export", args=[segment.pk]))
    body = b"".join(response.streaming_content).decode()
    assert "p2@example.com" in body and "p0@example.com" not in body


def test_segment_pages_are_for_operators_only(client):
    assert client.get(reverse("audience:segment-count"), {"q": "x"}).status_code == 302


# --- a segment that mail going out chooses its people from ------------------------------------
@pytest.fixture
def writer_client(client):
    from tests.operators import make_operator, sign_in

    sign_in(client, make_operator("wendy", "writer"))
    return client


def _save(client, segment: Segment, query: str):
    return client.post(
        reverse("audience:segment-edit", args=[segment.pk]),
        {"name": segment.name, "query": query, "description": "", "save": "1"},
    )


@pytest.mark.parametrize("status", ["scheduled", "sending", "paused"])
def test_a_writer_cannot_change_the_segment_a_live_campaign_goes_to(writer_client, status):
    # A writer may not send: a scheduled campaign chooses its people from the segment when it
    # starts, so widening it sent the campaign to people nobody who may send chose.
    from tests.campaigns.lifecycle_helpers import make_campaign

    segment = Segment.objects.create(name="Pro", query='company = "Pro Ltd"')
    make_campaign(status=status, segments=[segment], name="November news")

    response = _save(writer_client, segment, 'company ~ "ltd"')

    assert response.status_code == 403
    assert "The campaign “November news” chooses its people from this segment" in response.text
    segment.refresh_from_db()
    assert segment.query == 'company = "Pro Ltd"'
    deleted = writer_client.post(reverse("audience:segment-delete", args=[segment.pk]))
    assert deleted.status_code == 403 and Segment.objects.filter(pk=segment.pk).exists()
    page = writer_client.get(reverse("audience:segment-edit", args=[segment.pk])).text
    assert "only an operator who may send" in page


def test_a_writer_cannot_change_the_segment_that_starts_a_journey(writer_client):
    from tests.journeys.helpers import welcome

    segment = Segment.objects.create(name="Pro", query='company = "Pro Ltd"')
    steps = [{"id": "tell", "kind": "webhook", "event": "matched"}]
    welcome(
        name="Pro welcome",
        topic="",
        trigger="segment_matched",
        trigger_params={"segment": segment.pk},
        steps=steps,
        goals=[],
    )

    response = _save(writer_client, segment, 'company ~ "ltd"')

    assert response.status_code == 403
    assert "The journey “Pro welcome” chooses its people" in response.text


def test_segments_nothing_live_reads_stay_the_writers_to_change(writer_client):
    from tests.campaigns.lifecycle_helpers import make_campaign

    segment = Segment.objects.create(name="Pro", query='company = "Pro Ltd"')
    make_campaign(status="draft", segments=[segment])
    make_campaign(status="finished", segments=[segment])
    assert _save(writer_client, segment, 'company ~ "ltd"').status_code == 302
    segment.refresh_from_db()
    assert segment.query == 'company ~ "ltd"'


def test_an_operator_who_may_send_changes_a_live_campaigns_segment(owner_client):
    from tests.campaigns.lifecycle_helpers import make_campaign

    segment = Segment.objects.create(name="Pro", query='company = "Pro Ltd"')
    make_campaign(status="scheduled", segments=[segment])
    assert _save(owner_client, segment, 'company ~ "ltd"').status_code == 302
