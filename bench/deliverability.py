"""Benchmark: what issue 16 adds to starting and confirming a campaign (PostgreSQL).

    .venv/bin/python -m bench.deliverability [--recipients 200000] [--quick]

A fresh database ``tidings_bench_deliverability_<pid>`` beside ``--database-url`` (dropped at the
end):
``--recipients`` contacts confirmed on one list, 1% of them suppressed.  Timed, in the same run:

- baseline: ``populate_deliveries`` (the ``INSERT … SELECT`` every start already does), and
  ``audience_count`` (the "up to" COUNT the campaign page already shows);
- ``assign_variants``: the A/B split of a 20% share between two variants, the rest held;
- ``plan_local_hour``: holding every row until 09:00 in the company's zone;
- ``exact_recipients``: the confirmation page's exact count (every address's HMAC looked up).

Prints each figure, the ratio to its baseline, and the load average.
"""

from __future__ import annotations

import argparse
import os
import time

from bench._report import report
from bench.common import Database


def timed(label: str, function, baseline: float | None = None) -> float:
    started = time.perf_counter()
    function()
    seconds = time.perf_counter() - started
    ratio = f"  ({seconds / baseline:4.1f}× baseline)" if baseline else ""
    print(f"  {label:<52} {seconds:7.2f} s{ratio}", flush=True)
    return seconds


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--recipients", type=int, default=200_000)
    parser.add_argument("--quick", action="store_true", help="20,000 recipients")
    parser.add_argument("--database-url", default="postgres://postgres@127.0.0.1:5432/postgres")
    args = parser.parse_args()
    n = 20_000 if args.quick else args.recipients
    db = Database("deliverability", args.database_url)
    db.create()
    try:
        run(n)
    finally:
        db.drop()
    print(f"load average: {' '.join(f'{x:.2f}' for x in os.getloadavg())}")


def run(n: int) -> None:
    from django.db import connection, transaction
    from django.utils import timezone

    from tidings.audience.emails import email_hmac
    from tidings.audience.models import MailingList, Suppression
    from tidings.campaigns.confirmation import exact_recipients
    from tidings.campaigns.models import ABTest, Campaign, Delivery, Sender, Variant
    from tidings.campaigns.queue import assign_variants, populate_deliveries
    from tidings.campaigns.sendtime import plan_local_hour
    from tidings.campaigns.targeting import audience_count, audience_for

    print(f"generating {n:,} confirmed subscribers (1% suppressed) ...", flush=True)
    news = MailingList.objects.create(name="News", topic="product news")
    with connection.cursor() as cursor:
        cursor.execute(
            # email_key: these addresses are lower-case ASCII, their own key (emails.email_key).
            """INSERT INTO audience_contact (email, email_key, name, phone, company, job_title,
                   work_address, attributes, created_at, updated_at)
               SELECT 'reader' || i || '@example.org', 'reader' || i || '@example.org',
                   '', '', '', '', '', '{}', now(), now()
               FROM generate_series(1, %s) i""",
            [n],
        )
        cursor.execute(
            """INSERT INTO audience_subscription (contact_id, mailing_list_id, status,
                   created_at, confirmed_at, updated_at)
               SELECT id, %s, 'confirmed', now(), now(), now() FROM audience_contact""",
            [news.pk],
        )
        cursor.execute("ANALYZE")
    Suppression.objects.bulk_create(
        [
            Suppression(email_hmac=email_hmac(f"reader{i}@example.org"), reason="manual")
            for i in range(1, n + 1, 100)
        ]
    )
    sender = Sender.objects.create(name="News", email="news@example.co.uk", verified=True)
    campaign = Campaign.objects.create(
        name="Bench", subject="Hi", topic="product news", sender=sender, local_hour=9
    )
    campaign.lists.set([news])
    test = ABTest.objects.create(campaign=campaign, share=20)
    variants = [Variant.objects.create(campaign=campaign, label=x, subject=x).pk for x in "AB"]

    print(f"timings ({n:,} recipients):")
    count = timed("baseline: audience_count (the page's 'up to')", lambda: audience_count(campaign))
    exact = timed(
        "exact_recipients (the confirmation's count)",
        lambda: print(f"    {exact_recipients(campaign)}"),
        count,
    )
    del exact
    with transaction.atomic():
        populate = timed(
            "baseline: populate_deliveries",
            lambda: populate_deliveries(campaign, audience_for(campaign)),
        )
        timed(
            "assign_variants (20% split in two, rest held)",
            lambda: assign_variants(campaign, variants, test.share, test.seed),
            populate,
        )
        local = timed(
            "plan_local_hour (every row held until 09:00)",
            lambda: plan_local_hour(campaign, timezone.now()),
            populate,
        )
    print(f"  rows: {Delivery.objects.filter(campaign=campaign).count():,}")
    report(
        "deliverability",
        "plan_local_hour",
        local,
        "s",
        baseline=populate,
        baseline_label="populate_deliveries",
        scale=f"{n:,} recipients",
    )


if __name__ == "__main__":
    main()
