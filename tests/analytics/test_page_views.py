"""Counting page views: what is kept, what never is, and who is not counted."""

from __future__ import annotations

import json
from datetime import timedelta

import pytest
from django.utils import timezone

from tidings.analytics.consent import banner_config
from tidings.analytics.models import PageView
from tidings.policy import get_policy
from tidings.policy.schema import CONSENT_COOKIE

from .conftest import ANALYTICS_WITHOUT_CONSENT, CHROME_UA, IPHONE_UA

pytestmark = pytest.mark.django_db

SITE = "https://www.example.co.uk"
CONSENTED = "current|analytics=1"  # "current": the banner this policy shows (see visit())
REFUSED = "current|analytics=0"


def answered(value: str) -> str:
    """A consent value with "current" as the version of the banner the policy now shows."""
    version = banner_config(get_policy(), "")["version"][:12]
    return value.replace("current", version)


@pytest.fixture(autouse=True)
def _setup(ingest_now, fresh_salt):
    pass


def visit(
    client, url=f"{SITE}/pricing", *, referrer="", consent=CONSENTED, ua=CHROME_UA, **headers
):
    body = {"u": url, "r": referrer}
    if consent is not None:
        body["c"] = answered(consent)
    return client.post(
        "/a/collect",
        json.dumps(body),
        content_type="text/plain;charset=UTF-8",
        HTTP_USER_AGENT=ua,
        REMOTE_ADDR="203.0.113.7",
        **headers,
    )


def stored(ingest_now) -> list[PageView]:
    ingest_now()
    return list(PageView.objects.order_by("id"))


def test_a_page_view_keeps_the_page_the_referring_site_and_the_browser_only(client, ingest_now):
    response = visit(
        client,
        f"{SITE}/pricing/?email=ada%40example.com&utm_source=newsletter&utm_campaign=spring"
        "&utm_medium=email&ref=42",
        referrer="https://news.ycombinator.com/item?id=123",
    )

    assert response.status_code == 204
    assert "Set-Cookie" not in response
    (view,) = stored(ingest_now)
    assert abs(view.created - timezone.now()) < timedelta(minutes=1)
    assert view.site == "example.co.uk"
    assert view.path == "/pricing/"
    assert (view.utm_source, view.utm_medium, view.utm_campaign) == (
        "newsletter",
        "email",
        "spring",
    )
    assert view.referrer == "news.ycombinator.com"
    assert (view.browser, view.browser_version, view.os, view.device) == (
        "Chrome",
        "131",
        "Windows",
        "desktop",
    )
    assert len(view.visitor) == 16
    # Neither the address in the query string, nor the IP address, nor the user agent, anywhere.
    row = json.dumps(PageView.objects.values().get(pk=view.pk), default=str)
    for secret in (
        "ada",
        "example.com",
        "203.0.113.7",
        "Mozilla",
        "AppleWebKit",
        "ref=42",
        "id=123",
    ):
        assert secret not in row


def test_control_characters_in_an_address_are_dropped_and_stop_nothing(client, ingest_now):
    """%00 in a page address or a campaign used to reach the database: PostgreSQL refuses NUL
    in text, so the batch failed on every retry and no page view was counted after it."""
    visit(
        client,
        f"{SITE}/a%00b%0A%7F/c?utm_campaign=spring%00%0D%0Asale",
        referrer="https://news.ycombinator.com%00evil/x",
    )
    visit(client, f"{SITE}/pricing")

    hostile, normal = stored(ingest_now)
    assert hostile.path == "/ab/c"
    assert hostile.utm_campaign == "springsale"
    assert "\x00" not in hostile.referrer
    assert normal.path == "/pricing"


def test_a_phone_is_a_mobile_device(client, ingest_now):
    visit(client, ua=IPHONE_UA)
    (view,) = stored(ingest_now)
    assert (view.browser, view.os, view.device) == ("Mobile Safari", "iOS", "mobile")


def test_the_same_visitor_on_the_same_day_has_the_same_hash(client, ingest_now):
    visit(client, f"{SITE}/")
    visit(client, f"{SITE}/pricing")
    visit(client, f"{SITE}/", ua=IPHONE_UA)
    first, second, other = stored(ingest_now)
    assert first.visitor == second.visitor != other.visitor


def test_an_internal_referrer_is_not_a_referring_site(client, ingest_now):
    visit(client, referrer=f"{SITE}/")
    assert stored(ingest_now)[0].referrer == ""


@pytest.mark.parametrize(
    "ua",
    [
        "Mozilla/5.0 (compatible; Googlebot/2.1; +http://www.google.com/bot.html)",
        "curl/8.5.0",
        "python-requests/2.32.3",
        "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) "
        "HeadlessChrome/131.0.0.0 Safari/537.36",
        "",
    ],
)
def test_bots_are_not_counted(client, ingest_now, ua):
    assert visit(client, ua=ua).status_code == 204
    assert stored(ingest_now) == []


def test_a_signed_in_operator_is_not_counted(owner_client, ingest_now):
    visit(owner_client)
    assert stored(ingest_now) == []


def test_a_browser_with_the_dont_count_me_cookie_is_not_counted(client, ingest_now):
    client.cookies["tidings_dont_count"] = "1"
    visit(client)
    assert stored(ingest_now) == []


@pytest.mark.parametrize("header", [{"HTTP_SEC_GPC": "1"}, {"HTTP_DNT": "1"}])
def test_global_privacy_control_and_do_not_track_are_a_refusal(client, ingest_now, header):
    visit(client, **header)
    assert stored(ingest_now) == []


def test_without_consent_nothing_is_recorded_when_the_policy_needs_it(client, ingest_now):
    visit(client, consent=None)
    visit(client, consent=REFUSED)
    visit(client, consent="garbage")
    assert stored(ingest_now) == []


def test_a_yes_to_an_earlier_banner_counts_for_nothing(client, ingest_now):
    # The policy changed what the banner says since this visitor answered: banner.js asks them
    # again, and the server must not count them meanwhile (the pixel, another site's script).
    visit(client, consent="0123456789ab|analytics=1")
    client.cookies[CONSENT_COOKIE] = "0123456789ab|analytics=1"
    visit(client, consent=None)
    client.get("/a/p.gif", HTTP_REFERER=f"{SITE}/pricing", HTTP_USER_AGENT=CHROME_UA)
    assert stored(ingest_now) == []


def test_the_consent_cookie_itself_is_enough_on_the_same_site(client, ingest_now):
    client.cookies[CONSENT_COOKIE] = answered(CONSENTED)
    visit(client, consent=None)
    assert len(stored(ingest_now)) == 1


def test_a_policy_without_consent_for_statistics_counts_without_the_banner(
    client, ingest_now, use_policy
):
    use_policy(ANALYTICS_WITHOUT_CONSENT)
    visit(client, consent=None)
    assert len(stored(ingest_now)) == 1


def test_pages_of_other_sites_are_not_counted(client, ingest_now):
    visit(client, "https://evil.example/page")
    visit(client, "javascript:alert(1)")
    assert stored(ingest_now) == []


def test_configured_sites_are_counted(client, ingest_now, settings):
    settings.TIDINGS_ANALYTICS_SITES = ["shop.example.org"]
    visit(client, "https://shop.example.org/cart")
    assert stored(ingest_now)[0].site == "shop.example.org"


def test_bad_requests_get_a_clear_problem(client):
    response = client.post("/a/collect", "not json", content_type="text/plain")
    assert response.status_code == 400
    assert response["Content-Type"] == "application/problem+json"
    assert response.json()["detail"] == "expected a JSON body"
    assert client.get("/a/collect").status_code == 405


def test_the_pixel_counts_the_page_it_was_shown_on(client, ingest_now):
    client.cookies[CONSENT_COOKIE] = answered(CONSENTED)
    response = client.get(
        "/a/p.gif",
        HTTP_REFERER=f"{SITE}/about?utm_campaign=autumn",
        HTTP_USER_AGENT=CHROME_UA,
        REMOTE_ADDR="198.51.100.1",
    )
    assert response.status_code == 200
    assert response["Content-Type"] == "image/gif"
    assert "no-store" in response["Cache-Control"]
    assert "Set-Cookie" not in response
    (view,) = stored(ingest_now)
    assert (view.path, view.utm_campaign) == ("/about", "autumn")


def test_the_pixel_without_consent_counts_nothing(client, ingest_now):
    response = client.get("/a/p.gif", HTTP_REFERER=f"{SITE}/", HTTP_USER_AGENT=CHROME_UA)
    assert response.status_code == 200
    assert stored(ingest_now) == []


@pytest.mark.parametrize(
    "header",
    [
        {"HTTP_SEC_PURPOSE": "prefetch;prerender"},
        {"HTTP_SEC_PURPOSE": "prefetch"},
        {"HTTP_PURPOSE": "prefetch"},
        {"HTTP_X_MOZ": "prefetch"},
    ],
)
def test_a_page_the_browser_loads_ahead_unseen_is_not_counted(client, ingest_now, header):
    # Speculation rules prerender a page (and run its scripts) that the visitor may never open.
    visit(client, **header)
    client.get("/a/p.gif", HTTP_REFERER=f"{SITE}/pricing", HTTP_USER_AGENT=CHROME_UA, **header)
    assert stored(ingest_now) == []
    visit(client)
    assert len(stored(ingest_now)) == 1


def test_an_email_address_in_the_page_address_is_not_kept(client, ingest_now):
    # A mailing tool that tags links with the subscriber's address, a page named after one.
    visit(
        client,
        f"{SITE}/unsubscribe/ada.lovelace%40example.com/done"
        "?utm_source=mailer&utm_term=ada.lovelace%40example.com&utm_content=ada@example.com",
    )
    (view,) = stored(ingest_now)
    assert view.path == "/unsubscribe/(email)/done"
    assert view.utm_source == "mailer"
    assert view.utm_term == "(email)" and view.utm_content == "(email)"
    row = {f.attname: getattr(view, f.attname) for f in PageView._meta.concrete_fields}
    assert "lovelace" not in repr(row) and "example.com" not in repr(row)


def test_an_address_encoded_twice_or_without_a_dot_and_a_jwt_are_not_kept(client, ingest_now):
    # A link passed through a redirector arrives with its "@" encoded twice (%2540); an
    # intranet address has no dot; a sign-in link carries a JWT, a bearer credential.
    jwt = "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiJhZGEifQ.c2lnbmF0dXJl"
    visit(
        client,
        f"{SITE}/u/ada.lovelace%2540example.com/done/{jwt}"
        f"?utm_source=ada%2540example.com&utm_term=ada@mail&utm_content={jwt}",
    )
    (view,) = stored(ingest_now)
    assert view.path == "/u/(email)/done/(token)"
    assert (view.utm_source, view.utm_term, view.utm_content) == ("(email)", "(email)", "(token)")
    row = {f.attname: getattr(view, f.attname) for f in PageView._meta.concrete_fields}
    assert "lovelace" not in repr(row) and "ada" not in repr(row) and "eyJ" not in repr(row)


def test_invisible_direction_characters_are_not_kept_in_pages_or_campaigns(client, ingest_now):
    # "Trojan Source": /%E2%80%AEnoitca-ekam on the dashboard would read as /make-action.
    visit(client, f"{SITE}/%E2%80%AEnoitca?utm_campaign=spring%E2%81%A6x%E2%81%A9")
    (view,) = stored(ingest_now)
    assert (view.path, view.utm_campaign) == ("/noitca", "springx")


def test_page_names_that_only_look_odd_are_kept_as_they_are(client, ingest_now):
    visit(client, f"{SITE}/@tidings/100%25-sure/BlackFriday2026Campaign?utm_campaign=a-b_2026")
    (view,) = stored(ingest_now)
    assert view.path == "/@tidings/100%-sure/BlackFriday2026Campaign"
    assert view.utm_campaign == "a-b_2026"


def test_a_flood_of_page_views_from_one_visitor_is_counted_only_up_to_the_limit(
    client, ingest_now, settings
):
    settings.TIDINGS_ANALYTICS_LIMIT = (5, 60)
    for _ in range(20):  # a script reloading a page in a loop
        assert visit(client).status_code == 204
    visit(client, ua=IPHONE_UA)  # another browser at the same address is someone else
    views = stored(ingest_now)
    assert len(views) == 6
    assert len({v.visitor for v in views}) == 2


@pytest.mark.parametrize("path", ["/a/collect", "/a/consent"])
def test_options_says_what_the_endpoint_takes_and_grants_no_preflight(client, path):
    """OPTIONS answered 405.  The scripts never preflight (tests/analytics/test_script.py), so
    a preflight for JSON from another site's code is answered without granting it."""
    response = client.options(path)
    assert response.status_code == 204
    assert response["Allow"] == "OPTIONS, POST"

    preflight = client.options(
        path,
        HTTP_ORIGIN=SITE,
        HTTP_ACCESS_CONTROL_REQUEST_METHOD="POST",
        HTTP_ACCESS_CONTROL_REQUEST_HEADERS="content-type",
    )
    assert preflight.status_code == 204
    assert not [h for h in preflight.headers if h.lower().startswith("access-control-allow")]
    assert client.put(path).status_code == 405  # other methods are still refused
    assert PageView.objects.count() == 0
