"""How long ``count_segment`` takes on a large audience in PostgreSQL.

    .venv/bin/python -m bench.segments [--contacts 1000000] [--runs 5] [--explain]

Creates a fresh database ``bench_segments_<pid>`` on 127.0.0.1 (user postgres, trust auth),
migrates it, fills it in SQL (``generate_series``: contacts with names, four email domains and a
``plan`` attribute; three lists with about 0.85 subscriptions per contact), then times
``count_segment`` for the example segments next to a plain ``Contact.objects.count()`` in the same
run, and drops the database.  The target is under a second for each segment at 1M contacts.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

from bench.common import scratch_database

SEGMENTS = [
    'list:"product news" and attributes.plan = "pro"',
    'domain:"example.com"',
    'list:"product news" and created > 2026-01-01',
    'attributes.plan = "pro"',
    'name ^= "ada"',
]

FIRST_NAMES = [
    "Ada", "Adam", "Adaeze", "Alan", "Barbara", "Charles", "Donald", "Edsger", "Frances", "Grace",
    "Hedy", "Ivan", "Joan", "Ken", "Katherine", "Linus", "Margaret", "Niklaus", "Ole", "Radia",
    "Shafi", "Tim", "Vint", "Whitfield", "Yukihiro", "Zhang", "Anita", "Bjarne", "Dennis", "Guido",
    "John", "Leslie", "Mary", "Robin", "Sophie", "Tony", "Ursula", "Vera", "Wendy", "Xavier",
]  # fmt: skip
LAST_NAMES = [
    "Lovelace", "Turing", "Hopper", "Liskov", "Knuth", "Dijkstra", "Allen", "Lamarr", "Sutherland",
    "Thompson", "Johnson", "Torvalds", "Hamilton", "Wirth", "Dahl", "Perlman", "Goldwasser",
    "Berners-Lee", "Cerf", "Diffie", "Matsumoto", "Borg", "Stroustrup", "Ritchie", "van Rossum",
    "Clarke", "Lamport", "Shaw", "Milner", "Wilson",
]  # fmt: skip


def _policy_file(directory: Path) -> Path:
    """The example policy plus a `plan` field, which segments may then use as an attribute."""
    from tidings.policy.commands import EXAMPLE_POLICY

    text = EXAMPLE_POLICY.read_text(encoding="utf-8")
    marker = "[categories]\n"
    path = directory / "policy.toml"
    path.write_text(text.replace(marker, marker + 'customer = ["plan"]\n', 1), encoding="utf-8")
    return path


def _generate(contacts: int) -> None:
    from django.db import connection

    steps = [
        (
            "contacts",
            """
            INSERT INTO audience_contact (email, name, phone, company, job_title, work_address,
                                          attributes, created_at, updated_at, last_contact_at)
            SELECT 'person' || g || '@' || (ARRAY['example.com', 'example.org', 'mail.example.net',
                                                  'example.co.uk'])[1 + (g * 7) %% 4],
                   (%(first)s::text[])[1 + g %% 40] || ' '
                       || (%(last)s::text[])[1 + (g / 40) %% 30],
                   '', 'Company ' || (g %% 5000), '', '',
                   CASE WHEN g %% 10 = 0 THEN '{}'::jsonb
                        ELSE jsonb_build_object('plan', (ARRAY['free', 'pro', 'team'])[1 + g %% 3])
                   END,
                   timestamptz '2023-01-01' + (g %% 1200) * interval '1 day'
                                           + (g %% 86400) * interval '1 second',
                   now(),
                   CASE WHEN g %% 2 = 0 THEN NULL
                        ELSE timestamptz '2025-01-01' + (g %% 600) * interval '1 day' END
            FROM generate_series(1, %(n)s) AS g
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
    with connection.cursor() as cursor:
        for label, statement in steps:
            started = time.perf_counter()
            cursor.execute(statement, {"n": contacts, "first": FIRST_NAMES, "last": LAST_NAMES})
            print(f"  {label}: {cursor.rowcount:,} rows in {time.perf_counter() - started:.1f} s")
        started = time.perf_counter()
        cursor.execute("VACUUM ANALYZE")
        print(f"  vacuum analyze: {time.perf_counter() - started:.1f} s")


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


def _run(contacts: int, runs: int, explain: bool) -> None:
    from django.core.management import call_command

    from tidings.audience.models import Contact
    from tidings.audience.segments import count_segment

    started = time.perf_counter()
    call_command("migrate", verbosity=0)
    print(f"migrated in {time.perf_counter() - started:.1f} s; generating {contacts:,} contacts")
    _generate(contacts)

    total, base_median, base_min = _timed(Contact.objects.count, runs)
    print(f"\nmedian (min) of {runs} runs after one warm-up run; PostgreSQL, {total:,} contacts")
    print(f"{'segment':<52} {'matches':>9} {'median ms':>10} {'min ms':>8} {'× count()':>10}")
    print(f"{'Contact.objects.count()  [baseline]':<52} {total:>9,} {base_median * 1000:>10.0f} "
          f"{base_min * 1000:>8.0f} {1:>10.1f}")  # fmt: skip
    slowest = 0.0
    for text in SEGMENTS:
        matches, median, fastest = _timed(lambda t=text: count_segment(t), runs)
        slowest = max(slowest, median)
        print(
            f"{text:<52} {matches:>9,} {median * 1000:>10.0f} {fastest * 1000:>8.0f} "
            f"{median / base_median:>10.1f}"
        )
        if explain:
            print(_explain(text))
    verdict = "meets" if slowest < 1 else "MISSES"
    print(f"\nslowest segment: {slowest * 1000:.0f} ms — {verdict} the 1 s target")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--contacts", type=int, default=1_000_000)
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--explain", action="store_true", help="print each query's plan")
    args = parser.parse_args(argv)

    with scratch_database("segments") as url, tempfile.TemporaryDirectory() as directory:
        os.environ["DATABASE_URL"] = url
        os.environ["TIDINGS_POLICY"] = str(_policy_file(Path(directory)))
        os.environ.setdefault("DJANGO_SETTINGS_MODULE", "tidings.settings")
        import django

        django.setup()
        _run(args.contacts, args.runs, args.explain)
    return 0


if __name__ == "__main__":
    sys.exit(main())
