"""The operator pages for API tokens and webhook endpoints (owners only)."""

from __future__ import annotations

import re

import pytest
from django.urls import reverse

from tests.operators import make_operator
from tidings.api.models import ApiToken, WebhookEndpoint

from .helpers import Api

pytestmark = pytest.mark.django_db

PAGES = [
    ("api_settings:tokens", []),
    ("api_settings:webhooks", []),
]


@pytest.mark.parametrize(("name", "args"), PAGES)
def test_settings_pages_are_refused_to_visitors_and_non_owners(client, name, args):
    url = reverse(name, args=args)
    assert client.get(url).status_code == 302  # to sign in
    for role in ("editor", "analyst", "privacy_officer"):
        client.force_login(make_operator(f"{role}-{name[-5:]}", role))
        assert client.get(url).status_code == 403


@pytest.mark.parametrize(
    "name", ["api_settings:webhook", "api_settings:webhook-toggle", "api_settings:webhook-delete"]
)
def test_endpoint_pages_and_buttons_are_refused_to_non_owners(client, name):
    from tidings.api.actions import do_create_webhook_endpoint

    endpoint = do_create_webhook_endpoint(
        url="https://crm.example.com/h", events=["campaign.finished"], actor=None
    )
    url = reverse(name, args=[endpoint.pk])
    client.force_login(make_operator("ed", "editor"))
    assert client.post(url).status_code == 403
    assert WebhookEndpoint.objects.get().is_active


def test_revoking_is_refused_to_non_owners(client, owner):
    from tidings.api.actions import do_create_api_token

    token, _ = do_create_api_token(name="x", operator=owner, scopes=["read"], actor=owner)
    client.force_login(make_operator("ed", "editor"))
    assert client.post(reverse("api_settings:token-revoke", args=[token.pk])).status_code == 403
    token.refresh_from_db()
    assert token.revoked_at is None


def test_an_owner_creates_a_token_sees_it_once_and_it_works(owner_client, owner):
    editor = make_operator("ed", "editor")
    response = owner_client.post(
        reverse("api_settings:tokens"),
        {"name": "website", "operator": editor.pk, "scopes": ["read", "send"]},
    )
    assert response.status_code == 200
    text = re.search(r'value="(tid_[^"]+)"', response.content.decode()).group(1)
    token = ApiToken.objects.get()
    assert token.operator == editor
    assert token.scopes == ["read", "send"]
    assert Api(text).get("/lists").status_code == 200
    # Never shown again.
    assert text not in owner_client.get(reverse("api_settings:tokens")).content.decode()


def test_revoking_a_token_stops_it_at_once(owner_client, owner):
    response = owner_client.post(
        reverse("api_settings:tokens"), {"name": "x", "operator": owner.pk, "scopes": ["read"]}
    )
    text = re.search(r'value="(tid_[^"]+)"', response.content.decode()).group(1)
    token = ApiToken.objects.get()
    owner_client.post(reverse("api_settings:token-revoke", args=[token.pk]))
    assert Api(text).get("/lists").status_code == 401


def test_a_token_needs_a_scope(owner_client, owner):
    response = owner_client.post(
        reverse("api_settings:tokens"), {"name": "x", "operator": owner.pk}
    )
    assert "This field is required" in response.content.decode()
    assert not ApiToken.objects.exists()


def test_an_owner_registers_a_webhook_and_sees_its_secret_once(owner_client):
    response = owner_client.post(
        reverse("api_settings:webhooks"),
        {
            "url": "https://crm.example.com/hooks/tidings",
            "events": ["contact.subscribed", "campaign.finished"],
            "fields": ["email"],
        },
    )
    endpoint = WebhookEndpoint.objects.get()
    assert endpoint.secret in response.content.decode()
    assert endpoint.secret.startswith("whsec_")
    assert endpoint.fields == ["email"]
    detail = owner_client.get(reverse("api_settings:webhook", args=[endpoint.pk]))
    assert detail.status_code == 200
    assert endpoint.secret not in detail.content.decode()
    assert (
        endpoint.secret not in owner_client.get(reverse("api_settings:webhooks")).content.decode()
    )


def test_an_owner_disables_enables_and_deletes_an_endpoint(owner_client):
    owner_client.post(
        reverse("api_settings:webhooks"),
        {"url": "https://crm.example.com/h", "events": ["campaign.finished"]},
    )
    endpoint = WebhookEndpoint.objects.get()
    toggle = reverse("api_settings:webhook-toggle", args=[endpoint.pk])
    owner_client.post(toggle, {"active": "0"})
    endpoint.refresh_from_db()
    assert endpoint.is_active is False
    owner_client.post(toggle, {"active": "1"})
    endpoint.refresh_from_db()
    assert endpoint.is_active is True
    owner_client.post(reverse("api_settings:webhook-delete", args=[endpoint.pk]))
    assert not WebhookEndpoint.objects.exists()
