"""The dashboard's getting-started checklist: read from what exists, each step linking to the page
that does it, each gone once done, the whole list gone at the end; steps are pluggable."""

import re

import pytest
from django.urls import reverse
from django.utils import timezone

from tests.campaigns.lifecycle_helpers import make_campaign, make_list, make_sender, subscriber
from tests.operators import make_operator
from tidings.audience.models import SignupForm
from tidings.campaigns.models import Sender, Template
from tidings.campaigns.rendering import ensure_default_layout
from tidings.web import checklist
from tidings.web.models import NoticeReview

pytestmark = pytest.mark.django_db


def steps_shown(client) -> list[str]:
    return re.findall(r'<li data-step="([a-z]+)">', client.get("/").text)


@pytest.fixture
def owner_client(client, owner):
    client.force_login(owner)
    return client


def test_a_new_installation_shows_every_step_with_a_link_that_works(owner_client):
    page = owner_client.get("/").text
    assert "Getting started" in page and "0 of 7 done" in page
    assert steps_shown(owner_client) == [
        "sender", "list", "form", "contacts", "template", "campaign", "notice"
    ]  # fmt: skip
    section = page[page.index("Getting started") : page.index("</ol>")]
    for link in re.findall(r'<a href="([^"]+)">', section):
        assert owner_client.get(link).status_code in (200, 302), link  # 302: needs a layout first


def test_each_step_goes_once_done_and_the_list_goes_at_the_end(owner_client, owner):
    Sender.objects.create(name="News", email="news@example.co.uk", verified=False)
    assert "sender" in steps_shown(owner_client)  # added, but its domain not checked yet
    make_sender(email="team@example.co.uk")
    assert "sender" not in steps_shown(owner_client)

    news = make_list()
    assert "list" not in steps_shown(owner_client)
    SignupForm.objects.create(name="Website", slug="website")
    assert "form" not in steps_shown(owner_client)
    subscriber("Ada Lovelace", news)
    assert "contacts" not in steps_shown(owner_client)
    Template.objects.create(name="T", layout=ensure_default_layout(), subject="S", body="B")
    assert "template" not in steps_shown(owner_client)
    make_campaign(news, status="finished", started_at=timezone.now())
    assert steps_shown(owner_client) == ["notice"]

    response = owner_client.post(reverse("web:notice-reviewed"))
    assert response.status_code == 302
    assert NoticeReview.objects.get().reviewed_by == owner
    page = owner_client.get("/").text
    assert "Getting started" not in page


def test_a_review_of_an_older_policy_does_not_count(owner_client):
    NoticeReview.objects.create(policy_sha256="0" * 64, reviewed_at=timezone.now())
    assert "notice" in steps_shown(owner_client)


def test_an_editor_sees_the_steps_an_owner_must_do_without_their_links(client):
    client.force_login(make_operator("ed", "editor"))
    page = client.get("/").text
    sender_step = re.search(r'<li data-step="sender">.*?</li>', page, re.S).group()
    assert "An owner does this." in sender_step and "<a href" not in sender_step
    assert client.post(reverse("web:notice-reviewed")).status_code == 403


def test_a_step_can_be_replaced_by_a_later_feature(owner_client):
    original = checklist._STEPS["sender"]
    try:
        checklist.register(
            checklist.Step(
                "sender", "Check your sending domain", "DNS", "campaigns:senders", "settings",
                lambda: False, order=10,
            )
        )  # fmt: skip
        make_sender()
        page = owner_client.get("/").text
        assert "Check your sending domain" in page and "sender" in steps_shown(owner_client)
    finally:
        checklist.register(original)
