"""How fast one worker advances due journey steps on PostgreSQL (a send step queued per person).

    .venv/bin/python -m bench.journeys [--people 1000000] [--due 100000] [--feed-seconds 30]
                                       [--quick]

Creates a fresh database ``tidings_bench_journeys_<pid>``, migrates it and fills it in SQL
(``generate_series``): ``--people`` contacts confirmed on a list of the journey's topic, each
enrolled in an active welcome journey (send → wait 2 days → send); ``--due`` of them due in the
same minute at the first step, the rest waiting days ahead.  Then:

1. **The burst.**  One process runs ``engine.advance_due`` until nothing is due: elapsed, steps/s
   (a person's send and the wait after it are two steps), the resident memory at the start, in
   the middle and at the end (flat memory: a batch is forgotten once it commits).
2. **The feed.**  People waiting are made due at 1,000 a second (2,000 steps/s) for
   ``--feed-seconds``; the worker keeps advancing; the scheduler lag of each person is the time
   from their ``next_run_at`` to the commit of the batch that ran their send step
   (percentiles).
3. **Baseline**, measured in the same run on the same table: a bare loop of ``UPDATE …
   RETURNING`` batches (the engine's batch size) that moves the same number of due rows on (no
   consent check, no rendering, no message, no history): the database's floor for touching those
   rows.  The ratio is the engine's time over the baseline's.

At the quick scales (``--quick``, ``make bench``'s 5,000/500) the burst is a batch or a few,
and their one-off costs (compiling the step's template, storing its link table, the first
queries) dominate: its people/s there say little about the full scale.

Target (issue 15): 1M enrolled, 100k due in the same minute, advanced in under 60 s by one
worker with flat memory; lag under 5 s at 2,000 steps/s.  Figures: bench/RESULTS.md (journeys).
"""

from __future__ import annotations

import argparse
import os
import resource
import sys
import time
from pathlib import Path

from bench._report import report
from bench.common import scratch_database


def load_average() -> str:
    return " ".join(f"{x:.2f}" for x in os.getloadavg())


def _fill(people: int, due: int) -> int:
    from django.db import connection

    from tidings.audience.models import MailingList
    from tidings.campaigns.models import Template
    from tidings.campaigns.rendering import ensure_default_layout
    from tidings.journeys.actions import JourneySpec, do_activate, do_create_journey

    news = MailingList.objects.create(name="Product news", topic="product news")
    Template.objects.create(
        name="Welcome",
        layout=ensure_default_layout(),
        subject="Hi",
        body="Hello {{ contact.name }}",
    )
    steps = [
        {"id": "hello", "kind": "send_email", "template": "Welcome"},
        {"id": "pause", "kind": "wait", "duration": "2 days"},
        {"id": "tips", "kind": "send_email", "template": "Welcome"},
    ]
    spec = JourneySpec("Welcome", "product news", "confirmed", {}, "once", 0, steps, [])
    journey = do_create_journey(spec, actor=None)
    do_activate(journey, actor=None)
    version = journey.current()
    with connection.cursor() as c:
        c.execute(
            # email_key: these addresses are lower-case ASCII, their own key (emails.email_key).
            "INSERT INTO audience_contact (email, email_key, name, phone, company, job_title, "
            "work_address, attributes, created_at, updated_at) SELECT 'p' || n || '@example.org', "
            "'p' || n || '@example.org', "
            "'Person ' || n, '', '', '', '', '{}', now(), now() FROM generate_series(1, %s) n",
            [people],
        )
        c.execute(
            "INSERT INTO audience_subscription (contact_id, mailing_list_id, status, created_at, "
            "updated_at, confirmed_at) SELECT id, %s, 'confirmed', now(), now(), now() "
            "FROM audience_contact",
            [news.pk],
        )
        c.execute(
            "INSERT INTO journeys_enrolment (journey_id, version_id, contact_id, state, step, seq, "
            "next_run_at, attempts, error, exit_reason, leased_by, waiting_for, entered_at) "
            "SELECT %s, %s, id, 'active', 'hello', 0, "
            # The due ones spread over the last minute: "due in the same minute".
            "CASE WHEN row_number() OVER (ORDER BY id) <= %s "
            "THEN now() - interval '1 second' * (1 + id %% 59) "
            "ELSE now() + interval '3 days' END, 0, '', '', '', '', now() FROM audience_contact",
            [journey.pk, version.pk, due],
        )
        c.execute("ANALYZE")
    return journey.pk


def rss_mb() -> tuple[float, float]:
    """(resident now, peak so far) in MB."""
    now = 0.0
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            now = int(line.split()[1]) / 1024
    return now, resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def _baseline(due: int, batch: int) -> float:
    """UPDATE … RETURNING batches moving the due rows on, then put back."""
    from django.db import connection, transaction

    started = time.perf_counter()
    moved = 0
    while moved < due:
        with transaction.atomic(), connection.cursor() as c:
            c.execute(
                "WITH picked AS (SELECT id FROM journeys_enrolment WHERE state = 'active' "
                "AND next_run_at <= now() AND step = 'hello' ORDER BY next_run_at, id LIMIT %s "
                "FOR UPDATE SKIP LOCKED) UPDATE journeys_enrolment e SET step = 'pause', "
                # Out of the due range, as the engine's wait step does (or every batch would
                # scan past the rows moved before it).
                "seq = seq + 1, next_run_at = next_run_at + interval '3 days' "
                "FROM picked WHERE e.id = picked.id RETURNING e.id",
                [batch],
            )
            rows = c.fetchall()
        if not rows:
            break
        moved += len(rows)
    elapsed = time.perf_counter() - started
    with connection.cursor() as c:
        c.execute(
            "UPDATE journeys_enrolment SET step = 'hello', seq = 0, "
            "next_run_at = next_run_at - interval '3 days' WHERE step = 'pause'"
        )
    return elapsed


def _burst(due: int) -> tuple[int, float]:
    from tidings.journeys.engine import advance_due

    rss, peak = rss_mb()
    print(f"memory at the start: {rss:.0f} MB resident, peak {peak:.0f} MB")
    started = time.perf_counter()
    steps = 0
    middle = False
    while True:
        ran = advance_due()
        if not ran:
            break
        steps += ran
        if not middle and steps >= due:  # half the people: each takes two steps
            middle = True
            rss, peak = rss_mb()
            print(f"memory in the middle: {rss:.0f} MB resident, peak {peak:.0f} MB")
    elapsed = time.perf_counter() - started
    rss, peak = rss_mb()
    print(f"memory at the end: {rss:.0f} MB resident, peak {peak:.0f} MB")
    return steps, elapsed


def _feed(seconds: float, people_per_second: int) -> list[float]:
    """Make waiting people due at ``people_per_second`` from two seconds on, advance them as
    they come due, and return each one's lag (due → the commit of their send step), sorted."""
    from datetime import timedelta

    from django.db import connection
    from django.utils import timezone

    from tidings.journeys.engine import advance_due
    from tidings.journeys.models import EnrolmentStep

    count = int(seconds * people_per_second)
    start = timezone.now() + timedelta(seconds=2)
    with connection.cursor() as c:
        c.execute(
            "WITH fed AS (SELECT id, row_number() OVER (ORDER BY id) - 1 AS n "
            "FROM journeys_enrolment WHERE state = 'active' AND step = 'hello' "
            "ORDER BY id LIMIT %s) UPDATE journeys_enrolment e "
            "SET next_run_at = %s + fed.n * interval '1 microsecond' * %s "
            "FROM fed WHERE e.id = fed.id RETURNING e.id, e.next_run_at",
            [count, start, 1_000_000 / people_per_second],
        )
        due_at = dict(c.fetchall())
    committed: dict = {}  # the ``now`` a batch ran with -> when it committed
    end = start + timedelta(seconds=seconds)
    while True:
        now = timezone.now()
        ran = advance_due(now=now)
        if ran:
            committed[now] = timezone.now()
        elif now > end:
            break
        else:
            time.sleep(0.05)
    lags = [
        (committed[ran_at] - due_at[enrolment]).total_seconds()
        for enrolment, ran_at in EnrolmentStep.objects.filter(
            enrolment_id__in=list(due_at), seq=0
        ).values_list("enrolment_id", "ran_at")
    ]
    return sorted(lags)


def percentile(values: list[float], p: float) -> float:
    return values[min(len(values) - 1, int(p / 100 * len(values)))] if values else float("nan")


def _run(people: int, due: int, feed_seconds: float) -> None:
    from django.core.management import call_command

    from tidings.journeys.engine import BATCH
    from tidings.journeys.models import Enrolment

    call_command("migrate", verbosity=0)
    started = time.perf_counter()
    _fill(people, due)
    print(f"filled {people:,} enrolled, {due:,} due, in {time.perf_counter() - started:.1f} s")
    base = _baseline(due, BATCH)
    print(f"baseline (bare UPDATE … RETURNING loop): {base:.2f} s, {due / base:,.0f} rows/s")
    print(f"load average before the burst: {load_average()}")
    steps, elapsed = _burst(due)
    sends = Enrolment.objects.filter(step="tips").count()
    print(
        f"burst: {steps:,} steps ({sends:,} sends queued) in {elapsed:.1f} s by one worker, "
        f"{steps / elapsed:,.0f} steps/s ({sends / elapsed:,.0f} people/s); "
        f"ratio to the baseline {elapsed / base:.1f}×"
    )
    print(f"load average after the burst: {load_average()}")
    lags = _feed(feed_seconds, 1_000)
    print(
        f"feed: {len(lags):,} people due at 1,000/s (2,000 steps/s) for {feed_seconds:g} s; "
        f"lag due → step committed: p50 {percentile(lags, 50):.2f} s, "
        f"p95 {percentile(lags, 95):.2f} s, p99 {percentile(lags, 99):.2f} s, "
        f"max {lags[-1] if lags else float('nan'):.2f} s"
    )
    print(f"load average at the end: {load_average()}")
    report(
        "journeys",
        "people advanced per second (send step queued, one worker)",
        sends / elapsed,
        "people/s",
        baseline=due / base,
        baseline_label="bare UPDATE … RETURNING loop, rows/s",
        target=100_000 / 60,
        higher_is_better=True,
        scale=f"{people:,} enrolled, {due:,} due",
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--people", type=int, default=1_000_000)
    parser.add_argument("--due", type=int, default=100_000)
    parser.add_argument("--feed-seconds", type=float, default=30)
    parser.add_argument("--quick", action="store_true", help="20,000 people, 2,000 due, 5 s feed")
    args = parser.parse_args(argv)
    if args.quick:
        args.people, args.due, args.feed_seconds = 20_000, 2_000, 5
    print(f"load average at the start: {load_average()}")
    with scratch_database("journeys") as url:
        os.environ["DATABASE_URL"] = url
        os.environ.pop("TIDINGS_POLICY", None)
        os.environ.setdefault("DJANGO_SETTINGS_MODULE", "tidings.settings")
        import django

        django.setup()
        _run(args.people, args.due, args.feed_seconds)
    return 0


if __name__ == "__main__":
    sys.exit(main())
