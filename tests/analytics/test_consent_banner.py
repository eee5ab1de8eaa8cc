"""The cookie banner's configuration comes from the policy; every answer leaves anonymous proof."""

from __future__ import annotations

import json
import time

import pytest

from tidings.analytics.models import ConsentRecord

from .conftest import ANALYTICS_WITHOUT_CONSENT, EXAMPLE_TEXT

pytestmark = pytest.mark.django_db

ADS_COOKIE = """
[[cookies]]
name = "_ads"
purpose = "measures which adverts brought you here"
party = "third"
provider = "Ad Network Ltd"
duration = "90 days"
strictly_necessary = false
consent_purpose = "analytics"
"""


def test_the_banner_asks_about_the_consent_based_purposes_of_the_website(client):
    response = client.get("/a/banner.json")

    assert response.status_code == 200
    config = response.json()
    assert config["purposes"] == ["analytics"]
    assert config["not_needed"] == []
    (purpose,) = config["texts"]["purposes"]
    assert purpose["title"] == "Understanding how visitors use our website"
    assert "without cookies" in purpose["detail"]
    assert config["texts"]["accept"] == "Accept all"
    assert config["texts"]["reject"] == "Reject all"
    assert config["cookie"] == {"name": "tidings_consent", "days": 360}
    assert config["consent_url"].endswith("/a/consent")
    assert len(config["version"]) == 64


def test_the_banner_configuration_is_cacheable_by_anyone(client):
    response = client.get("/a/banner.json")
    assert "public" in response["Cache-Control"]
    assert "max-age=300" in response["Cache-Control"]
    assert response["Access-Control-Allow-Origin"] == "*"
    assert "Set-Cookie" not in response
    again = client.get("/a/banner.json", HTTP_IF_NONE_MATCH=response["ETag"])
    assert again.status_code == 304


def test_a_policy_that_needs_no_consent_gives_the_banner_nothing_to_ask(client, use_policy):
    use_policy(ANALYTICS_WITHOUT_CONSENT)
    config = client.get("/a/banner.json").json()
    assert config["purposes"] == []
    assert config["not_needed"] == ["analytics"]


def test_changing_the_banner_texts_changes_its_version(client, use_policy):
    before = client.get("/a/banner.json").json()["version"]
    use_policy(EXAMPLE_TEXT.replace("Example Software Ltd", "Otherco plc", 1))
    assert client.get("/a/banner.json").json()["version"] != before


def post_choice(client, choice, version=None):
    version = version or client.get("/a/banner.json").json()["version"]
    return client.post(
        "/a/consent",
        json.dumps({"version": version, "choice": choice}),
        content_type="text/plain;charset=UTF-8",
        REMOTE_ADDR="203.0.113.9",
        HTTP_USER_AGENT="Mozilla/5.0 Firefox/128.0",
    )


def test_an_answer_is_kept_as_anonymous_proof(client):
    response = post_choice(client, {"analytics": False})

    assert response.status_code == 204
    assert "Set-Cookie" not in response
    record = ConsentRecord.objects.get()
    assert record.choice == {"analytics": False}
    assert record.how == "reject"
    assert record.banner_version == client.get("/a/banner.json").json()["version"]
    stored = json.dumps(ConsentRecord.objects.values().get(), default=str)
    assert "203.0.113.9" not in stored
    assert "Firefox" not in stored


@pytest.mark.parametrize(
    ("choice", "detail"),
    [
        ({}, "choice: expected a yes/no answer for each of analytics"),
        ({"analytics": True, "ads": True}, "choice: expected a yes/no answer for each of"),
        ({"analytics": "yes"}, "choice: answers must be true or false"),
    ],
)
def test_a_malformed_answer_is_refused_with_a_problem(client, choice, detail):
    response = post_choice(client, choice)
    assert response.status_code == 400
    assert response["Content-Type"] == "application/problem+json"
    assert response.json()["detail"].startswith(detail)
    assert not ConsentRecord.objects.exists()


def test_an_answer_without_the_banner_version_is_refused(client):
    response = post_choice(client, {"analytics": True}, version="v1")
    assert response.status_code == 400
    assert "version" in response.json()["detail"]


def test_a_consent_cookie_of_the_policy_shows_in_the_banner_purpose(client, use_policy):
    use_policy(EXAMPLE_TEXT + ADS_COOKIE)
    (purpose,) = client.get("/a/banner.json").json()["texts"]["purposes"]
    assert purpose["detail"].endswith("Cookies: _ads.")


def test_the_words_of_each_banner_answered_are_kept_with_the_proof(client, use_policy):
    # A record named its banner only by a hash of its texts, and any 64 hex digits were taken:
    # once the policy (and so the banner) changed, nothing said what the visitor had agreed to,
    # and a record could name a banner that never existed.
    from tidings.analytics.models import BannerText

    shown = client.get("/a/banner.json").json()
    use_policy(EXAMPLE_TEXT.replace("Example Software Ltd", "Otherco plc", 1))
    assert post_choice(client, {"analytics": True}, version=shown["version"]).status_code == 204
    record = ConsentRecord.objects.get()
    kept = BannerText.objects.get(version=record.banner_version)
    assert kept.texts == shown["texts"]
    assert "Example Software Ltd" in kept.texts["body"]

    response = post_choice(client, {"analytics": True}, version="a" * 64)
    assert response.status_code == 400
    assert response.json()["detail"] == "version: not a version of the banner this site has shown"
    assert ConsentRecord.objects.count() == 1


# --- the rate limit ------------------------------------------------------------------------------
@pytest.fixture
def frozen():
    """One window of the limiter (it counts in fixed windows of the clock): the clock stops."""
    import time_machine
    from django.core.cache import cache

    cache.clear()
    with time_machine.travel(time.time(), tick=False):
        yield
    cache.clear()


@pytest.fixture
def few_answers(settings, frozen):
    settings.TIDINGS_CONSENT_LIMIT = (3, 60)


def answer_from(client, address: str, version: str):
    return client.post(
        "/a/consent",
        json.dumps({"version": version, "choice": {"analytics": True}}),
        content_type="text/plain;charset=UTF-8",
        REMOTE_ADDR=address,
    )


def test_answers_past_the_limit_from_one_address_get_a_429_problem(client, few_answers):
    version = client.get("/a/banner.json").json()["version"]
    codes = [answer_from(client, "198.51.100.7", version).status_code for _ in range(4)]
    assert codes == [204, 204, 204, 429]
    refused = answer_from(client, "198.51.100.7", version)
    assert refused["Content-Type"] == "application/problem+json"
    assert refused.json()["title"] == "Too many requests"
    assert 1 <= int(refused["Retry-After"]) <= 60
    assert refused["Access-Control-Allow-Origin"] == "*"
    assert ConsentRecord.objects.count() == 3
    # Another visitor is not held up by them.
    assert answer_from(client, "198.51.100.8", version).status_code == 204


def test_an_ipv6_visitor_is_counted_by_their_64_network(client, few_answers):
    version = client.get("/a/banner.json").json()["version"]
    codes = [answer_from(client, f"2001:db8:1:2::{n:x}", version).status_code for n in range(1, 5)]
    assert codes == [204, 204, 204, 429]  # a fresh address per answer does not escape it
    assert answer_from(client, "2001:db8:1:3::1", version).status_code == 204


def test_the_default_limit_lets_a_busy_office_answer(client, frozen):
    from tidings.analytics.public_views import CONSENT_LIMIT

    assert CONSENT_LIMIT == (60, 60)
    version = client.get("/a/banner.json").json()["version"]
    codes = {answer_from(client, "198.51.100.9", version).status_code for _ in range(60)}
    assert codes == {204}
    assert answer_from(client, "198.51.100.9", version).status_code == 429
