"""How long the retention sweep takes to remove a million expired enquiries in PostgreSQL.

    .venv/bin/python -m bench.retention [--enquiries 1000000] [--fresh 50000] [--batch 2000]

Creates a fresh database ``bench_retention_<pid>`` on 127.0.0.1 (user postgres, trust auth),
migrates it and fills it in SQL (``generate_series``): one contact per enquiry; ``--enquiries``
enquiries whose last contact was two years ago (expired), ``--fresh`` recent ones (kept); a sent
campaign with a delivery row for every contact; a consent event for every tenth contact.  Then it
times a dry run and the sweep (``run_retention``), while a probe thread keeps writing to delivery
rows of the contacts being erased and records how long each write waited for a lock.  Prints the
time, rows/s, the longest single transaction and the longest wait; drops the database.

Target: "Retention sweep removing 1M expired records < 2 minutes, in batches that never lock the
delivery tables for more than 1 s".
"""

from __future__ import annotations

import argparse
import os
import random
import sys
import threading
import time
from typing import Any

import psycopg

from bench.common import scratch_database


def _insert_select(model: Any, columns: dict[str, str], source: str, params: dict) -> int:
    """INSERT INTO <model's table> SELECT ... FROM <source>: the given columns as SQL
    expressions, every other column its field's default (or NULL), so the bench keeps working
    while other apps add columns to their tables."""
    from django.db import connection

    names, values = [], []
    defaults: dict[str, Any] = {}
    for field in model._meta.concrete_fields:
        if field.primary_key:
            continue
        names.append(field.column)
        if field.column in columns:
            values.append(columns[field.column])
        elif field.null:
            values.append("NULL")
        else:
            key = f"default_{field.column}"
            default = field.get_default()
            defaults[key] = field.get_db_prep_save(default, connection)
            values.append(f"%({key})s")
    # Table and column names from the models, expressions written in this file: no user input.
    statement = (
        f"INSERT INTO {model._meta.db_table} ({', '.join(names)}) "  # noqa: S608
        f"SELECT {', '.join(values)} FROM {source}"
    )
    with connection.cursor() as cursor:
        cursor.execute(statement, {**params, **defaults})
        return cursor.rowcount


def _generate(expired: int, fresh: int) -> int:
    """Returns the id of the campaign whose deliveries point at the contacts."""
    from django.db import connection

    from tidings.audience.models import ConsentEvent, Contact
    from tidings.campaigns.models import Campaign, Delivery
    from tidings.crm.models import Enquiry

    total = expired + fresh
    steps = [
        (
            "contacts",
            lambda: _insert_select(
                Contact,
                {
                    "email": "'person' || g || '@example.com'",
                    "name": "'Person ' || g",
                    "created_at": "now() - interval '3 years'",
                    "updated_at": "now()",
                },
                "generate_series(1, %(total)s) AS g",
                {"total": total},
            ),
        ),
        (
            "enquiries",
            lambda: _insert_select(
                Enquiry,
                {
                    "contact_id": "c.id",
                    "channel": "'email'",
                    "message": "'Could you send me a quote for ' || c.id || ' widgets?'",
                    "created_at": "c.created_at",
                    # the first `expired` contacts were last in touch two years ago
                    "last_contact_at": "CASE WHEN c.id <= (SELECT min(id) FROM audience_contact)"
                    " + %(expired)s - 1 THEN now() - interval '2 years'"
                    " ELSE now() - interval '1 month' END",
                },
                "audience_contact c",
                {"expired": expired},
            ),
        ),
    ]
    for label, step in steps:
        started = time.perf_counter()
        rows = step()
        print(f"  {label}: {rows:,} rows in {time.perf_counter() - started:.1f} s")

    campaign = Campaign.objects.create(
        name="Bench", subject="Bench", topic="product news", status="finished"
    )
    for label, model, columns, source in [
        (
            "deliveries",
            Delivery,
            {
                "campaign_id": "%(campaign)s",
                "contact_id": "c.id",
                "status": "'sent'",
                "sent_at": "now() - interval '2 years'",
            },
            "audience_contact c",
        ),
        (
            "consent events",
            ConsentEvent,
            {
                "contact_id": "c.id",
                "purpose": "'marketing'",
                "channel": "'phone'",
                "action": "'granted'",
                "at": "c.created_at",
                "source": "'operator'",
            },
            "audience_contact c WHERE c.id %% 10 = 0",
        ),
    ]:
        started = time.perf_counter()
        rows = _insert_select(model, columns, source, {"campaign": campaign.pk})
        print(f"  {label}: {rows:,} rows in {time.perf_counter() - started:.1f} s")
    started = time.perf_counter()
    with connection.cursor() as cursor:
        cursor.execute("VACUUM ANALYZE")
    print(f"  vacuum analyze: {time.perf_counter() - started:.1f} s")
    return campaign.pk


class LockProbe(threading.Thread):
    """Writes to random delivery rows of the contacts being erased, on its own connection,
    and records how long each write took (a write that waits, waits for a sweep's lock)."""

    def __init__(self, url: str, first: int, last: int) -> None:
        super().__init__(daemon=True)
        self.url, self.first, self.last = url, first, last
        self.stopping = threading.Event()
        self.waits: list[float] = []

    def run(self) -> None:
        with psycopg.connect(self.url, autocommit=True) as connection:
            while not self.stopping.is_set():
                delivery_id = random.randint(self.first, self.last)
                started = time.perf_counter()
                connection.execute(
                    "UPDATE campaigns_delivery SET attempts = attempts WHERE id = %s",
                    (delivery_id,),
                )
                self.waits.append(time.perf_counter() - started)
                self.stopping.wait(0.02)


def _run(expired: int, fresh: int, batch: int, url: str) -> None:
    from django.core.management import call_command
    from django.db import connection

    from tidings.audience.models import ConsentEvent, Contact
    from tidings.campaigns.models import Delivery
    from tidings.crm.models import Enquiry
    from tidings.rights.retention import run_retention

    started = time.perf_counter()
    call_command("migrate", verbosity=0)
    print(f"migrated in {time.perf_counter() - started:.1f} s; generating")
    campaign = _generate(expired, fresh)
    connection.close()

    started = time.perf_counter()
    dry = run_retention(dry_run=True)
    print(
        f"\ndry run: {dry.counts['enquiry']:,} enquiries and {dry.contacts:,} contacts would go "
        f"({time.perf_counter() - started:.1f} s)"
    )

    ids = Delivery.objects.filter(campaign_id=campaign).order_by("pk").values_list("pk", flat=True)
    probe = LockProbe(url, ids.first(), ids.first() + expired - 1)
    probe.start()
    result = run_retention(batch_size=batch, actor_label="bench")
    probe.stopping.set()
    probe.join()

    removed = result.counts["enquiry"] + result.contacts
    print(f"\nsweep (batches of {batch:,} ids, one transaction each)")
    print(f"  enquiries removed:        {result.counts['enquiry']:>12,}")
    print(f"  contacts erased:          {result.contacts:>12,}")
    print(f"  total time:               {result.seconds:>12.1f} s")
    print(f"  rows/s (both):            {removed / result.seconds:>12,.0f}")
    print(f"  enquiries/s:              {result.counts['enquiry'] / result.seconds:>12,.0f}")
    print(f"  batches:                  {result.batches:>12,}")
    print(f"  longest transaction:      {result.longest_batch * 1000:>12.0f} ms")
    waits = sorted(probe.waits)
    if waits:
        p99 = waits[int(len(waits) * 0.99) - 1] if len(waits) >= 100 else waits[-1]
        print(
            f"  delivery writes probed:   {len(waits):>12,} (longest wait "
            f"{waits[-1] * 1000:.0f} ms, p99 {p99 * 1000:.0f} ms)"
        )
    left = Enquiry.objects.count()
    kept_deliveries = Delivery.objects.filter(campaign_id=campaign).count()
    print(
        f"  left: {left:,} enquiries (the fresh ones), {Contact.objects.count():,} contacts; "
        f"{kept_deliveries:,} deliveries kept, "
        f"{Delivery.objects.filter(contact__isnull=True).count():,} of them now anonymous; "
        f"{ConsentEvent.objects.filter(contact__isnull=True).count():,} consent events "
        "now tombstones"
    )
    ok = result.seconds < 120 and result.longest_batch < 1
    verdict = "meets" if ok else "MISSES"
    print(f"\n{verdict} the target: < 2 minutes for 1M, no transaction over 1 s")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--enquiries", type=int, default=1_000_000, help="expired ones")
    parser.add_argument("--fresh", type=int, default=50_000, help="recent ones, which stay")
    parser.add_argument("--batch", type=int, default=None, help="ids per transaction")
    args = parser.parse_args(argv)

    with scratch_database("retention") as url:
        os.environ["DATABASE_URL"] = url
        os.environ.pop("TIDINGS_POLICY", None)  # the example policy: enquiries kept 12 months
        os.environ.setdefault("DJANGO_SETTINGS_MODULE", "tidings.settings")
        import django

        django.setup()
        from tidings.rights.retention import BATCH_SIZE

        _run(args.enquiries, args.fresh, args.batch or BATCH_SIZE, url)
    return 0


if __name__ == "__main__":
    sys.exit(main())
