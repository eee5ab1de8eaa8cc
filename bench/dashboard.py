"""How long the operator dashboard takes at a large audience (issue 20, target 4).

    .venv/bin/python -m bench.dashboard [--contacts 1000000] [--deliveries 10000000] [--runs 30]
                                        [--quick]

Creates a fresh database ``tidings_bench_dashboard_<pid>`` on 127.0.0.1 (user postgres, trust
auth), migrates it, fills it in SQL with the audience of ``bench.segments`` (faker names, real
domain spread, three lists with about 0.85 subscriptions per contact) and campaigns sent to the
"product news" readers until there are about ``--deliveries`` deliveries, then requests ``/``
through Django's test client as a signed-in owner (middleware, sessions, every query, the
template) ``--runs`` times after a warm-up:

- the dashboard as it is: the audience figures and the bulk-sender checklist read from the
  snapshots the worker keeps (``audience/stats.py``, ``campaigns/deliverability/checklist.py``);
- the baseline, in the same run: the same view counting every contact and subscription and
  aggregating the last 30 days' deliveries on each view, as it did before;
- and the parts on their own: each count and each snapshot read, the campaign figures
  (``dashboard_summary``) and the getting-started steps.

The target: under 100 ms (median) at 1M contacts and 10M deliveries.  ``--quick``: 20,000 contacts
and 100,000 deliveries, for ``make bench``.  The database is dropped at the end.
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

from bench._report import report
from bench.common import scratch_database
from bench.segments import _generate, _policy_file

TARGET_MS = 100.0


def _times(fn: Callable[[], object], runs: int) -> list[float]:
    fn()  # warm
    times = []
    for _ in range(runs):
        started = time.perf_counter()
        fn()
        times.append((time.perf_counter() - started) * 1000)
    return times


def _p95(times: list[float]) -> float:
    return statistics.quantiles(times, n=20)[-1] if len(times) >= 2 else times[0]


def _run(contacts: int, deliveries: int, runs: int) -> bool:
    from django.contrib.auth import get_user_model
    from django.core.management import call_command
    from django.test import Client

    from tidings.audience import stats
    from tidings.campaigns.deliverability import checklist
    from tidings.campaigns.reports import dashboard_summary
    from tidings.web.checklist import progress

    started = time.perf_counter()
    call_command("migrate", verbosity=0)
    # About 0.4 of the contacts are confirmed "product news" readers, who each campaign goes to.
    campaigns = max(1, round(deliveries / (0.4 * contacts)))
    print(f"migrated in {time.perf_counter() - started:.1f} s; generating {contacts:,} contacts "
          f"and {campaigns} campaigns")  # fmt: skip
    _generate(contacts, campaigns=campaigns)
    from tidings.campaigns.models import Delivery

    made = Delivery.objects.count()

    owner = get_user_model().objects.create_superuser("bench-owner", "owner@example.com", None)
    client = Client()
    client.force_login(owner)

    def view() -> None:
        response = client.get("/")
        if response.status_code != 200:
            raise SystemExit(f"the dashboard answered {response.status_code}")

    # What the worker's periodic jobs do every minute (audience) and five minutes (checklist).
    stats.take_snapshot()
    checklist.take_checklist_snapshot.call()
    # At --quick the audience is small enough to be counted live: read the snapshot anyway, as
    # at a large audience (1M contacts do so by default).
    live_below = stats.LIVE_BELOW
    stats.LIVE_BELOW = 0
    load = os.getloadavg()[0]
    print(f"\n{runs} runs each after one warm-up; PostgreSQL, {contacts:,} contacts, "
          f"{made:,} deliveries; load average {load:.1f} on {os.cpu_count()} CPUs")  # fmt: skip
    print(f"{'':<52} {'median ms':>10} {'p95 ms':>8}")
    snapshot_view = _times(view, runs)
    audience_read = _times(stats.audience_summary, runs)
    checklist_read = _times(checklist.dashboard_checklist, runs)
    checklist_count = _times(checklist.bulk_sender_checklist, runs)
    growth = stats.audience_summary()["growth"]  # as the view passes it, from the snapshot
    campaign_figures = _times(lambda: dashboard_summary(growth=growth), runs)
    # The baseline: the view as it was, counting the audience and the checklist on every view.
    kept_checklist = checklist.dashboard_checklist
    stats.LIVE_BELOW = contacts + 1  # counted on every view
    checklist.dashboard_checklist = checklist.bulk_sender_checklist
    try:
        counting_view = _times(view, runs)
    finally:
        checklist.dashboard_checklist = kept_checklist
        stats.LIVE_BELOW = live_below
    rows = [
        ("GET / (audience and checklist from snapshots)", snapshot_view),
        ("GET / counting both on every view  [baseline]", counting_view),
        ("  audience counted (stats.count_audience)", _times(stats.count_audience, runs)),
        ("  audience snapshot read (stats.audience_summary)", audience_read),
        ("  checklist counted (bulk_sender_checklist)", checklist_count),
        ("  checklist snapshot read (dashboard_checklist)", checklist_read),
        ("  campaign figures (reports.dashboard_summary)", campaign_figures),
        ("  getting-started steps", _times(lambda: progress(owner), runs)),
    ]
    for label, times in rows:
        print(f"{label:<52} {statistics.median(times):>10.1f} {_p95(times):>8.1f}")
    median = statistics.median(snapshot_view)
    baseline = statistics.median(counting_view)
    met = median < TARGET_MS
    print(f"\n{'meets' if met else 'MISSES'} the target: median under {TARGET_MS:.0f} ms "
          f"({baseline / median:.1f}× faster than counting)")  # fmt: skip
    report(
        "dashboard",
        "GET / median",
        median,
        "ms",
        baseline=baseline,
        baseline_label="counting on every view",
        target=TARGET_MS,
        scale=f"{contacts:,} contacts, {made:,} deliveries",
    )
    return met


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--contacts", type=int, default=1_000_000)
    parser.add_argument("--deliveries", type=int, default=10_000_000)
    parser.add_argument("--runs", type=int, default=30)
    parser.add_argument("--quick", action="store_true", help="20,000 contacts, 100,000 deliveries")
    args = parser.parse_args(argv)
    if args.quick:
        args.contacts, args.deliveries, args.runs = 20_000, 100_000, 15

    with scratch_database("dashboard") as url, tempfile.TemporaryDirectory() as directory:
        os.environ["DATABASE_URL"] = url
        os.environ["TIDINGS_POLICY"] = str(_policy_file(Path(directory)))
        os.environ["TIDINGS_DATA_DIR"] = directory
        os.environ["TIDINGS_ALLOWED_HOSTS"] = "testserver"
        os.environ["TIDINGS_LOG_LEVEL"] = "ERROR"
        os.environ["TIDINGS_REQUIRE_2FA"] = "none"
        os.environ.setdefault("DJANGO_SETTINGS_MODULE", "tidings.settings")
        import django

        django.setup()
        ok = _run(args.contacts, args.deliveries, args.runs)
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
