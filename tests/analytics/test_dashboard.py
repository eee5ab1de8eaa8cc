"""The statistics dashboard: from daily rollups, for any range, as charts and tables."""

from __future__ import annotations

import html
from datetime import UTC, date, datetime, timedelta

import pytest
import time_machine

from tests.operators import make_operator
from tests.pages import other_scripts
from tidings.analytics.models import DailyRollup, PageView
from tidings.analytics.rollups import rollup_day, rollup_recent
from tidings.rights.retention import run_retention

pytestmark = pytest.mark.django_db


def view(at: str, path="/", *, visitor="v1", referrer="", campaign="", browser="Firefox", **kw):
    return PageView.objects.create(
        created=datetime.fromisoformat(at).replace(tzinfo=UTC),
        site="example.co.uk",
        path=path,
        referrer=referrer,
        utm_campaign=campaign,
        browser=browser,
        browser_version="128",
        os="Linux",
        device="desktop",
        visitor=visitor,
        **kw,
    )


@pytest.fixture
def two_days():
    view("2026-11-24 09:00", "/", visitor="a", referrer="duckduckgo.com")
    view("2026-11-24 10:00", "/pricing", visitor="a")
    view("2026-11-24 11:00", "/pricing", visitor="b", campaign="autumn", browser="Chrome")
    view("2026-11-25 08:00", "/pricing", visitor="c", campaign="autumn")
    view("2026-11-25 23:59:59", "/", visitor="", referrer="duckduckgo.com")  # no IP: no hash
    with time_machine.travel("2026-11-25 12:00Z", tick=False):
        rollup_recent()


def rollup(day, dimension, value=""):
    period = "month" if day.endswith("-01") else "day"
    row = DailyRollup.objects.get(period=period, day=day, dimension=dimension, value=value)
    return row.views, row.visitors


def test_a_day_rolls_up_into_views_and_distinct_visitors_per_dimension(two_days):
    assert rollup("2026-11-24", "total") == (3, 2)
    assert rollup("2026-11-24", "page", "/pricing") == (2, 2)
    assert rollup("2026-11-24", "referrer", "duckduckgo.com") == (1, 1)
    assert rollup("2026-11-24", "campaign", "autumn") == (1, 1)
    assert rollup("2026-11-24", "browser", "Chrome") == (1, 1)
    assert rollup("2026-11-25", "total") == (2, 1)
    assert not DailyRollup.objects.filter(dimension="campaign", value="").exists()


def test_rolling_a_day_up_again_does_not_count_twice(two_days):
    view("2026-11-25 20:00", "/late", visitor="d")  # arrived late through the ingest buffer
    rollup_day(date(2026, 11, 25))
    rollup_day(date(2026, 11, 25))
    assert rollup("2026-11-25", "total") == (3, 2)


def test_rollups_outlive_the_page_views_the_retention_sweep_removes(two_days):
    with time_machine.travel("2028-12-25 00:00Z", tick=False):
        run = run_retention()
    assert run.counts["page_view"] == 3  # 24 November 2026 + 25 months is over; the 25th's not
    assert PageView.objects.count() == 2
    assert rollup("2026-11-24", "total") == (3, 2)


def test_a_visit_reaches_the_dashboard_within_five_minutes(client):
    """An operator who has just pasted the snippet visits their site and opens the dashboard:
    with an hourly rollup it said "0 page views" for up to an hour."""
    from django_tasks_db.models import DBTaskResult

    from tidings.analytics.tasks import roll_up
    from tidings.web import scheduler

    client.force_login(make_operator("ana", "analyst"))
    with time_machine.travel("2026-11-25 10:00Z", tick=False):
        scheduler.run_due()  # the worker's first round: every job runs once
        DBTaskResult.objects.all().delete()
        view("2026-11-25 10:00:30", "/pricing")
    with time_machine.travel("2026-11-25 10:05Z", tick=False):
        assert "analytics.rollups" in scheduler.run_due()
        roll_up.call()
        page = client.get("/analytics/?start=2026-11-25&end=2026-11-25").content.decode()
    assert "<strong>1</strong> page views" in page
    assert "Today's figures are brought up to date every 5 minutes." in html.unescape(page)


def test_the_dashboard_shows_each_dimension_as_a_chart_and_a_table(client, two_days):
    client.force_login(make_operator("ana", "analyst"))

    response = client.get("/analytics/?start=2026-11-24&end=2026-11-25")

    assert response.status_code == 200
    page = html.unescape(response.content.decode())
    assert "<strong>5</strong> page views and <strong>3</strong> daily visitors" in page
    assert '<svg viewBox="0 0 720 240" role="img"' in page
    assert (
        '<th scope="row">Tue 24 Nov 2026</th><td class="num">3</td><td class="num">2</td>' in page
    )
    for title in ("Top pages", "Referrers", "Newsletter campaigns (utm_campaign)", "Browsers"):
        assert f"<caption>{title}, by page views</caption>" in page
    assert '<th scope="row">/pricing</th><td class="num">3</td><td class="num">3</td>' in page
    assert '<th scope="row">autumn</th><td class="num">2</td>' in page
    assert '<th scope="row">(direct or unknown)</th>' in page
    assert "<title>/pricing: 3</title>" in page
    assert not other_scripts(page)  # drawn on the server: no JavaScript, nothing fetched


def test_the_dashboard_covers_any_range_and_shows_empty_days_as_zero(client, two_days):
    client.force_login(make_operator("ana", "analyst"))
    page = client.get("/analytics/?start=2026-11-20&end=2026-11-24").content.decode()
    assert '<th scope="row">Fri 20 Nov 2026</th><td class="num">0</td>' in page
    assert "<strong>3</strong> page views" in page


@pytest.mark.parametrize(
    ("query", "error"),
    [
        ("start=2026-11-25&end=2026-11-01", "“From” must be on or before “To”."),
        ("start=2020-01-01&end=2026-11-01", "Choose a range of at most 800 days."),
        ("start=yesterday", "Enter a valid date."),
    ],
)
def test_a_bad_range_is_explained_on_the_page(client, query, error):
    client.force_login(make_operator("ana", "analyst"))
    response = client.get(f"/analytics/?{query}")
    assert response.status_code == 400
    assert error in html.unescape(response.content.decode())


def test_the_dashboard_reads_a_fixed_number_of_queries_however_long_the_range(
    client, django_assert_max_num_queries
):
    client.force_login(make_operator("ana", "analyst"))
    for n in range(60):
        day = date(2026, 9, 1) + timedelta(days=n)
        DailyRollup.objects.create(
            day=day, site="example.co.uk", dimension="total", value="", views=n, visitors=n
        )
    with django_assert_max_num_queries(14):
        client.get("/analytics/?start=2026-09-01&end=2026-10-30")


@pytest.mark.parametrize("url", ["/analytics/", "/analytics/snippet"])
def test_statistics_pages_need_the_reports_permission(client, url):
    response = client.get(url)
    assert response.status_code == 302
    assert response["Location"].startswith("/login/")
    stranger = make_operator("nobody", "no_role")
    client.force_login(stranger)
    assert client.get(url).status_code == 403
    for role in ("analyst", "editor", "privacy_officer", "owner"):
        client.force_login(make_operator(f"op_{role}", role))
        assert client.get(url).status_code == 200, role


def test_an_operator_can_stop_counting_their_own_browser_and_start_again(client):
    client.force_login(make_operator("ana", "analyst"))
    response = client.post("/analytics/dont-count-me", {"count": "no"})
    assert response.status_code == 302
    cookie = response.cookies["tidings_dont_count"]
    assert cookie.value == "1"
    assert cookie["httponly"]
    assert "This browser's visits are not counted." in client.get("/analytics/").content.decode()
    response = client.post("/analytics/dont-count-me", {"count": "yes"})
    assert response.cookies["tidings_dont_count"]["max-age"] == 0


def test_the_dont_count_cookie_goes_with_the_script_from_the_companys_own_site(client, settings):
    """The script posts from the company's website, another site than tidings': a Lax cookie
    is not sent with it, so the operator's visits were counted all the same."""
    settings.USE_TLS = True
    client.force_login(make_operator("ana", "analyst"))
    cookie = client.post("/analytics/dont-count-me", {"count": "no"}, secure=True).cookies[
        "tidings_dont_count"
    ]
    assert (cookie["samesite"], cookie["secure"]) == ("None", True)


def test_the_snippet_page_gives_the_banner_the_script_and_the_pixel(client):
    client.force_login(make_operator("ana", "analyst"))
    page = html.unescape(client.get("/analytics/snippet").content.decode())
    assert '<script src="http://127.0.0.1:8000/static/analytics/banner.js" defer></script>' in page
    assert (
        '<script src="http://127.0.0.1:8000/static/analytics/a.js" data-consent="analytics" '
        "defer></script>"
    ) in page
    assert '<img src="http://127.0.0.1:8000/a/p.gif" alt="" width="1" height="1"' in page
    assert 'window.tidings.consent.allowed("analytics")' in page


def test_the_snippet_page_says_which_sites_are_counted(client, settings):
    """A page on a host not counted is silently refused: someone pasting the snippet into a
    site on another host saw "0 page views" and nothing saying why."""
    from tidings.analytics.ingest import _sites

    client.force_login(make_operator("ana", "analyst"))
    page = client.get("/analytics/snippet").content.decode()
    assert "Pages are counted on <strong>127.0.0.1</strong>, <strong>example.co.uk</strong>" in page
    assert "TIDINGS_ANALYTICS_SITES" in page

    settings.TIDINGS_ANALYTICS_SITES = ["shop.example.com"]
    _sites.cache_clear()
    try:
        page = client.get("/analytics/snippet").content.decode()
    finally:
        _sites.cache_clear()
    assert "<strong>shop.example.com</strong>" in page
    assert "<strong>example.co.uk</strong>" not in page


def test_whole_months_are_read_from_month_rows_and_agree_with_the_days(two_days):
    from tidings.analytics import reports

    assert reports.split(date(2026, 10, 15), date(2027, 1, 10)) == (
        [(date(2026, 10, 15), date(2026, 10, 31)), (date(2027, 1, 1), date(2027, 1, 10))],
        (date(2026, 11, 1), date(2026, 12, 1)),
    )
    assert reports.split(date(2026, 11, 3), date(2026, 11, 20)) == (
        [(date(2026, 11, 3), date(2026, 11, 20))],
        None,
    )
    assert rollup("2026-11-01", "page", "/pricing") == (3, 3)  # the month row
    by_month = reports.top("page", date(2026, 10, 15), date(2026, 12, 10))
    by_day = reports.top("page", date(2026, 11, 2), date(2026, 11, 29))
    assert [(r.value, r.views, r.visitors) for r in by_month] == [
        (r.value, r.views, r.visitors) for r in by_day
    ]


def test_days_are_the_controllers_days_not_utcs(settings):
    # A company in New York reads 23:30 on the 24th as the 24th, though it is the 25th in UTC.
    settings.TIME_ZONE = "America/New_York"
    view("2026-11-24 14:00", "/", visitor="a")  # 09:00 on the 24th in New York
    view("2026-11-25 04:30", "/late", visitor="a")  # 23:30 on the 24th
    view("2026-11-25 05:30", "/early", visitor="b")  # 00:30 on the 25th
    with time_machine.travel("2026-11-25 18:00Z", tick=False):
        rollup_recent()
    assert rollup("2026-11-24", "total") == (2, 1)
    assert rollup("2026-11-24", "page", "/late") == (1, 1)
    assert rollup("2026-11-25", "total") == (1, 1)
    assert rollup("2026-11-01", "total") == (3, 2)
