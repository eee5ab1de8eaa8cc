"""Consent-aware open and click tracking: what the mail carries, and what the endpoints do.

Campaigns go through the real delivery engine to a real SMTP server (aiosmtpd); the endpoints
are called as a mail client would, and the buffered events written with ``ingest.flush()``.
"""

from __future__ import annotations

import re
from datetime import timedelta
from pathlib import Path

import pytest
from django.conf import settings as django_settings
from django.utils import timezone

from tests.audience.public_helpers import refuse_tracking
from tests.campaigns.delivery_helpers import (
    SmtpSink,
    make_list,
    sending_campaign,
    subscribers,
    transports_for,
)
from tests.operators import make_operator
from tidings.audience.models import ConsentEvent
from tidings.audience.tokens import preferences_url
from tidings.campaigns import tracking
from tidings.campaigns.engine import deliver_pending
from tidings.campaigns.events import NewEvent, record_events
from tidings.campaigns.models import Campaign, Delivery, Event, EventCounter, TrackedLink
from tidings.campaigns.reports import campaign_report, dashboard_summary
from tidings.campaigns.tracking import OPEN, make_token
from tidings.lib import ingest
from tidings.policy.loader import load_policy

from .event_helpers import sent_campaign

pytestmark = pytest.mark.django_db

BODY = (
    "Hello {{ contact.name }},\n\n"
    "Read [the launch notes](https://example.net/launch?utm=mail&x=1) or "
    "[the manual](https://docs.example.net/manual).\n\n"
    "Again: [the launch notes](https://example.net/launch?utm=mail&x=1)."
)
TRACKED = re.compile(r'href="http://[^"]+/t/c/([A-Za-z0-9_-]{35})"')
PIXEL = re.compile(r'<img src="http://[^"]+/t/o/([A-Za-z0-9_-]{35})" width="1" height="1"')


@pytest.fixture(autouse=True)
def _fresh_link_cache():
    # Campaign ids repeat from one test to the next (each test's rows are rolled back); in a real
    # database they never do, so the per-process link cache never needs emptying there.
    tracking.forget_links()


@pytest.fixture
def sink(settings):
    with SmtpSink() as server:
        settings.TIDINGS_TRANSPORTS = transports_for(server)
        yield server


@pytest.fixture
def news():
    return make_list()


def html_of(sink, contact) -> str:
    (received,) = sink.to(contact.email)
    return received.message.get_body(("html",)).get_content()


def text_of(sink, contact) -> str:
    (received,) = sink.to(contact.email)
    return received.message.get_body(("plain",)).get_content()


def path_of(url_token: str, kind: str = "c") -> str:
    return f"/t/{kind}/{url_token}"


# --- what the mail carries ----------------------------------------------------------------------
def test_a_person_who_allows_tracking_gets_a_pixel_and_links_through_the_tracker(sink, news):
    (ada,) = subscribers(news, 1)
    campaign = sending_campaign(news, body=BODY)
    deliver_pending()
    html = html_of(sink, ada)
    assert len(PIXEL.findall(html)) == 1
    tokens = TRACKED.findall(html)
    assert len(tokens) == 3  # the launch notes twice (one link), the manual once
    assert "https://example.net/launch" not in html
    assert "https://docs.example.net/manual" not in html
    links = dict(TrackedLink.objects.filter(campaign=campaign).values_list("index", "url"))
    assert sorted(links.values()) == [
        "https://docs.example.net/manual",
        "https://example.net/launch?utm=mail&x=1",
    ]
    # No address, contact id or list name in the tracking URLs.
    for token in [*tokens, *PIXEL.findall(html)]:
        assert ada.email not in token and str(ada.pk) != token


def test_the_plain_text_part_keeps_the_real_addresses(sink, news):
    (ada,) = subscribers(news, 1)
    sending_campaign(news, body=BODY)
    deliver_pending()
    text = text_of(sink, ada)
    assert "https://docs.example.net/manual" in text
    assert "/t/c/" not in text


def test_unsubscribe_and_preference_links_are_never_rewritten(sink, news):
    (ada,) = subscribers(news, 1)
    sending_campaign(news, body=BODY)
    deliver_pending()
    html = html_of(sink, ada)
    base = django_settings.TIDINGS_BASE_URL
    assert re.search(rf'href="{re.escape(base)}/u/[^"]+"', html)
    assert re.search(rf'href="{re.escape(base)}/p/[^"]+"', html)


def test_a_person_who_refused_tracking_gets_no_pixel_and_plain_links(sink, news):
    ada, bob = subscribers(news, 2)
    refuse_tracking(bob)
    sending_campaign(news, body=BODY)
    deliver_pending()
    assert PIXEL.search(html_of(sink, ada))
    html = html_of(sink, bob)
    assert not PIXEL.search(html)
    assert "/t/c/" not in html and "/t/o/" not in html
    assert "https://docs.example.net/manual" in html


def test_open_and_click_rates_are_of_the_messages_sent_with_tracking(sink, news, client):
    """Half the list refused tracking: their opens can never be seen, so a rate over everyone
    sent read half what it was (the report, the dashboard and an A/B test's figures)."""
    ada, bob, cy, dee = subscribers(news, 4)
    refuse_tracking(bob)
    refuse_tracking(cy)
    campaign = sending_campaign(news, body=BODY)
    deliver_pending()
    tracked = dict(
        Delivery.objects.filter(campaign=campaign).values_list("contact__email", "tracked")
    )
    assert tracked == {ada.email: True, bob.email: False, cy.email: False, dee.email: True}
    ada_delivery = Delivery.objects.get(campaign=campaign, contact=ada)
    record_events([NewEvent(ada_delivery.pk, "open", timezone.now() - timedelta(minutes=5))])

    report = campaign_report(campaign)
    assert (report.sent, report.tracked, report.untracked) == (4, 2, 2)
    assert report.open_rate == pytest.approx(1 / 2)
    assert report.click_rate == 0
    client.force_login(make_operator("ana", "analyst"))
    html = client.get(f"/campaigns/{campaign.pk}/report/").content.decode()
    assert "percentages are of the 2 messages sent with tracking; 2 went without it" in html
    Campaign.objects.filter(pk=campaign.pk).update(started_at=timezone.now())  # as a send sets
    (recent,) = dashboard_summary().recent
    assert recent.open_rate == pytest.approx(1 / 2)


@pytest.fixture
def opt_in_policy(tmp_path, settings):
    source = Path(django_settings.TIDINGS_POLICY).read_text(encoding="utf-8")
    text = source.replace("tracking_needs_consent = false", "tracking_needs_consent = true")
    assert text != source
    file = tmp_path / "policy.toml"
    file.write_text(text, encoding="utf-8")
    settings.TIDINGS_POLICY = file
    load_policy(file)
    return file


def test_when_the_policy_needs_consent_only_people_who_allowed_it_are_tracked(
    sink, news, opt_in_policy, client
):
    ada, bob = subscribers(news, 2)
    # Ada allows it on her preference page and confirms it from her mailbox (a consent event,
    # like every other choice; a grant from the page alone waits for that click).
    page = preferences_url(ada).removeprefix(django_settings.TIDINGS_BASE_URL)
    form = {"name": ada.name, "company": "", "phone": "", "job_title": "", "tracking": "on"}
    form[f"list_{news.pk}"] = "on"
    assert client.post(page, form).status_code == 303
    deliver_pending()
    (confirmation,) = sink.to(ada.email)
    text = confirmation.message.get_body(("plain",)).get_content()
    link = re.search(re.escape(django_settings.TIDINGS_BASE_URL) + r"/c/\S+", text)
    assert link, text
    assert client.post(
        link.group(0).removeprefix(django_settings.TIDINGS_BASE_URL)
    ).status_code in (
        200,
        302,
        303,
    )
    assert ConsentEvent.objects.filter(
        contact=ada, purpose="newsletter.tracking", action="granted"
    ).exists()
    sink.received.clear()
    sending_campaign(news, body=BODY)
    deliver_pending()
    assert PIXEL.search(html_of(sink, ada))
    assert not PIXEL.search(html_of(sink, bob))


def test_when_the_policy_does_not_track_nobody_is_tracked(sink, news, tmp_path, settings):
    source = Path(django_settings.TIDINGS_POLICY).read_text(encoding="utf-8")
    text = re.sub(r'^tracking = ".*$', "", source, count=1, flags=re.M)
    file = tmp_path / "policy.toml"
    file.write_text(text, encoding="utf-8")
    settings.TIDINGS_POLICY = file
    load_policy(file)
    (ada,) = subscribers(news, 1)
    sending_campaign(news, body=BODY)
    deliver_pending()
    html = html_of(sink, ada)
    assert "/t/" not in html


# --- the endpoints -------------------------------------------------------------------------------
BROWSER = "Mozilla/5.0 (X11; Linux x86_64; rv:128.0) Gecko/20100101 Firefox/128.0"


@pytest.fixture
def mailed():
    """A campaign sent an hour ago to three people, with two links."""
    campaign, deliveries = sent_campaign(people=3)
    TrackedLink.objects.create(campaign=campaign, index=0, url="https://example.net/launch")
    TrackedLink.objects.create(campaign=campaign, index=1, url="https://docs.example.net/")
    return campaign, deliveries


def counter(campaign, kind, machine=False, link=-1):
    row = EventCounter.objects.filter(
        campaign=campaign, kind=kind, machine=machine, link=link, bucket=0
    ).first()
    return (row.total, row.people) if row else (0, 0)


def test_the_pixel_is_a_small_gif_that_is_never_cached_and_sets_no_cookie(client, mailed):
    campaign, (d, *_) = mailed
    response = client.get(path_of(make_token(d.pk, campaign.pk), "o"), HTTP_USER_AGENT=BROWSER)
    assert response.status_code == 200
    assert response["Content-Type"] == "image/gif"
    assert response.content.startswith(b"GIF89a") and len(response.content) < 100
    assert "no-store" in response["Cache-Control"] and "no-cache" in response["Cache-Control"]
    assert not response.cookies
    assert "Set-Cookie" not in response


def test_an_open_is_written_only_when_the_buffer_is_flushed(client, mailed):
    campaign, (d, *_) = mailed
    client.get(path_of(make_token(d.pk, campaign.pk), "o"), HTTP_USER_AGENT=BROWSER)
    assert not Event.objects.exists()
    ingest.flush()
    event = Event.objects.get()
    assert (event.delivery_id, event.kind, event.machine) == (d.pk, "open", False)
    assert counter(campaign, "open") == (1, 1)


def test_a_click_redirects_to_the_campaigns_link_and_is_counted(client, mailed):
    campaign, (d, *_) = mailed
    response = client.get(path_of(make_token(d.pk, campaign.pk, 1)), HTTP_USER_AGENT=BROWSER)
    assert response.status_code == 302
    assert response["Location"] == "https://docs.example.net/"
    assert not response.cookies
    ingest.flush()
    assert counter(campaign, "click") == (1, 1)
    assert counter(campaign, "click", link=1) == (1, 1)


def test_a_click_on_a_link_with_non_ascii_characters_redirects_with_an_ascii_location(
    client, mailed
):
    """The fast path in front of Django sent the link's raw UTF-8 in the Location header."""
    from tidings.campaigns.tracking_wsgi import with_tracking_fast_path

    campaign, (d, *_) = mailed
    TrackedLink.objects.create(campaign=campaign, index=2, url="https://例え.jp/パス?q=ü#frag")
    path = path_of(make_token(d.pk, campaign.pk, 2))
    by_django = client.get(path, HTTP_USER_AGENT=BROWSER)["Location"]  # caches the links
    assert by_django == "https://%E4%BE%8B%E3%81%88.jp/%E3%83%91%E3%82%B9?q=%C3%BC#frag"
    answered = []
    app = with_tracking_fast_path(lambda environ, start: pytest.fail("not the fast path"))
    environ = {"PATH_INFO": path, "REQUEST_METHOD": "GET", "HTTP_USER_AGENT": BROWSER}
    app(environ, lambda status, headers: answered.append((status, dict(headers))))
    ((status, headers),) = answered
    assert status == "302 Found"
    assert headers["Location"] == by_django


def test_mail_sent_before_a_person_refused_tracking_records_nothing_about_them(client, mailed):
    """The pixel and tracked links of a message sent while they allowed it still reach us after
    they refused on their preference page: the link must still work, but nothing is kept."""
    campaign, (refused, allowed, _) = mailed
    refuse_tracking(refused.contact)
    opened = client.get(path_of(make_token(refused.pk, campaign.pk), "o"), HTTP_USER_AGENT=BROWSER)
    clicked = client.get(path_of(make_token(refused.pk, campaign.pk, 0)), HTTP_USER_AGENT=BROWSER)
    client.get(path_of(make_token(allowed.pk, campaign.pk), "o"), HTTP_USER_AGENT=BROWSER)
    ingest.flush()

    assert opened.status_code == 200 and clicked.status_code == 302
    assert clicked["Location"] == "https://example.net/launch"
    assert list(Event.objects.values_list("delivery_id", "kind")) == [(allowed.pk, "open")]
    assert counter(campaign, "open") == (1, 1)
    assert counter(campaign, "click") == (0, 0)


def test_a_person_is_counted_once_however_many_proxies_prefetch_their_mail(client, mailed):
    campaign, (d, *_) = mailed
    pixel = path_of(make_token(d.pk, campaign.pk), "o")
    client.get(pixel, HTTP_USER_AGENT="Mozilla/5.0")  # Apple Mail Privacy Protection
    gmail = (
        "Mozilla/5.0 (Windows NT 5.1; rv:11.0) Gecko Firefox/11.0 (via ggpht.com GoogleImageProxy)"
    )
    client.get(pixel, HTTP_USER_AGENT=gmail)
    client.get(pixel, HTTP_USER_AGENT=gmail)
    client.get(pixel, HTTP_USER_AGENT=BROWSER)
    client.get(pixel, HTTP_USER_AGENT=BROWSER)
    ingest.flush()
    assert counter(campaign, "open") == (2, 1)
    assert counter(campaign, "open", machine=True) == (3, 1)


@pytest.mark.parametrize(
    "method, agent",
    [
        ("head", BROWSER),
        ("get", "Mozilla/5.0 (compatible; Barracuda Sentinel)"),
        ("get", "python-requests/2.32"),
        ("get", ""),
    ],
)
def test_link_checkers_and_scanners_click_as_machines(client, mailed, method, agent):
    campaign, (d, *_) = mailed
    getattr(client, method)(path_of(make_token(d.pk, campaign.pk, 0)), HTTP_USER_AGENT=agent)
    ingest.flush()
    assert counter(campaign, "click") == (0, 0)
    assert counter(campaign, "click", machine=True) == (1, 1)


def test_a_click_within_seconds_of_delivery_is_a_scanner(client):
    campaign, (d,) = sent_campaign(people=1, sent_ago=timedelta(seconds=2))
    TrackedLink.objects.create(campaign=campaign, index=0, url="https://example.net/")
    client.get(path_of(make_token(d.pk, campaign.pk, 0)), HTTP_USER_AGENT=BROWSER)
    ingest.flush()
    assert counter(campaign, "click", machine=True) == (1, 1)


def test_every_link_clicked_at_once_is_a_scanner(client):
    campaign, (d, other) = sent_campaign(people=2)
    for i in range(3):
        TrackedLink.objects.create(campaign=campaign, index=i, url=f"https://example.net/{i}")
    for i in range(3):
        client.get(path_of(make_token(d.pk, campaign.pk, i)), HTTP_USER_AGENT=BROWSER)
    client.get(path_of(make_token(other.pk, campaign.pk, 0)), HTTP_USER_AGENT=BROWSER)
    ingest.flush()
    assert counter(campaign, "click", machine=True) == (3, 1)
    assert counter(campaign, "click") == (1, 1)


def test_a_forged_or_altered_token_gets_the_404_page(client, mailed):
    campaign, (d, *_) = mailed
    good = make_token(d.pk, campaign.pk, 0)
    altered = good[:-1] + ("A" if good[-1] != "A" else "B")
    other_delivery = make_token(d.pk + 1, campaign.pk, 0)[:14] + good[14:]
    for path in (
        path_of(altered),
        path_of(other_delivery),
        path_of("not-a-token"),
        path_of("A" * 35),
        path_of(good, "o"),  # a click token is not a pixel
        path_of(make_token(d.pk, campaign.pk), "c"),  # nor a pixel token a link
        path_of(make_token(d.pk, campaign.pk, 7)),  # a link the campaign does not have
    ):
        response = client.get(path, HTTP_USER_AGENT=BROWSER)
        assert response.status_code == 404, path
        assert b"<html" in response.content.lower()
    ingest.flush()
    assert not Event.objects.exists()


def test_a_click_never_redirects_outside_its_own_campaign(client, mailed):
    campaign, (d, *_) = mailed
    other, _ = sent_campaign(people=1)
    TrackedLink.objects.create(campaign=other, index=5, url="https://elsewhere.example/")
    response = client.get(path_of(make_token(d.pk, campaign.pk, 5)), HTTP_USER_AGENT=BROWSER)
    assert response.status_code == 404


def test_a_click_for_a_deleted_delivery_still_redirects_and_records_nothing(client, mailed):
    campaign, (d, *_) = mailed
    token = make_token(d.pk, campaign.pk, 0)
    Delivery.objects.filter(pk=d.pk).delete()
    response = client.get(path_of(token), HTTP_USER_AGENT=BROWSER)
    assert response.status_code == 302
    ingest.flush()
    assert not Event.objects.exists()


def test_a_click_on_a_link_with_an_ampersand_goes_to_the_real_address(sink, news, client):
    (ada,) = subscribers(news, 1)
    sending_campaign(news, body=BODY)
    deliver_pending()
    token = TRACKED.findall(html_of(sink, ada))[0]
    response = client.get(path_of(token), HTTP_USER_AGENT=BROWSER)
    assert response["Location"] == "https://example.net/launch?utm=mail&x=1"
    assert OPEN == 0xFFFF


# --- the fast path in front of Django (tidings.wsgi) --------------------------------------------
def wsgi_get(path: str, method: str = "GET", agent: str = BROWSER):

    from tidings.wsgi import application

    answer = {}

    def start_response(status, headers):
        answer["status"] = status
        answer["headers"] = dict(headers)

    # As Django's test client does: the test's database connection must outlive the request.
    from django.core.signals import request_finished, request_started
    from django.db import close_old_connections

    request_started.disconnect(close_old_connections)
    request_finished.disconnect(close_old_connections)
    try:
        body = _call(application, path, method, agent, start_response)
    finally:
        request_started.connect(close_old_connections)
        request_finished.connect(close_old_connections)
    return answer["status"], answer["headers"], body


def _call(application, path, method, agent, start_response) -> bytes:
    import io

    return b"".join(
        application(
            {
                "REQUEST_METHOD": method,
                "PATH_INFO": path,
                "SERVER_NAME": "127.0.0.1",
                "SERVER_PORT": "80",
                "HTTP_HOST": "127.0.0.1",
                "HTTP_USER_AGENT": agent,
                "wsgi.input": io.BytesIO(b""),
                "wsgi.url_scheme": "http",
                "wsgi.errors": io.StringIO(),
            },
            start_response,
        )
    )


def test_the_server_answers_pixels_and_clicks_the_same_way_before_django(mailed):
    campaign, (d, *_) = mailed
    status, headers, body = wsgi_get(path_of(make_token(d.pk, campaign.pk), "o"))
    assert status == "200 OK" and body.startswith(b"GIF89a")
    assert headers["Content-Type"] == "image/gif" and "no-store" in headers["Cache-Control"]
    assert "Set-Cookie" not in headers
    click = path_of(make_token(d.pk, campaign.pk, 1))
    for _ in range(2):  # the first loads the campaign's links through Django, then it is cached
        status, headers, _ = wsgi_get(click)
        assert status.startswith("302") and headers["Location"] == "https://docs.example.net/"
        assert "Set-Cookie" not in headers
    wsgi_get(click, method="HEAD")
    ingest.flush()
    assert counter(campaign, "open") == (1, 1)
    assert counter(campaign, "click") == (2, 1)
    assert counter(campaign, "click", machine=True) == (1, 1)


def test_before_django_a_forged_token_still_gets_the_404_page(mailed):
    campaign, (d, *_) = mailed
    good = make_token(d.pk, campaign.pk, 0)
    status, _, body = wsgi_get(path_of(good[:-2] + "zz"))
    assert status.startswith("404") and b"<html" in body.lower()
    ingest.flush()
    assert not Event.objects.exists()


def test_the_privacy_notice_says_how_tracking_works_and_how_to_refuse_it(client):
    text = client.get("/privacy").content.decode()
    assert "tiny image" in text and "never your IP address" in text
    assert "You can refuse this tracking at any time on the preference page" in text


def test_the_privacy_notice_says_tracking_needs_permission_when_the_policy_says_so(
    client, opt_in_policy
):
    text = client.get("/privacy").content.decode()
    assert "but only if you allow it in your email preferences" in text
    assert "without your permission we do not track" in text


def test_while_redis_is_unreachable_clicks_and_opens_still_answer_and_are_counted(
    client, mailed, settings, caplog, monkeypatch
):
    """Redis down (a restart, a full disk): every tracked link in every mail answered 500, so
    readers could not reach what they clicked.  The rows wait in the web process instead."""
    settings.TIDINGS_REDIS_URL = "redis://127.0.0.1:1/0"  # nothing listens on port 1
    monkeypatch.setattr(ingest, "_unreachable_logged", 0.0)
    campaign, (d, e, _) = mailed

    click = client.get(path_of(make_token(d.pk, campaign.pk, 1)), HTTP_USER_AGENT=BROWSER)
    opened = client.get(path_of(make_token(e.pk, campaign.pk), "o"), HTTP_USER_AGENT=BROWSER)

    assert (click.status_code, click["Location"]) == (302, "https://docs.example.net/")
    assert opened.status_code == 200
    ingest.flush()
    assert counter(campaign, "click", link=1) == (1, 1)
    assert counter(campaign, "open") == (1, 1)
    warnings = [r.getMessage() for r in caplog.records if r.name == "tidings.lib.ingest"]
    assert len(warnings) == 1 and "Redis is unreachable" in warnings[0]
