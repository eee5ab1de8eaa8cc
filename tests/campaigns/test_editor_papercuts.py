"""Papercuts found in the first-hour trial, each with its test: previews link only to pages that
exist, a test send and a preview take a contact's name or address (not an internal id)."""

import html
import re
from urllib.parse import urlsplit

import pytest
from django.test import Client
from django.urls import reverse

from tests.campaigns.lifecycle_helpers import make_campaign, make_list, make_sender, subscriber
from tests.operators import make_operator
from tidings.campaigns.models import OutboxMessage, Template
from tidings.campaigns.rendering import ensure_default_layout

pytestmark = pytest.mark.django_db


def hrefs_in_preview(page: str) -> list[str]:
    frames = re.findall(r'srcdoc="([^"]*)"', page)
    assert frames, "no preview on the page"
    return re.findall(r'href="([^"]+)"', html.unescape(frames[0]))


def assert_every_link_works(links: list[str]) -> None:
    visitor = Client()
    for link in links:
        parts = urlsplit(link)
        if parts.netloc not in ("127.0.0.1:8000", "testserver", ""):
            continue  # the campaign's own outside links
        assert visitor.get(parts.path).status_code == 200, link


@pytest.fixture
def editor(client):
    client.force_login(make_operator("ed", "editor"))
    return client


def test_a_template_preview_shows_no_view_in_browser_link_to_a_missing_page(editor):
    template = Template.objects.create(
        name="Plain", layout=ensure_default_layout(), subject="Hi", body="Hello", format="markdown"
    )
    page = editor.get(reverse("templates_ui:template-preview", args=[template.pk])).content.decode()
    links = hrefs_in_preview(page)
    assert not any("/archive/" in link or "preview-only" in link for link in links)
    assert "View this email in your browser" not in html.unescape(page)
    assert_every_link_works(links)


def test_a_campaign_preview_links_to_its_web_version_only_when_it_will_have_one(editor):
    campaign = make_campaign(make_list(), sender=make_sender(), with_template=True)
    page = editor.get(reverse("campaigns:preview", args=[campaign.pk])).content.decode()
    assert "View this email in your browser" not in html.unescape(page)
    assert_every_link_works(hrefs_in_preview(page))

    campaign.archive = True
    campaign.save(update_fields=["archive"])
    page = editor.get(reverse("campaigns:preview", args=[campaign.pk])).content.decode()
    assert reverse("archive:campaign", args=[campaign.pk]) in html.unescape(page)


def test_a_test_send_renders_as_a_contact_picked_by_name_or_address(
    editor, settings, django_capture_on_commit_callbacks
):
    settings.TIDINGS_SMTP_URL = "outbox://"
    settings.MAILERS = {"default": {"BACKEND": "tidings.campaigns.transports.outbox.EmailBackend"}}
    news = make_list()
    subscriber("Grace Hopper", news, email="grace@example.org")
    subscriber("Grace Kelly", news, email="kelly@example.org")
    campaign = make_campaign(news, sender=make_sender(), with_template=True)
    campaign.body = "Dear {{ contact.name }}"
    campaign.save(update_fields=["body"])
    page = editor.get(reverse("campaigns:test", args=[campaign.pk])).content.decode()
    assert "number" not in page.lower()
    url = reverse("campaigns:test", args=[campaign.pk])

    ambiguous = editor.post(url, {"addresses": "me@example.com", "contact": "Grace"})
    assert (
        "2 contacts match “Grace”: grace@example.org, kelly@example.org"
        in ambiguous.content.decode()
    )
    assert not OutboxMessage.objects.exists()

    with django_capture_on_commit_callbacks(execute=True):
        editor.post(url, {"addresses": "me@example.com", "contact": "Hopper"})
    with django_capture_on_commit_callbacks(execute=True):
        editor.post(url, {"addresses": "me@example.com", "contact": "kelly@example.org"})
    bodies = [bytes(m.message).decode() for m in OutboxMessage.objects.order_by("pk")]
    assert "Dear Grace Hopper" in bodies[0] and "Dear Grace Kelly" in bodies[1]


def test_a_campaign_preview_takes_a_name_too(editor):
    news = make_list()
    subscriber("Ada Lovelace", news, email="ada@example.org")
    campaign = make_campaign(news, sender=make_sender(), with_template=True)
    campaign.body = "Dear {{ contact.name }}"
    campaign.save(update_fields=["body"])
    page = editor.get(reverse("campaigns:preview", args=[campaign.pk]), {"contact": "lovelace"})
    assert "Dear Ada Lovelace" in html.unescape(page.content.decode())
    missing = editor.get(reverse("campaigns:preview", args=[campaign.pk]), {"contact": "nobody"})
    assert "No contact matches “nobody”" in missing.content.decode()
