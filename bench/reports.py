"""Benchmark: the campaign report and the dashboard at 1M deliveries / 5M events (PostgreSQL).

    .venv/bin/python -m bench.reports [--deliveries 1000000] [--events 5000000] [--runs 5]

A fresh PostgreSQL database ``tidings_bench_reports_<pid>`` is made beside ``--database-url``
(default: postgres on 127.0.0.1) and dropped at the end.  Generated in SQL (``generate_series``):
``--deliveries`` contacts at 60 domains and one finished campaign sent to all of them (1% failed),
``--events`` events over its first week (opens, a quarter of them by machines, clicks on ten
links, a few bounces and complaints), and the counters those events make (as ``campaigns.events``
keeps them); nine small campaigns and 100,000 subscriptions over 60 days for the dashboard.
Then ``VACUUM ANALYZE``.

Timed, best and median of ``--runs``, server time through Django's test client (view, queries,
template; no network) as an analyst:
- the report page, the first time (it counts the recipient domains once and stores them) and
  after;
- the report's CSV;
- the dashboard, and apart its two parts: the campaign figures (``reports.dashboard_summary``)
  and the audience counts it already showed (``audience.stats.audience_summary``);
- the baseline it is measured against, in the same run: what a report would cost without the
  counters — ``SELECT kind, machine, count(*), count(DISTINCT delivery_id) FROM events WHERE
  campaign_id = …`` over the campaign's events.
The target is < 300 ms for the report and the dashboard.
"""

from __future__ import annotations

import argparse
import os
import statistics
import time

from bench._report import report as result
from bench.common import Database


def step(label: str, sql: str, params: list | None = None) -> None:
    from django.db import connection

    started = time.perf_counter()
    with connection.cursor() as cursor:
        cursor.execute(sql, params)  # None: no placeholders, a % is a %
    print(f"  {label:<46} {time.perf_counter() - started:6.1f} s", flush=True)


def generate(deliveries: int, events: int) -> int:
    """The data; returns the big campaign's id."""
    from django.db import connection

    print(f"generating {deliveries:,} deliveries and {events:,} events:")
    step(
        "contacts",
        # email_key: these addresses are lower-case ASCII, their own key (emails.email_key).
        """INSERT INTO audience_contact (email, email_key, name, phone, company, job_title,
               work_address, attributes, created_at, updated_at)
           SELECT 'reader' || i || '@mail' || (i %% 60) || '.example',
               'reader' || i || '@mail' || (i %% 60) || '.example', '', '', '', '', '',
               '{}', now() - interval '90 days', now()
           FROM generate_series(1, %s) i""",
        [deliveries],
    )
    from datetime import timedelta

    from django.utils import timezone

    from tidings.campaigns.models import Campaign

    for i in range(1, 11):  # through the ORM: every column the model has gets its default
        started_at = timezone.now() - timedelta(days=i)
        Campaign.objects.create(
            name=f"Campaign {i}", status="finished", subject="News", body="Hello",
            topic="product news", created_at=started_at, started_at=started_at,
            finished_at=started_at + timedelta(hours=1),
        )  # fmt: skip
    with connection.cursor() as cursor:
        cursor.execute("SELECT id FROM campaigns_campaign WHERE name = 'Campaign 1'")
        big = cursor.fetchone()[0]
    step(
        "deliveries (1% failed)",
        """INSERT INTO campaigns_delivery (campaign_id, contact_id, status, attempts, leased_by,
               sent_at, message_id, error, transport)
           SELECT %s, c.id, CASE WHEN c.id %% 100 = 0 THEN 'failed' ELSE 'sent' END, 1, '',
               now() - interval '1 day' - interval '8 days', '', '', 'default'
           FROM audience_contact c""",
        [big],
    )
    step(
        "deliveries of nine small campaigns",
        """INSERT INTO campaigns_delivery (campaign_id, contact_id, status, attempts, leased_by,
               sent_at, message_id, error, transport)
           SELECT k.id, c.id, 'sent', 1, '', k.started_at, '', '', 'default'
           FROM campaigns_campaign k, audience_contact c
           WHERE k.id <> %s AND c.id <= 2000""",
        [big],
    )
    step(
        "links",
        """INSERT INTO campaigns_trackedlink (campaign_id, index, url)
           SELECT %s, i, 'https://example.net/page-' || i FROM generate_series(0, 9) i""",
        [big],
    )
    # Loaded without its indexes and foreign-key triggers, which are put back after (the same
    # rows; only quicker to make).
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT indexname, indexdef FROM pg_indexes WHERE tablename = 'campaigns_event' "
            "AND indexname NOT LIKE '%%_pkey'"
        )
        indexes = cursor.fetchall()
        for name, _ in indexes:
            cursor.execute(f'DROP INDEX "{name}"')
        cursor.execute("ALTER TABLE campaigns_event DISABLE TRIGGER ALL")
    # Events: event n goes to delivery (n * 7919 mod D), so people repeat; one in four opens by
    # a machine; every tenth event a click; a handful of bounces and complaints.
    step(
        "events",
        """INSERT INTO campaigns_event (delivery_id, campaign_id, kind, at, link, machine)
           SELECT d.first + (n::bigint * 7919) %% d.size, %s,
               CASE WHEN n %% 10 = 0 THEN 'click'
                    WHEN n %% 5000 = 1 THEN 'bounce_hard'
                    WHEN n %% 5000 = 2 THEN 'bounce_soft'
                    WHEN n %% 20000 = 3 THEN 'complaint'
                    ELSE 'open' END,
               now() - interval '9 days' + (n %% 604800) * interval '1 second',
               CASE WHEN n %% 10 = 0 THEN (n / 10) %% 10 END,
               n %% 4 = 0
           FROM generate_series(1, %s) n,
               (SELECT min(id) AS first, count(*) AS size FROM campaigns_delivery
                WHERE campaign_id = %s) d""",
        [big, events, big],
    )
    started = time.perf_counter()
    with connection.cursor() as cursor:
        cursor.execute("ALTER TABLE campaigns_event ENABLE TRIGGER ALL")
        for _, definition in indexes:
            cursor.execute(definition)
    print(f"  {'indexes of the events':<46} {time.perf_counter() - started:6.1f} s")
    step(
        "counters, as campaigns.events keeps them",
        """INSERT INTO campaigns_eventcounter (campaign_id, kind, machine, link, bucket, total,
               people)
           SELECT campaign_id, kind, machine, -1, 0, count(*), count(DISTINCT delivery_id)
           FROM campaigns_event GROUP BY campaign_id, kind, machine
           UNION ALL
           SELECT campaign_id, kind, machine, link, 0, count(*), count(DISTINCT delivery_id)
           FROM campaigns_event WHERE link IS NOT NULL GROUP BY campaign_id, kind, machine, link
           UNION ALL
           SELECT campaign_id, kind, machine, -1, (extract(epoch FROM at) / 3600)::int, count(*), 0
           FROM campaigns_event
           GROUP BY campaign_id, kind, machine, (extract(epoch FROM at) / 3600)::int""",
    )
    step(
        "a list and 100,000 subscriptions over 60 days",
        """WITH l AS (
               INSERT INTO audience_mailinglist (name, topic, description, is_public, created_at)
               VALUES ('Product news', 'product news', '', true, now()) RETURNING id)
           INSERT INTO audience_subscription (contact_id, mailing_list_id, status, created_at,
               confirmed_at, unsubscribed_at, updated_at)
           SELECT c.id, l.id, CASE WHEN c.id % 9 = 0 THEN 'unsubscribed' ELSE 'confirmed' END,
               now() - (c.id % 60) * interval '1 day', now() - (c.id % 60) * interval '1 day',
               CASE WHEN c.id % 9 = 0 THEN now() - (c.id % 30) * interval '1 day' END, now()
           FROM audience_contact c, l WHERE c.id <= 100000""",
    )
    with connection.cursor() as cursor:
        started = time.perf_counter()
        cursor.execute("VACUUM ANALYZE")
        print(f"  {'VACUUM ANALYZE':<46} {time.perf_counter() - started:6.1f} s")
    return big


def timed(label: str, action, runs: int, first: bool = False) -> float:
    times = []
    if first:
        started = time.perf_counter()
        action()
        print(f"  {label + ' (first)':<40} {1000 * (time.perf_counter() - started):8.1f} ms")
    for _ in range(runs):
        started = time.perf_counter()
        action()
        times.append(time.perf_counter() - started)
    best, median = min(times) * 1000, statistics.median(times) * 1000
    print(f"  {label:<40} {best:8.1f} ms best  {median:8.1f} ms median")
    return median


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument(
        "--database-url",
        default=os.environ.get("DATABASE_URL") or "postgres://postgres@127.0.0.1",
    )
    parser.add_argument("--deliveries", type=int, default=1_000_000)
    parser.add_argument("--events", type=int, default=5_000_000)
    parser.add_argument("--runs", type=int, default=5)
    args = parser.parse_args()
    db = Database("reports", args.database_url, allowed_hosts="testserver,127.0.0.1")
    db.create()
    try:
        big = generate(args.deliveries, args.events)
        from django.db import connection
        from django.test import Client
        from tests.operators import make_operator

        client = Client()
        client.force_login(make_operator("analyst", "analyst"))

        def get(path: str) -> None:
            response = client.get(path)
            assert response.status_code == 200, (path, response.status_code)
            if getattr(response, "streaming", False):
                b"".join(response.streaming_content)

        def baseline() -> None:
            with connection.cursor() as cursor:
                cursor.execute(
                    "SELECT kind, machine, count(*), count(DISTINCT delivery_id) "
                    "FROM campaigns_event WHERE campaign_id = %s GROUP BY kind, machine",
                    [big],
                )
                cursor.fetchall()

        print(f"timings (runs: {args.runs}):")
        base = timed("baseline: COUNT over the events", baseline, max(1, args.runs // 2))
        report = timed("report page", lambda: get(f"/campaigns/{big}/report/"), args.runs, True)
        csv = timed("report CSV", lambda: get(f"/campaigns/{big}/report.csv"), args.runs)
        dash = timed("dashboard", lambda: get("/"), args.runs)
        from tidings.audience.stats import audience_summary
        from tidings.campaigns.reports import dashboard_summary

        timed("  of which: campaign figures", dashboard_summary, args.runs)
        timed("  of which: audience counts", audience_summary, args.runs)
        print(
            f"  ratio to the baseline: report {report / base:.3f}, CSV {csv / base:.3f}, "
            f"dashboard {dash / base:.3f}"
        )
        for figure, value in (("report page, median", report), ("dashboard, median", dash)):
            result(
                "reports",
                figure,
                value,
                "ms",
                baseline=base,
                baseline_label="a COUNT over the events",
                target=300,
                scale=f"{args.deliveries:,} deliveries, {args.events:,} events",
            )
        print(
            f"  target < 300 ms: report {'met' if report < 300 else 'NOT met'}, "
            f"dashboard {'met' if dash < 300 else 'NOT met'}"
        )
    finally:
        db.drop()


if __name__ == "__main__":
    main()
