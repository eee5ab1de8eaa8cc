"""Benchmark: computing /metrics with a million deliveries in the queue table (PostgreSQL).

    .venv/bin/python -m bench.metrics                 # 1,000,000 delivery rows
    .venv/bin/python -m bench.metrics --rows 100000   # quick

A scratch database gets ``--rows`` contacts and one campaign's delivery rows in the mix of a
campaign under way: 60% sent, 35% queued, 1% waiting for a retry, 0.5% being sent, the rest
failed or skipped.  Then, each timed five times (median):

- the baseline: ``SELECT status, count(*) FROM campaigns_delivery GROUP BY status``, what a naive
  metrics endpoint would run (a full pass over the table);
- the collector (``ops.metrics``, no cache): every metric, every query;
- ``GET /metrics`` through the WSGI application with the cache on (what most scrapes cost).

Once right after the rows are written (no VACUUM: the state after a big campaign was queued) and
once after ``VACUUM ANALYZE``.  Figures are printed with the ratio to the baseline.
"""

from __future__ import annotations

import argparse
import statistics
import time
from pathlib import Path

from bench._report import report
from bench.common import Database

TOKEN = "bench-metrics-token"  # noqa: S105 - a scratch database's


def _median_ms(function, repeat: int = 5) -> float:
    times = []
    for _ in range(repeat):
        started = time.perf_counter()
        function()
        times.append((time.perf_counter() - started) * 1000)
    return statistics.median(times)


def _fill(rows: int) -> None:
    from django.db import connection

    from tidings.campaigns.models import Campaign

    with connection.cursor() as cursor:
        cursor.execute(
            # email_key: these addresses are lower-case ASCII, their own key (emails.email_key).
            "INSERT INTO audience_contact (email, email_key, name, phone, company, job_title, "
            "work_address, attributes, created_at, updated_at) "
            "SELECT 'reader' || g || '@example.org', 'reader' || g || '@example.org', "
            "'Reader ' || g, '', '', '', '', '{}', "
            "now(), now() FROM generate_series(1, %s) AS g",
            [rows],
        )
    campaign = Campaign.objects.create(name="Big", subject="Hi", body="Hello", status="sending")
    with connection.cursor() as cursor:
        cursor.execute(
            "INSERT INTO campaigns_delivery (campaign_id, contact_id, status, attempts, "
            "next_attempt_at, leased_by, leased_until, sent_at, message_id, error, transport) "
            "SELECT %s, c.id, "
            "CASE WHEN c.id %% 1000 < 600 THEN 'sent' WHEN c.id %% 1000 < 960 THEN 'queued' "
            "WHEN c.id %% 1000 < 965 THEN 'sending' WHEN c.id %% 1000 < 985 THEN 'failed' "
            "ELSE 'skipped' END, "
            "CASE WHEN c.id %% 1000 BETWEEN 950 AND 959 THEN 1 ELSE 0 END, "
            "CASE WHEN c.id %% 1000 BETWEEN 950 AND 959 THEN now() + interval '10 minutes' END, "
            "CASE WHEN c.id %% 1000 BETWEEN 960 AND 964 THEN 'w1' ELSE '' END, NULL, "
            "CASE WHEN c.id %% 1000 < 600 THEN now() END, '', '', 'default' "
            "FROM audience_contact c",
            [campaign.pk],
        )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--database-url", default="postgres://postgres@127.0.0.1:5432/postgres")
    args = parser.parse_args()

    database = Database(
        "metrics",
        args.database_url,
        TIDINGS_METRICS_TOKEN=TOKEN,
        TIDINGS_METRICS_CACHE_SECONDS="10",
    )
    database.create()
    try:
        from django.db import connection
        from django.test import RequestFactory

        from tidings.ops.metrics import CACHE_KEY, TidingsCollector
        from tidings.wsgi import application

        started = time.perf_counter()
        _fill(args.rows)
        print(
            f"{args.rows:,} contacts and delivery rows written in "
            f"{time.perf_counter() - started:.1f} s"
        )

        def baseline() -> None:
            with connection.cursor() as cursor:
                cursor.execute("SELECT status, count(*) FROM campaigns_delivery GROUP BY status")
                cursor.fetchall()

        def collect() -> None:
            list(TidingsCollector().collect())

        environ = RequestFactory().get("/metrics", HTTP_AUTHORIZATION=f"Bearer {TOKEN}").environ

        def scrape() -> None:
            body = b"".join(application(dict(environ), lambda status, headers: None))
            assert b"tidings_queue_depth" in body

        for label in ("right after the inserts", "after VACUUM ANALYZE"):
            if label.startswith("after"):
                with connection.cursor() as cursor:
                    cursor.execute("VACUUM ANALYZE campaigns_delivery")
            from django.core.cache import cache

            cache.delete(CACHE_KEY)
            base = _median_ms(baseline)
            ours = _median_ms(collect)
            cached = _median_ms(scrape)
            print(f"\n{label} ({args.rows:,} delivery rows):")
            print(f"  baseline GROUP BY status over the table: {base:8.1f} ms")
            print(
                f"  metrics collector, uncached:             {ours:8.1f} ms  "
                f"({ours / base:.2f}× the baseline)"
            )
            print(f"  GET /metrics, cache on (10 s):           {cached:8.2f} ms")
        report(
            "metrics",
            "metrics collector, uncached, after VACUUM ANALYZE",
            ours,
            "ms",
            baseline=base,
            baseline_label="GROUP BY status over the table",
            scale=f"{args.rows:,} delivery rows",
        )
        print(f"\nload average: {Path('/proc/loadavg').read_text().split()[:3]}")
    finally:
        database.drop()


if __name__ == "__main__":
    main()
