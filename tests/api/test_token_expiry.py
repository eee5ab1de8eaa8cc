"""API tokens expire: chosen when made (30, 90 or 365 days, or never with a warning), refused
with a 401 that says so once past, listed with their expiry, and announced by the doctor."""

from __future__ import annotations

import json
from datetime import timedelta

import pytest
import time_machine
from django.urls import reverse
from django.utils import timezone

from tidings.api.actions import do_create_api_token
from tidings.api.models import ApiToken

from .helpers import Api

pytestmark = pytest.mark.django_db


def _token(owner, days=90, name="website"):
    return do_create_api_token(
        name=name, operator=owner, scopes=["read"], actor=owner, expires_in_days=days
    )


def test_a_new_token_expires_in_90_days_unless_told_otherwise(owner):
    token, _ = do_create_api_token(name="x", operator=owner, scopes=["read"], actor=owner)
    assert token.expires_at == token.created_at + timedelta(days=90)


def test_a_token_works_until_it_expires_then_answers_401_saying_so(owner):
    token, text = _token(owner, days=30)
    assert Api(text).get("/lists").status_code == 200
    used = ApiToken.objects.get(pk=token.pk).last_used_at
    with time_machine.travel(timezone.now() + timedelta(days=30, seconds=1)):
        response = Api(text).get("/lists")
    assert response.status_code == 401
    assert response["Content-Type"] == "application/problem+json"
    body = json.loads(response.content)
    assert "expired" in body["detail"]
    assert 'error="invalid_token"' in response["WWW-Authenticate"]
    assert text not in response.content.decode() and token.prefix not in body["detail"]
    assert ApiToken.objects.get(pk=token.pk).last_used_at == used  # not counted as a use


def test_a_token_made_before_expiry_existed_keeps_working(owner):
    token, text = _token(owner)
    ApiToken.objects.filter(pk=token.pk).update(expires_at=None)
    with time_machine.travel(timezone.now() + timedelta(days=4000)):
        assert Api(text).get("/lists").status_code == 200


def test_a_wrong_token_is_still_the_plain_401(owner):
    response = Api("tid_not-a-token").get("/lists")
    assert response.status_code == 401 and "expired" not in response.content.decode()


def test_the_lifetime_is_checked(owner):
    with pytest.raises(ValueError, match="1 to 3650 days"):
        _token(owner, days=0)


def test_the_page_offers_the_lifetimes_and_makes_a_token_without_one_on_request(
    owner_client, owner
):
    page = owner_client.get(reverse("api_settings:tokens")).content.decode()
    assert 'value="90"' in page and "checked" in page.split('value="90"')[1][:40]
    for label in ("30 days", "1 year", "Never — not recommended"):
        assert label in page
    response = owner_client.post(
        reverse("api_settings:tokens"),
        {"name": "forever", "operator": owner.pk, "scopes": ["read"], "expires": "never"},
    )
    assert response.status_code == 200
    assert ApiToken.objects.get(name="forever").expires_at is None
    owner_client.post(
        reverse("api_settings:tokens"),
        {"name": "yearly", "operator": owner.pk, "scopes": ["read"], "expires": "365"},
    )
    yearly = ApiToken.objects.get(name="yearly")
    assert yearly.expires_at - yearly.created_at == timedelta(days=365)


def test_the_list_shows_last_use_and_expiry_and_flags_tokens_that_never_expire(owner_client, owner):
    _, text = _token(owner, days=None, name="legacy")
    Api(text).get("/lists")
    _token(owner, days=10, name="closing")
    _token(owner, days=365, name="fresh")
    page = owner_client.get(reverse("api_settings:tokens")).content.decode()
    assert '<th scope="col">Expires</th>' in page
    rows = {
        name: row
        for row in page.split('<tr role="row">')
        for name in ("legacy", "closing", "fresh")
        if f'data-label="Name">{name}</td>' in row
    }
    assert "<strong>never</strong> <small>(replace it)</small>" in rows["legacy"]
    assert "within 14 days" in rows["closing"]
    assert "within 14 days" not in rows["fresh"]
    today = timezone.localtime().strftime("%-d %b %Y")
    assert today in rows["legacy"]  # last used


def test_the_doctor_lists_tokens_expiring_within_14_days(owner):
    from tidings.ops.checks.api_tokens import check_api_tokens

    assert check_api_tokens().status == "ok"
    _token(owner, days=13, name="closing")
    _token(owner, days=30, name="later")
    finding = check_api_tokens()
    assert finding.status == "warn"
    assert "1 API token expires within 14 days" in finding.summary
    assert "“closing”" in finding.summary and "later" not in finding.summary
    expired, _ = _token(owner, days=1, name="gone")
    ApiToken.objects.filter(pk=expired.pk).update(expires_at=timezone.now() - timedelta(days=1))
    assert "gone" not in check_api_tokens().summary


def test_the_doctor_warns_about_tokens_that_never_expire(owner):
    from tidings.ops.checks.api_tokens import check_api_tokens

    _token(owner, days=None, name="legacy")
    finding = check_api_tokens()
    assert finding.status == "warn" and "1 never expires" in finding.summary
