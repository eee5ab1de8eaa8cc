"""How long ``count_segment`` takes on a large audience in PostgreSQL.

    .venv/bin/python -m bench.segments [--contacts 1000000] [--events 10000000] [--runs 5]
                                       [--quick] [--explain]

Creates a fresh database ``tidings_bench_segments_<pid>`` on 127.0.0.1 (user postgres, trust
auth), migrates it, fills it in SQL (``generate_series``) with a realistic audience: names drawn by
faker with their real frequencies (six locales), addresses at a few big providers (about two
thirds) and a Zipf tail of 5,000 company domains, a ``plan`` attribute; three lists with about 0.85
subscriptions per contact; ten campaigns sent to the "product news" readers every two weeks and
``--events`` opens and clicks on them (10M by default; one in four by a machine, which engagement
ignores).  The rows go in by SQL, so the contacts' engagement facts are then computed as the
upgrade's migration computes them (``campaigns.engagement.rebuild``, timed).  Then it times
``count_segment`` for the segments below (including the engagement predicates ``opened_in``,
``clicked_in`` and ``received_in``, which read those facts) next to a plain
``Contact.objects.count()`` in the same run; each engagement segment also as the ``EXISTS`` over
the events and deliveries that defines it (what segments ran before the facts: the same count is
checked, and its time is the baseline); and drops the database.  The target is under a second
for each segment at 1M contacts.
``--quick``: 20,000 contacts and 200,000 events, for ``make bench``.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import statistics
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from pathlib import Path

from bench._report import report
from bench.common import scratch_database

SEGMENTS = [
    'list:"product news" and attributes.plan = "pro"',
    'domain:"gmail.com"',
    "domain:{tail_domain}",
    'list:"product news" and created > 2026-01-01',
    'attributes.plan = "pro"',
    "name ^= {common_name}",
    "opened_in(90d)",
    "clicked_in(30d)",
    'list:"product news" and attributes.plan = "pro" and not opened_in(90d)',
    "received_in(30d) and not opened_in(180d)",
]

# Where people's mail is, roughly: a few big providers hold about two thirds of a consumer list;
# the rest is a long tail of company and small-provider domains (Zipf over ``TAIL_DOMAINS``).
PROVIDERS = {
    "gmail.com": 28, "yahoo.com": 7, "hotmail.com": 6, "outlook.com": 5, "icloud.com": 4,
    "gmx.de": 2.5, "web.de": 2, "aol.com": 1.5, "t-online.de": 1.5, "orange.fr": 1.5,
    "free.fr": 1, "btinternet.com": 1, "yahoo.co.uk": 1, "hotmail.co.uk": 1, "libero.it": 0.5,
    "laposte.net": 0.5, "proton.me": 0.5,
}  # fmt: skip
TAIL_DOMAINS = 5_000
POOL = 20_000  # names and domains drawn (with their frequencies) for SQL to index into
CAMPAIGNS = 10  # sent to the "product news" list, one every two weeks


class Population:
    """Names and domains drawn by faker with real frequencies (first names weighted by how common
    they are in each locale), which the SQL generator indexes into: contact ``g`` is
    ``first[1 + g*7919 % n]``, ``last[1 + g*104729 % n]`` at ``domain[1 + g*15485863 % n]``."""

    def __init__(self, seed: int = 7) -> None:
        import random
        import unicodedata

        from faker import Faker

        fake = Faker(["en_US", "en_GB", "de_DE", "fr_FR", "es_ES", "it_IT"])
        Faker.seed(seed)
        rng = random.Random(seed)
        self.first = [fake.first_name() for _ in range(POOL)]
        self.last = [fake.last_name() for _ in range(POOL)]

        def slug(text: str) -> str:
            ascii_text = unicodedata.normalize("NFKD", text).encode("ascii", "ignore").decode()
            return "".join(c for c in ascii_text.lower() if c.isalnum()) or "x"

        self.first_slug = [slug(n) for n in self.first]
        self.last_slug = [slug(n) for n in self.last]
        tail = list(dict.fromkeys(fake.unique.domain_name() for _ in range(TAIL_DOMAINS)))
        share = 100 - sum(PROVIDERS.values())
        zipf = [1 / rank for rank in range(1, len(tail) + 1)]
        scale = share / sum(zipf)
        self.domains = rng.choices(
            [*PROVIDERS, *tail], weights=[*PROVIDERS.values(), *(w * scale for w in zipf)], k=POOL
        )
        self.tail_domain = tail[len(tail) // 10]  # a small company: a few dozen people per 1M
        self.common_name = max(set(self.first_slug), key=self.first_slug.count)

    def email(self, g: int) -> str:
        return (
            f"{self.first_slug[g * 7919 % POOL]}.{self.last_slug[g * 104729 % POOL]}{g}"
            f"@{self.domains[g * 15485863 % POOL]}"
        )

    def params(self) -> dict:
        return {
            "first": self.first,
            "last": self.last,
            "fslug": self.first_slug,
            "lslug": self.last_slug,
            "domains": self.domains,
            "pool": POOL,
        }


def _policy_file(directory: Path) -> Path:
    """The example policy plus a `plan` field, which segments may then use as an attribute."""
    from tidings.policy.commands import EXAMPLE_POLICY

    text = EXAMPLE_POLICY.read_text(encoding="utf-8")
    marker = "[categories]\n"
    path = directory / "policy.toml"
    path.write_text(text.replace(marker, marker + 'customer = ["plan"]\n', 1), encoding="utf-8")
    return path


def _generate(contacts: int, events: int = 0, campaigns: int | None = None) -> Population:
    """Contacts, three lists and their subscriptions; ``campaigns`` (default: ten when there are
    ``events``) sent to the confirmed "product news" readers, one every two weeks, and ``events``
    opens and clicks on them (one in four by a machine)."""
    if campaigns is None:
        campaigns = CAMPAIGNS if events else 0
    from django.db import connection

    started = time.perf_counter()
    people = Population()
    print(f"  faker pools: {time.perf_counter() - started:.1f} s; "
          f"{len(set(people.domains)):,} distinct domains in the pool")  # fmt: skip
    steps = [
        (
            "contacts",
            """
            INSERT INTO audience_contact (email, email_key, name, phone, company, job_title,
                                          work_address, attributes, created_at, updated_at,
                                          last_contact_at)
            WITH f AS (SELECT * FROM unnest(%(first)s::text[], %(fslug)s::text[])
                                     WITH ORDINALITY AS f(name, slug, i)),
                 l AS (SELECT * FROM unnest(%(last)s::text[], %(lslug)s::text[])
                                     WITH ORDINALITY AS l(name, slug, i)),
                 d AS (SELECT * FROM unnest(%(domains)s::text[]) WITH ORDINALITY AS d(name, i))
            -- email_key: the addresses are lower-case ASCII (slugs, faker's domains), their
            -- own key (emails.email_key)
            SELECT f.slug || '.' || l.slug || g || '@' || d.name,
                   f.slug || '.' || l.slug || g || '@' || d.name,
                   f.name || ' ' || l.name,
                   '', 'Company ' || (g %% 5000), '', '',
                   CASE WHEN g %% 10 = 0 THEN '{}'::jsonb
                        ELSE jsonb_build_object('plan', (ARRAY['free', 'pro', 'team'])[1 + g %% 3])
                   END,
                   timestamptz '2023-01-01' + (g %% 1200) * interval '1 day'
                                           + (g %% 86400) * interval '1 second',
                   now(),
                   CASE WHEN g %% 2 = 0 THEN NULL
                        ELSE timestamptz '2025-01-01' + (g %% 600) * interval '1 day' END
            FROM generate_series(1::bigint, %(n)s) AS g
            JOIN f ON f.i = 1 + (g * 7919) %% %(pool)s
            JOIN l ON l.i = 1 + (g * 104729) %% %(pool)s
            JOIN d ON d.i = 1 + (g * 15485863) %% %(pool)s
            ORDER BY g
            """,
        ),
        (
            "lists",
            """
            INSERT INTO audience_mailinglist (name, topic, description, is_public, created_at)
            VALUES ('product news', 'product news', '', true, now()),
                   ('Events', 'events and webinars', '', true, now()),
                   ('Training', 'training', '', true, now())
            """,
        ),
        (
            "subscriptions",
            """
            INSERT INTO audience_subscription (contact_id, mailing_list_id, status, created_at,
                                               confirmed_at, unsubscribed_at, updated_at)
            SELECT c.id, l.id,
                   CASE WHEN c.id %% 10 < 8 THEN 'confirmed'
                        WHEN c.id %% 10 = 8 THEN 'pending' ELSE 'unsubscribed' END,
                   c.created_at + interval '1 day',
                   CASE WHEN c.id %% 10 < 8 THEN c.created_at + interval '2 days' END,
                   CASE WHEN c.id %% 10 = 9 THEN c.created_at + interval '30 days' END,
                   now()
            FROM audience_contact c
            JOIN audience_mailinglist l
              ON (l.name = 'product news' AND c.id %% 2 = 0)
              OR (l.name = 'Events' AND c.id %% 5 = 0)
              OR (l.name = 'Training' AND c.id %% 7 = 0)
            """,
        ),
    ]
    if campaigns:
        steps.append(
            (
                "deliveries (to the confirmed product news readers)",
                """
                INSERT INTO campaigns_delivery (campaign_id, contact_id, status, attempts,
                    leased_by, sent_at, message_id, error, transport)
                SELECT k.id, s.contact_id, 'sent', 1, '', k.started_at, '', '', 'default'
                FROM campaigns_campaign k
                JOIN audience_subscription s ON s.status = 'confirmed'
                JOIN audience_mailinglist l ON l.id = s.mailing_list_id
                     AND l.name = 'product news'
                ORDER BY k.id, s.contact_id
                """,
            )
        )
    if events:
        steps.append(
            (
                "events (opens, clicks every tenth, one in four by a machine)",
                # Event n goes to delivery (n * 7919 mod D), within a week of its campaign's
                # sending (the deliveries of one campaign are one range of ids).
                """
                INSERT INTO campaigns_event (delivery_id, campaign_id, kind, at, link, machine)
                SELECT d.first + (n * 7919) %% d.size, k.id,
                       CASE WHEN n %% 10 = 0 THEN 'click' ELSE 'open' END,
                       k.started_at + (n %% 604800) * interval '1 second',
                       CASE WHEN n %% 10 = 0 THEN (n / 10) %% 8 END,
                       n %% 4 = 0
                FROM generate_series(1::bigint, %(events)s) n
                CROSS JOIN (SELECT min(id) AS first, count(*) AS size, count(*) / %(campaigns)s
                            AS per FROM campaigns_delivery) d
                JOIN (SELECT id, started_at, row_number() OVER (ORDER BY id) - 1 AS i
                      FROM campaigns_campaign) k ON k.i = ((n * 7919) %% d.size) / d.per
                """,
            )
        )
    params = {"n": contacts, "events": events, "campaigns": campaigns, **people.params()}
    if campaigns:
        from datetime import timedelta

        from django.utils import timezone

        from tidings.campaigns.models import Campaign

        for i in range(campaigns):
            sent = timezone.now() - timedelta(days=14 * i)
            Campaign.objects.create(
                name=f"Campaign {i}", subject="News", topic="product news", body="Hello",
                status=Campaign.Status.FINISHED, started_at=sent, finished_at=sent,
            )  # fmt: skip
    with connection.cursor() as cursor:
        for label, statement in steps:
            started = time.perf_counter()
            cursor.execute(statement, params)
            print(f"  {label}: {cursor.rowcount:,} rows in {time.perf_counter() - started:.1f} s",
                  flush=True)  # fmt: skip
    if events or campaigns:
        # The rows above went in by SQL, past the writers that keep the contacts' engagement
        # facts: computed here as the migration that introduced them computes them on upgrade.
        from tidings.campaigns.engagement import rebuild

        started = time.perf_counter()
        changed = rebuild()
        print(f"  engagement facts (the upgrade's backfill): {changed:,} contacts in "
              f"{time.perf_counter() - started:.1f} s", flush=True)  # fmt: skip
    with connection.cursor() as cursor:
        started = time.perf_counter()
        cursor.execute("VACUUM ANALYZE")
        print(f"  vacuum analyze: {time.perf_counter() - started:.1f} s")
    return people


def _timed(fn: Callable[[], int], runs: int) -> tuple[int, float, float]:
    result = fn()  # warm: the first run reads the table into the cache
    times = []
    for _ in range(runs):
        started = time.perf_counter()
        fn()
        times.append(time.perf_counter() - started)
    return result, statistics.median(times), min(times)


def _explain(text: str) -> str:
    from django.db import connection

    from tidings.audience.segments import segment_queryset

    sql_text, params = segment_queryset(text).values("pk").query.sql_with_params()
    with connection.cursor() as cursor:
        # The query is the ORM's own compiled SQL, its values still bound as parameters.
        explain = "EXPLAIN (ANALYZE, COSTS OFF, TIMING OFF) SELECT count(*) FROM ({}) q"
        cursor.execute(explain.format(sql_text), params)
        return "\n".join("      " + row[0] for row in cursor.fetchall())


def _run(contacts: int, events: int, runs: int, explain: bool) -> None:
    from django.core.management import call_command

    from tidings.audience.models import Contact
    from tidings.audience.segments import count_segment

    started = time.perf_counter()
    call_command("migrate", verbosity=0)
    print(f"migrated in {time.perf_counter() - started:.1f} s; generating {contacts:,} contacts")
    people = _generate(contacts, events)
    segments = [
        text.format(tail_domain=f'"{people.tail_domain}"', common_name=f'"{people.common_name}"')
        for text in SEGMENTS
    ]

    total, base_median, base_min = _timed(Contact.objects.count, runs)
    load = os.getloadavg()[0]
    print(f"\nmedian (min) of {runs} runs after one warm-up run; PostgreSQL, {total:,} contacts, "
          f"{events:,} events; load average {load:.1f} on {os.cpu_count()} CPUs")  # fmt: skip
    print(f"{'segment':<52} {'matches':>9} {'median ms':>10} {'min ms':>8} {'× count()':>10} "
          f"{'EXISTS ms':>10}")  # fmt: skip
    print(f"{'Contact.objects.count()  [baseline]':<52} {total:>9,} {base_median * 1000:>10.0f} "
          f"{base_min * 1000:>8.0f} {1:>10.1f}")  # fmt: skip
    slowest = slowest_engagement = slowest_exists = 0.0
    for text in segments:
        matches, median, fastest = _timed(lambda t=text: count_segment(t), runs)
        slowest = max(slowest, median)
        exists = ""
        if "_in(" in text:
            # The same segment answered by the definition (EXISTS over the events and
            # deliveries, as before the facts): the same contacts, and how much slower.
            with _exists_providers():
                same, old, _ = _timed(lambda t=text: count_segment(t), runs)
            assert same == matches, f"{text}: {matches} with the facts, {same} with EXISTS"
            exists = f"{old * 1000:>10.0f}"
            slowest_engagement = max(slowest_engagement, median)
            slowest_exists = max(slowest_exists, old)
        print(
            f"{text:<52} {matches:>9,} {median * 1000:>10.0f} {fastest * 1000:>8.0f} "
            f"{median / base_median:>10.1f} {exists}"
        )
        if explain:
            print(_explain(text))
    verdict = "meets" if slowest < 1 else "MISSES"
    print(f"\nslowest segment: {slowest * 1000:.0f} ms — {verdict} the 1 s target")
    report(
        "segments",
        "slowest segment count, median",
        slowest * 1000,
        "ms",
        baseline=base_median * 1000,
        baseline_label="Contact.objects.count()",
        target=1000,
        scale=f"{total:,} contacts, {events:,} events",
    )
    report(
        "segments",
        "slowest engagement segment (facts; baseline EXISTS)",
        slowest_engagement * 1000,
        "ms",
        baseline=slowest_exists * 1000,
        baseline_label="the same segments as EXISTS over events",
        target=1000,
        scale=f"{total:,} contacts, {events:,} events",
    )


@contextlib.contextmanager
def _exists_providers() -> Iterator[None]:
    from tidings.audience.segments import engagement
    from tidings.campaigns.engagement import EXISTS_FORMS, register_engagement

    try:
        for name, provider in EXISTS_FORMS.items():
            engagement.register(name, provider)
        yield
    finally:
        register_engagement()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--contacts", type=int, default=1_000_000)
    parser.add_argument("--events", type=int, default=10_000_000, help="opens and clicks")
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--quick", action="store_true", help="20,000 contacts, 200,000 events")
    parser.add_argument("--explain", action="store_true", help="print each query's plan")
    args = parser.parse_args(argv)
    if args.quick:
        args.contacts, args.events, args.runs = 20_000, 200_000, 3

    with scratch_database("segments") as url, tempfile.TemporaryDirectory() as directory:
        os.environ["DATABASE_URL"] = url
        os.environ["TIDINGS_POLICY"] = str(_policy_file(Path(directory)))
        os.environ.setdefault("DJANGO_SETTINGS_MODULE", "tidings.settings")
        import django

        django.setup()
        _run(args.contacts, args.events, args.runs, args.explain)
    return 0


if __name__ == "__main__":
    sys.exit(main())
